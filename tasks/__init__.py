"""Ready pipelines on seqkit's layers: sentiment analysis, text generation, translation, forecasting.

Each is a :class:`Task`: a Preprocessor (``task.preprocessor``), a Keras model
built on ``seqkit.layers.RecurrentStack``, and ``fit`` / ``evaluate`` /
``predict`` / ``fine_tune`` / ``save`` / ``export`` written once in
``tasks.base``.

>>> import tasks
>>> clf = tasks.load("sentiment")   # the shipped IMDB model
>>> clf.predict("A moving, beautiful film.")
[{'label': 'positive', 'score': 0.98}]
"""

from tasks.arguments import PipelineError
from tasks.base import Pipeline, Task
from tasks.preprocessor import Preprocessor
from tasks.registry import SHIPPED, get_task, load, register, task_names

__all__ = [
    "load",
    "register",
    "get_task",
    "task_names",
    "Task",
    "Pipeline",
    "Preprocessor",
    "PipelineError",
    "SHIPPED",
    "SentimentPipeline",
    "TextGenPipeline",
    "TranslationPipeline",
    "ForecastPipeline",
]
_LAZY = {
    "SentimentPipeline": "sentiment",
    "TextGenPipeline": "textgen",
    "TranslationPipeline": "translation",
    "ForecastPipeline": "forecasting",
}


def __getattr__(name):
    # Pipelines import TensorFlow; load them on first use so `import tasks` stays light.
    if name in _LAZY:
        return get_task(_LAZY[name])
    if name in _LAZY.values():
        import importlib

        return importlib.import_module(f"tasks.{name}")
    raise AttributeError(f"module 'tasks' has no attribute {name!r}")
