"""The recurrent backbone: `RecurrentStack`, and `get` for the layer classes by name.

Every task builds its encoders and decoders from `RecurrentStack`: `layers`
recurrent layers of one kind (`get(cell)`), optionally bidirectional, with
dropout after each, and one flat list of states whose counts come from the
cells (`cell.num_states`).
"""

from __future__ import annotations

import numbers

import keras
import numpy as np

from seqkit.layers import _validation as V
from seqkit.layers.bidirectional import Bidirectional
from seqkit.layers.gru import GRU
from seqkit.layers.lstm import LSTM
from seqkit.layers.simple_rnn import SimpleRNN

__all__ = ["RecurrentStack", "get", "CELLS"]

#: The cell names the tasks accept (`get` also takes "simple_rnn", the same as "rnn").
CELLS = ("lstm", "gru", "rnn")

_LAYERS = {"lstm": LSTM, "gru": GRU, "rnn": SimpleRNN, "simple_rnn": SimpleRNN}
_MERGE_MODES = ("concat", "sum", "mul", "ave")


def _lookup(name, argument):
    if isinstance(name, str) and name in _LAYERS:
        return _LAYERS[name]
    choices = ", ".join(repr(key) for key in _LAYERS)
    raise ValueError(f"Received `{argument}={name!r}`; expected one of {choices}.")


def get(name: str) -> type:
    """The seqkit recurrent layer class called `name`.

    Args:
        name: "lstm", "gru", "rnn" or "simple_rnn" (the same as "rnn").

    Returns:
        `seqkit.layers.LSTM`, `GRU` or `SimpleRNN` (the class, not an instance).

    Raises:
        ValueError: an unknown name; the message lists the known ones.

    Example:

    >>> seqkit.layers.get("gru")(8)(np.zeros((2, 5, 3), "float32")).shape
    (2, 8)
    """
    return _lookup(name, "name")


