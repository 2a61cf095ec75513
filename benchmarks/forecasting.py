"""Forecasting benchmark: one global ForecastPipeline over the S&P 500 tickers, backtested
on the held-out last 6 months against naive, drift and seasonal-naive forecasts.

Data: ``stocks/sp500_5yr.csv.gz`` (505 tickers, 2013-02-08 .. 2018-02-07). The last
6 months (origins from 2017-08-07) are held out: the model trains only on rows
before that date (its own chronological validation split inside those), and the
backtest forecasts from every origin in the held-out period (every ``--stride``
business days) for every ticker, reading only the ``lookback`` rows up to each
origin. The few missing open/high/low cells are forward-filled (``missing="ffill"``).

    python benchmarks/forecasting.py --save saved_models/forecast-stocks --minutes 25

Prints the metrics table (model vs baselines per horizon), the verdict, training
time and forecasts/s (in process and through the SavedModel); ``--save`` writes
the pipeline, its MODEL_CARD.md and benchmarks/results/forecasting_stocks.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import _machine  # benchmarks/_machine.py, beside this script
import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

DATA = os.environ.get("SEQKIT_DATA", os.path.join(os.path.dirname(HERE), "..", "shared", "data"))
PRICES = "stocks/sp500_5yr.csv.gz"
HOLDOUT_START = "2017-08-07"  # the last 6 months of the file
RECIPE = (
    dict(lookback=60, horizon=5, target="close", quantiles=(0.1, 0.5, 0.9), cell="lstm",
         units=64, layers=1, dropout=0.1, target_transform="log_return"),
    dict(epochs=20, batch_size=256, learning_rate=1e-3, patience=3, window_stride=2),
)  # fmt: skip
RESULTS = os.path.join(HERE, "results", "forecasting_stocks.json")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--save")
    parser.add_argument("--minutes", type=float, default=25)
    parser.add_argument("--stride", type=int, default=1, help="backtest origin stride (rows)")
    parser.add_argument("--tickers", type=int, default=0, help="use the first N tickers only")
    parser.add_argument("--config", help="JSON overrides of the pipeline arguments")
    parser.add_argument("--fit", help="JSON overrides of the fit arguments")
    parser.add_argument("--checkpoint-dir", default="runs/checkpoints-forecasting")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from tasks.forecasting import ForecastPipeline

    df = pd.read_csv(os.path.join(DATA, PRICES))
    if args.tickers:
        df = df[df.ticker.isin(sorted(df.ticker.unique())[: args.tickers])]
    train = df[df.date < HOLDOUT_START]
    config = {**RECIPE[0], **json.loads(args.config or "{}")}
    fit = {**RECIPE[1], **json.loads(args.fit or "{}")}
    fc = ForecastPipeline(**config, seed=args.seed)
    start = time.time()
    fc.fit(
        train,
        time_limit=args.minutes,
        checkpoint_dir=args.checkpoint_dir,
        verbose=2,
        missing="ffill",
        **fit,
    )
    seconds = time.time() - start
    report = fc.backtest(df, start=HOLDOUT_START, stride=args.stride, missing="ffill")
    metrics = report["metrics"]
    # speed: forecasts (one window -> horizon x quantiles) per second
    last = fc._read(df, missing="ffill")
    windows = np.stack(
        [v.to_numpy()[-fc.lookback :] for v in last.series.values() if len(v) >= fc.lookback]
    )
    fc._forecast_windows(windows)
    t0 = time.perf_counter()
    for _ in range(5):
        fc._forecast_windows(windows)
    in_process = 5 * len(windows) / (time.perf_counter() - t0)
    with tempfile.TemporaryDirectory() as tmp:
        import tensorflow as tf

        fc.export(os.path.join(tmp, "served"))
        serve = tf.saved_model.load(os.path.join(tmp, "served")).signatures["serving_default"]
        x = tf.constant(windows.astype(np.float32))
        serve(window=x)
        t0 = time.perf_counter()
        for _ in range(5):
            serve(window=x)
        exported = 5 * len(windows) / (time.perf_counter() - t0)
        one = tf.constant(windows[:1].astype(np.float32))
        serve(window=one)
        t0 = time.perf_counter()
        for _ in range(50):
            serve(window=one)
        exported_1 = 50 / (time.perf_counter() - t0)
    result = {
        "config": fc.get_config(),
        "fit": {**fit, "time_limit_minutes": args.minutes},
        "holdout_start": HOLDOUT_START,
        "backtest_stride": args.stride,
        "tickers": int(df.ticker.nunique()),
        # summed over epochs, so a run resumed from its checkpoints reports its whole training
        "train_seconds": round(sum(fc.history.get("epoch_seconds", [])) or seconds, 1),
        "epochs_run": len(fc.history.get("loss", [])),
        "history": fc.history,
        "metrics": metrics.to_dict(orient="records"),
        "verdict": {k: v for k, v in report["verdict"].items() if k != "per_step"}
        | {"per_step": {str(h): s for h, s in report["verdict"]["per_step"].items()}},
        "forecasts_per_s": {
            f"pipeline, batch {len(windows)}": in_process,
            f"SavedModel, batch {len(windows)}": exported,
            "SavedModel, batch 1": exported_1,
        },
        "machine": _machine.describe(),
    }
    pd.set_option("display.width", 200)
    print(metrics.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(report["summary"])
    print(json.dumps({k: result[k] for k in ("train_seconds", "epochs_run", "forecasts_per_s")}))
    if args.save:
        fc.save(args.save)
        os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
        with open(RESULTS, "w") as f:
            json.dump(result, f, indent=1, default=str)
        write_card(args.save, result, metrics, report)


def write_card(folder, r, metrics, report):
    c, f = r["config"], r["fit"]
    v = report["verdict"]
    table = metrics[
        ["method", "step", "mae", "mase", "smape", "directional_accuracy", "coverage", "pinball"]
    ]
    rows = "\n".join(
        "| " + " | ".join(f"{x:.4f}" if isinstance(x, float) else str(x) for x in row) + " |"
        for row in table.itertuples(index=False)
    )
    steps = "\n".join(
        f"| {h} | {s['model_mase']:.4f} | {s['naive_mase']:.4f} | {s['relative_mase']:.4f} | "
        f"{s['dm']['p_value']:.3g} | {'yes' if s['beats_naive'] else 'no'} |"
        for h, s in v["per_step"].items()
    )
    mase_ok = all(s["relative_mase"] <= 1.0 for s in v["per_step"].values())
    ratios = [s["relative_mase"] for s in v["per_step"].values()]
    p_min = min(s["dm"]["p_value"] for s in v["per_step"].values())
    if any(s["significant"] for s in v["per_step"].values()):
        significance = (
            f"The difference to naive is significant at some horizon (smallest DM p = {p_min:.3g})."
        )
    else:
        significance = (
            f"The MASE ratios to naive ({min(ratios):.4f}-{max(ratios):.4f}) are **not "
            f"significantly different from 1** at any horizon (smallest DM p = {p_min:.3g}): "
            "as a point forecast the model is as good as the last price, not better."
        )
    cov_ok = abs(v["coverage"] - 0.80) <= 0.03
    card = f"""# forecast-stocks

