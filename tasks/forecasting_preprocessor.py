"""The forecasting preprocessor: series -> windows -> scale-free step changes.

``ForecastPreprocessor`` reads long-format series (``seqkit.data.read_series``),
cuts them into windows that never cross series (``seqkit.series.make_windows``)
and turns raw windows into what the network reads
(``seqkit.series.transform_windows``), with the covariates' scaler learned from
training windows only (``seqkit.series.fit_scaler``).
"""

from __future__ import annotations

import warnings
import weakref

import numpy as np
import tensorflow as tf

from seqkit.data import SeriesData, SeriesError, read_series
from seqkit.series import fit_scaler, make_windows, transform_windows
from tasks.base import PipelineError, Preprocessor, choice, int_arg

__all__ = ["ForecastPreprocessor", "TRANSFORMS"]

TRANSFORMS = ("log_return", "none")
SCALER_SAMPLE = 20000  # training windows the scaler is fitted on, at most
_CONFIG = ("lookback", "horizon", "target", "features", "target_transform", "seed")


class _Warnings(warnings.catch_warnings):
    """Holds the warnings of a block; ``emit()`` re-raises them (a read that is retried
    warns once, from its successful attempt)."""

    def __init__(self):
        super().__init__(record=True)

    def __enter__(self):
        self.caught = super().__enter__()
        warnings.simplefilter("always")
        return self

    def emit(self) -> None:
        for w in self.caught:
            warnings.warn(w.message, w.category, stacklevel=5)


