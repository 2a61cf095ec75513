"""Forecasting: a global, multi-series, multi-horizon quantile forecaster on seqkit layers,
with honest rolling-origin backtests against naive baselines.

raw window (lookback rows of target + covariates) → scale-free step changes
(log returns or differences; the target divided by its own volatility within
the window, covariates standardised with statistics from training windows)
→ seqkit recurrent encoder → ``horizon × quantiles`` outputs, monotone by
construction → back to prices.

Example:

>>> from tasks.forecasting import ForecastPipeline
>>> fc = ForecastPipeline(lookback=60, horizon=5).fit(prices_df, epochs=5)
>>> fc.predict(prices_df).head()
      id       date  step  forecast     q10     q50     q90
>>> report = fc.backtest(prices_df, start="2017-08-01")
>>> report["metrics"]   # model vs naive, drift and seasonal naive, per horizon
"""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from keras import ops

import seqkit.layers as sk
from seqkit import metrics as M
from seqkit.data import SeriesData
from seqkit.series import SeriesError, fit_scaler, make_windows, read_series, transform_windows
from tasks.base import Pipeline, PipelineError, atomic_file, atomic_folder, register
from tasks.base import choice as _choice
from tasks.base import int_arg as _int_arg
from tasks.base import rate_arg as _rate_arg

__all__ = ["ForecastPipeline", "MonotoneQuantiles", "PinballLoss"]

_CELLS = {"lstm": sk.LSTM, "gru": sk.GRU, "rnn": sk.SimpleRNN}
_TRANSFORMS = ("log_return", "none")
SEASON = 5  # business days in a week: the seasonal-naive period


def quantile_name(q: float) -> str:
    return f"q{int(round(100 * q))}"


# --------------------------------------------------------------------------- model pieces
@keras.saving.register_keras_serializable(package="seqkit")
class MonotoneQuantiles(keras.layers.Layer):
    """Raw outputs (batch, horizon, Q) -> quantiles that never cross.

    The quantile nearest 0.5 is taken as is; each quantile above it adds a
    softplus (positive) step to the one below, each below subtracts one.
    """

    def __init__(self, quantiles, **kwargs):
        super().__init__(**kwargs)
        self.quantiles = [float(q) for q in quantiles]
        self.middle = int(np.argmin([abs(q - 0.5) for q in self.quantiles]))

    def call(self, raw):
        m = self.middle
        columns = [None] * len(self.quantiles)
        columns[m] = raw[..., m]
        for j in range(m + 1, len(self.quantiles)):
            columns[j] = columns[j - 1] + ops.softplus(raw[..., j]) + 1e-4
        for j in range(m - 1, -1, -1):
            columns[j] = columns[j + 1] - ops.softplus(raw[..., j]) - 1e-4
        return ops.stack(columns, axis=-1)

    def get_config(self):
        return {**super().get_config(), "quantiles": self.quantiles}


@keras.saving.register_keras_serializable(package="seqkit")
class PinballLoss(keras.losses.Loss):
    """Mean pinball (quantile) loss: y_true (batch, horizon), y_pred (batch, horizon, Q)."""

    def __init__(self, quantiles=(0.1, 0.5, 0.9), name="pinball", **kwargs):
        super().__init__(name=name, **kwargs)
        self.quantiles = [float(q) for q in quantiles]

    def call(self, y_true, y_pred):
        tau = ops.convert_to_tensor(self.quantiles, dtype=y_pred.dtype)
        diff = ops.expand_dims(ops.cast(y_true, y_pred.dtype), -1) - y_pred
        return ops.mean(ops.maximum(tau * diff, (tau - 1.0) * diff), axis=(-1, -2))

    def get_config(self):
        return {"quantiles": self.quantiles, "name": self.name}