One global quantile forecaster (`tasks.forecasting.ForecastPipeline`) over the
{r["tickers"]} S&P 500 tickers: {c["lookback"]}-day windows of close, open, high, low and
volume → {c["layers"]} × {c["cell"].upper()} {c["units"]} (seqkit) → the {c["horizon"]} next closes at
quantiles {c["quantiles"]}. Load it with `tasks.load("forecasting")`.

## Data
`../shared/data/stocks/sp500_5yr.csv.gz` (2013-02-08 .. 2018-02-07, daily). Held out: the
last 6 months (origins from {r["holdout_start"]}). Training used only rows before that date
(its last 10 % of dates for early stopping); windows every {f["window_stride"]} days. The 27
missing open/high/low cells were forward-filled.

## Command
```bash
python benchmarks/forecasting.py --save saved_models/forecast-stocks --minutes {f["time_limit_minutes"]}
```
Training: {r["train_seconds"] / 60:.1f} minutes on {r["machine"]} ({r["epochs_run"]} epochs), pinball loss,
Adam {f["learning_rate"]}, batch {f["batch_size"]}, gradient clipping 1.0, early stopping.

## Held-out backtest (every ticker, origins every {r["backtest_stride"]} business day(s) from {r["holdout_start"]})
MASE is scaled by each ticker's in-sample one-step naive MAE (before the held-out period).

| h | model MASE | naive MASE | model / naive | Diebold-Mariano p | beats naive |
|---|---|---|---|---|---|
{steps}

Goal: MASE <= naive (ratio <= 1.00) at every horizon — **{"met" if mase_ok else "NOT met"}**;
80 % interval coverage within 0.80 ± 0.03 — **{"met" if cov_ok else "NOT met"}** ({v["coverage"]:.3f}).
{significance}

All methods (baselines' intervals: quantiles of their own errors before the held-out period):

| method | h | MAE | MASE | sMAPE | direction | coverage | pinball |
|---|---|---|---|---|---|---|---|
{rows}

## Limits
Daily closes are close to a random walk: expect the model to be about as good as
the last price for the point forecast; its value is in calibrated intervals. Prices are
not dividend- or split-adjusted (a split looks like a crash). Survivorship bias: only
early-2018 constituents. Not investment advice.
"""
    with open(os.path.join(folder, "MODEL_CARD.md"), "w") as fh:
        fh.write(card)


if __name__ == "__main__":
    main()
