"""ForecastPipeline: no leaks, windows within series, monotone quantiles, honest baselines."""

import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

import tasks
from seqkit.series import make_windows
from tasks.base import PipelineError
from tasks.forecasting import ForecastPipeline, ForecastPreprocessor, MonotoneQuantiles


def random_walks(n_series=3, n=400, seed=0):
    rng = np.random.RandomState(seed)
    frames = []
    dates = pd.bdate_range("2020-01-01", periods=n)
    for k in range(n_series):
        close = 50 * (k + 1) * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
        volume = rng.randint(1000, 5000, n).astype(float)
        frames.append(
            pd.DataFrame({"date": dates, "close": close, "volume": volume, "ticker": f"S{k}"})
        )
    return pd.concat(frames, ignore_index=True)


def seasonal(n=900, seed=1):
    rng = np.random.RandomState(seed)
    t = np.arange(n)
    close = 100 + 10 * np.sin(2 * np.pi * t / 20) + rng.normal(0, 0.3, n)
    return pd.DataFrame({"date": pd.bdate_range("2015-01-01", periods=n), "close": close})


SMALL = dict(lookback=20, horizon=3, units=8)
FIT = dict(epochs=2, verbose=0, checkpoint_dir=None, batch_size=64)


@pytest.fixture(scope="module")
def walk_model():
    return ForecastPipeline(**SMALL, seed=1).fit(random_walks(), **FIT)


def test_windows_never_cross_series(walk_model):
    data = walk_model._read(random_walks())
    windows, future, keys, origins = walk_model.preprocessor.windows(data)
    levels = {k: v.iloc[:, 0].to_numpy() for k, v in data.series.items()}
    for w, f, key, t in zip(windows[::37], future[::37], keys[::37], origins[::37]):
        np.testing.assert_array_equal(w[:, 0], levels[key][t - 19 : t + 1])
        np.testing.assert_array_equal(f, levels[key][t + 1 : t + 4])
    # make_windows itself: the future past the end of a series is NaN, never the next series
    w, f = make_windows(np.arange(10.0)[:, None], 4, 3, [8])
    assert w[0, :, 0].tolist() == [5, 6, 7, 8] and np.isnan(f[0, 1:]).all()


def test_nothing_after_the_origin_leaks(walk_model):
    df = random_walks()
    spiked = df.copy()
    rows = spiked.index[(spiked.ticker == "S1") & (spiked.date == spiked.date.iloc[350])]
    spiked.loc[rows, "close"] *= 5  # a spike after the origins below
    start = df.date.iloc[330]
    a = walk_model.backtest(df, start=start)["forecasts"]
    b = walk_model.backtest(spiked, start=start)["forecasts"]
    model_a, model_b = a[a.method == "model"], b[b.method == "model"]
    before = model_a.origin < df.date.iloc[350]
    np.testing.assert_allclose(
        model_a[before].forecast.to_numpy(), model_b[before].forecast.to_numpy(), rtol=1e-6
    )
    assert not np.allclose(model_a[~before].forecast, model_b[~before].forecast)
    # the scalers are fitted on training windows: a spike in the validation tail changes nothing
    late = df.copy()
    late.loc[(late.ticker == "S0") & (late.date == df.date.iloc[395]), "close"] *= 5
    fitted = ForecastPipeline(**SMALL).fit(df, **{**FIT, "epochs": 1})
    fitted_late = ForecastPipeline(**SMALL).fit(late, **{**FIT, "epochs": 1})
    np.testing.assert_array_equal(fitted.mean, fitted_late.mean)
    np.testing.assert_array_equal(fitted.std, fitted_late.std)


def test_quantiles_are_monotone_and_dates_are_business_days(walk_model):
    layer = MonotoneQuantiles([0.05, 0.1, 0.5, 0.9, 0.95])
    q = np.asarray(layer(np.random.RandomState(0).normal(0, 5, (50, 4, 5)).astype("float32")))
    assert (np.diff(q, axis=-1) > 0).all()
    out = walk_model.predict(random_walks())
    assert list(out.columns) == ["id", "date", "step", "forecast", "q10", "q50", "q90"]
    assert (out.q10 <= out.q50).all() and (out.q50 <= out.q90).all()
    assert (out.forecast == out.q50).all() and sorted(out.id.unique()) == ["S0", "S1", "S2"]
    last = random_walks().date.max()  # a Monday in this calendar? check weekdays only
    assert (out.date > last).all() and (out.date.dt.dayofweek < 5).all()
    assert out[out.id == "S0"].step.tolist() == [1, 2, 3]


