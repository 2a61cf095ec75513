"""Argument checks shared by the layers: one message shape everywhere.

Every message names the argument, the value received and what was expected,
e.g. "Received `units=0`; expected a positive integer."
"""

from __future__ import annotations

import numbers

import keras


def check_units(units, name: str = "units") -> int:
    if isinstance(units, bool) or not isinstance(units, numbers.Integral) or units <= 0:
        raise ValueError(f"Received `{name}={units!r}`; expected a positive integer.")
    return int(units)


def check_rate(rate, name: str) -> float:
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0.0 <= rate < 1.0:
        raise ValueError(
            f"Received `{name}={rate!r}`; expected a float in [0, 1) "
            "(the fraction of units to drop)."
        )
    return float(rate)


def check_activation(identifier, name: str):
    try:
        fn = keras.activations.get(identifier)
    except (ValueError, TypeError):
        fn = None
    if fn is None and identifier is not None:
        raise ValueError(
            f"Received `{name}={identifier!r}`; expected the name of a Keras "
            "activation (e.g. 'tanh', 'sigmoid', 'relu'), a callable, or None."
        )
    return fn


def check_bool(value, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"Received `{name}={value!r}`; expected True or False.")
    return value


def check_sequence_shape(shape, layer_name: str) -> None:
    """Recurrent layers take (batch, timesteps, features)."""
    if shape is None:
        return
    rank = len(shape)
    if rank != 3:
        raise ValueError(
            f"Received `inputs` with shape {tuple(shape)} (rank {rank}) in layer "
            f"'{layer_name}'; expected a 3D tensor of shape (batch, timesteps, "
            "features). Add a time axis, e.g. `x[:, None, :]` for one step, or "
            "an Embedding layer for token ids."
        )
    if rank == 3 and shape[1] == 0:
        raise ValueError(
            f"Received `inputs` with shape {tuple(shape)} in layer '{layer_name}'; "
            "a sequence needs at least one timestep."
        )
    if shape[-1] is None:
        raise ValueError(
            f"Received `inputs` with shape {tuple(shape)} in layer '{layer_name}'; "
            "the last (features) dimension must be known."
        )


def check_features(shape, expected, layer_name: str) -> None:
    """The inputs' feature axis against the one the layer was built for."""
    if shape is None or expected is None or shape[-1] is None or shape[-1] == expected:
        return
    raise ValueError(
        f"Layer '{layer_name}' was built for inputs of shape (batch, timesteps, {expected}) "
        f"and received shape {tuple(shape)}: {shape[-1]} features where it expects "
        f"{expected}. Feed {expected} features per step, or use a new layer for the new "
        "input size."
    )


def check_mask_shape(mask_shape, shape, layer_name: str) -> None:
    """A mask is (batch, timesteps), matching the inputs' first two axes."""
    if mask_shape is None or shape is None:
        return
    expected = tuple(shape[:2])
    ok = len(mask_shape) == 2 and all(
        m is None or e is None or m == e for m, e in zip(mask_shape, expected)
    )
    if not ok:
        want = ", ".join(
            "batch" if i == 0 and e is None else "timesteps" if e is None else str(e)
            for i, e in enumerate(expected)
        )
        raise ValueError(
            f"Received a `mask` of shape {tuple(mask_shape)} in layer '{layer_name}' for "
            f"inputs of shape {tuple(shape)} (batch, timesteps, features); the mask must "
            f"be ({want}): one boolean per sample and timestep."
        )
