"""seqkit.series: windows, the in-graph transforms and the scaler, against plain numpy.

Reading series (seqkit.data.read_series) is tested in test_data.py.
"""

import numpy as np
import pytest
import tensorflow as tf

from seqkit.series import EPS, fit_scaler, make_windows, transform_windows


@pytest.fixture(scope="module")
def values():
    rng = np.random.RandomState(0)
    price = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 50)))
    volume = rng.uniform(1e3, 2e3, 50)
    signal = rng.normal(0, 1, 50)  # may be negative: differences, not log returns
    return np.stack([price, volume, signal], axis=1)  # (time, columns), target first


def reference_steps(windows, log_columns):
    """Step changes of each column: log returns or differences (numpy)."""
    out = np.empty((windows.shape[0], windows.shape[1] - 1, windows.shape[2]))
    for j, is_log in enumerate(log_columns):
        col = windows[:, :, j]
        if is_log:
            safe = np.maximum(col, EPS)
            out[:, :, j] = np.log(safe[:, 1:]) - np.log(safe[:, :-1])
        else:
            out[:, :, j] = col[:, 1:] - col[:, :-1]
    return out


# --------------------------------------------------------------------------- windows
def test_make_windows_are_slices_of_the_series(values):
    lookback, horizon, origins = 5, 3, [4, 10, 47, 49]
    windows, future = make_windows(values, lookback, horizon, origins)
    assert windows.shape == (4, lookback, 3) and future.shape == (4, horizon)
    for i, t in enumerate(origins):
        np.testing.assert_array_equal(windows[i], values[t - lookback + 1 : t + 1])
        ahead = values[t + 1 : t + 1 + horizon, 0]
        np.testing.assert_array_equal(future[i, : len(ahead)], ahead)
        assert np.isnan(future[i, len(ahead) :]).all()  # past the end: NaN
    empty_w, empty_f = make_windows(values, lookback, horizon, [])
    assert empty_w.shape == (0, lookback, 3) and empty_f.shape == (0, horizon)


# --------------------------------------------------------------------------- scaler
@pytest.mark.parametrize("log_columns", [[True, True, False], [False, False, False]])
def test_fit_scaler_is_the_mean_and_std_of_step_changes(values, log_columns):
    windows, _ = make_windows(values, 6, 1, np.arange(5, 45, 2))
    mean, std = fit_scaler(windows, log_columns)
    steps = reference_steps(windows, log_columns).reshape(-1, 3)
    assert mean.dtype == std.dtype == np.float32 and mean.shape == std.shape == (3,)
    np.testing.assert_allclose(mean, steps.mean(axis=0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(std, steps.std(axis=0) + EPS, rtol=1e-5)


# --------------------------------------------------------------------------- transforms
def reference_transform(windows, log_columns, mean, std):
    steps = reference_steps(windows, log_columns)
    target = steps[:, :, 0]
    scale = target.std(axis=1) + EPS  # population std within each window
    covariates = (steps[:, :, 1:] - mean[1:]) / std[1:]
    inputs = np.concatenate([(target / scale[:, None])[..., None], covariates], axis=-1)
    return np.clip(inputs, -20, 20), scale, windows[:, -1, 0]


def test_transform_windows_matches_numpy(values):
    log_columns = [True, True, False]
    windows, _ = make_windows(values, 8, 1, np.arange(7, 49))
    mean, std = fit_scaler(windows, log_columns)
    inputs, scale, last = transform_windows(windows, log_columns, mean, std)
    want_inputs, want_scale, want_last = reference_transform(windows, log_columns, mean, std)
    assert inputs.shape == (len(windows), 7, 3) and inputs.dtype == tf.float32
    np.testing.assert_allclose(inputs, want_inputs, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(scale, want_scale, rtol=1e-4)
    np.testing.assert_allclose(last, want_last, rtol=1e-6)
    # fitted on these windows, the covariate channels come out standardised
    flat = inputs.numpy()[:, :, 1:].reshape(-1, 2)
    np.testing.assert_allclose(flat.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(flat.std(axis=0), 1, atol=1e-3)


def test_transform_windows_in_a_graph_with_tensor_statistics(values):
    log_columns = [True, False, False]
    windows, _ = make_windows(values, 6, 1, np.arange(5, 20))
    mean, std = fit_scaler(windows, log_columns)

    @tf.function(input_signature=[tf.TensorSpec([None, 6, 3], tf.float32)])
    def serve(w):
        return transform_windows(w, log_columns, tf.constant(mean), tf.constant(std))

    eager = transform_windows(windows, log_columns, mean, std)
    for a, b in zip(serve(tf.constant(windows, tf.float32)), eager):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_transform_windows_is_safe_on_flat_and_non_positive_windows():
    flat = np.ones((1, 5, 1))  # no movement: the scale is EPS, the inputs 0
    inputs, scale, last = transform_windows(flat, [True], np.zeros(1), np.ones(1))
    np.testing.assert_array_equal(inputs, np.zeros((1, 4, 1)))
    np.testing.assert_allclose(scale, [EPS], rtol=1e-6)
    np.testing.assert_array_equal(last, [1.0])
    drop = np.array([[[1.0], [1.0], [1.0], [1.0], [0.0]]])  # log of 0: floored at EPS
    inputs, _, last = transform_windows(drop, [True], np.zeros(1), np.ones(1))
    assert np.isfinite(inputs).all() and last.numpy()[0] == 0.0
    mean, std = np.zeros(2, np.float32), np.full(2, 1e-3, np.float32)
    price = np.linspace(1, 2, 5)[None, :, None]
    spiky = np.concatenate([price, np.array([[[0], [0], [0], [0], [5.0]]])], axis=-1)
    inputs, _, _ = transform_windows(spiky, [True, False], mean, std)
    assert inputs.numpy()[0, -1, 1] == 20.0  # a covariate 5000 standard deviations away
