"""The recurrent loop: `RNN` runs a cell over a sequence; `_CellLayer` is the
shared plumbing of `SimpleRNN`, `LSTM` and `GRU`.

Layout of the work in `RNN.call` (shapes for LSTM, G = 4 * units):

    x (batch, time, features)
      -> input dropout (one mask per sequence, as Keras)
      -> time-major, projected for all timesteps in one matmul: (time, batch, G)
         (not for a fast path that projects itself: JAX's, PyTorch's)
      -> the loop: only `h_tm1 @ recurrent_kernel` and the gate arithmetic per step
      -> outputs (time, batch, units) -> (batch, time, units)

The loop has one generic `keras.ops` implementation (every backend) and, per
backend, an optional fast path from the `_fast_path` registry (filled by
`seqkit/layers/__init__.py`); `_fast_sequence` reaches it, and it raises
`NotImplementedError` for a call it cannot take, so the generic loop runs.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from seqkit.layers import _cudnn, _fast_path
from seqkit.layers import _validation as V
from seqkit.layers.recurrent_cell import RecurrentCell, serialize

__all__ = ["RNN", "RecurrentCell"]


def _fast_sequence(cell, xp, states, mask, zero_output_for_mask, need_sequence, inputs):
    """The backend fast path; raises NotImplementedError to fall back."""
    run = _fast_path.get(keras.backend.backend())
    if run is None:
        raise NotImplementedError
    kind = cell._fast_kind()  # None: no fused loop (the runner may still take traced inference)
    return run(
        kind,
        cell,
        xp,
        states,
        mask,
        zero_output_for_mask,
        need_sequence=need_sequence,
        inputs=inputs,
    )


@keras.saving.register_keras_serializable(package="seqkit")
class RNN(keras.layers.Layer):
    """Runs a recurrent cell over a sequence (Keras `RNN` semantics).

    Args:
        cell: a seqkit cell (`SimpleRNNCell`, `LSTMCell`, `GRUCell`).
        return_sequences: return the output of every step, not just the last.
        return_state: also return the final states.
        go_backwards: process the sequence in reverse (outputs come back in
            processing order, as in Keras).
        stateful: carry the final states of a batch into the next call; reset
            with `reset_state()` or `reset_state(states)`.
        unroll: unroll the loop in Python (short sequences only).
        zero_output_for_mask: output zeros at masked steps instead of
            repeating the previous output (set by `Bidirectional`).

    Call arguments:
        sequences: (batch, timesteps, features).
        initial_state: list of (batch, units) tensors; wins over a trainable
            initial state.
        mask: (batch, timesteps) booleans; left padding, right padding and
            fully masked rows all work (masked steps keep the state).
        training: enables dropout.

    Example:

    >>> layer = RNN(LSTMCell(8), return_sequences=True)
    >>> layer(np.zeros((2, 5, 3), "float32")).shape
    (2, 5, 8)
    """

    def __init__(
        self,
        cell,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        zero_output_for_mask=False,
        **kwargs,
    ):
        if isinstance(cell, dict):
            cell = keras.saving.deserialize_keras_object(cell)
        if not isinstance(cell, RecurrentCell):
            raise ValueError(
                f"Received `cell={cell!r}`; expected a seqkit cell "
                "(SimpleRNNCell, LSTMCell or GRUCell)."
            )
        super().__init__(**kwargs)
        self.cell = cell
        self.return_sequences = V.check_bool(return_sequences, "return_sequences")
        self.return_state = V.check_bool(return_state, "return_state")
        self.go_backwards = V.check_bool(go_backwards, "go_backwards")
        self.stateful = V.check_bool(stateful, "stateful")
        self.unroll = V.check_bool(unroll, "unroll")
        self.zero_output_for_mask = V.check_bool(zero_output_for_mask, "zero_output_for_mask")
        self.supports_masking = True
        self.states = None
        size = cell.state_size
        self.state_size = list(size) if isinstance(size, (list, tuple)) else [size]

    # ------------------------------------------------------------- shapes
    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        batch, length = sequences_shape[0], sequences_shape[1]
        units = self.cell.units
        out = (batch, length, units) if self.return_sequences else (batch, units)
        if self.return_state:
            return (out,) + tuple((batch, s) for s in self.state_size)
        return out

    def compute_mask(self, _, mask):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        output_mask = mask if self.return_sequences else None
        if self.return_state:
            return [output_mask] + [None] * len(self.state_size)
        return output_mask

    def __call__(self, sequences=None, *args, **kwargs):
        if sequences is None:
            raise ValueError(
                f"Received `sequences=None` in layer '{self.name}'; expected a 3D tensor of "
                "shape (batch, timesteps, features)."
            )
        symbolic_list = isinstance(sequences, list | tuple) and any(
            hasattr(item, "shape") for item in sequences
        )
        plain = not hasattr(sequences, "shape") or isinstance(sequences, np.ndarray)
        if plain and not symbolic_list:  # plain Python / NumPy data: a numeric array
            try:
                array = np.asarray(sequences)
            except ValueError as error:
                raise ValueError(
                    f"Received `sequences` that is not an array in layer '{self.name}' ({error})."
                ) from None
            if array.dtype.kind not in "biufc":
                raise ValueError(
                    f"Received `sequences` of dtype {array.dtype} in layer '{self.name}'; "
                    "expected numbers (floats). Map tokens to ids and embed them first."
                )
            V.check_sequence_shape(array.shape, self.name)
            sequences = array
        return super().__call__(sequences, *args, **kwargs)

    def build(self, sequences_shape, initial_state_shape=None):
        V.check_sequence_shape(sequences_shape, self.name)
        if not self.cell.built:
            self.cell.build((sequences_shape[0], sequences_shape[-1]))
        if self.stateful and self.states is None and sequences_shape[0] is not None:
            self._create_state_variables(sequences_shape[0])

    # ------------------------------------------------------------- stateful
    def _create_state_variables(self, batch_size):
        init = self.cell.get_initial_state(batch_size)
        states = [
            keras.Variable(ops.convert_to_numpy(s), trainable=False, name=f"state_{i}")
            for i, s in enumerate(init)
        ]
        # Not weights (as in Keras): bypass the layer's variable tracking so
        # get_weights()/set_weights() keep the Keras layout.
        object.__setattr__(self, "states", states)

    def reset_state(self, states=None):
        """Reset a stateful layer to its initial state, or to `states`.

        Args:
            states: None (zeros, or the learned initial state), or a list of
                arrays of shape (batch, units), one per state.
        """
        if not self.stateful:
            raise AttributeError(
                f"Layer '{self.name}' is not stateful; pass `stateful=True` to use reset_state()."
            )
        if self.states is None:
            return  # nothing to reset before the first batch
        batch = self.states[0].shape[0]
        if states is None:
            values = self.cell.get_initial_state(batch)
        else:
            values = list(states) if isinstance(states, (list, tuple)) else [states]
            if len(values) != len(self.states):
                raise ValueError(
                    f"Received {len(values)} state array(s) in reset_state(); "
                    f"expected {len(self.states)}."
                )
        for var, value in zip(self.states, values):
            value = ops.convert_to_tensor(value, dtype=var.dtype)
            if tuple(value.shape) != tuple(var.shape):
                raise ValueError(
                    f"Received a state of shape {tuple(value.shape)} in reset_state(); "
                    f"expected {tuple(var.shape)}."
                )
            var.assign(value)

    def reset_states(self, states=None):
        """Alias of `reset_state` (Keras 2 name)."""
        self.reset_state(states)

    def get_initial_state(self, batch_size):
        return self.cell.get_initial_state(batch_size)

    # ------------------------------------------------------------- the loop
    def _generic_loop(self, xp, states, mask, rec_mask):
        """xp (time, batch, G); mask (time, batch, 1) bool or None."""
        cell = self.cell
        n = len(states)
        y0 = ops.zeros_like(states[0])

        def one(xp_t, m_t, carry):
            prev_states, prev_y = list(carry[:n]), carry[n]
            y, new_states = cell.step(xp_t, prev_states, rec_mask)
            if m_t is not None:
                new_states = [ops.where(m_t, s, p) for s, p in zip(new_states, prev_states)]
                y = ops.where(m_t, y, ops.zeros_like(y) if self.zero_output_for_mask else prev_y)
            return tuple(new_states) + (y,)

        carry = tuple(states) + (y0,)
        # Keras's TensorFlow `scan` needs the per-step output to have the
        # carry's structure; elsewhere only the output is stacked.
        full_carry = keras.backend.backend() == "tensorflow"

        def emit(new):
            return new if full_carry else new[n]

        if self.unroll:
            xs = ops.unstack(xp, axis=0)
            ms = ops.unstack(mask, axis=0) if mask is not None else [None] * len(xs)
            ys = []
            for xp_t, m_t in zip(xs, ms):
                carry = one(xp_t, m_t, carry)
                ys.append(carry[n])
            outputs = ops.stack(ys, axis=0)
        else:
            if mask is None:

                def f(c, x):
                    new = one(x, None, c)
                    return new, emit(new)

                carry, ys = ops.scan(f, carry, xp)
            else:

                def f(c, x):
                    new = one(x[0], x[1], c)
                    return new, emit(new)

                carry, ys = ops.scan(f, carry, (xp, mask))
            outputs = ys[n] if full_carry else ys
        return outputs, list(carry[:n])

    def _check_initial_state(self, initial_state):
        states = (
            list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
        )
        if len(states) != len(self.state_size):
            raise ValueError(
                f"Received `initial_state` with {len(states)} tensor(s) in layer "
                f"'{self.name}'; expected {len(self.state_size)} "
                f"(one per state, each of shape (batch, {self.cell.units}))."
            )
        out = []
        for s in states:
            s = ops.convert_to_tensor(s, dtype=self.cell.compute_dtype)
            if len(s.shape) != 2 or (s.shape[-1] is not None and s.shape[-1] != self.cell.units):
                raise ValueError(
                    f"Received an `initial_state` tensor of shape {tuple(s.shape)} in "
                    f"layer '{self.name}'; expected (batch, {self.cell.units})."
                )
            out.append(s)
        return out

    def call(self, sequences, initial_state=None, mask=None, training=False):
        V.check_sequence_shape(sequences.shape, self.name)
        kernel = getattr(self.cell, "kernel", None)
        V.check_features(sequences.shape, None if kernel is None else kernel.shape[0], self.name)
        if mask is not None and not isinstance(mask, (list, tuple)):
            V.check_mask_shape(getattr(mask, "shape", None), sequences.shape, self.name)
        if self.unroll and sequences.shape[1] is None:
            raise ValueError(
                f"Received `unroll=True` in layer '{self.name}' with an unknown number of "
                "timesteps; give the Input a fixed length, e.g. keras.Input((T, F))."
            )
        cell = self.cell
        dtype = cell.compute_dtype
        sequences = ops.cast(sequences, dtype)
        batch = ops.shape(sequences)[0]

        if self.stateful:
            if self.states is None:
                if sequences.shape[0] is None:
                    raise ValueError(
                        f"Layer '{self.name}' is stateful and needs a fixed batch size; "
                        "pass `batch_size=` to keras.Input or call the layer on arrays."
                    )
                self._create_state_variables(sequences.shape[0])
            expected = self.states[0].shape[0]
            if sequences.shape[0] is not None and sequences.shape[0] != expected:
                raise ValueError(
                    f"Received a batch of {sequences.shape[0]} in stateful layer "
                    f"'{self.name}'; its states hold a batch of {expected}. "
                    "Feed batches of one size, or create a new layer."
                )
        if initial_state is not None:
            states = self._check_initial_state(initial_state)
        elif self.stateful:
            states = [ops.copy(v) for v in self.states]  # torch: assign() below is in place
        else:
            states = cell.get_initial_state(batch)

        # Dropout masks are drawn once per sequence (same mask at every step).
        dp = cell.dropout_mask(sequences[:, 0, :], training)
        if dp is not None:
            sequences = sequences * ops.expand_dims(dp, 1)
        rec_mask = cell.recurrent_dropout_mask(states[0], training)

        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        result = _cudnn.call(self, sequences, states, mask, rec_mask)  # (a GPU only)
        x_tm = ops.transpose(sequences, (1, 0, 2))  # (time, batch, features)
        fast = result is None and rec_mask is None and not self.unroll
        own = fast and _fast_path.projects(keras.backend.backend())  # the runner projects
        xp = cell.project(x_tm) if result is None and not own else None  # (time, batch, G)
        mask_tm = None
        if mask is not None:
            mask_tm = ops.expand_dims(ops.transpose(ops.cast(mask, "bool"), (1, 0)), -1)
        if self.go_backwards and result is None:
            xp = None if xp is None else ops.flip(xp, axis=0)
            if mask_tm is not None:
                mask_tm = ops.flip(mask_tm, axis=0)

        def ordered():  # the unprojected inputs in processing order
            return ops.flip(x_tm, axis=0) if self.go_backwards else x_tm

        if fast:
            try:
                out = (self.zero_output_for_mask, self.return_sequences, ordered)
                result = _fast_sequence(cell, xp, states, mask_tm, *out)
            except NotImplementedError:
                result = None
        if result is None:
            if xp is None:  # (the runner that projects itself declined the call)
                xp = cell.project(ordered())
            result = self._generic_loop(xp, states, mask_tm, rec_mask)
        outputs_tm, final_states = result

        if self.stateful:
            for var, s in zip(self.states, final_states):
                var.assign(ops.cast(s, var.dtype))

        if self.return_sequences:
            output = ops.transpose(outputs_tm, (1, 0, 2))
        else:
            output = outputs_tm[-1]
        if self.return_state:
            return (output, *final_states)
        return output

    def get_config(self):
        config = {
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "stateful": self.stateful,
            "unroll": self.unroll,
            "zero_output_for_mask": self.zero_output_for_mask,
        }
        base = super().get_config()
        if type(self) is RNN:
            config["cell"] = serialize(self.cell)
        return {**base, **config}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if cls is RNN:
            config["cell"] = keras.saving.deserialize_keras_object(config["cell"])
        return cls(**config)


class _CellLayer(RNN):
    """Shared plumbing of SimpleRNN / LSTM / GRU: a flat config over one cell."""

    cell_class = None
    cell_name = None
    has_cudnn = True  # Keras's LSTM and GRU have `use_cudnn`; its SimpleRNN does not

    def __init__(
        self,
        cell_kwargs,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        activity_regularizer=None,
        use_cudnn="auto",
        **kwargs,
    ):
        if use_cudnn not in ("auto", True, False):
            raise ValueError(f"Received `use_cudnn={use_cudnn!r}`; expected 'auto', True or False.")
        kwargs.pop("implementation", None)  # Keras 2's argument: Keras 3 ignores it too
        cell = self.cell_class(
            dtype=kwargs.get("dtype"),
            trainable=kwargs.get("trainable", True),
            name=self.cell_name,
            **cell_kwargs,
        )
        super().__init__(
            cell,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            unroll=unroll,
            activity_regularizer=activity_regularizer,
            **kwargs,
        )
        # `use_cudnn` False keeps a GPU call off cuDNN (`_cudnn`); the argument
        # keeps Keras code and configs loading unchanged (SimpleRNN: accepted,
        # as older seqkit configs hold it, and dropped, as Keras has none).
        if self.has_cudnn:
            self.use_cudnn = use_cudnn

    @staticmethod
    def _split_arguments(arguments):
        """A drop-in constructor's `locals()` as keywords of `_CellLayer.__init__`.

        The cell's hyperparameters (`_CELL_ATTRS`) go to `cell_kwargs`, every
        other argument and `**kwargs` to the layer, so `SimpleRNN`, `LSTM` and
        `GRU` only spell out their Keras signatures.
        """
        layer = {k: v for k, v in arguments.items() if k not in ("self", "__class__", "kwargs")}
        cell = {k: layer.pop(k) for k in list(layer) if k in _CELL_ATTRS}
        return {"cell_kwargs": cell, **layer, **arguments["kwargs"]}

    def get_config(self):
        cell_config = self.cell.get_config()
        for key in ("name", "trainable", "dtype"):
            cell_config.pop(key, None)
        config = super().get_config()
        config.update(cell_config)
        config["activity_regularizer"] = serialize(self.activity_regularizer)
        if self.has_cudnn:
            config["use_cudnn"] = self.use_cudnn
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


_CELL_ATTRS = {
    "units",
    "activation",
    "recurrent_activation",
    "use_bias",
    "unit_forget_bias",
    "reset_after",
    "kernel_initializer",
    "recurrent_initializer",
    "bias_initializer",
    "kernel_regularizer",
    "recurrent_regularizer",
    "bias_regularizer",
    "kernel_constraint",
    "recurrent_constraint",
    "bias_constraint",
    "dropout",
    "recurrent_dropout",
    "seed",
    "trainable_initial_state",
}


def _cell_property(name):
    def getter(self):
        return getattr(self.cell, name)

    getter.__name__ = name
    getter.__doc__ = f"The cell's `{name}`."
    return property(getter)


# Expose the cell's hyperparameters (units, activation, ...) as Keras does.
for _name in sorted(_CELL_ATTRS):
    setattr(_CellLayer, _name, _cell_property(_name))
del _name
