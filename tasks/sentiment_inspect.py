"""What a trained SentimentPipeline says about labelled data and single texts.

- :func:`classification_metrics`: accuracy, macro F1, loss and the confusion
  matrix (``SentimentPipeline.evaluate``).
- :func:`explain`: per-token attributions by occlusion
  (``SentimentPipeline.explain``): each token the model reads (a word, or a
  piece with ``tokenizer="subword"``) is deleted in turn; its weight is
  p(label | text) minus p(label | text without it).
"""

from __future__ import annotations

import warnings

import numpy as np

from seqkit.data import repair_surrogates
from tasks.arguments import PipelineError
from tasks.sentiment_heads import softmax

__all__ = ["classification_metrics", "explain"]


def classification_metrics(y: np.ndarray, logits: np.ndarray, labels: list) -> dict:
    """Metrics of logits (n, classes) against class ids y (n,), as ``evaluate`` reports them.

    Returns:
        ``{"accuracy", "f1", "loss", "confusion_matrix", "labels", "n"}``; rows of
        the confusion matrix are true labels, columns predictions, both in
        ``labels`` order.

    Example:

    >>> classification_metrics(np.array([0, 1]), np.array([[2.0, 0.0], [1.0, 0.0]]), ["a", "b"])
    {'accuracy': 0.5, 'f1': 0.333..., 'loss': 0.72..., 'confusion_matrix': [[1, 0], [1, 0]], ...}
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    z = logits - logits.max(axis=-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    pred = logits.argmax(axis=-1)
    classes = list(range(len(labels)))
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "f1": float(f1_score(y, pred, average="macro", labels=classes, zero_division=0)),
        "loss": float(-log_p[np.arange(len(y)), y].mean()),
        "confusion_matrix": confusion_matrix(y, pred, labels=classes).tolist(),
        "labels": list(labels),
        "n": len(y),
    }


def explain(pipeline, text: str, label=None, stacklevel: int = 3) -> list[tuple[str, float]]:
    """``[(token, weight), ...]`` for the tokens ``pipeline`` reads, in text order.

    Args:
        pipeline: a fitted SentimentPipeline.
        text: one string.
        label: the label to explain (default: the predicted one).
        stacklevel: of the warning about a truncated text.

    Returns:
        Weights in float64 (a near-certain prediction still ranks its tokens):
        positive ones push towards ``label``, negative ones away from it.
    """
    if not isinstance(text, str):
        raise PipelineError(f"explain() takes one string; received {type(text).__name__}.")
    text = repair_surrogates(text)
    pipeline._require_fitted("explain")
    vectorizer = pipeline.vectorizer
    unit = getattr(vectorizer, "unit", "words")
    ids = pipeline.preprocessor.encode([text])[0]
    tokens = vectorizer.tokens(text)
    first = len(tokens) - len(ids) if vectorizer.truncating == "pre" else 0
    if len(tokens) > len(ids):
        how = f"max_length={len(ids)}, truncating={vectorizer.truncating!r}"
        warnings.warn(
            f"The text has {len(tokens)} {unit}; the model reads only {unit} {first + 1} to "
            f"{first + len(ids)} ({how}), and those are the ones explained.",
            stacklevel=stacklevel,
        )
    if len(ids) == 0:
        return []
    tokens = tokens[first : first + len(ids)]
    variants = [ids] + [np.delete(ids, i) for i in range(len(ids))]
    proba = softmax(pipeline._logits(variants).astype(np.float64))
    if label is None:
        k = int(proba[0].argmax())
    elif label in pipeline.labels:
        k = pipeline.labels.index(label)
    else:
        raise PipelineError(f"Received `label={label!r}`; expected one of {pipeline.labels}.")
    rest = np.delete(proba, k, axis=1).sum(axis=1)  # 1 - p, exact where p rounds to 1
    weights = rest[1:] - rest[0] if proba[0, k] > 0.5 else proba[0, k] - proba[1:, k]
    return [(w, float(v)) for w, v in zip(tokens, weights)]