class ForecastPreprocessor(Preprocessor):
    """Series -> windows -> the scale-free step changes the network reads.

    Holds the columns (target first, then covariates), which of them become log
    returns (``log_columns``) and the covariates' scaler (``mean``, ``std`` of
    their step changes), all learned by :meth:`fit` from training windows only.

    Args:
        lookback: rows of history in a window (the network reads lookback - 1
            step changes).
        horizon: forecast steps.
        target: the column to forecast.
        features: covariate columns (None: every other numeric column).
        target_transform: "log_return" (positive targets) or "none" (differences).
        seed: seeds the sample of at most 20,000 training windows the scaler is
            fitted on.

    Call arguments:
        inputs: raw windows ``(n, lookback, columns)`` in ``columns`` order; or
            a history (what :meth:`read` reads, or a ``SeriesData``): the last
            ``lookback`` rows of every series that long.

    Returns:
        float32 network inputs ``(n, lookback - 1, columns)``.

    Example:

    >>> pre = ForecastPreprocessor(lookback=20, horizon=3)
    >>> pre.fit(pre.read(prices)).columns
    ['close', 'volume']
    >>> pre(prices).shape  # one window per series
    (3, 19, 2)
    """

    def __init__(
        self,
        lookback: int,
        horizon: int,
        *,
        target: str = "close",
        features=None,
        target_transform: str = "log_return",
        seed: int = 0,
    ):
        self.lookback = int_arg("lookback", lookback, minimum=3)
        self.horizon = int_arg("horizon", horizon)
        if not isinstance(target, str) or not target:
            raise PipelineError(f"Received `target={target!r}`; expected a column name.")
        self.target = target
        if features is not None and (
            isinstance(features, str) or not all(isinstance(f, str) for f in features)
        ):
            raise PipelineError(
                f"Received `features={features!r}`; expected a list of column names or None."
            )
        self.features = None if features is None else list(features)
        self.target_transform = choice("target_transform", target_transform, TRANSFORMS)
        self.seed = int_arg("seed", seed, minimum=0)
        self.columns: list[str] | None = None
        self.log_columns: list[bool] | None = None
        self.mean = self.std = None
        self._arrays = weakref.WeakKeyDictionary()  # SeriesData -> (x, y) training arrays

    def get_config(self) -> dict:
        return {name: getattr(self, name) for name in _CONFIG}

    @property
    def fitted(self) -> bool:
        return self.columns is not None

    def _require_fitted(self) -> None:
        if not self.fitted:
            raise PipelineError("The preprocessor is not fitted; call fit() first.")

    # ----------------------------------------------------------------- reading
    def read(
        self,
        data,
        time_column="date",
        id_column="ticker",
        missing="error",
        window_stride=1,
        columns=None,
        derive_covariates=False,
    ) -> SeriesData:
        """Reads series (see :func:`seqkit.data.read_series`) into a ``SeriesData``.

        A fitted preprocessor reads its own covariates; a target <= 0 is refused
        under ``target_transform="log_return"``. ``window_stride``: rows between
        window origins. ``columns``: renames the data's columns first
        (``{"Close": "close"}``); names are also matched ignoring case.
        ``derive_covariates``: a fitted preprocessor given only the target (a
        pandas Series, or a table with no other numeric column) derives its
        covariates, with a warning (see :meth:`derived_covariates`).
        """
        features = self.features if self.columns is None else self.columns[1:]
        options = dict(time_column=time_column, id_column=id_column, missing=missing)
        try:
            with _Warnings() as caught:
                series, features = read_series(
                    data, self.target, features=features, columns=columns, **options
                )
            caught.emit()
        except SeriesError as error:
            series = None
            if derive_covariates and self.fitted and features:
                series = self._target_only(data, columns, options)
            if series is None:
                raise PipelineError(str(error)) from None
        if self.target_transform == "log_return":
            bad = [k for k, v in series.items() if (v.iloc[:, 0] <= 0).any()]
            if bad:
                raise PipelineError(
                    f"Series {bad[0]!r} has a target <= 0; target_transform='log_return' needs "
                    "positive values (use target_transform='none')."
                )
        return SeriesData(series, features, stride=int_arg("window_stride", window_stride))

    def _target_only(self, data, columns, options):
        """The series with derived covariates when ``data`` holds only the target, else None."""
        try:
            with _Warnings() as caught:
                series, found = read_series(data, self.target, columns=columns, **options)
        except SeriesError:
            return None
        if found:  # other numeric columns: a partial table is a mistake, not a close-only series
            return None
        caught.emit()
        copied = [c for c, log in zip(self.columns[1:], self.log_columns[1:]) if log]
        held = [c for c, log in zip(self.columns[1:], self.log_columns[1:]) if not log]
        what = " and ".join(
            part
            for part in (
                f"{copied} copy {self.target!r}" if copied else "",
                f"{held} move by their average training step" if held else "",
            )
            if part
        )
        warnings.warn(
            f"The data holds only {self.target!r}; this model also reads the covariates "
            f"{self.columns[1:]}. Derived them: {what}; expect intervals narrower than from "
            "the full data. Pass the covariates, or train a "
            f"{self.target!r}-only model with ForecastPipeline(features=[]).",
            stacklevel=4,
        )
        return {k: self.derived_covariates(v) for k, v in series.items()}

    def derived_covariates(self, values):
        """A target-only series (a one-column DataFrame) -> the columns this model reads.

        Covariates read as log returns (positive, price-like: open, high, low)
        take the target's values, so their step changes are the target's; the
        others (e.g. volume) move by their mean step on training windows, so the
        network reads 0 for them after standardising (mean imputation).
        """
        self._require_fitted()
        out = values.iloc[:, :1].copy()
        steps = np.arange(len(out), dtype=np.float64)
        for j, name in enumerate(self.columns[1:], start=1):
            if self.log_columns[j]:
                out[name] = out.iloc[:, 0]
            else:
                out[name] = float(self.mean[j]) * steps
        return out

    def windows(self, data: SeriesData):
        """All windows of a split: (windows, future, keys, origin indices)."""
        out_w, out_f, keys, origins = [], [], [], []
        for key, values in data.series.items():
            t = data.origins(key, self.lookback, self.horizon)
            if len(t) == 0:
                continue
            w, f = make_windows(values.to_numpy(), self.lookback, self.horizon, t)
            out_w.append(w)
            out_f.append(f)
            keys.extend([key] * len(t))
            origins.append(t)
        if not out_w:
            raise PipelineError("No complete window (lookback + horizon rows) in the data.")
        return np.concatenate(out_w), np.concatenate(out_f), keys, np.concatenate(origins)

    def history_windows(self, data: SeriesData):
        """The last ``lookback`` rows of each series: (windows, keys, last dates).

        Series shorter than ``lookback`` are left out with a warning (an error
        when every series is).
        """
        short = [k for k, v in data.series.items() if len(v) < self.lookback]
        if len(short) == len(data.series):
            raise PipelineError(
                f"Series {short[0]!r} has {len(data.series[short[0]])} rows; predict needs at "
                f"least lookback = {self.lookback}."
            )
        if short:
            warnings.warn(
                f"{len(short)} series with fewer than lookback = {self.lookback} rows get no "
                f"forecast (e.g. {short[0]!r}).",
                stacklevel=3,
            )
        windows, keys, last_dates = [], [], []
        for key, values in data.series.items():
            if len(values) < self.lookback:
                continue
            windows.append(values.to_numpy()[-self.lookback :])
            keys.append(key)
            last_dates.append(values.index[-1])
        return np.stack(windows), keys, last_dates

    # ----------------------------------------------------------------- fitting
    def fit(self, data: SeriesData):
        """Learns the columns, log columns and scaler from the training windows of ``data``.

        Returns:
            self.
        """
        self.columns = [self.target] + list(data.features)
        windows, _, _, _ = self.windows(data)
        rng = np.random.RandomState(self.seed)
        sample = windows[rng.permutation(len(windows))[:SCALER_SAMPLE]]
        positive = [bool((sample[:, :, j] > 0).all()) for j in range(sample.shape[-1])]
        positive[0] = self.target_transform == "log_return"
        self.log_columns = positive
        self.mean, self.std = fit_scaler(sample, self.log_columns)
        self._arrays = weakref.WeakKeyDictionary()
        return self

    # ----------------------------------------------------------------- transforming
    def transform(self, windows):
        """Raw windows -> ``(inputs, scale, last)`` tensors (see ``seqkit.series.transform_windows``)."""
        self._require_fitted()
        return transform_windows(windows, self.log_columns, self.mean, self.std)

    def __call__(self, inputs) -> np.ndarray:
        self._require_fitted()
        if isinstance(inputs, np.ndarray | tf.Tensor | list):
            windows = np.asarray(inputs, np.float32)
            expected = (self.lookback, len(self.columns))
            if windows.ndim != 3 or windows.shape[1:] != expected:
                raise PipelineError(
                    f"Received windows of shape {windows.shape}; expected (n, {expected[0]}, "
                    f"{expected[1]}): lookback rows of the columns {self.columns}."
                )
        else:
            data = inputs if isinstance(inputs, SeriesData) else self.read(inputs)
            windows = self.history_windows(data)[0]
        return self.transform(windows)[0].numpy()

    def targets(self, future, scale, last) -> np.ndarray:
        """Raw future targets (n, horizon) -> what the network learns: scaled step changes."""
        if self.target_transform == "log_return":
            return np.log(np.maximum(future, 1e-12) / last[:, None]) / scale[:, None]
        return (future - last[:, None]) / scale[:, None]

    def arrays(self, data: SeriesData):
        """The training arrays of a split: ``(x (n, lookback - 1, columns), y (n, horizon))``."""
        if data not in self._arrays:
            windows, future, _, _ = self.windows(data)
            inputs, scales, lasts = [], [], []
            for start in range(0, len(windows), 8192):
                x, s, last = self.transform(windows[start : start + 8192])
                inputs.append(x.numpy())
                scales.append(s.numpy())
                lasts.append(last.numpy())
            x, s, last = np.concatenate(inputs), np.concatenate(scales), np.concatenate(lasts)
            y = self.targets(future, s, last).astype(np.float32)
            self._arrays[data] = (x, y)
        return self._arrays[data]

    # ----------------------------------------------------------------- state
    def get_assets(self) -> dict:
        return {
            "columns": self.columns,
            "log_columns": self.log_columns,
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
        }

    def set_assets(self, assets: dict) -> None:
        try:
            self.columns = [str(c) for c in assets["columns"]]
            self.log_columns = [bool(b) for b in assets["log_columns"]]
            self.mean = np.asarray(assets["mean"], np.float32)
            self.std = np.asarray(assets["std"], np.float32)
        except (KeyError, TypeError, ValueError) as error:
            self.columns = None
            raise PipelineError(f"The saved assets are damaged ({error}).") from None
        if not len(self.columns) == len(self.log_columns) == len(self.mean) == len(self.std):
            self.columns = None
            raise PipelineError("The saved assets are damaged (column lists differ in length).")
        self._arrays = weakref.WeakKeyDictionary()
