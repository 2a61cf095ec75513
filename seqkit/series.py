"""Time-series preparation: reading long-format data, windows that never cross series,
and the scale-free transforms a forecaster reads (fitted on training data only).

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

import warnings

import numpy as np
import pandas as pd
import tensorflow as tf

__all__ = ["SeriesError", "read_series", "make_windows", "transform_windows", "fit_scaler"]

EPS = 1e-6


class SeriesError(ValueError):
    """Bad time-series input; the message says what was wrong and how to fix it."""


def read_series(
    data,
    target: str,
    time_column: str = "date",
    id_column: str = "ticker",
    features=None,
    missing: str = "error",
) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """Reads one or many series into ``{id: DataFrame indexed by time}``.

    Args:
        data: a long-format DataFrame or CSV path (``.gz`` too) with ``time_column``,
            ``id_column`` (optional: one series without it) and ``target``; or a
            pandas Series with a DatetimeIndex (one series, its values the target).
        features: covariate columns; None takes every other numeric column.
        missing: "error" (default) refuses missing values; "ffill" fills them
            forward within each series (a leading gap is dropped).

    Returns:
        (series by id, covariate names). Rows are sorted by time (unsorted
        input is sorted, with a warning); duplicate times are an error.
    """
    if missing not in ("error", "ffill"):
        raise SeriesError(f"Received `missing={missing!r}`; expected 'error' or 'ffill'.")
    if isinstance(data, pd.Series):
        if not isinstance(data.index, pd.DatetimeIndex):
            raise SeriesError(
                "A pandas Series needs a DatetimeIndex (its dates); got "
                f"{type(data.index).__name__}. Use a DataFrame with a time column instead."
            )
        frame = pd.DataFrame({time_column: data.index, target: data.to_numpy()})
    elif isinstance(data, str):
        try:
            frame = pd.read_csv(data)
        except FileNotFoundError:
            raise SeriesError(f"No such file: {data}.") from None
        except pd.errors.EmptyDataError:
            raise SeriesError(f"{data}: the file is empty.") from None
        except (pd.errors.ParserError, UnicodeDecodeError) as error:
            raise SeriesError(f"{data}: could not be read as CSV ({error}).") from None
    elif isinstance(data, pd.DataFrame):
        frame = data.copy()
        if time_column not in frame.columns and isinstance(frame.index, pd.DatetimeIndex):
            frame = frame.rename_axis(time_column).reset_index()
    else:
        raise SeriesError(
            f"Cannot read series from a {type(data).__name__}; pass a long-format DataFrame, "
            "a CSV path or a pandas Series with a DatetimeIndex."
        )
    if len(frame) == 0:
        raise SeriesError("The data has no rows.")
    for column in (time_column, target):
        if column not in frame.columns:
            raise SeriesError(
                f"The data has no column {column!r}; its columns are "
                f"{list(map(str, frame.columns))}. Pass "
                f"{'time_column' if column == time_column else 'target'}=... to name it."
            )
    if not pd.api.types.is_numeric_dtype(frame[target]):
        raise SeriesError(
            f"The target column {target!r} is not numeric (dtype {frame[target].dtype}); "
            "convert it with pd.to_numeric first."
        )
    try:
        frame[time_column] = pd.to_datetime(frame[time_column])
    except (ValueError, TypeError) as error:
        raise SeriesError(f"The column {time_column!r} does not hold dates ({error}).") from None
    has_ids = id_column in frame.columns
    skip = {time_column, target} | ({id_column} if has_ids else set())
    if features is None:
        features = [
            c for c in frame.columns if c not in skip and pd.api.types.is_numeric_dtype(frame[c])
        ]
    else:
        features = list(features)
        for column in features:
            if column not in frame.columns:
                raise SeriesError(
                    f"The feature column {column!r} is missing; the columns are "
                    f"{list(map(str, frame.columns))}."
                )
            if not pd.api.types.is_numeric_dtype(frame[column]):
                raise SeriesError(f"The feature column {column!r} is not numeric.")
    columns = [target] + features
    groups = frame.groupby(id_column, sort=True) if has_ids else [("series", frame)]
    out: dict[str, pd.DataFrame] = {}
    unsorted = []
    for key, group in groups:
        key = str(key)
        times = group[time_column]
        if not times.is_monotonic_increasing:
            unsorted.append(key)
            group = group.sort_values(time_column, kind="stable")
            times = group[time_column]
        if times.duplicated().any():
            dup = times[times.duplicated()].iloc[0]
            raise SeriesError(
                f"Series {key!r} has the date {dup.date()} more than once; keep one row per date."
            )
        values = group[columns].astype("float64")
        values.index = pd.DatetimeIndex(times.to_numpy(), name=time_column)
        if values.isna().any().any():
            if missing == "error":
                column = values.columns[values.isna().any()][0]
                when = values.index[values[column].isna()][0]
                raise SeriesError(
                    f"Series {key!r} has a missing {column!r} on {when.date()}; fill the gaps "
                    "(e.g. fit(..., missing='ffill')) or drop those rows."
                )
            values = values.ffill().dropna()
        if not np.isfinite(values.to_numpy()).all():
            raise SeriesError(f"Series {key!r} has infinite values; remove them.")
        out[key] = values
    if unsorted:
        warnings.warn(
            f"{len(unsorted)} series (e.g. {unsorted[0]!r}) were not sorted by "
            f"{time_column!r}; sorted them.",
            stacklevel=3,
        )
    return out, features


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