def test_naive_scores_mase_near_one_on_a_random_walk(walk_model):
    report = walk_model.backtest(random_walks(n=600, seed=5), start=pd.Timestamp("2021-06-01"))
    m = report["metrics"]
    naive = m[(m.method == "naive") & (m.step == 1)].mase.iloc[0]
    assert 0.85 < naive < 1.15
    assert set(m.method) == {"model", "naive", "drift", "seasonal_naive"}
    assert {"mae", "rmse", "smape", "mase", "directional_accuracy", "coverage", "pinball"} <= set(
        m.columns
    )
    v = report["verdict"]
    assert set(v["per_step"]) == {1, 2, 3} and "naive" in report["summary"]
    assert 0 <= v["per_step"][1]["dm"]["p_value"] <= 1


@pytest.mark.slow
def test_learns_a_seasonal_signal_well_below_naive(tmp_path):
    fc = ForecastPipeline(lookback=40, horizon=5, units=32, target_transform="none", dropout=0.0)
    fc.fit(seasonal(), epochs=12, verbose=0, checkpoint_dir=None, batch_size=32, learning_rate=3e-3)
    report = fc.backtest(seasonal(), start=pd.Timestamp(seasonal().date.iloc[750]))
    for h in range(1, 6):
        step = report["verdict"]["per_step"][h]
        assert step["model_mase"] < 0.5 * step["naive_mase"], report["summary"]
        assert step["beats_naive"] and step["significant"]
    assert os.path.getsize(fc.plot(seasonal(), str(tmp_path / "fc.png"))) > 1000


