"""Forecasting: a global, multi-series, multi-horizon quantile forecaster on seqkit layers,
with honest rolling-origin backtests against naive baselines.

raw window (lookback rows of target + covariates) → :class:`ForecastPreprocessor`
(:mod:`tasks.forecasting_preprocessor`): scale-free step changes (log returns or differences; the target divided by its
own volatility within the window, covariates standardised with statistics from
training windows) → a ``seqkit.layers.RecurrentStack`` → ``horizon × quantiles``
outputs, monotone by construction (:mod:`tasks.forecasting_model`) → back to
prices. Backtests, baselines, metrics and plots are in
:mod:`tasks.forecasting_backtest`.

Example:

>>> from tasks.forecasting import ForecastPipeline
>>> fc = ForecastPipeline(lookback=60, horizon=5).fit(prices_df, epochs=5)
>>> fc.predict(prices_df).head()
      id       date  step  forecast     q10     q50     q90
>>> report = fc.backtest(prices_df, start="2017-08-01")
>>> report["metrics"]   # model vs naive, drift and seasonal naive, per horizon
"""

from __future__ import annotations

import os
import re
import warnings

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from seqkit.data import SeriesData, read_csv_file
from seqkit.layers import RecurrentStack
from tasks import forecasting_backtest as B
from tasks.base import Pipeline, PipelineError, cell_arg, int_arg, rate_arg
from tasks.forecasting_model import Forecaster, MonotoneQuantiles, PinballLoss
from tasks.forecasting_preprocessor import ForecastPreprocessor

__all__ = ["ForecastPipeline", "ForecastPreprocessor", "MonotoneQuantiles", "PinballLoss"]

# A recurrent weight today: layers/recurrent_stack/rnns/<class>[_i]/...; 0.1.0: layers/<class>[_i]/...
_STACK_PATH = re.compile(r"layers/recurrent_stack/rnns/(.+)")
quantile_name = B.quantile_name


