"""The vanilla recurrence `h_t = activation(x_t W + h_{t-1} U + b)`."""

from __future__ import annotations

import keras
from keras import ops

from seqkit.layers.recurrent_cell import RecurrentCell, is_default_activation
from seqkit.layers.rnn import _CellLayer


@keras.saving.register_keras_serializable(package="seqkit")
class SimpleRNNCell(RecurrentCell):
    """One step of the vanilla RNN; weights as `keras.layers.SimpleRNNCell`.

    Args:
        units: positive int, size of the state.
        activation: default "tanh".
        use_bias, kernel_initializer, recurrent_initializer, bias_initializer,
        *_regularizer, *_constraint, dropout, recurrent_dropout, seed: as Keras.
        trainable_initial_state: learn the initial state (one vector, broadcast
            over the batch) instead of starting from zeros.

    Call arguments:
        inputs: (batch, features). states: (batch, units) or a list of one.

    Example:

    >>> cell = SimpleRNNCell(4)
    >>> h, [h] = cell(np.ones((2, 3), "float32"), [np.zeros((2, 4), "float32")])
    >>> h.shape
    (2, 4)
    """

    gates = 1
    has_recurrent_activation = False
    _seed_before_initializers = True

    def __init__(self, units, activation="tanh", **kwargs):
        kwargs.pop("recurrent_activation", None)
        super().__init__(units, activation=activation, **kwargs)
        self.state_size = self.units

    def build(self, input_shape):
        self._add_weights(input_shape[-1], (self.units,))

    def step(self, xp_t, states, recurrent_mask=None):
        h_tm1 = states[0]
        if recurrent_mask is not None:
            h_tm1 = h_tm1 * recurrent_mask
        z = xp_t + ops.matmul(h_tm1, ops.cast(self.recurrent_kernel, xp_t.dtype))
        h = self.activation(z) if self.activation is not None else z
        return h, [h]

    def _fast_kind(self):
        return "simple" if is_default_activation(self.activation, "tanh") else None


@keras.saving.register_keras_serializable(package="seqkit")
class SimpleRNN(_CellLayer):
    """Fully connected RNN; a drop-in for `keras.layers.SimpleRNN`.

    Same arguments, defaults and weights (kernel, recurrent_kernel, bias) as
    Keras, plus `trainable_initial_state`. On TensorFlow a fused loop with a
    hand-written gradient runs the tanh recurrence.

    Example:

    >>> layer = SimpleRNN(16, return_sequences=True)
    >>> layer(np.zeros((8, 20, 4), "float32")).shape
    (8, 20, 16)
    """

    has_cudnn = False

    cell_class = SimpleRNNCell
    cell_name = "simple_rnn_cell"

    def __init__(
        self,
        units,
        activation="tanh",
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
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        seed=None,
        trainable_initial_state=False,
        **kwargs,
    ):
        kwargs.pop("recurrent_activation", None)
        super().__init__(**self._split_arguments(locals()))
