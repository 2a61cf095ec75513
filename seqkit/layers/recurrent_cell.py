"""The base of the seqkit cells: a cell does one step (`RNN` runs the loop).

A cell's step is split in two so the loop can batch the input work:
`project(x)` is the input matmul (done by `RNN` for all timesteps at once)
and `step(xp_t, states)` the recurrent part. `num_states` is the one place a
state count comes from (LSTM 2, GRU and SimpleRNN 1).
"""

from __future__ import annotations

import keras
from keras import ops

from seqkit.layers import _validation as V


def serialize(obj):
    return keras.saving.serialize_keras_object(obj)


try:  # Keras's mixin: its RNN fills the cell's dropout masks once per sequence
    from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell as _KerasDropoutCell
except ImportError:  # another Keras layout: masks are drawn in `call`, as before

    class _KerasDropoutCell:
        pass


class RecurrentCell(keras.layers.Layer, _KerasDropoutCell):
    """Base class of the seqkit cells: shared arguments, dropout and initial state.

    A cell does one step: `cell(x_t, states) -> (output, new_states)`. For the
    loop, a cell also exposes the step split in two: `project(x)` (the input
    matmul, done for all timesteps at once by `RNN`) and `step(xp_t, states)`
    (the recurrent part).

    Subclasses define `gates` (1, 3 or 4), `build`, `step` and `_fast_kind`.
    """

    gates = 1
    has_recurrent_activation = True
    _seed_before_initializers = False

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
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        trainable_initial_state=False,
        **kwargs,
    ):
        kwargs.pop("implementation", None)  # Keras compatibility; one implementation here
        super().__init__(**kwargs)
        self.units = V.check_units(units)
        self.seed = seed
        # Keras draws the dropout seed before (SimpleRNNCell) or after (LSTM,
        # GRU) its initializers; same order here, so a global seed gives
        # the same initial weights as the Keras layer.
        if self._seed_before_initializers:
            self.seed_generator = keras.random.SeedGenerator(seed=seed)
        self.activation = V.check_activation(activation, "activation")
        if self.has_recurrent_activation:
            self.recurrent_activation = V.check_activation(
                recurrent_activation, "recurrent_activation"
            )
        self.use_bias = V.check_bool(use_bias, "use_bias")
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = keras.regularizers.get(recurrent_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.recurrent_constraint = keras.constraints.get(recurrent_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.dropout = V.check_rate(dropout, "dropout")
        self.recurrent_dropout = V.check_rate(recurrent_dropout, "recurrent_dropout")
        if not self._seed_before_initializers:
            self.seed_generator = keras.random.SeedGenerator(seed=seed)
        self.trainable_initial_state = V.check_bool(
            trainable_initial_state, "trainable_initial_state"
        )
        self.output_size = self.units

    # ----------------------------------------------------------------- weights
    @property
    def num_states(self) -> int:
        size = self.state_size
        return len(size) if isinstance(size, (list, tuple)) else 1

    def _add_kernels(self, input_dim, recurrent_width=None):
        g = self.gates * self.units
        self.kernel = self.add_weight(
            shape=(input_dim, g),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, recurrent_width or g),
            name="recurrent_kernel",
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )

    def _add_weights(self, input_dim, bias_shape, bias_initializer=None):
        """Adds, in this order, the kernels, the bias (None without `use_bias`;
        `bias_initializer` defaults to the cell's) and the initial-state weights."""
        self._add_kernels(input_dim)
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=bias_shape,
                name="bias",
                initializer=bias_initializer or self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        self._add_initial_state_weights()
        self.built = True

    def _add_initial_state_weights(self):
        self.initial_state_weights = []
        if not self.trainable_initial_state:
            return
        names = ["initial_h", "initial_c"][: self.num_states]
        for name in names:
            self.initial_state_weights.append(
                self.add_weight(shape=(self.units,), name=name, initializer="zeros")
            )

    def get_initial_state(self, batch_size=None):
        """Zeros, or the learned initial state broadcast over the batch."""
        if self.trainable_initial_state:
            states = [
                ops.broadcast_to(
                    ops.expand_dims(ops.cast(w, self.compute_dtype), 0), (batch_size, self.units)
                )
                for w in self.initial_state_weights
            ]
        else:
            states = [
                ops.zeros((batch_size, self.units), dtype=self.compute_dtype)
                for _ in range(self.num_states)
            ]
        return states

    # -------------------------------------------------------------- one step
    def input_bias(self):
        """Bias added to the input projection (None when there is none)."""
        return self.bias if self.use_bias else None

    def project(self, x):
        """`x @ kernel + input_bias` for any number of leading axes."""
        xp = ops.matmul(x, ops.cast(self.kernel, x.dtype))
        b = self.input_bias()
        if b is not None:
            xp = xp + ops.cast(b, x.dtype)
        return xp

    def step(self, xp_t, states, recurrent_mask=None):
        """One recurrent step from a projected input. Returns (output, states list)."""
        raise NotImplementedError

    def _fast_kind(self):
        """Name of the fused TensorFlow loop for this configuration, or None."""
        return None

    def dropout_mask(self, x_t, training):
        if training and self.dropout > 0:
            return keras.random.dropout(ops.ones_like(x_t), self.dropout, seed=self.seed_generator)
        return None

    def recurrent_dropout_mask(self, h, training):
        if training and self.recurrent_dropout > 0:
            return keras.random.dropout(
                ops.ones_like(h), self.recurrent_dropout, seed=self.seed_generator
            )
        return None

    def build(self, input_shape):
        raise NotImplementedError

    def call(self, inputs, states, training=False):
        """One step: `inputs` (batch, features), `states` a tensor or a list."""
        nested = isinstance(states, (list, tuple))
        state_list = list(states) if nested else [states]
        if len(state_list) != self.num_states:
            raise ValueError(
                f"Received {len(state_list)} state tensor(s) in cell "
                f"'{self.name}'; expected {self.num_states}."
            )
        # Inside Keras's RNN (e.g. over StackedRNNCells) the masks were drawn before
        # its loop (`DropoutRNNCell.get_dropout_mask`): one mask per sequence, and
        # no random draw inside a JAX scan. Called alone, the cell draws them here.
        dp = getattr(self, "_dropout_mask", None) if training else None
        if dp is None:
            dp = self.dropout_mask(inputs, training)
        if dp is not None:
            inputs = inputs * dp
        rec = getattr(self, "_recurrent_dropout_mask", None) if training else None
        if rec is None:
            rec = self.recurrent_dropout_mask(state_list[0], training)
        output, new_states = self.step(self.project(inputs), state_list, rec)
        if not nested:
            return output, new_states[0]
        return output, new_states

    # ---------------------------------------------------------------- config
    def get_config(self):
        config = {
            "units": self.units,
            "activation": keras.activations.serialize(self.activation)
            if self.activation is not None
            else None,
            "use_bias": self.use_bias,
            "kernel_initializer": serialize(self.kernel_initializer),
            "recurrent_initializer": serialize(self.recurrent_initializer),
            "bias_initializer": serialize(self.bias_initializer),
            "kernel_regularizer": serialize(self.kernel_regularizer),
            "recurrent_regularizer": serialize(self.recurrent_regularizer),
            "bias_regularizer": serialize(self.bias_regularizer),
            "kernel_constraint": serialize(self.kernel_constraint),
            "recurrent_constraint": serialize(self.recurrent_constraint),
            "bias_constraint": serialize(self.bias_constraint),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
            "trainable_initial_state": self.trainable_initial_state,
        }
        if self.has_recurrent_activation:
            config["recurrent_activation"] = keras.activations.serialize(self.recurrent_activation)
        return {**super().get_config(), **config}


def is_default_activation(fn, name):
    """Whether `fn` is the Keras activation called `name` (the fast loops need the defaults)."""
    return fn is keras.activations.get(name)
