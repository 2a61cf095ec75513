"""Time-series preparation: windows that never cross series, and the scale-free
transforms a forecaster reads (fitted on training data only).

Reading long-format data is :func:`seqkit.data.read_series` (importable from
here too, with :class:`~seqkit.errors.SeriesError`).

A *window* is ``lookback`` consecutive raw rows of one series (target first,
then covariates). :func:`transform_windows` turns raw windows into what the
network reads, with TensorFlow ops, so training, ``predict`` and the exported
SavedModel share one implementation:

- each column becomes step changes: log returns ``log(x_t / x_{t-1})`` for a
  ``"log_return"`` target and for positive covariates, plain differences
  otherwise (``lookback - 1`` steps per window);
- the target channel is divided by its own standard deviation within the
  window (the window's *scale*, no look-ahead); covariate channels are
  standardised with a mean and standard deviation fitted on training windows.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from seqkit.data.series import read_series
from seqkit.errors import SeriesError

__all__ = ["SeriesError", "read_series", "make_windows", "transform_windows", "fit_scaler"]

EPS = 1e-6


def make_windows(values: np.ndarray, lookback: int, horizon: int, origins) -> tuple:
    """Raw windows and future targets of one series.

    Args:
        values: (time, columns) raw values, target first.
        origins: indices t of the last row of each window (t >= lookback - 1).

    Returns:
        ``(windows (n, lookback, columns), future (n, horizon))``; ``future``
        holds the raw target at t+1 .. t+horizon (NaN past the end).
    """
    origins = np.asarray(origins, dtype=np.int64)
    steps = np.arange(lookback)[None, :] - (lookback - 1)
    windows = values[origins[:, None] + steps]  # (n, lookback, columns)
    ahead = origins[:, None] + np.arange(1, horizon + 1)[None, :]
    future = np.full(ahead.shape, np.nan)
    ok = ahead < len(values)
    future[ok] = values[ahead[ok], 0]
    return windows, future


def transform_windows(windows, log_columns, mean, std):
    """Raw windows -> (network inputs, window scale, last target value), in TF ops.

    Args:
        windows: float (batch, lookback, columns), target in column 0.
        log_columns: bool per column: log returns (True) or differences.
        mean, std: (columns,) statistics of the step changes, fitted on training
            windows (the target's entries are unused: its scale is per window).

    Returns:
        ``inputs (batch, lookback - 1, columns)``, ``scale (batch,)``, ``last (batch,)``.
    """
    w = tf.cast(windows, tf.float32)
    log_columns = tf.constant(log_columns, tf.bool)
    safe = tf.maximum(w, EPS)
    logs = tf.math.log(safe[:, 1:]) - tf.math.log(safe[:, :-1])
    diffs = w[:, 1:] - w[:, :-1]
    steps = tf.where(log_columns[None, None, :], logs, diffs)  # (batch, lookback - 1, columns)
    target = steps[:, :, 0]
    scale = tf.math.reduce_std(target, axis=1) + EPS  # (batch,)
    if not isinstance(mean, tf.Tensor):
        mean = tf.constant(np.asarray(mean, np.float32))
        std = tf.constant(np.asarray(std, np.float32))
    covariates = (steps[:, :, 1:] - mean[1:]) / std[1:]
    inputs = tf.concat([(target / scale[:, None])[..., None], covariates], axis=-1)
    inputs = tf.clip_by_value(inputs, -20.0, 20.0)  # one absurd tick must not blow up a window
    return inputs, scale, w[:, -1, 0]


def fit_scaler(windows, log_columns) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each column's step changes over training windows."""
    w = np.maximum(windows, EPS) if any(log_columns) else windows
    logs = np.log(np.maximum(w[:, 1:], EPS)) - np.log(np.maximum(w[:, :-1], EPS))
    diffs = windows[:, 1:] - windows[:, :-1]
    steps = np.where(np.asarray(log_columns)[None, None, :], logs, diffs)
    flat = steps.reshape(-1, steps.shape[-1])
    mean = flat.mean(axis=0)
    std = flat.std(axis=0) + EPS
    return mean.astype(np.float32), std.astype(np.float32)
