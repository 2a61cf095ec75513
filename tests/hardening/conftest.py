"""Tiny fitted pipelines of all four tasks, shared by the hardening tests."""

import pytest

from tests.tasks.conftest import SMALL as SENTIMENT_SMALL
from tests.tasks.conftest import make_reviews
from tests.tasks.test_forecasting import random_walks
from tests.tasks.test_textgen import make_text
from tests.tasks.test_translation import make_pairs

QUICK = dict(verbose=0, checkpoint_dir=None)


def build(task: str, seed: int = 0, config: dict | None = None, **fit):
    """A freshly fitted tiny pipeline of ``task`` (seconds to train); ``config`` overrides
    its hyperparameters."""
    from tasks.forecasting import ForecastPipeline
    from tasks.sentiment import SentimentPipeline
    from tasks.textgen import TextGenPipeline
    from tasks.translation import TranslationPipeline

    fit = {**QUICK, "epochs": 2, **fit}
    if task == "sentiment":
        data = make_reviews(160)
        small = {**SENTIMENT_SMALL, **(config or {})}
        return SentimentPipeline(**small, seed=seed).fit(data, **fit)
    if task == "textgen":
        small = dict(units=16, layers=1, embedding_dim=8, seq_length=24, dropout=0.1)
        small.update(config or {})
        return TextGenPipeline(**small, seed=seed).fit(make_text(80), **fit)
    if task == "translation":
        small = dict(
            units=16, embedding_dim=16, max_tokens=48, target_max_tokens=48, tokenizer="word"
        )
        small = {**small, "dropout": 0.1, **(config or {})}
        return TranslationPipeline(**small, seed=seed).fit(make_pairs(160), **fit)
    if task == "forecasting":
        small = {**dict(lookback=12, horizon=2, units=8, dropout=0.1), **(config or {})}
        frame = random_walks(n_series=2, n=160)
        return ForecastPipeline(**small, seed=seed).fit(frame, batch_size=64, **fit)
    raise ValueError(task)


TASKS = ["sentiment", "textgen", "translation", "forecasting"]


@pytest.fixture(scope="session")
def fitted():
    """One tiny fitted pipeline per task, built once for the session."""
    return {task: build(task) for task in TASKS}


def sample_input(task: str):
    """A valid inference input of ``task`` (what predict-like calls take)."""
    if task == "forecasting":
        return random_walks(n_series=1, n=60, seed=5)
    return {
        "sentiment": ["the film was good", "a dull plot"],
        "textgen": "the cat",
        "translation": ["el gato come el pan.", "¿Dónde está el perro?"],
    }[task]


def infer(pipeline, task: str):
    """The task's main inference output on ``sample_input`` as something comparable."""
    data = sample_input(task)
    if task == "sentiment":
        return pipeline.predict_proba(data)
    if task == "textgen":
        return pipeline.generate(data, max_length=30, temperature=0.8, seed=3)
    if task == "translation":
        return pipeline.translate(data, beam_width=2)
    return pipeline.predict(data)
