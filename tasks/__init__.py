"""Ready pipelines on seqkit's layers: sentiment and text generation (more to come).

>>> import tasks
>>> clf = tasks.load("sentiment")   # the shipped IMDB model
>>> clf.predict("A moving, beautiful film.")
[{'label': 'positive', 'score': 0.98}]
"""

from tasks.base import SHIPPED, Pipeline, PipelineError, load

__all__ = [
    "load",
    "Pipeline",
    "PipelineError",
    "SHIPPED",
    "SentimentPipeline",
    "TextGenPipeline",
]
_LAZY = {"SentimentPipeline": "tasks.sentiment", "TextGenPipeline": "tasks.textgen"}


def __getattr__(name):
    # Pipelines import TensorFlow; load them on first use so `import tasks` stays light.
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in ("sentiment", "textgen"):
        return importlib.import_module(f"tasks.{name}")
    raise AttributeError(f"module 'tasks' has no attribute {name!r}")
