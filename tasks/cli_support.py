"""Helpers of the ``seqkit`` command: quiet TensorFlow, check ``--set`` keys.

No absl / XLA / CUDA log lines unless asked (``seqkit --verbose``):

TensorFlow's C++ side writes lines such as ``I0000 ... oneDNN custom operations
are on``, ``Could not find cuda drivers`` and ``E0000 ... failed call to cuInit``
straight to the process's standard error while it is imported and while it
looks for devices, before ``TF_CPP_MIN_LOG_LEVEL`` takes effect (absl's
logging is not initialised yet). :func:`quiet_tensorflow` therefore sets the
levels (C++, absl, Python) and imports TensorFlow with file descriptor 2
pointed at ``/dev/null``; an import error is still raised, after standard
error is back. ``seqkit --verbose ...`` skips all of it.
"""

from __future__ import annotations

import difflib
import inspect
import json
import os
import sys

__all__ = [
    "quiet_tensorflow",
    "check_set_keys",
    "column_options",
    "parse_columns",
    "label_map_options",
    "parse_label_map",
    "read_args",
]


def _pairs_option(flag: str, help: str):
    """A parent parser of one ``--flag YOURS=OURS,...`` option."""
    import argparse

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument(flag, metavar="YOURS=OURS,...", help=help)
    return parser


def column_options():
    """The parent parser of ``--columns`` (forecasting's ``columns=`` mapping)."""
    example = "'Adj Close=close,Vol=volume'"
    return _pairs_option(
        "--columns", f"forecasting: map your columns to the pipeline's, e.g. {example}"
    )


def label_map_options():
    """The parent parser of ``--label-map`` (sentiment's ``label_map=``)."""
    example = "'pos=positive,neg=negative'"
    return _pairs_option(
        "--label-map", f"sentiment: map your labels to the pipeline's, e.g. {example}"
    )


def _parse_pairs(text: str, flag: str, example: str) -> dict:
    """``"a=b,c=d"`` -> ``{"a": "b", "c": "d"}`` (stripped), or a ValueError naming ``flag``."""
    pairs = [part for part in text.split(",") if part.strip()]
    if not pairs or not all(part.count("=") == 1 for part in pairs):
        raise ValueError(
            f"Received `{flag} {text}`; expected YOURS=OURS pairs separated by commas, "
            f"e.g. {flag} {example}."
        )
    return {k.strip(): v.strip() for k, v in (part.split("=") for part in pairs)}


def parse_label_map(text: str) -> dict:
    """``"pos=positive,neg=negative"`` -> ``{"pos": "positive", "neg": "negative"}``
    (a value that reads as a number, ``"0=1"``, is that integer)."""
    pairs = _parse_pairs(text, "--label-map", "'pos=positive,neg=negative'")
    return {k: int(v) if v.lstrip("-").isdigit() else v for k, v in pairs.items()}


def parse_columns(text: str) -> dict:
    """``"Adj Close=close,Vol=volume"`` -> ``{"Adj Close": "close", "Vol": "volume"}``."""
    return _parse_pairs(text, "--columns", "'Adj Close=close,Vol=volume'")


def quiet_tensorflow(verbose: bool = False) -> None:
    """Silences TensorFlow's start-up and log lines in this process (unless ``verbose``).

    Call it before TensorFlow is imported; once it is, only the levels are set.

    Args:
        verbose: True leaves every log line as TensorFlow prints it.
    """
    if verbose:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # C++ INFO, WARNING and ERROR lines
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
    if "tensorflow" not in sys.modules:
        _import_with_stderr_closed()
    import absl.logging
    import tensorflow as tf

    absl.logging.set_verbosity(absl.logging.ERROR)
    tf.get_logger().setLevel("ERROR")


def _import_with_stderr_closed() -> None:
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real file descriptor 2 (an embedding host)
        return
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        import keras  # noqa: F401  (imports TensorFlow, the backend)
        import tensorflow as tf

        tf.config.list_physical_devices()  # the CUDA probe ("failed call to cuInit")
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def check_set_keys(cls, task: str, config: dict) -> None:
    """Refuses a --set key the task's constructor does not take: the valid keys, the nearest."""
    params = inspect.signature(cls.__init__).parameters
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    valid = sorted(k for k, p in params.items() if k != "self" and p.kind in named)
    old = getattr(cls.__init__, "renamed_arguments", {})
    for key in config:
        if key not in valid and key not in old:
            near = difflib.get_close_matches(key, valid, n=1)
            hint = f"Did you mean {near[0]!r}? " if near else ""
            raise ValueError(
                f"--set {key}=...: {task} has no setting {key!r}. {hint}"
                f"The settings are: {', '.join(valid)}."
            )


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _parse_sets(pairs) -> dict:
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ValueError(f"--set expects key=value; received {pair!r}.")
        key, value = pair.split("=", 1)
        out[key.strip()] = _parse_value(value)
    return out


def read_args(task: str, args) -> dict:
    """The reader options that apply to a task's data."""
    encoding = {"encoding": args.encoding}
    if getattr(args, "label_map", None) and task != "sentiment":
        raise ValueError(f"--label-map applies to sentiment pipelines; this one is {task}.")
    if task == "textgen":
        return {"text_column": args.text_column, **encoding}
    if task == "translation":
        return encoding
    if task == "forecasting":
        columns = {"columns": parse_columns(args.columns)} if args.columns else {}
        return {"time_column": args.time_column, "id_column": args.id_column, **encoding, **columns}
    labels = {"label_map": parse_label_map(args.label_map)} if args.label_map else {}
    return {
        "text_column": args.text_column,
        "label_column": args.label_column,
        **encoding,
        **labels,
    }