def test_save_load_and_export_in_a_fresh_process(walk_model, tmp_path):
    walk_model.save(tmp_path / "fc")
    loaded = tasks.load(str(tmp_path / "fc"))
    pd.testing.assert_frame_equal(
        loaded.predict(random_walks()), walk_model.predict(random_walks())
    )
    walk_model.export(str(tmp_path / "served"))
    df = random_walks()
    window = df[df.ticker == "S2"][walk_model.columns].to_numpy()[-20:].astype("float32")
    expected = walk_model.predict(df)
    expected = expected[expected.id == "S2"][["q10", "q50", "q90"]].to_numpy()
    script = textwrap.dedent(
        f"""
        import json, sys
        import numpy as np, tensorflow as tf
        m = tf.saved_model.load({str(tmp_path / "served")!r})
        w = np.array({window.tolist()!r}, np.float32)[None]
        f = m.signatures["serving_default"]
        out = f(window=tf.constant(w))
        spec = f.structured_input_signature[1]["window"]
        print(json.dumps({{"q": out["quantiles"].numpy()[0].tolist(),
            "forecast": out["forecast"].numpy()[0].tolist(), "outputs": sorted(out),
            "signatures": sorted(m.signatures), "inputs": sorted(f.structured_input_signature[1]),
            "shape": spec.shape.as_list(), "dtype": spec.dtype.name,
            "seqkit_imported": any(n.startswith(("seqkit", "tasks")) for n in sys.modules)}}))
        """
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(result["q"], expected, rtol=1e-5)
    np.testing.assert_allclose(result["forecast"], expected[:, 1], rtol=1e-5)
    assert result["signatures"] == ["serving_default"] and result["inputs"] == ["window"]
    assert result["outputs"] == ["forecast", "quantiles"]
    assert result["shape"] == [None, 20, 2] and result["dtype"] == "float32"
    assert not result["seqkit_imported"]


def test_the_preprocessor_holds_the_learned_state_and_turns_raw_inputs_into_model_inputs(
    walk_model, tmp_path
):
    pre = walk_model.preprocessor
    assert isinstance(pre, ForecastPreprocessor) and pre.fitted
    assert walk_model.columns is pre.columns and walk_model.mean is pre.mean
    assert pre.get_config() == dict(
        lookback=20, horizon=3, target="close", features=None, target_transform="log_return", seed=1
    )
    assert sorted(pre.get_assets()) == ["columns", "log_columns", "mean", "std"]
    df = random_walks()
    from_history = pre(df)  # the last lookback rows of every series
    windows = np.stack([df[df.ticker == k][pre.columns].to_numpy()[-20:] for k in ("S0", "S1")])
    assert from_history.shape == (3, 19, 2) and from_history.dtype == np.float32
    np.testing.assert_array_equal(pre(windows), from_history[:2])
    np.testing.assert_array_equal(walk_model.model.input_shape[1:], from_history.shape[1:])
    # the saved assets rebuild the same preprocessor, and the model runs on its output
    again = ForecastPreprocessor(**pre.get_config())
    again.set_assets(json.loads(json.dumps(pre.get_assets())))
    np.testing.assert_array_equal(again(df), from_history)
    q = walk_model.model(from_history).numpy()
    np.testing.assert_allclose(q[:, :, 0], q.min(axis=-1))
    with pytest.raises(PipelineError, match=r"expected \(n, 20, 2\): lookback rows of the column"):
        pre(windows[:, 1:])
    with pytest.raises(PipelineError, match="The preprocessor is not fitted; call fit"):
        ForecastPreprocessor(20, 3)(windows)
    with pytest.raises(PipelineError, match=r"The saved assets are damaged \(column lists"):
        again.set_assets({**pre.get_assets(), "mean": [0.0]})
    with pytest.raises(PipelineError, match=r"Unknown argument\(s\) \['beam_width'\] for expo"):
        walk_model.export(str(tmp_path / "served"), beam_width=2)


@pytest.mark.parametrize("cell, old", [("lstm", "lstm"), ("gru", "gru"), ("rnn", "simple_rnn")])
def test_every_weight_has_its_seqkit_0_1_0_name(cell, old, tmp_path):
    h5py = pytest.importorskip("h5py")
    fc = ForecastPipeline(lookback=6, horizon=2, units=4, cell=cell, layers=3)
    fc.preprocessor.set_assets(
        dict(columns=["close", "v"], log_columns=[True, True], mean=[0, 0], std=[1, 1])
    )
    fc._build_model().save_weights(tmp_path / "m.weights.h5")
    paths = []
    with h5py.File(tmp_path / "m.weights.h5", "r") as f:
        f.visititems(lambda n, d: paths.append(n) if isinstance(d, h5py.Dataset) else None)
    # the layout seqkit 0.1.0 saved (read from a model it built): layers/<class>[_i]/...
    layers = [f"layers/{old}{suffix}/cell/vars/" for suffix in ("", "_1", "_2")]
    expected = [f"{layer}{i}" for layer in layers for i in range(3)]
    assert sorted(map(fc._legacy_weight_path, paths)) == sorted(
        expected + ["layers/dense/vars/0", "layers/dense/vars/1"]
    )


def test_a_series_with_a_datetime_index_and_covariates_known_to_the_origin():
    s = seasonal().set_index("date")["close"]
    fc = ForecastPipeline(lookback=10, horizon=2, units=4).fit(s, **{**FIT, "epochs": 1})
    assert fc.columns == ["close"] and len(fc.predict(s)) == 2
    fc = ForecastPipeline(lookback=10, horizon=2, units=4).fit(
        random_walks(), **{**FIT, "epochs": 1}
    )
    assert fc.columns == ["close", "volume"]


# ----------------------------------------------------------------- bad input
def _bad(df):
    return ForecastPipeline(**SMALL).fit(df, **FIT)


def test_bad_series_get_clear_errors_or_documented_repairs():
    df = random_walks()
    gap = df.copy()
    gap.loc[5, "close"] = np.nan
    with pytest.raises(
        PipelineError, match=r"Series 'S0' has a missing 'close' on .*missing='ffill'"
    ):
        _bad(gap)
    repaired = ForecastPipeline(**SMALL).fit(gap, **FIT, missing="ffill")
    assert repaired.columns == ["close", "volume"]
    dup = pd.concat([df, df.iloc[[3]]])
    with pytest.raises(PipelineError, match=r"Series 'S0' has the date .* more than once"):
        _bad(dup)
    shuffled = df.sample(frac=1.0, random_state=0)
    with pytest.warns(UserWarning, match="were not sorted by 'date'; sorted them"):
        ForecastPipeline(**SMALL).fit(shuffled, **{**FIT, "epochs": 1})
    with pytest.raises(PipelineError, match=r"shorter than lookback \+ horizon = 23 rows"):
        _bad(df[df.date < df.date.iloc[15]])
    text = df.assign(close=df.close.astype(str))
    with pytest.raises(PipelineError, match="The target column 'close' is not numeric"):
        _bad(text)
    with pytest.raises(PipelineError, match=r"The data has no column 'close'; its columns are"):
        _bad(df.drop(columns="close"))
    with pytest.raises(PipelineError, match="target_transform='log_return' needs positive values"):
        _bad(df.assign(close=df.close - 1000))


def test_predict_needs_lookback_rows(walk_model):
    with pytest.raises(PipelineError, match=r"has 5 rows; predict needs at least lookback = 20"):
        walk_model.predict(random_walks(n=5))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(lookback=2), "Received `lookback=2`; expected an integer >= 3."),
        (dict(horizon=0), "Received `horizon=0`; expected an integer >= 1."),
        (dict(quantiles=(0.9, 0.1)), "expected distinct increasing numbers in (0, 1)."),
        (dict(quantiles=(0.0, 0.5)), "expected distinct increasing numbers in (0, 1)."),
        (dict(target_transform="log"), "Received `target_transform='log'`; expected one of"),
        (dict(cell="tcn"), "Received `cell='tcn'`; expected one of ('lstm', 'gru', 'rnn')."),
    ],
)
def test_bad_hyperparameters(kwargs, message):
    with pytest.raises(PipelineError, match=re.escape(message)):
        ForecastPipeline(**kwargs)