@keras.saving.register_keras_serializable(package="seqkit")
class RecurrentStack(keras.layers.Layer):
    """A stack of recurrent layers of one kind: the backbone of the seqkit tasks.

    `layers` layers `get(cell)(units, return_state=True)`, each wrapped in
    `Bidirectional(merge_mode=merge_mode)` when `bidirectional`; every layer but
    the last returns sequences, the last returns sequences when
    `return_sequences`. A `keras.layers.Dropout(dropout)` follows every layer,
    the last included (none when `dropout=0`). States are one flat list: layer
    by layer, that layer's states (`cell.num_states` of them: LSTM h and c, GRU
    and SimpleRNN h; bidirectional: the forward layer's, then the backward
    layer's), each of shape (batch, units).

    Args:
        cell: "lstm" (default), "gru", "rnn" or "simple_rnn".
        units: positive int, units of every layer (per direction).
        layers: positive int, number of stacked layers.
        bidirectional: read the sequence both ways in every layer.
        merge_mode: how a bidirectional layer joins its two directions:
            "concat" (default; outputs 2 * units wide), "sum", "mul" or "ave".
        dropout: float in [0, 1), rate of the dropout after each layer.
        return_sequences: return the last layer's output at every step
            (default) instead of its last output only.
        return_state: also return the final states (a flat list, see above).
        seed: int or None; seeds the dropout layers (layer i gets `seed + i`).
        **kwargs: base layer arguments (name, dtype, trainable).

    Call arguments:
        inputs: (batch, timesteps, features) floats.
        mask: (batch, timesteps) booleans, or None; filled in by Keras from an
            `Embedding(mask_zero=True)` when `inputs` is the only tensor
            argument (pass it explicitly together with `initial_state`).
        initial_state: None (zeros, or each cell's learned initial state), or
            the flat list of states, as returned with `return_state=True`.
        training: enables dropout.

    Returns:
        The output, (batch, timesteps, width) or (batch, width), where width is
        `units`, or `2 * units` for a bidirectional stack with
        `merge_mode="concat"`; with `return_state=True`, the list
        `[output, *states]`.

    Example:

    >>> stack = RecurrentStack("lstm", units=8, layers=2, return_state=True)
    >>> output, *states = stack(np.zeros((4, 5, 3), "float32"))
    >>> output.shape, stack.num_states, states[0].shape
    ((4, 5, 8), 4, (4, 8))
    >>> y, states = stack.step(np.zeros((4, 3), "float32"), states)  # one token
    >>> y.shape
    (4, 8)
    """

    def __init__(
        self,
        cell="lstm",
        units=128,
        layers=1,
        bidirectional=False,
        merge_mode="concat",
        dropout=0.0,
        return_sequences=True,
        return_state=False,
        seed=None,
        **kwargs,
    ):
        layer_class = _lookup(cell, "cell")
        units = V.check_units(units)
        layers = V.check_units(layers, "layers")
        bidirectional = V.check_bool(bidirectional, "bidirectional")
        if merge_mode not in _MERGE_MODES:
            raise ValueError(
                f"Received `merge_mode={merge_mode!r}`; expected one of 'concat', 'sum', "
                "'mul' or 'ave' (a stack passes one tensor from layer to layer)."
            )
        dropout = V.check_rate(dropout, "dropout")
        return_sequences = V.check_bool(return_sequences, "return_sequences")
        return_state = V.check_bool(return_state, "return_state")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            raise ValueError(f"Received `seed={seed!r}`; expected an integer or None.")
        super().__init__(**kwargs)
        self.cell = cell
        self.units = units
        self.layers = layers
        self.bidirectional = bidirectional
        self.merge_mode = merge_mode
        self.dropout = dropout
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.seed = None if seed is None else int(seed)
        self.supports_masking = True

        dtype = self.dtype_policy
        self.rnns = []
        for i in range(layers):
            rnn = layer_class(
                units,
                return_sequences=return_sequences or i < layers - 1,
                return_state=True,
                name=f"{cell}_{i}",
                dtype=dtype,
            )
            if bidirectional:
                rnn = Bidirectional(rnn, merge_mode=merge_mode, name=f"bi{cell}_{i}", dtype=dtype)
            self.rnns.append(rnn)
        self.drops = []
        if dropout > 0:
            self.drops = [
                keras.layers.Dropout(
                    dropout,
                    seed=None if self.seed is None else self.seed + i,
                    name=f"dropout_{i}",
                    dtype=dtype,
                )
                for i in range(layers)
            ]
        if not self.trainable:
            for sub in self.rnns + self.drops:
                sub.trainable = False

    def __dir__(self):
        # Keras's weight saving walks dir(layer) in sorted order and files each
        # sublayer under the first attribute that reaches it: the `cells` view
        # would come before `rnns` and move every weight path of a
        # unidirectional stack. Hidden from the walk, paths follow `rnns`.
        return [name for name in super().__dir__() if name != "cells"]

    # ------------------------------------------------------------- states
    @property
    def states_per_layer(self) -> list:
        """The number of states of each layer, from its cells (`cell.num_states`)."""
        if self.bidirectional:
            return [
                rnn.forward_layer.cell.num_states + rnn.backward_layer.cell.num_states
                for rnn in self.rnns
            ]
        return [rnn.cell.num_states for rnn in self.rnns]

    @property
    def num_states(self) -> int:
        """The length of the flat state list (`initial_state`, `return_state`, `step`)."""
        return sum(self.states_per_layer)

    @property
    def cells(self) -> list:
        """The cell of each layer (a unidirectional stack's; for `step`-like loops)."""
        if self.bidirectional:
            raise ValueError(
                f"Layer '{self.name}' is bidirectional: each layer has two cells, "
                "`rnns[i].forward_layer.cell` and `rnns[i].backward_layer.cell`."
            )
        return [rnn.cell for rnn in self.rnns]

    def _split_states(self, states, argument):
        """The flat state list as one list per layer (None: None for every layer)."""
        if states is None:
            return [None] * self.layers
        states = list(states) if isinstance(states, (list, tuple)) else [states]
        if len(states) != self.num_states:
            per_layer = self.states_per_layer[0]
            names = "h, c" if self.cell == "lstm" else "h"
            if self.bidirectional:
                names = f"forward {names}, then backward {names}"
            raise ValueError(
                f"Received `{argument}` with {len(states)} tensor(s) in layer '{self.name}'; "
                f"expected {self.num_states}: for each of the {self.layers} layer(s), its "
                f"{per_layer} state(s) ({names}), each of shape (batch, {self.units})."
            )
        out, start = [], 0
        for count in self.states_per_layer:
            out.append(states[start : start + count])
            start += count
        return out

    # ------------------------------------------------------------- shapes
    def _width(self):
        """Width of each layer's output (the next layer's features)."""
        if self.bidirectional and self.merge_mode == "concat":
            return 2 * self.units
        return self.units

    def build(self, inputs_shape, initial_state_shape=None):
        V.check_sequence_shape(inputs_shape, self.name)
        shape = tuple(inputs_shape)
        for rnn in self.rnns:
            if not rnn.built:
                rnn.build(shape)
            shape = shape[:-1] + (self._width(),)
        self.built = True

    def compute_output_shape(self, inputs_shape, initial_state_shape=None):
        batch = inputs_shape[0]
        if self.return_sequences:
            output = (batch, inputs_shape[1], self._width())
        else:
            output = (batch, self._width())
        if self.return_state:
            return [output] + [(batch, self.units)] * self.num_states
        return output

    def compute_mask(self, inputs, mask=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        output_mask = mask if self.return_sequences else None
        if self.return_state:
            return [output_mask] + [None] * self.num_states
        return output_mask

    # ------------------------------------------------------------- running
    def call(self, inputs, mask=None, initial_state=None, training=None):
        initial = self._split_states(initial_state, "initial_state")
        x = inputs  # (batch, time, features)
        states = []
        for i, rnn in enumerate(self.rnns):
            out = rnn(x, initial_state=initial[i], mask=mask, training=training)
            x = out[0]  # (batch, time, width); the last layer: (batch, width) unless sequences
            states.extend(out[1:])  # this layer's states, each (batch, units)
            if self.drops:
                x = self.drops[i](x, training=training)
        if self.return_state:
            return [x, *states]
        return x

    def step(self, x_t, states, training=False):
        """One timestep through the cells of every layer (decoding, generation).

        Equals running the stack over a sequence one step at a time: the
        outputs are those of `call` at that step (without a mask).

        Args:
            x_t: (batch, features), the input at one timestep.
            states: the flat state list (as from `return_state=True`).
            training: enables the dropout between layers.

        Returns:
            `(y_t, new_states)`: the last layer's output (batch, units) and the
            new flat state list.

        Raises:
            ValueError: a bidirectional stack (its backward direction needs the
                whole sequence), or a wrong number of states.
        """
        if self.bidirectional:
            raise ValueError(
                f"Layer '{self.name}' is bidirectional; step() runs a unidirectional stack "
                "one token at a time (a backward direction needs the whole sequence)."
            )
        shape = getattr(x_t, "shape", None)
        shape = np.shape(x_t) if shape is None else shape
        if len(shape) != 2:
            raise ValueError(
                f"Received `x_t` with shape {tuple(shape)} in {self.name}.step(); expected "
                "(batch, features): one timestep."
            )
        per_layer = self._split_states(states, "states")
        y = x_t
        new_states = []
        for i, cell in enumerate(self.cells):
            y, layer_states = cell(y, list(per_layer[i]), training=training)  # (batch, units)
            new_states.extend(layer_states)
            if self.drops:
                y = self.drops[i](y, training=training)
        return y, new_states

    def get_config(self):
        return {
            **super().get_config(),
            "cell": self.cell,
            "units": self.units,
            "layers": self.layers,
            "bidirectional": self.bidirectional,
            "merge_mode": self.merge_mode,
            "dropout": self.dropout,
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "seed": self.seed,
        }
