"""Argument checks shared by the tasks: each names the argument and what was expected."""

from __future__ import annotations

import functools
import warnings

import numpy as np

from seqkit.errors import UsageError

__all__ = [
    "PipelineError",
    "int_arg",
    "rate_arg",
    "bool_arg",
    "choice",
    "cell_arg",
    "renamed_arguments",
    "config_default",
]

#: A pipeline was used wrongly (not fitted, bad argument); the message says how to fix it.
PipelineError = UsageError

INT32_MAX = 2**31 - 1


def int_arg(name: str, value, minimum: int = 1, maximum: int = INT32_MAX) -> int:
    """``value`` as an int, or a PipelineError naming the argument and what was expected.

    ``maximum`` defaults to the largest int32: sizes and counts end up in tensors.
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise PipelineError(f"Received `{name}={value!r}`; expected an integer >= {minimum}.")
    if value > maximum:
        raise PipelineError(f"Received `{name}={value!r}`; expected an integer <= {maximum}.")
    return int(value)


def rate_arg(name: str, value) -> float:
    """``value`` as a float in [0, 1) (a dropout rate), or a PipelineError saying so."""
    if isinstance(value, bool) or not isinstance(value, float | int) or not 0 <= value < 1:
        raise PipelineError(f"Received `{name}={value!r}`; expected a number in [0, 1).")
    return float(value)


def bool_arg(name: str, value) -> bool:
    """``value`` if it is True or False, else a PipelineError saying so."""
    if not isinstance(value, bool):
        raise PipelineError(f"Received `{name}={value!r}`; expected True or False.")
    return value


def choice(name: str, value, options):
    """``value`` if it is one of ``options``, else a PipelineError listing them."""
    if value not in options:
        raise PipelineError(f"Received `{name}={value!r}`; expected one of {options}.")
    return value


def cell_arg(value) -> str:
    """``value`` if it names a recurrent cell of ``seqkit.layers`` ("lstm", "gru", "rnn")."""
    from seqkit.layers import CELLS  # (TensorFlow loads only when a task is built)

    return choice("cell", value, CELLS)


def renamed_arguments(**renames: str):
    """Decorator for a task's ``__init__``: old argument names still work, with a warning.

    Example: ``@renamed_arguments(encoder_layers="layers")`` makes
    ``TranslationPipeline(encoder_layers=2)`` mean ``layers=2`` and warn once.
    Saved configs that use an old name load silently.
    """

    def wrap(init):
        @functools.wraps(init)
        def __init__(self, *args, **kwargs):
            for old, new in renames.items():
                if old in kwargs:
                    if new in kwargs:
                        raise PipelineError(
                            f"Received both `{old}` and `{new}`; `{old}` is the old name of "
                            f"`{new}`: pass only `{new}`."
                        )
                    if not getattr(self, "_loading", False):
                        warnings.warn(
                            f"`{old}` is now called `{new}`; the old name will be removed.",
                            FutureWarning,
                            stacklevel=2,
                        )
                    kwargs[new] = kwargs.pop(old)
            init(self, *args, **kwargs)

        __init__.renamed_arguments = dict(renames)
        return __init__

    return wrap


def config_default(meta: dict, key: str, value) -> dict:
    """``meta`` (a folder's pipeline.json) with ``config[key]`` set to ``value`` where the
    config lacks it: what a folder saved before that argument existed meant."""
    config = meta.get("config")
    if isinstance(config, dict) and key not in config:
        return {**meta, "config": {**config, key: value}}
    return meta