def test_seqkit_forecast_train_and_evaluate_commands(tmp_path, capsys):
    from tasks.cli import demo_prices, main

    random_walks().to_csv(tmp_path / "prices.csv", index=False)
    args = ["train", "forecasting", "--data", str(tmp_path / "prices.csv"), "--out"]
    args += [str(tmp_path / "fc"), "--epochs", "1", "--verbose", "0", "--checkpoint-dir", ""]
    small = [f"--set={k}={v}" for k, v in SMALL.items()]
    assert main(args + small) == 0
    capsys.readouterr()
    cmd = ["forecast", str(tmp_path / "prices.csv"), "--model", str(tmp_path / "fc")]
    assert main(cmd + ["--horizon", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["id", "date", "step", "forecast", "q10", "q50", "q90"]
    assert len(out) == 1 + 3 * 2  # three series, two steps
    assert main(cmd + ["--horizon", "9"]) == 2
    assert "this model forecasts 1 to 3 steps" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "fc"), "--data", str(tmp_path / "prices.csv")]) == 0
    assert "naive_mase" in json.loads(capsys.readouterr().out)
    prices = demo_prices()
    assert (prices.low <= prices[["open", "close"]].min(axis=1)).all() and len(prices) == 120


def test_predict_skips_short_series_with_a_warning(walk_model):
    df = pd.concat(
        [random_walks(n_series=2), random_walks(n_series=1, n=10, seed=2).assign(ticker="T")]
    )
    with pytest.warns(UserWarning, match=r"1 series with fewer than lookback = 20 rows get no"):
        out = walk_model.predict(df)
    assert sorted(out.id.unique()) == ["S0", "S1"]


def test_shipped_model_forecasts_a_made_up_price_series():
    from tasks.cli import demo_prices

    fc = tasks.load("forecasting")
    assert isinstance(fc, ForecastPipeline) and fc.columns[0] == "close"
    prices = demo_prices()
    out = fc.predict(prices)
    last = prices.close.iloc[-1]
    assert len(out) == fc.horizon and (out.q10 < out.q50).all() and (out.q50 < out.q90).all()
    assert (abs(out.q50 / last - 1) < 0.05).all()  # a price forecast, not a wild guess
    assert (out.q10 < last).all() and (out.q90 > last).all()
    widths = (out.q90 - out.q10).to_numpy()
    assert widths[-1] > widths[0]  # uncertainty grows with the horizon


# ---------------------------------------------------------------- a new user's columns (issue 18)
CAPITALISED = {"date": "Date", "ticker": "Ticker", "close": "Close", "volume": "Volume"}


