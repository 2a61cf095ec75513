"""DecoderAttention: weights sum to one over real source positions, padding gets zero,
against a NumPy reference, under TensorFlow and JAX."""

import keras
import numpy as np
import pytest

from seqkit.layers import DecoderAttention


def reference(att, query, values, mask):
    w = {v.name: keras.ops.convert_to_numpy(v) for v in att.weights}
    keys = values @ w["key_kernel"]  # (b, s, .)
    if att.score == "bahdanau":
        q = query @ w["query_kernel"]
        scores = np.tanh(q[:, :, None] + keys[:, None]) @ w["score_vector"]
    else:
        scores = query @ keys.transpose(0, 2, 1)
    scores = np.where(mask[:, None], scores, -np.inf)
    e = np.exp(scores - np.max(np.where(mask[:, None], scores, -1e30), -1, keepdims=True))
    e = np.where(mask[:, None], e, 0.0)
    total = e.sum(-1, keepdims=True)
    weights = np.where(total > 0, e / np.where(total > 0, total, 1), 0.0)
    return weights @ values, weights


@pytest.mark.parametrize("score", ["bahdanau", "luong"])
def test_matches_numpy_and_masks_padding(score):
    rng = np.random.RandomState(0)
    query = rng.randn(3, 4, 6).astype("float32")
    values = rng.randn(3, 5, 6).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]], bool)
    att = DecoderAttention(7, score=score)
    context, weights = (keras.ops.convert_to_numpy(t) for t in att(query, values, mask))
    ref_c, ref_w = reference(att, query, values, mask)
    np.testing.assert_allclose(weights, ref_w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(context, ref_c, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(weights[:2].sum(-1), 1.0, rtol=1e-6)
    assert (weights[0, :, 3:] == 0).all() and (weights[2] == 0).all()


def test_config_round_trip_and_bad_arguments():
    att = DecoderAttention(5, score="luong")
    clone = DecoderAttention.from_config(att.get_config())
    assert (clone.units, clone.score) == (5, "luong")
    with pytest.raises(ValueError, match=r"Received `score='dot'`; expected one of"):
        DecoderAttention(4, score="dot")
    with pytest.raises(ValueError, match=r"Received `units=0`"):
        DecoderAttention(0)
