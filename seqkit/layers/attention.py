"""Attention for recurrent decoders: additive (Bahdanau) and multiplicative (Luong) scores."""

from __future__ import annotations

import keras
from keras import ops

from seqkit.layers import _validation as V

_SCORES = ("bahdanau", "luong")


@keras.saving.register_keras_serializable(package="seqkit")
class DecoderAttention(keras.layers.Layer):
    """Attention of decoder states over encoder outputs, with padding masked out.

    Scores between each query (decoder state) and each key (encoder output):

    - ``"bahdanau"`` (additive, Bahdanau et al. 2015): ``v·tanh(W_q q + W_k k)``;
    - ``"luong"`` (multiplicative "general", Luong et al. 2015): ``q·W k``.

    Weights are the softmax of the scores over source positions; masked (padding)
    positions get weight exactly 0, and a row with no valid position gets all
    zeros (and a zero context).

    Args:
        units: size of the additive score's hidden layer (Bahdanau only).
        score: "bahdanau" or "luong".

    Call arguments:
        query: ``(batch, target_time, query_dim)`` or ``(batch, query_dim)`` for one step.
        values: encoder outputs ``(batch, source_time, value_dim)``.
        mask: bool ``(batch, source_time)``, True at real tokens (None: all real).
        keys: the values projected by ``project_keys`` (optional; saves that work
            when stepping a decoder token by token).

    Returns:
        ``(context, weights)``: ``(batch, [target_time,] value_dim)`` and
        ``(batch, [target_time,] source_time)``.

    Example:

    >>> att = DecoderAttention(16, score="luong")
    >>> ctx, w = att(np.ones((2, 3, 8)), np.ones((2, 5, 8)))
    >>> ctx.shape, w.shape
    ((2, 3, 8), (2, 3, 5))
    """

    def __init__(self, units: int = 128, score: str = "bahdanau", **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True  # the source mask is an argument; query masks pass through
        self.units = V.check_units(units)
        if score not in _SCORES:
            raise ValueError(f"Received `score={score!r}`; expected one of {_SCORES}.")
        self.score = score

    def build(self, query_shape, values_shape, mask_shape=None, keys_shape=None):
        q_dim, v_dim = query_shape[-1], values_shape[-1]
        if self.score == "bahdanau":
            self.query_kernel = self.add_weight(shape=(q_dim, self.units), name="query_kernel")
            self.key_kernel = self.add_weight(shape=(v_dim, self.units), name="key_kernel")
            self.score_vector = self.add_weight(shape=(self.units,), name="score_vector")
        else:
            self.key_kernel = self.add_weight(shape=(v_dim, q_dim), name="key_kernel")

    def project_keys(self, values):
        """The part of the score that depends only on the encoder outputs."""
        return ops.matmul(values, self.key_kernel)  # (batch, source, units or query_dim)

    def call(self, query, values, mask=None, keys=None):
        single = len(query.shape) == 2
        if single:
            query = ops.expand_dims(query, 1)  # (batch, 1, query_dim)
        if keys is None:
            keys = self.project_keys(values)
        if self.score == "bahdanau":
            q = ops.matmul(query, self.query_kernel)  # (batch, target, units)
            hidden = ops.tanh(ops.expand_dims(q, 2) + ops.expand_dims(keys, 1))  # (b, t, s, u)
            scores = ops.sum(hidden * self.score_vector, axis=-1)  # (batch, target, source)
        else:
            scores = ops.matmul(query, ops.transpose(keys, (0, 2, 1)))  # (b, target, source)
        if mask is not None:
            valid = ops.expand_dims(ops.cast(mask, "bool"), 1)  # (batch, 1, source)
            scores = ops.where(valid, scores, ops.full_like(scores, -1e9))
            weights = ops.softmax(scores, axis=-1) * ops.cast(valid, scores.dtype)
        else:
            weights = ops.softmax(scores, axis=-1)
        context = ops.matmul(weights, values)  # (batch, target, value_dim)
        if single:
            return context[:, 0], weights[:, 0]
        return context, weights

    def compute_output_shape(self, query_shape, values_shape, mask_shape=None, keys_shape=None):
        lead = tuple(query_shape[:-1])
        return lead + (values_shape[-1],), lead + (values_shape[1],)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "score": self.score}
