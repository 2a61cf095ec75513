"""Time series for forecasting: long-format tables read into series by id, and splits of them.

Windows, transforms and scalers are in :mod:`seqkit.series`.
"""

from __future__ import annotations

import difflib
import hashlib
import warnings
from typing import TYPE_CHECKING

import numpy as np

from seqkit.errors import SeriesError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SeriesData", "read_series"]


def read_series(
    data,
    target: str,
    time_column: str = "date",
    id_column: str = "ticker",
    features=None,
    missing: str = "error",
    columns: dict | None = None,
) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """Reads one or many series into ``{id: DataFrame indexed by time}``.

    Args:
        data: a long-format DataFrame or CSV path (``.gz`` too) with ``time_column``,
            ``id_column`` (optional: one series without it) and ``target``; or a
            pandas Series with a DatetimeIndex (one series, its values the target).
        features: covariate columns; None takes every other numeric column.
        missing: "error" (default) refuses missing values; "ffill" fills them
            forward within each series (a leading gap is dropped).
        columns: renames the table's columns first, ``{"Close": "close", ...}``
            (tables only). A named column (time, id, target, features) that is
            still absent is then matched ignoring case (``Date`` for ``date``),
            with a warning saying which.

    Returns:
        (series by id, covariate names). Rows are sorted by time (unsorted
        input is sorted, with a warning); duplicate times are an error.
        Bad input raises :class:`~seqkit.errors.SeriesError`.

    Example:

    >>> frame = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=3), "close": [1.0, 2, 3]})
    >>> series, features = read_series(frame, target="close")
    >>> list(series), features, series["series"].shape
    (['series'], [], (3, 1))
    """
    import pandas as pd

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
    if not isinstance(data, pd.Series):
        frame = _map_columns(frame, columns, [time_column, id_column, target, *(features or [])])
    for column in (time_column, target):
        if column not in frame.columns:
            names = list(map(str, frame.columns))
            guess = difflib.get_close_matches(column, names, n=1, cutoff=0.5)
            fix = f"columns={{{(guess or ['<your column>'])[0]!r}: {column!r}}}"
            if column == time_column:
                fix = f"time_column=... to name it, or {fix} to map yours"
            else:
                fix = f"{fix} to map yours to it"
            raise SeriesError(
                f"The data has no column {column!r}; its columns are {names}. Pass {fix}."
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
                names = list(map(str, frame.columns))
                guess = difflib.get_close_matches(column, names, n=1, cutoff=0.5)
                raise SeriesError(
                    f"The feature column {column!r} is missing; the columns are {names}. Pass "
                    f"columns={{{(guess or ['<your column>'])[0]!r}: {column!r}}} to map yours "
                    "to it."
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


def _map_columns(frame, columns, wanted) -> pd.DataFrame:
    """Applies ``columns`` (a rename), then matches the ``wanted`` names still
    absent ignoring case, warning once which columns were matched that way."""
    names = list(map(str, frame.columns))
    if columns is not None:
        if not isinstance(columns, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in columns.items()
        ):
            raise SeriesError(
                f"Received `columns={columns!r}`; expected a dict from the data's column names "
                'to the names the pipeline uses, e.g. {"Close": "close"}.'
            )
        unknown = [k for k in columns if k not in frame.columns]
        if unknown:
            raise SeriesError(
                f"Received `columns={columns!r}`; the data has no column {unknown[0]!r} (its "
                f"columns are {names})."
            )
        frame = frame.rename(columns=columns)
        names = list(map(str, frame.columns))
        twice = sorted({c for c in names if names.count(c) > 1})
        if twice:
            raise SeriesError(
                f"Received `columns={columns!r}`; it leaves two columns named {twice[0]!r}."
            )
    matched = {}
    for name in dict.fromkeys(wanted):
        if name in frame.columns:
            continue
        found = [c for c in names if c.casefold() == name.casefold() and c not in matched]
        if len(found) > 1:
            raise SeriesError(
                f"The columns {found} all match {name!r} ignoring case; pass "
                f"columns={{{found[0]!r}: {name!r}}} to say which."
            )
        if found:
            matched[found[0]] = name
    if matched:
        warnings.warn(
            f"Matched columns ignoring case: {matched}; pass this dict as columns= to "
            "silence this.",
            stacklevel=4,
        )
        frame = frame.rename(columns=matched)
    return frame


class SeriesData:
    """Series by id, and which windows of them a split uses.

    ``role`` "train": windows whose whole horizon ends on or before ``cut``;
    "val": windows whose origin is after ``cut``; "all": every window.

    Args:
        series: ``{id: DataFrame indexed by time}`` as :func:`read_series` returns
            (target first, then covariates).
        features: the covariate names.
        role: "all", "train" or "val".
        cut: the last date of training (a ``pd.Timestamp``) for "train" / "val".
        stride: rows between consecutive window origins.

    Example:

    >>> series, features = read_series(frame, target="close")  # doctest: +SKIP
    >>> SeriesData(series, features).origins("series", lookback=20, horizon=5)  # doctest: +SKIP
    array([19, 20, ...])
    """

    def __init__(self, series: dict, features: list, role="all", cut=None, stride=1):
        self.series, self.features, self.role, self.cut, self.stride = (
            series,
            features,
            role,
            cut,
            stride,
        )

    def __len__(self) -> int:
        return sum(len(v) for v in self.series.values())

    def fingerprint(self) -> str:
        """sha256 hex of every series' values (by sorted id) and the split.

        The same value as seqkit 0.1.0's forecasting checkpoints used.
        """
        h = hashlib.sha256()
        for key in sorted(self.series):
            h.update(key.encode())
            h.update(np.ascontiguousarray(self.series[key].to_numpy()).tobytes())
        h.update(f"{self.role}{self.cut}{self.stride}".encode())
        return h.hexdigest()

    def origins(self, key, lookback, horizon) -> np.ndarray:
        values = self.series[key]
        n = len(values)
        t = np.arange(lookback - 1, n - horizon, self.stride)
        if self.role == "train":
            last = values.index[np.minimum(t + horizon, n - 1)]
            t = t[last <= self.cut]
        elif self.role == "val":
            t = t[values.index[t] > self.cut]
        return t
