"""Backpropagation through time against central finite differences (float64)."""

from __future__ import annotations

import numpy as np
import pytest

import seqkit.layers as sk
from tests.helpers import BACKEND, select_loop_path

pytestmark = pytest.mark.skipif(
    BACKEND != "tensorflow",
    reason="float64 finite differences use TensorFlow (JAX needs x64 mode process-wide)",
)


@pytest.fixture(params=["xla", "fused", "generic"])
def path(request, monkeypatch):
    return select_loop_path(request.param, monkeypatch)


@pytest.mark.parametrize("cls", [sk.SimpleRNN, sk.LSTM, sk.GRU])
@pytest.mark.parametrize("masked", [False, True])
def test_gradients_match_central_differences(cls, masked, path):
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 3))
    mask = np.ones((2, 5), bool)
    if masked:
        mask[0, :2] = False  # left padding
        mask[1, 4:] = False  # right padding
    layer = cls(4, return_sequences=True, dtype="float64")
    layer(x)
    layer.set_weights([rng.normal(scale=0.5, size=w.shape) for w in layer.get_weights()])
    probe = rng.normal(size=(2, 5, 4))

    def loss(x_value):
        return float(np.sum(np.asarray(layer(x_value, mask=mask)) * probe))

    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        out = layer(xt, mask=mask)
        total = tf.reduce_sum(out * probe)
    grads = tape.gradient(total, [xt] + layer.trainable_weights)

    eps = 1e-6
    # d loss / d x
    num = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        num[idx] = (loss(xp) - loss(xm)) / (2 * eps)
    np.testing.assert_allclose(np.asarray(grads[0]), num, rtol=1e-6, atol=1e-7)
    # d loss / d every weight
    for w, g in zip(layer.trainable_weights, grads[1:]):
        value = np.asarray(w.value)
        num = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            vp, vm = value.copy(), value.copy()
            vp[idx] += eps
            vm[idx] -= eps
            w.assign(vp)
            lp = loss(x)
            w.assign(vm)
            lm = loss(x)
            num[idx] = (lp - lm) / (2 * eps)
        w.assign(value)
        np.testing.assert_allclose(np.asarray(g), num, rtol=1e-6, atol=1e-7, err_msg=w.path)
