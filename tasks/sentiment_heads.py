"""The heads of a SentimentPipeline beside its recurrent encoders, and how they are joined.

- :class:`NgramBag`: a linear head over the words and hashed word n-grams of a
  text; :func:`count_ngram_prior` counts its naive-Bayes prior (NBSVM).
- :class:`StackHeads`: per-head logits side by side, ``(batch, heads, classes)``;
  :class:`HeadsCrossentropy` trains every head on its own cross-entropy and
  :func:`heads_accuracy` scores their mean.
- :func:`fit_head_weights`: a weight per head and a bias per class, fitted on
  held-out data (``combine="fit"``); :func:`read_head_weights` reads them from
  a saved pipeline's assets; :class:`SentimentServing` joins the heads so in
  the exported graph.
- :func:`legacy_weight_path`: where seqkit 0.1.0 kept a weight of this model.
"""

from __future__ import annotations

import re

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from tasks.arguments import PipelineError

# A recurrent weight today: layers/recurrent_stack[_e]/rnns/<class>[_i]/<rest> (encoder e, layer i).
_STACK_PATH = re.compile(r"layers/recurrent_stack(?:_(\d+))?/rnns/([a-z_]+?)(?:_(\d+))?/(.+)")

__all__ = [
    "NgramBag",
    "StackHeads",
    "HeadsCrossentropy",
    "heads_accuracy",
    "count_ngram_prior",
    "fit_head_weights",
    "read_head_weights",
    "legacy_weight_path",
    "softmax",
    "SentimentServing",
]


@keras.saving.register_keras_serializable(package="seqkit")
def _floor_mod(x, m: int):
    """x mod m in [0, m) for int32 x of either sign. TensorFlow's % already is;
    ONNX's integer Mod, as tf2onnx writes it, takes the sign of x (measured:
    the shipped model's n-gram rows came out negative in onnxruntime)."""
    r = x % m
    return ops.where(r < 0, r + m, r)


class NgramBag(keras.layers.Layer):
    """A linear term over the words and hashed word n-grams of a text.

    ``logits = scale * sum(table[gram] for gram in words + bigrams [+ trigrams])
    / sqrt(number of grams)``; bigrams (and, with ``order=3``, trigrams) are hashed
    into ``buckets`` rows after the vocabulary rows. ``scale``
    multiplies this table's effective learning rate under Adam (a linear model over
    sparse features needs far larger steps than the recurrent weights); ``dropout``
    drops whole grams in training.

    Call arguments:
        ids: (batch, time) int token ids, 0 = padding.

    Returns:
        (batch, classes).
    """

    def __init__(
        self,
        vocabulary_size,
        buckets,
        classes,
        scale=10.0,
        dropout=0.5,
        order=2,
        prior=False,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if order not in (2, 3):
            raise ValueError(f"Received `order={order!r}`; expected 2 or 3.")
        self.vocabulary_size = int(vocabulary_size)
        self.buckets = int(buckets)
        self.order = int(order)
        self.use_prior = bool(prior)
        self.classes = int(classes)
        self.scale = float(scale)
        self.dropout = float(dropout)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        self.table = self.add_weight(
            shape=(self.vocabulary_size + self.buckets, self.classes),
            initializer="zeros",
            name="table",
        )
        # Fixed per-gram scales of the table (naive-Bayes log-count ratios), set
        # by the pipeline from its training data.
        self.prior = None
        if self.use_prior:
            self.prior = self.add_weight(
                shape=(self.vocabulary_size + self.buckets, self.classes),
                initializer="ones",
                trainable=False,
                name="prior",
            )

    def gram_ids(self, ids):
        """Table rows of every gram and whether it is present (not padding).

        Args:
            ids: (batch, time) int token ids, 0 = padding.

        Returns:
            (grams, weight): (batch, grams) int32 rows and float32 0/1.
        """
        ids = ops.cast(ids, "int32")  # (batch, time)
        present = ops.cast(ids > 0, "float32")
        # int32 products wrap around; floor-mod keeps the hash in [0, buckets).
        pair = _floor_mod(ids[:, :-1] * 7919 + ids[:, 1:] * 104729, self.buckets)  # (batch, time-1)
        both = present[:, :-1] * present[:, 1:]
        grams = [ids, pair + self.vocabulary_size]
        weights = [present, both]
        if self.order == 3:
            # A trigram extends its first two words' bigram hash with the third word.
            triple = _floor_mod(pair[:, :-1] * 1000003 + ids[:, 2:] * 8191 + 12289, self.buckets)
            grams.append(triple + self.vocabulary_size)
            weights.append(both[:, :-1] * present[:, 2:])
        grams = ops.concatenate(grams, axis=1)  # (batch, grams)
        weight = ops.concatenate(weights, axis=1)  # (batch, grams)
        return grams, weight

    def call(self, ids, training=False):
        grams, weight = self.gram_ids(ids)
        if training and self.dropout:
            keep = keras.random.uniform(ops.shape(weight), seed=self.seed_generator)
            weight = weight * ops.cast(keep >= self.dropout, weight.dtype)
        rows = ops.take(self.table, grams, axis=0) * self.scale  # (batch, grams, classes)
        if self.prior is not None:
            rows = rows * ops.take(self.prior, grams, axis=0)
        # expand_dims, not [..., None]: TFLite has no built-in strided slice with a new axis
        total = ops.sum(rows * ops.expand_dims(weight, -1), axis=1)  # (batch, classes)
        return total / ops.sqrt(ops.maximum(ops.sum(weight, axis=1, keepdims=True), 1.0))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.classes)

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "buckets": self.buckets,
            "classes": self.classes,
            "scale": self.scale,
            "dropout": self.dropout,
            "order": self.order,
            "prior": self.use_prior,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="seqkit")
