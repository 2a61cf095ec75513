"""Gated Recurrent Unit (Cho et al. 2014), gate order z, r, h."""

from __future__ import annotations

import keras
from keras import ops

from seqkit.layers.recurrent_cell import RecurrentCell, is_default_activation
from seqkit.layers.rnn import _CellLayer


@keras.saving.register_keras_serializable(package="seqkit")
class GRUCell(RecurrentCell):
    """One GRU step; weights as `keras.layers.GRUCell` (gate order z, r, h).

    Args:
        units: positive int.
        reset_after: apply the reset gate after the recurrent matmul (default
            True, the cuDNN-compatible form; bias then has shape (2, 3 * units):
            input bias and recurrent bias). False is the original form.
        Other arguments as `keras.layers.GRUCell`, plus trainable_initial_state.

    Call arguments:
        inputs: (batch, features). states: (batch, units) or a list of one.

    Example:

    >>> cell = GRUCell(4, reset_after=False)
    >>> h, [h] = cell(np.ones((2, 3), "float32"), cell.get_initial_state(2))
    >>> h.shape
    (2, 4)
    """

    gates = 3

    def __init__(self, units, reset_after=True, **kwargs):
        super().__init__(units, **kwargs)
        if not isinstance(reset_after, bool):
            raise ValueError(f"Received `reset_after={reset_after!r}`; expected True or False.")
        self.reset_after = reset_after
        self.state_size = self.units

    def build(self, input_shape):
        shape = (2, 3 * self.units) if self.reset_after else (3 * self.units,)
        self._add_weights(input_shape[-1], shape)

    def input_bias(self):
        if not self.use_bias:
            return None
        return self.bias[0] if self.reset_after else self.bias

    def recurrent_bias(self):
        if self.use_bias and self.reset_after:
            return self.bias[1]
        return None

    def step(self, xp_t, states, recurrent_mask=None):
        h_tm1 = states[0]
        hr = h_tm1 * recurrent_mask if recurrent_mask is not None else h_tm1
        u = self.units
        rk = ops.cast(self.recurrent_kernel, xp_t.dtype)
        x_z, x_r, x_h = ops.split(xp_t, 3, axis=-1)
        if self.reset_after:
            inner = ops.matmul(hr, rk)  # (batch, 3u)
            rb = self.recurrent_bias()
            if rb is not None:
                inner = inner + ops.cast(rb, xp_t.dtype)
            i_z, i_r, i_h = ops.split(inner, 3, axis=-1)
            z = self.recurrent_activation(x_z + i_z)
            r = self.recurrent_activation(x_r + i_r)
            hh = self.activation(x_h + r * i_h)
        else:
            inner = ops.matmul(hr, rk[:, : 2 * u])  # (batch, 2u)
            i_z, i_r = ops.split(inner, 2, axis=-1)
            z = self.recurrent_activation(x_z + i_z)
            r = self.recurrent_activation(x_r + i_r)
            hh = self.activation(x_h + ops.matmul(r * hr, rk[:, 2 * u :]))
        h = z * h_tm1 + (1.0 - z) * hh
        return h, [h]

    def _fast_kind(self):
        if is_default_activation(self.activation, "tanh") and is_default_activation(
            self.recurrent_activation, "sigmoid"
        ):
            return "gru" if self.reset_after else "gru_v1"
        return None

    def get_config(self):
        return {**super().get_config(), "reset_after": self.reset_after}


@keras.saving.register_keras_serializable(package="seqkit")
class GRU(_CellLayer):
    """GRU layer; a drop-in for `keras.layers.GRU` (reset_after True or False).

    Same arguments, defaults and weights as Keras, plus
    `trainable_initial_state`.

    Example:

    >>> gru = GRU(32, return_state=True)
    >>> last, h = gru(np.zeros((8, 10, 4), "float32"))
    >>> last.shape, h.shape
    ((8, 32), (8, 32))
    """

    cell_class = GRUCell
    cell_name = "gru_cell"

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        reset_after=True,
        use_cudnn="auto",
        trainable_initial_state=False,
        **kwargs,
    ):
        super().__init__(**self._split_arguments(locals()))