class ForecastPipeline(Pipeline):
    """A global recurrent forecaster of quantiles over several horizons.

    A :class:`ForecastPreprocessor` (``pipeline.preprocessor``), a
    ``RecurrentStack`` with a quantile head, and the way back to prices.

    Args:
        lookback: rows of history in a window (the network reads lookback - 1
            step changes).
        horizon: forecast steps (business days for daily data).
        target: the column to forecast.
        features: covariate columns known up to the forecast origin (None:
            every other numeric column).
        quantiles: the quantiles to forecast; the one nearest 0.5 is the point
            forecast. Named ``q10``, ``q50``, ``q90`` in outputs.
        cell, units, layers, dropout: the seqkit recurrent encoder.
        target_transform: "log_return" (positive targets such as prices) or "none"
            (differences).
        seed: seeds weights, data order and dropout.
    """

    task = "forecasting"
    _jit_compile = True  # bitwise-repeatable training on CPU (see Pipeline._jit_compile)

    default_learning_rate = 1e-3

    def __init__(
        self,
        lookback: int = 60,
        horizon: int = 5,
        target: str = "close",
        features=None,
        quantiles=(0.1, 0.5, 0.9),
        cell: str = "lstm",
        units: int = 64,
        layers: int = 1,
        dropout: float = 0.1,
        target_transform: str = "log_return",
        seed: int = 0,
    ):
        super().__init__(seed=seed)
        self.preprocessor = ForecastPreprocessor(
            lookback,
            horizon,
            target=target,
            features=features,
            target_transform=target_transform,
            seed=self.seed,
        )
        try:
            qs = [float(q) for q in quantiles]
        except (TypeError, ValueError):
            raise PipelineError(
                f"Received `quantiles={quantiles!r}`; expected numbers in (0, 1)."
            ) from None
        if not qs or any(not 0 < q < 1 for q in qs) or sorted(set(qs)) != qs:
            raise PipelineError(
                f"Received `quantiles={quantiles!r}`; expected distinct increasing numbers in (0, 1)."
            )
        self.quantiles = qs
        self.cell = cell_arg(cell)
        self.units = int_arg("units", units)
        self.layers = int_arg("layers", layers)
        self.dropout = rate_arg("dropout", dropout)
        self._forecaster = None

    def get_config(self) -> dict:
        pre = self.preprocessor.get_config()
        return {
            **{k: pre[k] for k in ("lookback", "horizon", "target", "features")},
            "quantiles": self.quantiles,
            "cell": self.cell,
            "units": self.units,
            "layers": self.layers,
            "dropout": self.dropout,
            "target_transform": pre["target_transform"],
            "seed": self.seed,
        }

    # The window settings and the learned state live in the preprocessor.
    lookback = property(lambda self: self.preprocessor.lookback)
    horizon = property(lambda self: self.preprocessor.horizon)
    target = property(lambda self: self.preprocessor.target)
    features = property(lambda self: self.preprocessor.features)
    target_transform = property(lambda self: self.preprocessor.target_transform)
    columns = property(lambda self: self.preprocessor.columns, doc="Target, then covariates.")
    log_columns = property(lambda self: self.preprocessor.log_columns)
    mean = property(lambda self: self.preprocessor.mean)
    std = property(lambda self: self.preprocessor.std)

    @property
    def point_index(self) -> int:
        """The index of the point forecast among the quantiles (the one nearest 0.5)."""
        return int(np.argmin([abs(q - 0.5) for q in self.quantiles]))

    # ----------------------------------------------------------------- reading
    def _read(self, data, need_labels=True, encoding="utf-8", **read_kwargs) -> SeriesData:
        if isinstance(data, str | os.PathLike) and os.path.isfile(data):  # any text encoding
            data = read_csv_file(os.fspath(data), encoding)
        return self.preprocessor.read(data, **read_kwargs)

    def _long_enough(self, data: SeriesData, what: str) -> SeriesData:
        need = self.lookback + self.horizon
        short = [k for k, v in data.series.items() if len(v) < need]
        if len(short) == len(data.series):
            raise PipelineError(
                f"Every series in {what} is shorter than lookback + horizon = {need} rows "
                f"(e.g. {short[0]!r} has {len(data.series[short[0]])}); give longer series or "
                "a smaller lookback."
            )
        if short:
            warnings.warn(
                f"{len(short)} series shorter than lookback + horizon = {need} rows are left out "
                f"of {what} (e.g. {short[0]!r}).",
                stacklevel=4,
            )
            data = SeriesData(
                {k: v for k, v in data.series.items() if k not in short},
                data.features,
                data.role,
                data.cut,
                data.stride,
            )
        return data

    def _split(self, data, fraction):
        """Chronological: the last ``fraction`` of the dates validates."""
        data = self._long_enough(data, "the training data")
        dates = np.unique(np.concatenate([v.index.values for v in data.series.values()]))
        cut = pd.Timestamp(dates[int(len(dates) * (1 - fraction)) - 1])
        train = SeriesData(data.series, data.features, "train", cut, data.stride)
        val = SeriesData(data.series, data.features, "val", cut, data.stride)
        if not any(len(val.origins(k, self.lookback, self.horizon)) for k in data.series):
            return train, None
        return train, val

    def _fit_preprocessor(self, train) -> None:
        self.preprocessor.fit(self._long_enough(train, "the training data"))
        self._forecaster = None

    def _check_fine_tune_data(self, data, name) -> None:
        if data is not None and list(data.features) != self.columns[1:]:
            raise PipelineError(
                f"The {name} has the covariates {data.features}; this pipeline was trained "
                f"with {self.columns[1:]}."
            )

    # ----------------------------------------------------------------- model
    def _dataset(self, data, batch_size, shuffle_seed):
        x, y = self.preprocessor.arrays(data)
        if shuffle_seed is not None:
            order = np.random.RandomState(shuffle_seed % 2**32).permutation(len(x))
            x, y = x[order], y[order]
        return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)

    def _build_model(self):
        if not self.preprocessor.fitted:
            raise PipelineError("The preprocessor is not fitted; call fit() first.")
        n_quantiles = len(self.quantiles)
        inputs = keras.Input((self.lookback - 1, len(self.columns)))
        x = RecurrentStack(
            self.cell, self.units, self.layers, dropout=self.dropout, return_sequences=False
        )(inputs)  # (batch, units)
        raw = keras.layers.Dense(self.horizon * n_quantiles, name="quantiles")(x)
        raw = keras.layers.Reshape((self.horizon, n_quantiles))(raw)
        out = MonotoneQuantiles(self.quantiles, name="monotone")(raw)  # (batch, horizon, Q)
        return keras.Model(inputs, out)

    def _legacy_weight_path(self, path: str) -> str:
        """``layers/recurrent_stack/rnns/lstm_1/cell/vars/0`` -> 0.1.0's
        ``layers/lstm_1/cell/vars/0``; the head's paths did not change."""
        match = _STACK_PATH.fullmatch(path)
        return f"layers/{match.group(1)}" if match else path

    def _loss(self):
        return PinballLoss(self.quantiles)

    def fit(self, data, validation_data=None, *, epochs=20, batch_size=256, **kwargs):
        """Fits the scalers on the training windows and trains from scratch.

        Args:
            data: long-format DataFrame or CSV path (``time_column``, ``id_column``,
                the target and covariates), or a pandas Series with a DatetimeIndex.
            validation_data: held-out data; by default the last ``validation_split``
                (10 %) of the dates validates (windows whose origin is after the cut;
                training windows end on or before it).
            Other arguments as :meth:`tasks.base.Pipeline.fit`; reading options
            ``time_column``, ``id_column``, ``missing`` ("error" or "ffill"),
            ``window_stride`` (use every k-th origin) and ``columns`` (renames the
            data's columns first, ``{"Close": "close"}``; names that differ only
            in case match without it, with a warning); ``encoding`` for a CSV
            that is not UTF-8.
        """
        self.preprocessor = ForecastPreprocessor(**self.preprocessor.get_config())
        self._forecaster = None
        return super().fit(data, validation_data, epochs=epochs, batch_size=batch_size, **kwargs)

    # ----------------------------------------------------------------- forecasting
    def _forecaster_module(self) -> Forecaster:
        """The in-process graph, rebuilt when the model or the fitted scaler changes."""
        key = (self.model, self.preprocessor.mean)
        if self._forecaster is None or any(a is not b for a, b in zip(self._forecaster, key)):
            module = Forecaster(self.preprocessor, self.model, self.point_index)
            self._forecaster = (*key, module)
        return self._forecaster[-1]

    def _forecast_windows(self, windows: np.ndarray) -> np.ndarray:
        """Raw windows (n, lookback, columns) -> price quantiles (n, horizon, Q)."""
        fn = self._forecaster_module().serve
        out = [
            fn(tf.constant(windows[s : s + 4096], tf.float32))["quantiles"].numpy()
            for s in range(0, len(windows), 4096)
        ]
        return np.concatenate(out) if out else np.zeros((0, self.horizon, len(self.quantiles)))

    def predict(
        self,
        history,
        time_column="date",
        id_column="ticker",
        missing="error",
        columns=None,
        encoding="utf-8",
    ):
        """Forecasts ``horizon`` steps after the last row of every series in ``history``.

        Args:
            history: long-format DataFrame or CSV path (at least ``lookback`` rows
                per series), or a pandas Series with a DatetimeIndex (the target).
                Given only the target, a model with covariates derives them, with
                a warning (:meth:`ForecastPreprocessor.derived_covariates`).
            time_column, id_column: the date and series-id columns.
            missing: "error" or "ffill" (fill gaps forward).
            columns: renames the data's columns first, e.g. ``{"Adj Close": "close"}``;
                names that differ only in case (``Close``) match without it, with
                a warning.
            encoding: the text encoding of a CSV file (e.g. "latin-1").

        Returns:
            A DataFrame with columns ``id``, ``date`` (the next business days),
            ``step`` (1..horizon), ``forecast`` (the point forecast: the quantile
            nearest 0.5) and one column per quantile (``q10``, ``q50``, ``q90``).
        """
        self._require_fitted("predict")
        data = self._read(
            history,
            time_column=time_column,
            id_column=id_column,
            missing=missing,
            columns=columns,
            derive_covariates=True,
            encoding=encoding,
        )
        windows, keys, last_dates = self.preprocessor.history_windows(data)
        q = self._forecast_windows(windows)
        rows = []
        for key, last, quantiles in zip(keys, last_dates, q):
            dates = pd.bdate_range(last + pd.offsets.BDay(1), periods=self.horizon)
            for h in range(self.horizon):
                row = {"id": key, "date": dates[h], "step": h + 1}
                row["forecast"] = float(quantiles[h, self.point_index])
                for j, tau in enumerate(self.quantiles):
                    row[quantile_name(tau)] = float(quantiles[h, j])
                rows.append(row)
        return pd.DataFrame(rows)

    def backtest(
        self,
        data,
        start=None,
        stride: int = 1,
        horizon: int | None = None,
        time_column="date",
        id_column="ticker",
        missing="error",
        significance: float = 0.05,
        columns=None,
        encoding="utf-8",
    ) -> dict:
        """Rolling-origin backtest of the model and the naive, drift and seasonal-naive
        baselines on the same origins.

        Every origin on or after ``start`` (a date; default: the last 20 % of the
        dates) whose next ``horizon`` rows exist, every ``stride`` rows, in every
        series. The model reads only the ``lookback`` rows up to the origin. The
        baselines: naive (last value), drift (last value plus the average change
        since the series began) and seasonal naive (the value one week, 5 rows,
        earlier). Their intervals come from the quantiles of their own errors
        before ``start``. MASE divides by the in-sample MAE of the one-step naive
        forecast before ``start``, per series.

        Returns:
            ``{"forecasts": DataFrame, "metrics": DataFrame, "verdict": dict,
            "summary": str}``. ``metrics`` has one row per method and horizon (and
            "all"): mae, rmse, smape, mase, directional_accuracy, coverage (of the
            outermost quantile pair), pinball. The verdict says whether the model
            beats naive on MASE, with a Diebold-Mariano test per horizon; it is
            printed in ``summary`` whichever way it falls.
        """
        self._require_fitted("backtest")
        H = self.horizon if horizon is None else int_arg("horizon", horizon)
        if H > self.horizon:
            raise PipelineError(
                f"Received `horizon={H}`; this model forecasts at most {self.horizon} steps."
            )
        stride = int_arg("stride", stride)
        data = self._read(
            data,
            time_column=time_column,
            id_column=id_column,
            missing=missing,
            columns=columns,
            derive_covariates=True,
            encoding=encoding,
        )
        return B.backtest(self, data, start, stride, H, significance)

    def evaluate(self, data, **kwargs) -> dict:
        """The backtest's metrics for the model on ``data`` (see :meth:`backtest`)."""
        return B.summary(self.backtest(data, **kwargs))

    def plot(
        self,
        history,
        path: str,
        id=None,
        time_column="date",
        id_column="ticker",
        last=120,
        columns=None,
        encoding="utf-8",
    ):
        """Draws the last ``last`` rows of one series, the forecast and its interval."""
        data = self._read(
            history,
            time_column=time_column,
            id_column=id_column,
            columns=columns,
            derive_covariates=True,
            encoding=encoding,
        )
        return B.plot(self, data, path, id, id_column, time_column, last)

    # ----------------------------------------------------------------- export
    def _serving(self, **kwargs):
        """The SavedModel's module and signature:
        ``serving_default(window: float32[None, lookback, n_columns])`` returning
        ``{"quantiles": (batch, horizon, Q), "forecast": (batch, horizon)}`` in the
        target's own units (prices): the transforms and scalers are in the graph.
        Columns are ``self.columns`` (target first)."""
        if kwargs:
            raise PipelineError(
                f"Unknown argument(s) {sorted(kwargs)} for exporting a forecasting pipeline; "
                "it takes none."
            )
        module = Forecaster(self.preprocessor, self._bare_model(), self.point_index)
        return module, {"serving_default": module.serve}