def test_capitalised_columns_match_ignoring_case_with_a_one_line_warning(walk_model):
    df = random_walks()
    with pytest.warns(UserWarning) as caught:
        out = walk_model.predict(df.rename(columns=CAPITALISED))
    assert [str(w.message) for w in caught] == [
        "Matched columns ignoring case: {'Date': 'date', 'Ticker': 'ticker', 'Close': "
        "'close', 'Volume': 'volume'}; pass this dict as columns= to silence this."
    ]
    pd.testing.assert_frame_equal(out, walk_model.predict(df))


def test_columns_maps_the_data_in_every_call_that_reads_it():
    mapping = {"Day": "date", "Symbol": "ticker", "Price": "close", "Vol": "volume"}
    df = random_walks().rename(columns={v: k for k, v in mapping.items()})
    fc = ForecastPipeline(**SMALL, seed=1).fit(df, columns=mapping, **FIT)
    assert fc.columns == ["close", "volume"]
    assert fc.predict(df, columns=mapping).id.unique().tolist() == ["S0", "S1", "S2"]
    report = fc.backtest(df, columns=mapping, start="2021-04-01")
    assert set(report["metrics"].method) == {"model", "naive", "drift", "seasonal_naive"}
    assert "mase" in fc.evaluate(df, columns=mapping, start="2021-04-01")
    fc.fine_tune(df, columns=mapping, epochs=1, verbose=0, checkpoint_dir=None)
    with pytest.raises(PipelineError) as error:
        fc.predict(df, columns={"Cost": "close"})
    assert str(error.value) == (
        "Received `columns={'Cost': 'close'}`; the data has no column 'Cost' (its columns are "
        "['Day', 'Price', 'Vol', 'Symbol'])."
    )


def test_a_missing_column_error_suggests_an_argument_that_call_accepts(walk_model):
    df = random_walks().rename(columns={"close": "Adj Close"})
    with pytest.raises(PipelineError) as error:
        walk_model.predict(df)
    assert str(error.value) == (
        "The data has no column 'close'; its columns are ['date', 'Adj Close', 'volume', "
        "'ticker']. Pass columns={'Adj Close': 'close'} to map yours to it."
    )
    fixed = walk_model.predict(df, columns={"Adj Close": "close"})  # what the message says
    pd.testing.assert_frame_equal(fixed, walk_model.predict(random_walks()))
    with pytest.raises(PipelineError) as error:
        walk_model.predict(random_walks().rename(columns={"volume": "vol"}).assign(open=1.0))
    assert str(error.value) == (
        "The feature column 'volume' is missing; the columns are ['date', 'close', 'vol', "
        "'ticker', 'open']. Pass columns={'vol': 'volume'} to map yours to it."
    )


def test_the_shipped_model_forecasts_a_close_only_series_from_derived_covariates():
    from tasks.cli import demo_prices

    fc = tasks.load("forecasting")
    prices = demo_prices()
    close = prices.set_index("date")["close"]  # README: a pandas Series with a DatetimeIndex
    with pytest.warns(UserWarning) as caught:
        out = fc.predict(close)
    assert [str(w.message) for w in caught] == [
        "The data holds only 'close'; this model also reads the covariates ['open', 'high', "
        "'low', 'volume']. Derived them: ['open', 'high', 'low'] copy 'close' and ['volume'] "
        "move by their average training step; expect intervals narrower than from the full "
        "data. Pass the covariates, or train a 'close'-only model with "
        "ForecastPipeline(features=[])."
    ]
    full = fc.predict(prices)
    assert out.id.unique().tolist() == ["series"] and len(out) == fc.horizon
    assert (out.date.to_numpy() == full.date.to_numpy()).all()
    assert np.allclose(out.forecast, full.forecast, rtol=0.01)  # close to the full bars' answer
    assert (out.q10 < out.q50).all() and (out.q50 < out.q90).all()
    with pytest.warns(UserWarning, match="^The data holds only 'close'"):
        table = fc.predict(prices[["date", "close"]])  # a close-only table: the same
    assert np.allclose(table.forecast, out.forecast)
    with pytest.raises(PipelineError, match="^The feature column 'open' is missing"):
        fc.predict(prices.drop(columns="open"))  # a partial table is a mistake: no guessing


def test_training_never_derives_covariates(walk_model):
    with pytest.raises(PipelineError, match="^The feature column 'volume' is missing"):
        walk_model.fine_tune(random_walks()[["date", "ticker", "close"]], epochs=1, verbose=0)