class StackHeads(keras.layers.Layer):
    """Stacks per-head logits: [(batch, classes)] * heads -> (batch, heads, classes)."""

    def call(self, heads):
        return ops.stack(heads, axis=1)

    def compute_output_shape(self, input_shapes):
        return (input_shapes[0][0], len(input_shapes), input_shapes[0][1])


@keras.saving.register_keras_serializable(package="seqkit")
class HeadsCrossentropy(keras.losses.Loss):
    """Mean over heads of each head's own cross-entropy: the heads learn side by side
    (an ensemble in one model) and predictions average their logits."""

    def __init__(self, name="heads_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        # y_true (batch,) class ids; y_pred (batch, heads, classes) logits
        log_p = ops.log_softmax(y_pred, axis=-1)
        y = ops.cast(ops.reshape(y_true, (-1, 1, 1)), "int32")
        y = ops.broadcast_to(y, (ops.shape(y_pred)[0], ops.shape(y_pred)[1], 1))
        return -ops.mean(ops.take_along_axis(log_p, y, axis=-1)[..., 0], axis=1)


def heads_accuracy(y_true, y_pred):
    """Per-example accuracy (0 or 1) of the heads' mean logits.

    Args:
        y_true: (batch,) class ids.
        y_pred: (batch, heads, classes) logits.

    Returns:
        (batch,) float32.
    """
    mean_logits = ops.mean(y_pred, axis=1)  # (batch, classes)
    predicted = ops.cast(ops.argmax(mean_logits, axis=-1), "int32")
    return ops.cast(ops.equal(predicted, ops.cast(ops.reshape(y_true, (-1,)), "int32")), "float32")


def count_ngram_prior(bag: NgramBag, batches, smoothing: float = 1.0) -> np.ndarray:
    """One-vs-rest naive-Bayes log-count ratios of every row of ``bag``'s table.

    ``r[g, c] = log(p_c[g] / |p_c|) - log(q_c[g] / |q_c|)``, where ``p_c`` counts
    the training texts of class c that contain gram g (each text once), ``q_c``
    those of the other classes, both plus ``smoothing``.

    Args:
        bag: the (unbuilt) NgramBag the prior is for.
        batches: an iterable of (ids (batch, time) int32, 0 = padding; y (batch,) class ids).
        smoothing: added to every count.

    Returns:
        (rows, classes) float32, rows = ``bag.vocabulary_size + bag.buckets``.

    Example:

    >>> bag = NgramBag(4, 3, 2)
    >>> count_ngram_prior(bag, [(np.array([[2, 3]], "int32"), np.array([1]))]).shape
    (7, 2)
    """
    counts = np.zeros((bag.classes, bag.vocabulary_size + bag.buckets), dtype=np.float64)
    for ids, y in batches:
        grams, weight = (np.asarray(t) for t in bag.gram_ids(ids))
        for row, label in enumerate(y):
            counts[label, np.unique(grams[row][weight[row] > 0])] += 1.0
    present = counts + smoothing  # (classes, rows)
    rest = counts.sum(axis=0, keepdims=True) - counts + smoothing  # other classes
    ratios = np.log(present / present.sum(axis=1, keepdims=True)) - np.log(
        rest / rest.sum(axis=1, keepdims=True)
    )
    return ratios.T.astype(np.float32)  # (rows, classes)


class SentimentServing(tf.Module):
    """What ``SentimentPipeline.export`` saves: vectorizer + model + labels behind one
    string signature, the heads joined by ``head_weights`` and ``class_bias``."""

    def __init__(self, vectorizer, model, labels, head_weights, class_bias):
        super().__init__()
        self.vectorizer = vectorizer
        self.model = model
        self.labels = tf.constant(labels)
        self.head_weights = tf.constant(head_weights, tf.float32)
        self.class_bias = tf.constant(class_bias, tf.float32)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text):
        ids = self.vectorizer(text).to_tensor()  # (batch, longest)
        ids = tf.pad(ids, [[0, 0], [0, 1]])  # one padding step: empty texts still have a step
        heads = tf.cast(self.model(ids, training=False), tf.float32)  # (batch, heads, classes)
        logits = tf.einsum("bhc,h->bc", heads, self.head_weights) + self.class_bias
        probabilities = tf.nn.softmax(logits, axis=-1)
        best = tf.argmax(probabilities, axis=-1)
        return {
            "probabilities": probabilities,
            "label": tf.gather(self.labels, best),
            "score": tf.reduce_max(probabilities, axis=-1),
        }


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities over the last axis of numpy logits (the combined heads'), stably."""
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def fit_head_weights(logits: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A weight per head and a bias per class minimising the cross-entropy of
    ``sum_h w_h * logits[:, h] + b`` on held-out data (stacking).

    Convex in (w, b); solved with L-BFGS from the plain mean (w = 1/heads, b = 0),
    with an L2 pull towards that start worth one example, so a tiny or one-class
    validation set cannot push the weights far. The fitted objective is never
    above the mean's.

    Args:
        logits: (n, heads, classes) float.
        y: (n,) int class ids.

    Returns:
        (weights (heads,), bias (classes,)), float32.
    """
    from scipy.optimize import minimize

    logits = np.asarray(logits, dtype=np.float64)
    n, heads, classes = logits.shape
    w0 = np.full(heads, 1.0 / heads)
    lam = 1.0 / n
    rows = np.arange(n)

    def objective(theta):
        w, b = theta[:heads], theta[heads:]
        z = np.einsum("nhc,h->nc", logits, w) + b
        z = z - z.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(z).sum(axis=1))
        p = np.exp(z - log_norm[:, None])
        loss = (log_norm - z[rows, y]).mean()
        loss += 0.5 * lam * (((w - w0) ** 2).sum() + (b**2).sum())
        g = p
        g[rows, y] -= 1.0
        g /= n
        grad_w = np.einsum("nc,nhc->h", g, logits) + lam * (w - w0)
        grad_b = g.sum(axis=0) + lam * b
        return loss, np.concatenate([grad_w, grad_b])

    start = np.concatenate([w0, np.zeros(classes)])
    result = minimize(objective, start, jac=True, method="L-BFGS-B")
    theta = result.x if np.isfinite(result.fun) and result.fun <= objective(start)[0] else start
    return theta[:heads].astype(np.float32), theta[heads:].astype(np.float32)


def read_head_weights(assets: dict, heads: int, classes: int):
    """The saved ``(weights (heads,), bias (classes,))`` of ``assets["head_weights"]``,
    None where absent (pipelines saved before ``combine``), or a PipelineError naming
    the damage."""
    if "head_weights" not in assets:
        return None
    try:
        weights = np.asarray(assets["head_weights"]["weights"], dtype=np.float32)
        bias = np.asarray(assets["head_weights"]["bias"], dtype=np.float32)
    except (KeyError, TypeError, ValueError) as error:
        raise PipelineError(f"The saved assets are damaged (head_weights: {error}).") from None
    if (
        weights.shape != (heads,)
        or bias.shape != (classes,)
        or not (np.isfinite(weights).all() and np.isfinite(bias).all())
    ):
        raise PipelineError(
            f"The saved assets are damaged (head_weights must hold {heads} weights "
            f"and {classes} biases, all finite)."
        )
    return weights, bias


def legacy_weight_path(path: str, encoders: int) -> str:
    """The 0.1.0 name of a weight: only the recurrent layers moved (into the stacks).

    seqkit 0.1.0 had each recurrent layer at the top of the model, named by Keras
    ``layers/<class>[_k]`` in the model's order, which runs layer by layer across the
    encoders: layer i of encoder e was the ``k = i * encoders + e``-th.

    Example, two encoders of two layers (encoder 2, layer 2):

    >>> legacy_weight_path("layers/recurrent_stack_1/rnns/gru_1/cell/vars/0", 2)
    'layers/gru_3/cell/vars/0'
    """
    match = _STACK_PATH.fullmatch(path)
    if match is None:
        return path  # embedding, dense (classifiers), ngram_bag: unchanged
    encoder, kind, layer, rest = match.groups()
    k = int(layer or 0) * encoders + int(encoder or 0)
    return f"layers/{kind}{'' if k == 0 else f'_{k}'}/{rest}"
