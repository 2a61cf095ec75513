"""Long Short-Term Memory (Hochreiter & Schmidhuber 1997), gate order i, f, c, o."""

from __future__ import annotations

import keras
from keras import ops

from seqkit.layers._gates import gate_scale_offset
from seqkit.layers.recurrent_cell import RecurrentCell, is_default_activation
from seqkit.layers.rnn import _CellLayer


@keras.saving.register_keras_serializable(package="seqkit")
class LSTMCell(RecurrentCell):
    """One LSTM step; weights as `keras.layers.LSTMCell` (gate order i, f, c, o).

    Args:
        units: positive int.
        activation: default "tanh"; recurrent_activation: default "sigmoid".
        unit_forget_bias: add 1 to the forget-gate bias at initialization.
        Other arguments as `keras.layers.LSTMCell`, plus
        trainable_initial_state (learned h0 and c0).

    Call arguments:
        inputs: (batch, features). states: [h (batch, units), c (batch, units)].

    Returns:
        (h, [h, c]).

    Example:

    >>> cell = LSTMCell(4)
    >>> h, (h, c) = cell(np.ones((2, 3), "float32"), cell.get_initial_state(2))
    >>> h.shape, c.shape
    ((2, 4), (2, 4))
    """

    gates = 4

    def __init__(self, units, unit_forget_bias=True, **kwargs):
        super().__init__(units, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.state_size = [self.units, self.units]

    def build(self, input_shape):
        bias_initializer = None  # the cell's
        if self.unit_forget_bias:
            base = self.bias_initializer
            u = self.units

            def bias_initializer(_, *args, **kwargs):
                return ops.concatenate(
                    [
                        base((u,), *args, **kwargs),
                        keras.initializers.get("ones")((u,), *args, **kwargs),
                        base((2 * u,), *args, **kwargs),
                    ]
                )

        self._add_weights(input_shape[-1], (4 * self.units,), bias_initializer)

    def step(self, xp_t, states, recurrent_mask=None):
        h_tm1, c_tm1 = states
        hr = h_tm1 * recurrent_mask if recurrent_mask is not None else h_tm1
        z = xp_t + ops.matmul(hr, ops.cast(self.recurrent_kernel, xp_t.dtype))  # (batch, 4u)
        if self._fast_kind() is not None:
            # Default activations: one tanh over all four gates, no slicing
            # before the nonlinearity (sigmoid(x) = (tanh(x / 2) + 1) / 2).
            scale, offset = self._gate_constants(z.dtype)
            a = ops.tanh(z * scale) * scale + offset  # (batch, 4u): i, f, c~, o
            i, f, g, o = ops.split(a, 4, axis=-1)
            c = f * c_tm1 + i * g
        else:
            z_i, z_f, z_c, z_o = ops.split(z, 4, axis=-1)
            i = self.recurrent_activation(z_i)
            f = self.recurrent_activation(z_f)
            c = f * c_tm1 + i * self.activation(z_c)
            o = self.recurrent_activation(z_o)
        h = o * self.activation(c)
        return h, [h, c]

    def _gate_constants(self, dtype):
        scale, offset = gate_scale_offset(self.units)
        return ops.convert_to_tensor(scale, dtype), ops.convert_to_tensor(offset, dtype)

    def _fast_kind(self):
        if is_default_activation(self.activation, "tanh") and is_default_activation(
            self.recurrent_activation, "sigmoid"
        ):
            return "lstm"
        return None

    def get_config(self):
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}


@keras.saving.register_keras_serializable(package="seqkit")
class LSTM(_CellLayer):
    """LSTM layer; a drop-in for `keras.layers.LSTM`.

    Same constructor and call arguments, defaults and weight layout as Keras
    (`set_weights(keras_lstm.get_weights())` works both ways), plus
    `trainable_initial_state`. Masks may use left or right padding and may
    mask whole rows. On a GPU, an unmasked call in the default configuration
    runs cuDNN (`use_cudnn="auto"` or True; False keeps it off); exported and
    saved graphs never hold a cuDNN op, so they serve on CPUs.

    Example:

    >>> lstm = LSTM(32, return_sequences=True, return_state=True)
    >>> seq, h, c = lstm(np.zeros((8, 10, 4), "float32"))
    >>> seq.shape, h.shape, c.shape
    ((8, 10, 32), (8, 32), (8, 32))
    """

    cell_class = LSTMCell
    cell_name = "lstm_cell"

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        unit_forget_bias=True,
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
        use_cudnn="auto",
        trainable_initial_state=False,
        **kwargs,
    ):
        super().__init__(**self._split_arguments(locals()))
