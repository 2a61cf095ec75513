"""MaskedGlobalPooling: padding never counts; empty rows pool to zeros (TF and JAX)."""

import keras
import numpy as np
import pytest

from seqkit.layers import MaskedGlobalPooling


@pytest.mark.parametrize("mode", ["max", "mean", "max_mean"])
def test_matches_numpy_over_unmasked_steps(mode):
    rng = np.random.RandomState(0)
    x = rng.randn(3, 5, 4).astype("float32") - 10.0  # all negative: a zero pad would win max
    mask = np.array([[1, 1, 0, 0, 0], [0, 0, 1, 1, 1], [0, 0, 0, 0, 0]], bool)
    out = keras.ops.convert_to_numpy(MaskedGlobalPooling(mode)(x, mask=mask))
    expected = []
    for row, m in zip(x, mask):
        parts = []
        if mode in ("max", "max_mean"):
            parts.append(row[m].max(0) if m.any() else np.zeros(4))
        if mode in ("mean", "max_mean"):
            parts.append(row[m].mean(0) if m.any() else np.zeros(4))
        expected.append(np.concatenate(parts))
    np.testing.assert_allclose(out, np.array(expected), rtol=1e-6, atol=1e-6)


def test_config_round_trip_and_bad_mode():
    layer = MaskedGlobalPooling("mean")
    assert MaskedGlobalPooling.from_config(layer.get_config()).mode == "mean"
    with pytest.raises(ValueError, match=r"Received `mode='min'`; expected one of"):
        MaskedGlobalPooling("min")
