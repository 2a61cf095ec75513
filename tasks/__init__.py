"""Ready pipelines on seqkit's layers: sentiment (more tasks to come).

>>> import tasks
>>> clf = tasks.load("sentiment")   # the shipped IMDB model
>>> clf.predict("A moving, beautiful film.")
[{'label': 'positive', 'score': 0.98}]
"""

from tasks.base import SHIPPED, Pipeline, PipelineError, load

__all__ = ["load", "Pipeline", "PipelineError", "SHIPPED", "SentimentPipeline"]


def __getattr__(name):
    # Pipelines import TensorFlow; load them on first use so `import tasks` stays light.
    if name == "SentimentPipeline":
        from tasks.sentiment import SentimentPipeline

        return SentimentPipeline
    if name == "sentiment":
        import importlib

        return importlib.import_module("tasks.sentiment")
    raise AttributeError(f"module 'tasks' has no attribute {name!r}")
