"""Bidirectional wrapper with Keras semantics (merge modes, states, backward_layer)."""

from __future__ import annotations

import copy

import keras
from keras import ops

_MERGE_MODES = ("concat", "sum", "mul", "ave", None)


def _merge_mode_error(merge_mode):
    return ValueError(
        f"Received `merge_mode={merge_mode!r}`; expected one of "
        "'concat', 'sum', 'mul', 'ave' or None."
    )


@keras.saving.register_keras_serializable(package="seqkit")
class Bidirectional(keras.layers.Layer):
    """Runs a recurrent layer forwards and a copy backwards; a drop-in for
    `keras.layers.Bidirectional`.

    Weights are the forward layer's followed by the backward layer's, as in
    Keras. With `return_sequences=True` the backward outputs are flipped back
    to input order and masked steps output zeros (Keras's rule), so the two
    directions line up step by step.

    Args:
        layer: a recurrent layer (seqkit `SimpleRNN`, `LSTM`, `GRU`, or any
            Keras RNN layer).
        merge_mode: "concat" (default), "sum", "mul", "ave" or None (return
            the two outputs as a list).
        weights: optional initial weights (forward then backward).
        backward_layer: optional layer for the backward direction; it must
            have the opposite `go_backwards` and the same `return_sequences`,
            `return_state` and `stateful`.

    Call arguments:
        sequences: (batch, timesteps, features).
        initial_state: forward states followed by backward states.
        mask: (batch, timesteps) booleans. training: enables dropout.

    Example:

    >>> bi = Bidirectional(LSTM(16, return_sequences=True))
    >>> bi(np.zeros((4, 7, 3), "float32")).shape
    (4, 7, 32)
    """

    def __init__(self, layer, merge_mode="concat", weights=None, backward_layer=None, **kwargs):
        if isinstance(layer, dict):
            layer = keras.saving.deserialize_keras_object(layer)
        if isinstance(backward_layer, dict):
            backward_layer = keras.saving.deserialize_keras_object(backward_layer)
        if not isinstance(layer, keras.layers.Layer) or not hasattr(layer, "go_backwards"):
            raise ValueError(
                f"Received `layer={layer!r}`; expected a recurrent layer instance "
                "such as seqkit.layers.LSTM(32)."
            )
        if backward_layer is not None and (
            not isinstance(backward_layer, keras.layers.Layer)
            or not hasattr(backward_layer, "go_backwards")
        ):
            raise ValueError(
                f"Received `backward_layer={backward_layer!r}`; expected a recurrent "
                "layer instance or None."
            )
        if merge_mode not in _MERGE_MODES:
            raise _merge_mode_error(merge_mode)
        super().__init__(**kwargs)

        config = keras.saving.serialize_keras_object(layer)
        config["config"]["name"] = "forward_" + layer.name.removeprefix("forward_")
        self.forward_layer = keras.saving.deserialize_keras_object(config)
        if backward_layer is None:
            config = copy.deepcopy(keras.saving.serialize_keras_object(layer))
            config["config"]["go_backwards"] = not layer.go_backwards
            config["config"]["name"] = "backward_" + layer.name.removeprefix("backward_")
            self.backward_layer = keras.saving.deserialize_keras_object(config)
        else:
            self.backward_layer = backward_layer
        self._verify_layer_config()
        if hasattr(layer, "use_cudnn"):  # not serialized (as in Keras): keep it on the copies
            self.forward_layer.use_cudnn = self.backward_layer.use_cudnn = layer.use_cudnn
        for sub in (self.forward_layer, self.backward_layer):
            if getattr(sub, "zero_output_for_mask", None) is not None:
                sub.zero_output_for_mask = sub.return_sequences

        self.merge_mode = merge_mode
        self._initial_weights = weights
        self.stateful = layer.stateful
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        self.supports_masking = True

    def _verify_layer_config(self):
        f, b = self.forward_layer, self.backward_layer
        if f.go_backwards == b.go_backwards:
            raise ValueError(
                "Received a `backward_layer` with `go_backwards="
                f"{b.go_backwards}`, the same as the forward layer; expected the "
                "opposite value."
            )
        for attr in ("stateful", "return_sequences", "return_state"):
            if getattr(f, attr) != getattr(b, attr):
                raise ValueError(
                    f"Received a `backward_layer` with `{attr}={getattr(b, attr)}` while "
                    f"the forward layer has `{attr}={getattr(f, attr)}`; expected the same."
                )

    def build(self, sequences_shape, initial_state_shape=None):
        if not self.forward_layer.built:
            self.forward_layer.build(sequences_shape)
        if not self.backward_layer.built:
            self.backward_layer.build(sequences_shape)
        if self._initial_weights:
            n = len(self._initial_weights)
            self.forward_layer.set_weights(self._initial_weights[: n // 2])
            self.backward_layer.set_weights(self._initial_weights[n // 2 :])
            self._initial_weights = None
        self.built = True

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        shape = self.forward_layer.compute_output_shape(sequences_shape)
        state_shapes = ()
        if self.return_state:
            shape, state_shapes = shape[0], tuple(shape[1:])
        if self.merge_mode == "concat":
            shape = tuple(shape[:-1]) + (shape[-1] * 2,)
        elif self.merge_mode is None:
            shape = [tuple(shape), tuple(shape)]
        if self.return_state:
            if self.merge_mode is None:
                return tuple(shape) + state_shapes + state_shapes
            return (tuple(shape),) + state_shapes + state_shapes
        return tuple(shape) if self.merge_mode is not None else shape

    def compute_mask(self, _, mask):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        output_mask = mask if self.return_sequences else None
        if self.merge_mode is None:
            output_mask = [output_mask, output_mask]
        if self.return_state:
            n = 2 * len(getattr(self.forward_layer, "state_size", [0]))
            extra = [None] * n
            return (output_mask if isinstance(output_mask, list) else [output_mask]) + extra
        return output_mask

    def call(self, sequences, initial_state=None, mask=None, training=None):
        kwargs = {"training": training}
        if mask is not None:
            kwargs["mask"] = mask
        forward_state = backward_state = None
        if initial_state is not None:
            initial_state = list(initial_state)
            if len(initial_state) % 2:
                raise ValueError(
                    f"Received `initial_state` with {len(initial_state)} tensors; expected "
                    "an even number: the forward states followed by the backward states."
                )
            half = len(initial_state) // 2
            forward_state, backward_state = initial_state[:half], initial_state[half:]

        y = self.forward_layer(sequences, initial_state=forward_state, **kwargs)
        y_rev = self.backward_layer(sequences, initial_state=backward_state, **kwargs)
        states = ()
        if self.return_state:
            states = tuple(y[1:]) + tuple(y_rev[1:])
            y, y_rev = y[0], y_rev[0]
        if self.return_sequences:
            y_rev = ops.flip(y_rev, axis=1)
        # In the wrapper's dtype (e.g. a float16 policy given to Bidirectional), as Keras.
        y, y_rev = ops.cast(y, self.compute_dtype), ops.cast(y_rev, self.compute_dtype)

        if self.merge_mode == "concat":
            output = ops.concatenate([y, y_rev], axis=-1)
        elif self.merge_mode == "sum":
            output = y + y_rev
        elif self.merge_mode == "ave":
            output = (y + y_rev) / 2
        elif self.merge_mode == "mul":
            output = y * y_rev
        else:
            output = [y, y_rev]
        if self.return_state:
            if self.merge_mode is None:
                return tuple(output) + states
            return (output,) + states
        return output

    # ------------------------------------------------------------ stateful
    def reset_state(self, states=None):
        """Reset both directions; `states` is forward states then backward states."""
        if not self.stateful:
            raise AttributeError(
                f"Layer '{self.name}' is not stateful; wrap a layer built with `stateful=True`."
            )
        if states is None:
            self.forward_layer.reset_state()
            self.backward_layer.reset_state()
            return
        states = list(states)
        half = len(states) // 2
        self.forward_layer.reset_state(states[:half])
        self.backward_layer.reset_state(states[half:])

    def reset_states(self, states=None):
        self.reset_state(states)

    @property
    def states(self):
        if self.forward_layer.states and self.backward_layer.states:
            return tuple(self.forward_layer.states) + tuple(self.backward_layer.states)
        return None

    def get_config(self):
        config = {
            "merge_mode": self.merge_mode,
            "layer": keras.saving.serialize_keras_object(self.forward_layer),
            "backward_layer": keras.saving.serialize_keras_object(self.backward_layer),
        }
        return {**super().get_config(), **config}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layer"] = keras.saving.deserialize_keras_object(config["layer"])
        if config.get("backward_layer") is not None:
            config["backward_layer"] = keras.saving.deserialize_keras_object(
                config["backward_layer"]
            )
        return cls(**config)