@register("forecasting")
class ForecastPipeline(Pipeline):
    """A global recurrent forecaster of quantiles over several horizons.

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
        self.lookback = _int_arg("lookback", lookback, minimum=3)
        self.horizon = _int_arg("horizon", horizon)
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
        self.cell = _choice("cell", cell, tuple(_CELLS))
        self.units = _int_arg("units", units)
        self.layers = _int_arg("layers", layers)
        self.dropout = _rate_arg("dropout", dropout)
        self.target_transform = _choice("target_transform", target_transform, _TRANSFORMS)
        self.columns: list[str] | None = None
        self.log_columns: list[bool] | None = None
        self.mean = self.std = None

    def get_config(self) -> dict:
        return {
            "lookback": self.lookback,
            "horizon": self.horizon,
            "target": self.target,
            "features": self.features,
            "quantiles": self.quantiles,
            "cell": self.cell,
            "units": self.units,
            "layers": self.layers,
            "dropout": self.dropout,
            "target_transform": self.target_transform,
            "seed": self.seed,
        }

    @property
    def point_index(self) -> int:
        return int(np.argmin([abs(q - 0.5) for q in self.quantiles]))

    # ----------------------------------------------------------------- reading
    def _read(
        self,
        data,
        need_labels=True,
        time_column="date",
        id_column="ticker",
        missing="error",
        window_stride=1,
        require_two_classes=None,
    ):
        features = self.features if self.columns is None else self.columns[1:]
        try:
            series, features = read_series(
                data, self.target, time_column, id_column, features=features, missing=missing
            )
        except SeriesError as error:
            raise PipelineError(str(error)) from None
        if self.target_transform == "log_return":
            bad = [k for k, v in series.items() if (v.iloc[:, 0] <= 0).any()]
            if bad:
                raise PipelineError(
                    f"Series {bad[0]!r} has a target <= 0; target_transform='log_return' needs "
                    "positive values (use target_transform='none')."
                )
        return SeriesData(series, features, stride=_int_arg("window_stride", window_stride))

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
            import warnings

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

    def _windows(self, data: SeriesData):
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

    def _fit_preprocessor(self, train) -> None:
        train = self._long_enough(train, "the training data")
        self.columns = [self.target] + list(train.features)
        windows, _, _, _ = self._windows(train)
        rng = np.random.RandomState(self.seed)
        sample = windows[rng.permutation(len(windows))[:20000]]
        positive = [bool((sample[:, :, j] > 0).all()) for j in range(sample.shape[-1])]
        positive[0] = self.target_transform == "log_return"
        self.log_columns = positive
        self.mean, self.std = fit_scaler(sample, self.log_columns)
        self._forecaster = None

    def _check_fine_tune_data(self, data, name) -> None:
        if data is not None and list(data.features) != self.columns[1:]:
            raise PipelineError(
                f"The {name} has the covariates {data.features}; this pipeline was trained "
                f"with {self.columns[1:]}."
            )

    def _targets(self, future, scale, last):
        if self.target_transform == "log_return":
            return np.log(np.maximum(future, 1e-12) / last[:, None]) / scale[:, None]
        return (future - last[:, None]) / scale[:, None]

    def _arrays(self, data):
        if data._arrays is None:
            windows, future, _, _ = self._windows(data)
            inputs, scales, lasts = [], [], []
            for start in range(0, len(windows), 8192):
                x, s, last = transform_windows(
                    windows[start : start + 8192], self.log_columns, self.mean, self.std
                )
                inputs.append(x.numpy())
                scales.append(s.numpy())
                lasts.append(last.numpy())
            x, s, last = np.concatenate(inputs), np.concatenate(scales), np.concatenate(lasts)
            y = self._targets(future, s, last).astype(np.float32)
            data._arrays = (x, y)
        return data._arrays

    def _dataset(self, data, batch_size, shuffle_seed):
        x, y = self._arrays(data)
        if shuffle_seed is not None:
            order = np.random.RandomState(shuffle_seed % 2**32).permutation(len(x))
            x, y = x[order], y[order]
        return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)

    def _build_model(self):
        if self.columns is None:
            raise PipelineError("The preprocessor is not fitted; call fit() first.")
        layer = _CELLS[self.cell]
        inputs = keras.Input((self.lookback - 1, len(self.columns)))
        x = inputs
        for i in range(self.layers):
            last = i == self.layers - 1
            x = layer(self.units, return_sequences=not last, name=f"{self.cell}_{i}")(x)
            x = keras.layers.Dropout(self.dropout)(x)
        raw = keras.layers.Dense(self.horizon * len(self.quantiles), name="quantiles")(x)
        raw = keras.layers.Reshape((self.horizon, len(self.quantiles)))(raw)
        out = MonotoneQuantiles(self.quantiles, name="monotone")(raw)
        return keras.Model(inputs, out)

    def _loss(self):
        return PinballLoss(self.quantiles)

    def _get_assets(self) -> dict:
        return {
            "columns": self.columns,
            "log_columns": self.log_columns,
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
        }

    def _set_assets(self, assets: dict) -> None:
        try:
            self.columns = [str(c) for c in assets["columns"]]
            self.log_columns = [bool(b) for b in assets["log_columns"]]
            self.mean = np.asarray(assets["mean"], np.float32)
            self.std = np.asarray(assets["std"], np.float32)
        except (KeyError, TypeError, ValueError) as error:
            raise PipelineError(f"The saved assets are damaged ({error}).") from None
        if not len(self.columns) == len(self.log_columns) == len(self.mean) == len(self.std):
            raise PipelineError("The saved assets are damaged (column lists differ in length).")
        self._forecaster = None

    def fit(self, data, validation_data=None, *, epochs=20, batch_size=256, **kwargs):
        """Fits the scalers on the training windows and trains from scratch.

        Args:
            data: long-format DataFrame or CSV path (``time_column``, ``id_column``,
                the target and covariates), or a pandas Series with a DatetimeIndex.
            validation_data: held-out data; by default the last ``validation_split``
                (10 %) of the dates validates (windows whose origin is after the cut;
                training windows end on or before it).
            Other arguments as :meth:`tasks.base.Pipeline.fit`; reading options
            ``time_column``, ``id_column``, ``missing`` ("error" or "ffill") and
            ``window_stride`` (use every k-th origin).
        """
        self.columns = None
        self._forecaster = None
        return super().fit(data, validation_data, epochs=epochs, batch_size=batch_size, **kwargs)

    # ----------------------------------------------------------------- forecasting
    def _forecaster_module(self):
        if getattr(self, "_forecaster", None) is None or self._forecaster.model is not self.model:
            self._forecaster = _Forecaster(self, self.model)
        return self._forecaster

    def _forecast_windows(self, windows: np.ndarray) -> np.ndarray:
        """Raw windows (n, lookback, columns) -> price quantiles (n, horizon, Q)."""
        fn = self._forecaster_module().serve
        out = [
            fn(tf.constant(windows[s : s + 4096], tf.float32))["quantiles"].numpy()
            for s in range(0, len(windows), 4096)
        ]
        return np.concatenate(out) if out else np.zeros((0, self.horizon, len(self.quantiles)))

    def predict(self, history, time_column="date", id_column="ticker", missing="error"):
        """Forecasts ``horizon`` steps after the last row of every series in ``history``.

        Returns:
            A DataFrame with columns ``id``, ``date`` (the next business days),
            ``step`` (1..horizon), ``forecast`` (the point forecast: the quantile
            nearest 0.5) and one column per quantile (``q10``, ``q50``, ``q90``).
        """
        self._require_fitted("predict")
        data = self._read(history, time_column=time_column, id_column=id_column, missing=missing)
        windows, keys, last_dates = [], [], []
        short = [k for k, v in data.series.items() if len(v) < self.lookback]
        if len(short) == len(data.series):
            raise PipelineError(
                f"Series {short[0]!r} has {len(data.series[short[0]])} rows; predict needs at "
                f"least lookback = {self.lookback}."
            )
        if short:
            import warnings

            warnings.warn(
                f"{len(short)} series with fewer than lookback = {self.lookback} rows get no "
                f"forecast (e.g. {short[0]!r}).",
                stacklevel=2,
            )
        for key, values in data.series.items():
            if len(values) < self.lookback:
                continue
            windows.append(values.to_numpy()[-self.lookback :])
            keys.append(key)
            last_dates.append(values.index[-1])
        q = self._forecast_windows(np.stack(windows))
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
        H = self.horizon if horizon is None else _int_arg("horizon", horizon)
        if H > self.horizon:
            raise PipelineError(
                f"Received `horizon={H}`; this model forecasts at most {self.horizon} steps."
            )
        stride = _int_arg("stride", stride)
        data = self._read(data, time_column=time_column, id_column=id_column, missing=missing)
        all_dates = np.unique(np.concatenate([v.index.values for v in data.series.values()]))
        start = (
            pd.Timestamp(all_dates[int(len(all_dates) * 0.8)])
            if start is None
            else pd.Timestamp(start)
        )
        qs = np.asarray(self.quantiles)
        records = []
        for key, frame in data.series.items():
            values = frame.to_numpy()
            y = values[:, 0]
            n = len(y)
            first = max(
                self.lookback - 1, int(np.searchsorted(frame.index.values, start.to_datetime64()))
            )
            origins = np.arange(first, n - H, stride)
            history_end = int(np.searchsorted(frame.index.values, start.to_datetime64()))
            if len(origins) == 0 or history_end < SEASON + H + 2:
                continue
            windows, future = make_windows(values, self.lookback, H, origins)
            records.append((key, frame.index, y, origins, future, history_end, windows))
        if not records:
            raise PipelineError(
                f"No series has both history before {start.date()} and {H} rows after an "
                "origin from then on; move `start` or give longer series."
            )
        model_q = self._forecast_windows(np.concatenate([r[6] for r in records]))[:, :H]
        rows, offset = [], 0
        for key, index, y, origins, future, history_end, _windows in records:
            k = len(origins)
            mq = model_q[offset : offset + k]
            offset += k
            scale = np.mean(np.abs(np.diff(y[:history_end]))) + 1e-12
            points = {
                "model": mq[:, :, self.point_index],
                **self._baselines(y, origins, H),
            }
            intervals = {"model": mq}
            for method in ("naive", "drift", "seasonal_naive"):
                intervals[method] = self._baseline_quantiles(
                    y, history_end, H, method, points[method], qs
                )
            for method, point in points.items():
                for h in range(H):
                    for i, t in enumerate(origins):
                        rows.append(
                            (
                                method,
                                key,
                                index[t],
                                h + 1,
                                y[t],
                                future[i, h],
                                point[i, h],
                                scale,
                                *intervals[method][i, h],
                            )
                        )
        names = [quantile_name(q) for q in qs]
        forecasts = pd.DataFrame(
            rows,
            columns=["method", "id", "origin", "step", "last", "actual", "forecast", "scale"]
            + names,
        )
        metrics = self._metrics_table(forecasts, names, qs)
        verdict = self._verdict(forecasts, metrics, H, significance)
        return {
            "forecasts": forecasts,
            "metrics": metrics,
            "verdict": verdict,
            "summary": verdict["summary"],
            "start": str(start.date()),
        }

    def _baselines(self, y, origins, H):
        t = origins[:, None]
        h = np.arange(1, H + 1)[None, :]
        last = y[origins][:, None]
        naive = np.repeat(last, H, axis=1)
        slope = (y[origins] - y[0]) / np.maximum(origins, 1)
        drift = last + slope[:, None] * h
        back = t + h - SEASON * np.ceil(h / SEASON).astype(int)
        seasonal = y[back]
        return {"naive": naive, "drift": drift, "seasonal_naive": seasonal}

    def _baseline_quantiles(self, y, history_end, H, method, point, qs):
        """Intervals from the quantiles of the method's own errors before the backtest."""
        past = np.arange(max(SEASON, 1), history_end - H)
        if len(past) < 10:
            past = np.arange(max(SEASON, 1), max(SEASON + 1, history_end - H))
        fut = y[past[:, None] + np.arange(1, H + 1)[None, :]]
        pred = self._baselines(y, past, H)[method]
        if self.target_transform == "log_return":
            err = np.log(np.maximum(fut, 1e-12) / np.maximum(pred, 1e-12))  # (n, H)
            qe = np.quantile(err, qs, axis=0).T  # (H, Q)
            return np.maximum(point, 1e-12)[:, :, None] * np.exp(qe[None])
        err = fut - pred
        qe = np.quantile(err, qs, axis=0).T
        return point[:, :, None] + qe[None]

    def _metrics_table(self, f, names, qs):
        out = []
        for (method, step), g in list(f.groupby(["method", "step"])) + [
            ((m, "all"), g) for m, g in f.groupby("method")
        ]:
            a, p = g["actual"].to_numpy(), g["forecast"].to_numpy()
            move_a = np.sign(a - g["last"].to_numpy())
            move_p = np.sign(p - g["last"].to_numpy())
            direction = float(np.mean(move_a == move_p)) if method != "naive" else float("nan")
            out.append(
                {
                    "method": method,
                    "step": step,
                    "mae": M.mae(a, p),
                    "rmse": M.rmse(a, p),
                    "smape": M.smape(a, p),
                    "mase": M.mase(a, p, g["scale"].to_numpy()),
                    "directional_accuracy": direction,
                    "coverage": M.coverage(a, g[names[0]], g[names[-1]]),
                    "nominal_coverage": float(qs[-1] - qs[0]),
                    "pinball": M.pinball(a, g[names].to_numpy(), qs),
                    "n": len(g),
                }
            )
        table = pd.DataFrame(out)
        order = {"model": 0, "naive": 1, "drift": 2, "seasonal_naive": 3}
        table["_m"] = table["method"].map(order)
        table["_s"] = table["step"].map(lambda s: 10**6 if s == "all" else s)
        return table.sort_values(["_m", "_s"]).drop(columns=["_m", "_s"]).reset_index(drop=True)

    def _verdict(self, f, metrics, H, significance):
        per_step = {}
        lines = []
        for h in list(range(1, H + 1)):
            g = f[f["step"] == h]
            err = (g["actual"] - g["forecast"]).abs() / g["scale"]
            model = err[g["method"] == "model"].groupby(g["origin"]).mean()
            naive = err[g["method"] == "naive"].groupby(g["origin"]).mean()
            model, naive = model.align(naive, join="inner")
            dm = M.diebold_mariano(model.to_numpy(), naive.to_numpy(), horizon=h)
            m_mase = float(metrics[(metrics.method == "model") & (metrics.step == h)].mase.iloc[0])
            n_mase = float(metrics[(metrics.method == "naive") & (metrics.step == h)].mase.iloc[0])
            better = m_mase < n_mase
            significant = dm["p_value"] < significance
            word = ("beats" if better else "loses to") + " naive"
            word += " (significant" if significant else " (not significant"
            word += f", DM p = {dm['p_value']:.3g})"
            per_step[h] = {
                "model_mase": m_mase,
                "naive_mase": n_mase,
                "relative_mase": m_mase / n_mase,
                "beats_naive": better,
                "significant": significant,
                "dm": dm,
            }
            lines.append(f"h={h}: model MASE {m_mase:.4f} vs naive {n_mase:.4f} -> {word}")
        cov = metrics[(metrics.method == "model") & (metrics.step == "all")].coverage.iloc[0]
        nominal = self.quantiles[-1] - self.quantiles[0]
        lines.append(f"interval coverage {cov:.3f} (nominal {nominal:.2f})")
        return {
            "per_step": per_step,
            "beats_naive_all_steps": all(v["beats_naive"] for v in per_step.values()),
            "coverage": float(cov),
            "nominal_coverage": float(nominal),
            "summary": "\n".join(lines),
        }

    def plot(self, history, path: str, id=None, time_column="date", id_column="ticker", last=120):
        """Draws the last ``last`` rows of one series, the forecast and its interval."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        data = self._read(history, time_column=time_column, id_column=id_column)
        key = id if id is not None else next(iter(data.series))
        if key not in data.series:
            raise PipelineError(f"No series {key!r}; the ids are {sorted(data.series)[:10]}.")
        frame = data.series[key]
        one = frame.reset_index().assign(**{id_column: key})
        fc = self.predict(one, time_column=time_column, id_column=id_column)
        lo, hi = quantile_name(self.quantiles[0]), quantile_name(self.quantiles[-1])
        fig, ax = plt.subplots(figsize=(8, 4))
        tail = frame.iloc[-last:, 0]
        ax.plot(tail.index, tail.to_numpy(), label=self.target, color="black")
        ax.plot(fc["date"], fc["forecast"], label="forecast", color="tab:blue")
        ax.fill_between(fc["date"], fc[lo], fc[hi], alpha=0.3, label=f"{lo}-{hi}")
        ax.set_title(f"{key}: {self.horizon}-step forecast")
        ax.legend()
        fig.autofmt_xdate()
        fig.tight_layout()
        with atomic_file(path) as tmp:
            fig.savefig(tmp, format=path.rsplit(".", 1)[-1] if "." in path else "png")
        plt.close(fig)
        return path

    def evaluate(self, data, **kwargs) -> dict:
        """The backtest's metrics for the model on ``data`` (see :meth:`backtest`)."""
        report = self.backtest(data, **kwargs)
        m = report["metrics"]
        row = m[(m.method == "model") & (m.step == "all")].iloc[0]
        naive = m[(m.method == "naive") & (m.step == "all")].iloc[0]
        return {
            **{k: float(row[k]) for k in ("mae", "rmse", "smape", "mase", "coverage", "pinball")},
            "naive_mase": float(naive["mase"]),
            "n": int(row["n"]),
        }

    # ----------------------------------------------------------------- export
    def export(self, path: str) -> str:
        """A SavedModel ``serve(window: float32[None, lookback, n_columns])`` returning
        ``{"quantiles": (batch, horizon, Q), "forecast": (batch, horizon)}`` in the
        target's own units (prices): the transforms and scalers are in the graph.
        Columns are ``self.columns`` (target first)."""
        self._require_fitted("export")
        from seqkit.layers._tf_fast import exporting

        module = _Forecaster(self, self._bare_model())
        with atomic_folder(path) as tmp, exporting():
            tf.saved_model.save(module, tmp, signatures={"serving_default": module.serve})
        return path


class _Forecaster(tf.Module):
    """Raw windows -> price quantiles: the same graph in process and exported."""

    def __init__(self, pipeline, model):
        super().__init__()
        self.model = model
        self.log_target = pipeline.target_transform == "log_return"
        self.log_columns = list(pipeline.log_columns)
        self.mean = tf.constant(pipeline.mean)
        self.std = tf.constant(pipeline.std)
        self.point = pipeline.point_index
        n = len(pipeline.columns)
        self.serve = tf.function(
            self._serve,
            input_signature=[
                tf.TensorSpec([None, pipeline.lookback, n], tf.float32, name="window")
            ],
        )

    def _serve(self, window):
        inputs, scale, last = transform_windows(window, self.log_columns, self.mean, self.std)
        q = tf.cast(self.model(inputs, training=False), tf.float32)  # (batch, horizon, Q)
        if self.log_target:
            prices = last[:, None, None] * tf.exp(scale[:, None, None] * q)
        else:
            prices = last[:, None, None] + scale[:, None, None] * q
        return {"quantiles": prices, "forecast": prices[:, :, self.point]}
