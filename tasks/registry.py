"""Which tasks exist and where their pipelines live: ``load``, ``register``, ``SHIPPED``.

Task modules do not import this module: the built-in tasks are named here by
module, so that loading a saved folder imports only the task it needs, and
``register`` adds a user's own task class.
"""

from __future__ import annotations

import importlib
import json
import os
import warnings

from seqkit.errors import UsageError

__all__ = ["load", "register", "get_task", "task_names", "SHIPPED", "saved_models_dir"]

CONFIG_FILE = "pipeline.json"
# Names accepted by `tasks.load(name)` -> folder under saved_models/.
SHIPPED = {
    "sentiment": "sentiment-imdb",
    "textgen": "textgen-shakespeare",
    "forecasting": "forecast-stocks",
    "translation": "translate-spa-eng",
}
# The built-in tasks: name -> (module, class). Imported on first use.
_BUILTIN = {
    "sentiment": ("tasks.sentiment", "SentimentPipeline"),
    "textgen": ("tasks.textgen", "TextGenPipeline"),
    "translation": ("tasks.translation", "TranslationPipeline"),
    "forecasting": ("tasks.forecasting", "ForecastPipeline"),
}
_REGISTERED: dict[str, type] = {}


def register(name: str):
    """Class decorator: makes a user's own Task subclass loadable by its task name.

    Example:

    >>> @tasks.register("my_task")
    ... class MyTask(tasks.Task): ...
    """
    if not isinstance(name, str) or not name:
        raise UsageError(f"Received `name={name!r}`; expected a task name.")

    def wrap(cls):
        cls.task = name
        _REGISTERED[name] = cls
        return cls

    return wrap


def task_names() -> list[str]:
    """The names of every known task (built in and registered)."""
    return sorted(set(_BUILTIN) | set(_REGISTERED))


def get_task(name: str) -> type:
    """The pipeline class of a task name, or a UsageError listing the known ones."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name in _BUILTIN:
        module, cls = _BUILTIN[name]
        return getattr(importlib.import_module(module), cls)
    raise UsageError(f"Unknown task {name!r}; expected one of {task_names()}.")


def saved_models_dir() -> str:
    """Where shipped pretrained pipelines live (``saved_models/`` beside ``tasks``)."""
    here = os.path.dirname(os.path.abspath(__file__))
    return os.environ.get("SEQKIT_MODELS_DIR", os.path.join(os.path.dirname(here), "saved_models"))


def is_shipped(name: str) -> bool:
    """Whether the shipped pipeline ``name`` is installed."""
    return name in SHIPPED and os.path.isdir(os.path.join(saved_models_dir(), SHIPPED[name]))


def _resolve_folder(path: str) -> str:
    if os.path.isdir(path):
        return path
    parent = os.path.dirname(os.path.abspath(path)) or "."
    base = os.path.basename(os.path.abspath(path))
    if os.path.isdir(parent):
        olds = sorted(n for n in os.listdir(parent) if n.startswith(base + ".old-"))
        if olds:
            warnings.warn(
                f"{path} is missing but a previous copy ({olds[-1]}) survived an "
                "interrupted save; loading that.",
                stacklevel=3,
            )
            return os.path.join(parent, olds[-1])
    return path


def check_inside(folder: str, path: str) -> None:
    """Refuses a file of a saved pipeline that is a link or resolves outside its folder."""
    real_folder = os.path.realpath(folder)
    real = os.path.realpath(path)
    if os.path.islink(path) or os.path.commonpath([real_folder, real]) != real_folder:
        raise UsageError(
            f"{path} is a link or resolves outside the pipeline folder ({real}); a saved "
            "pipeline must hold its own files. Copy the real file into the folder."
        )


def read_json(path: str):
    """A JSON file's content, or a UsageError naming the file."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UsageError(f"{path} is not valid JSON ({error}).") from None


def write_json(path: str, obj) -> None:
    """Writes ``obj`` as UTF-8 JSON (the caller makes the write atomic)."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)


def load(path_or_name: str):
    """Loads a pipeline: a shipped one by name (``"sentiment"``) or a saved folder.

    Args:
        path_or_name: a name from ``tasks.SHIPPED`` or the folder given to ``save``.

    Returns:
        The pipeline, ready for ``predict``, ``evaluate``, ``fine_tune`` and ``export``.

    Example:

    >>> clf = tasks.load("sentiment")
    >>> clf.predict("A wonderful film.")[0]["label"]
    'positive'
    """
    if not isinstance(path_or_name, str | os.PathLike):
        raise UsageError(
            f"Received `path_or_name={path_or_name!r}`; expected a folder path or one of "
            f"{sorted(SHIPPED)}."
        )
    path = os.fspath(path_or_name)
    if path in SHIPPED:
        path = os.path.join(saved_models_dir(), SHIPPED[path])
        if not os.path.isdir(path):
            raise UsageError(
                f"The shipped pipeline {path_or_name!r} is not installed (no folder {path})."
            )
    path = _resolve_folder(path)
    if not os.path.isdir(path):
        known = ", ".join(repr(n) for n in sorted(SHIPPED))
        raise UsageError(
            f"{path_or_name!r} is neither a saved pipeline folder nor a shipped pipeline; "
            f"the shipped ones are {known}."
        )
    config_path = os.path.join(path, CONFIG_FILE)
    if not os.path.isfile(config_path):
        raise UsageError(f"{path} is not a saved pipeline: it has no {CONFIG_FILE}.")
    check_inside(path, config_path)
    from tasks.integrity import verify_folder

    verify_folder(path)  # CHECKSUMS.sha256: a damaged file is named as damaged
    meta = read_json(config_path)
    if not isinstance(meta, dict) or "task" not in meta or "config" not in meta:
        raise UsageError(f"{config_path} lacks the 'task' and 'config' entries.")
    task = meta["task"]
    if task not in task_names():
        raise UsageError(
            f"{config_path} names an unknown task {task!r}; known tasks are {task_names()}."
        )
    return get_task(task).from_folder(path, meta)
