"""Honest evaluation of a forecaster: rolling-origin backtests against naive baselines.

:func:`backtest` forecasts from every origin of a period with the model and
with three baselines on the same origins (naive: the last value; drift: the
last value plus the average change since the series began; seasonal naive:
the value one week, ``SEASON`` rows, earlier), scores them per horizon
(:func:`metrics_table`) and says whether the model beats naive, with a
Diebold-Mariano test per horizon (:func:`verdict`). :func:`plot` draws one
series and its forecast. ``ForecastPipeline.backtest``, ``evaluate`` and
``plot`` call these; the functions need only the pipeline's public face
(``lookback``, ``horizon``, ``quantiles``, ``point_index``,
``target_transform``, ``predict``) and its ``_forecast_windows``.

Example:

>>> report = backtest(fc, fc._read(prices), start="2017-08-01", stride=1, horizon=5)
>>> report["metrics"]  # one row per method and step (and "all")
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from seqkit import metrics as M
from seqkit.series import make_windows
from tasks.base import PipelineError, atomic_file

__all__ = ["SEASON", "quantile_name", "backtest", "metrics_table", "verdict", "summary", "plot"]

SEASON = 5  # business days in a week: the seasonal-naive period
METHODS = ("model", "naive", "drift", "seasonal_naive")


def quantile_name(q: float) -> str:
    """The column name of a quantile: 0.1 -> "q10"."""
    return f"q{int(round(100 * q))}"


def backtest(pipeline, data, start, stride: int, horizon: int, significance: float) -> dict:
    """Rolling-origin backtest of ``pipeline`` and the baselines on ``data`` (a SeriesData).

    Args:
        pipeline: a fitted ``ForecastPipeline``.
        data: the series, read by the pipeline.
        start: the first origin date (None: the last 20 % of the dates).
        stride: rows between origins.
        horizon: steps scored (at most the model's horizon).
        significance: the Diebold-Mariano test's level.

    Returns:
        ``{"forecasts", "metrics", "verdict", "summary", "start"}``, as
        ``ForecastPipeline.backtest`` documents.
    """
    H = horizon
    all_dates = np.unique(np.concatenate([v.index.values for v in data.series.values()]))
    start = (
        pd.Timestamp(all_dates[int(len(all_dates) * 0.8)]) if start is None else pd.Timestamp(start)
    )
    qs = np.asarray(pipeline.quantiles)
    records = []
    for key, frame in data.series.items():
        values = frame.to_numpy()
        y = values[:, 0]
        n = len(y)
        history_end = int(np.searchsorted(frame.index.values, start.to_datetime64()))
        first = max(pipeline.lookback - 1, history_end)
        origins = np.arange(first, n - H, stride)
        if len(origins) == 0 or history_end < SEASON + H + 2:
            continue
        windows, future = make_windows(values, pipeline.lookback, H, origins)
        records.append((key, frame.index, y, origins, future, history_end, windows))
    if not records:
        raise PipelineError(
            f"No series has both history before {start.date()} and {H} rows after an "
            "origin from then on; move `start` or give longer series."
        )
    model_q = pipeline._forecast_windows(np.concatenate([r[6] for r in records]))[:, :H]
    log_target = pipeline.target_transform == "log_return"
    rows, offset = [], 0
    for key, index, y, origins, future, history_end, _windows in records:
        k = len(origins)
        mq = model_q[offset : offset + k]
        offset += k
        scale = np.mean(np.abs(np.diff(y[:history_end]))) + 1e-12
        points = {"model": mq[:, :, pipeline.point_index], **_baselines(y, origins, H)}
        intervals = {"model": mq}
        for method in METHODS[1:]:
            intervals[method] = _baseline_quantiles(
                y, history_end, H, method, points[method], qs, log_target
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
        columns=["method", "id", "origin", "step", "last", "actual", "forecast", "scale"] + names,
    )
    metrics = metrics_table(forecasts, names, qs)
    result = verdict(forecasts, metrics, H, significance, pipeline.quantiles)
    return {
        "forecasts": forecasts,
        "metrics": metrics,
        "verdict": result,
        "summary": result["summary"],
        "start": str(start.date()),
    }


def _baselines(y, origins, H) -> dict:
    """Naive, drift and seasonal-naive point forecasts (origins, H) of the series ``y``."""
    t = origins[:, None]
    h = np.arange(1, H + 1)[None, :]
    last = y[origins][:, None]
    naive = np.repeat(last, H, axis=1)
    slope = (y[origins] - y[0]) / np.maximum(origins, 1)
    drift = last + slope[:, None] * h
    back = t + h - SEASON * np.ceil(h / SEASON).astype(int)
    seasonal = y[back]
    return {"naive": naive, "drift": drift, "seasonal_naive": seasonal}


def _baseline_quantiles(y, history_end, H, method, point, qs, log_target):
    """Intervals from the quantiles of the method's own errors before the backtest."""
    past = np.arange(max(SEASON, 1), history_end - H)
    if len(past) < 10:
        past = np.arange(max(SEASON, 1), max(SEASON + 1, history_end - H))
    fut = y[past[:, None] + np.arange(1, H + 1)[None, :]]
    pred = _baselines(y, past, H)[method]
    if log_target:
        err = np.log(np.maximum(fut, 1e-12) / np.maximum(pred, 1e-12))  # (n, H)
        qe = np.quantile(err, qs, axis=0).T  # (H, Q)
        return np.maximum(point, 1e-12)[:, :, None] * np.exp(qe[None])
    err = fut - pred
    qe = np.quantile(err, qs, axis=0).T
    return point[:, :, None] + qe[None]


def metrics_table(f: pd.DataFrame, names, qs) -> pd.DataFrame:
    """One row per method and step (and "all") of the backtest's forecasts ``f``:
    mae, rmse, smape, mase, directional_accuracy, coverage (of the outermost
    quantile pair ``names[0]``..``names[-1]``), nominal_coverage, pinball, n."""
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
    order = {method: i for i, method in enumerate(METHODS)}
    table["_m"] = table["method"].map(order)
    table["_s"] = table["step"].map(lambda s: 10**6 if s == "all" else s)
    return table.sort_values(["_m", "_s"]).drop(columns=["_m", "_s"]).reset_index(drop=True)


def verdict(f: pd.DataFrame, metrics: pd.DataFrame, H: int, significance: float, quantiles):
    """Whether the model beats naive on MASE at each step, with a Diebold-Mariano test,
    and the interval coverage; ``summary`` says it in words whichever way it falls."""
    per_step = {}
    lines = []
    for h in range(1, H + 1):
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
    nominal = quantiles[-1] - quantiles[0]
    lines.append(f"interval coverage {cov:.3f} (nominal {nominal:.2f})")
    return {
        "per_step": per_step,
        "beats_naive_all_steps": all(v["beats_naive"] for v in per_step.values()),
        "coverage": float(cov),
        "nominal_coverage": float(nominal),
        "summary": "\n".join(lines),
    }


def summary(report: dict) -> dict:
    """The model's metrics over every step of a backtest report, and naive's MASE."""
    m = report["metrics"]
    row = m[(m.method == "model") & (m.step == "all")].iloc[0]
    naive = m[(m.method == "naive") & (m.step == "all")].iloc[0]
    return {
        **{k: float(row[k]) for k in ("mae", "rmse", "smape", "mase", "coverage", "pinball")},
        "naive_mase": float(naive["mase"]),
        "n": int(row["n"]),
    }


_PRICES = ("close", "open", "high", "low", "adj close", "adj_close", "adjclose", "price")


def y_label(target: str) -> str:
    """The y-axis label of a forecast plot: the target column, and its units where known.

    >>> y_label("close"), y_label("load_mw")
    ('close (price, in the data\'s currency)', 'load_mw')
    """
    if str(target).lower() in _PRICES:
        return f"{target} (price, in the data's currency)"
    if str(target).lower() == "volume":
        return f"{target} (shares traded)"
    return str(target)


def plot(pipeline, data, path: str, key, id_column: str, time_column: str, last: int) -> str:
    """Draws the last ``last`` rows of series ``key`` of ``data`` (a SeriesData), the
    pipeline's forecast after them and its outermost interval, into the image ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key = key if key is not None else next(iter(data.series))
    if key not in data.series:
        raise PipelineError(f"No series {key!r}; the ids are {sorted(data.series)[:10]}.")
    frame = data.series[key]
    one = frame.reset_index().assign(**{id_column: key})
    fc = pipeline.predict(one, time_column=time_column, id_column=id_column)
    lo, hi = quantile_name(pipeline.quantiles[0]), quantile_name(pipeline.quantiles[-1])
    fig, ax = plt.subplots(figsize=(8, 4))
    tail = frame.iloc[-last:, 0]
    ax.plot(tail.index, tail.to_numpy(), label=pipeline.target, color="black")
    ax.plot(fc["date"], fc["forecast"], label="forecast", color="tab:blue")
    ax.fill_between(fc["date"], fc[lo], fc[hi], alpha=0.3, label=f"{lo}-{hi}")
    ax.set_title(f"{key}: {pipeline.horizon}-step forecast")
    ax.set_ylabel(y_label(pipeline.target))
    ax.set_xlabel(time_column)
    ax.legend()
    fig.autofmt_xdate()
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format=path.rsplit(".", 1)[-1] if "." in path else "png")
    plt.close(fig)
    return path
