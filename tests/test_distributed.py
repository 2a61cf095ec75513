"""Multi-worker training (seqkit.distributed, `seqkit train --workers N`) over localhost.

The cluster tests start real worker processes on loopback ports, each bounded
in time; they compare the chief's saved pipeline with a one-process run over
the same global batch (tolerance 1e-5: the same steps, summed in another order).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from seqkit.distributed import WorkerTimeoutError, read_tf_config, wait_for_workers
from seqkit.errors import UsageError
from tasks.cli import demo_prices, main
from tasks.workers import tf_configs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(ROOT, "tests", "run_worker.py")
TIMEOUT = 240  # seconds any cluster run may take before the test fails
TOLERANCE = 1e-5

SENTIMENT = ["--set", "units=8", "--set", "embedding_dim=8", "--set", "max_tokens=64"]
SENTIMENT += ["--set", "max_length=24", "--set", "dropout=0"]
FORECAST = dict(lookback=10, horizon=2, units=8, dropout=0.0)


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return {**env, "CUDA_VISIBLE_DEVICES": "", **extra}


def _weights(folder) -> list[np.ndarray]:
    out = []
    with h5py.File(os.path.join(folder, "model.weights.h5"), "r") as f:
        f.visititems(
            lambda name, obj: out.append(obj[()]) if isinstance(obj, h5py.Dataset) else None
        )
    return out


def _max_difference(a, b) -> float:
    wa, wb = _weights(a), _weights(b)
    assert len(wa) == len(wb) and wa
    return max(float(np.max(np.abs(x - y))) for x, y in zip(wa, wb, strict=True))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from tests.tasks.conftest import make_reviews

    folder = tmp_path_factory.mktemp("data")
    texts, labels = make_reviews(200, seed=5)
    reviews = folder / "reviews.csv"
    import pandas as pd

    pd.DataFrame({"text": texts, "label": labels}).to_csv(reviews, index=False)
    prices = folder / "prices.csv"
    # 297 days: 256 training windows (16 batches of 16) and 28 validation windows.
    demo_prices(n=297).to_csv(prices, index=False)
    return {"sentiment": str(reviews), "forecasting": str(prices)}


def _run_cli(args, **env):
    command = [sys.executable, "-m", "tasks.cli", "train", *args]
    done = subprocess.run(command, env=_env(**env), capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def _workers(job: dict | list, n: int, folder, **env) -> list[subprocess.Popen]:
    """N worker processes of ``job`` (or of ``job[i]`` each, given a list)."""
    jobs = job if isinstance(job, list) else [job] * n
    procs = []
    for i, config in enumerate(tf_configs(n) if n > 1 else [""]):
        path = os.path.join(folder, f"job{i}.json")
        with open(path, "w") as f:
            json.dump(jobs[i], f)
        log = open(os.path.join(folder, f"worker{i}.log"), "w")  # noqa: SIM115
        procs.append(
            subprocess.Popen(
                [sys.executable, WORKER, path],
                env=_env(TF_CONFIG=config, **env),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    return procs


def _wait(procs, folder) -> None:
    for i, p in enumerate(procs):
        try:
            code = p.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            code = "timeout"
        if code != 0:
            for q in procs:
                q.kill()
            with open(os.path.join(folder, f"worker{i}.log")) as f:
                raise AssertionError(f"worker {i}: {code}\n{f.read()[-3000:]}")


# ----------------------------------------------------------------- TF_CONFIG
@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "TF_CONFIG is not valid JSON"),
        ('{"task": {"type": "worker", "index": 0}}', 'TF_CONFIG has no "cluster" object'),
        ('{"cluster": {"worker": ["localhost:1"]}}', 'TF_CONFIG has no "task" object'),
        (
            '{"cluster": {"worker": ["localhost"]}, "task": {"type": "worker", "index": 0}}',
            "TF_CONFIG: cluster.worker[0] is 'localhost'; expected 'host:port'.",
        ),
        (
            '{"cluster": {"worker": ["a:1"], "ps": ["b:2"]}, "task": {"type": "worker", "index": 0}}',
            "TF_CONFIG: jobs ['ps'] are not supported",
        ),
        (
            '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}',
            "TF_CONFIG: task.index is 2, but cluster.worker has 2 entries.",
        ),
    ],
)
def test_malformed_tf_config_is_refused(text, message):
    with pytest.raises(UsageError) as info:
        read_tf_config(text)
    assert message in str(info.value)


def test_chief_counts_as_worker_zero():
    text = '{"cluster": {"chief": ["a:1"], "worker": ["b:2", "c:3"]}, "task": {"type": "worker", "index": 1}}'
    cluster = read_tf_config(text)
    assert cluster.workers == ("a:1", "b:2", "c:3") and cluster.index == 2
    assert not cluster.is_chief and read_tf_config("") is None


def test_malformed_tf_config_fails_seqkit_train(monkeypatch, capsys, data):
    monkeypatch.setenv("TF_CONFIG", "{oops")
    out = str(data["sentiment"]) + ".out"
    assert main(["train", "sentiment", "--data", data["sentiment"], "--out", out]) == 2
    assert "TF_CONFIG is not valid JSON" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--workers", "0"], "--workers 0: expected a positive number of workers."),
        (
            ["--workers", "2", "--strategy", "mirrored"],
            "--workers starts its own multi-worker strategy; drop --strategy mirrored",
        ),
    ],
)
def test_bad_workers_arguments(capsys, data, extra, message):
    args = ["train", "sentiment", "--data", data["sentiment"], "--out", "unused", *extra]
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_even_batches_cut_partial_batches_to_a_multiple_of_the_workers():
    import tensorflow as tf

    from seqkit.distributed import even_batches

    x = tf.data.Dataset.range(11).batch(4)  # 4, 4, 3
    y = tf.data.Dataset.range(9).batch(4).map(lambda b: (b, -b))  # 4, 4, 1
    assert [b.numpy().tolist() for b in even_batches(x, 2)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    pairs = [(a.numpy().tolist(), b.numpy().tolist()) for a, b in even_batches(y, 2)]
    assert pairs == [([0, 1, 2, 3], [0, -1, -2, -3]), ([4, 5, 6, 7], [-4, -5, -6, -7])]


def test_a_worker_that_never_joins_times_out_naming_it():
    config = tf_configs(2)[0]
    cluster = read_tf_config(config)
    started = time.monotonic()
    with pytest.raises(WorkerTimeoutError) as info:
        wait_for_workers(cluster, timeout=3)
    assert time.monotonic() - started < 10
    assert f"worker 1 ({cluster.workers[1]})" in str(info.value)


@pytest.mark.slow
def test_seqkit_train_ends_with_the_timeout_error_not_a_hang(tmp_path, data):
    # Worker 1 of the cluster is never started.
    command = [sys.executable, "-m", "tasks.cli", "train", "sentiment", "--data", data["sentiment"]]
    command += ["--out", str(tmp_path / "out"), "--epochs", "1", *SENTIMENT]
    env = _env(TF_CONFIG=tf_configs(2)[0], SEQKIT_WORKER_TIMEOUT="5")
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "Timed out after 5 s waiting for worker 1 (localhost:" in done.stderr
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------- clusters
@pytest.mark.slow
def test_two_workers_cli_equal_one_process_sentiment(tmp_path, data):
    common = ["sentiment", "--data", data["sentiment"], "--epochs", "2", "--batch-size", "16"]
    common += [*SENTIMENT, "--checkpoint-dir", "", "--learning-rate", "0.01", "--verbose", "0"]
    _run_cli([*common, "--out", str(tmp_path / "one")])
    done = _run_cli([*common, "--out", str(tmp_path / "two"), "--workers", "2"])
    assert "[worker 0] Saved the trained sentiment pipeline" in done.stdout
    assert _max_difference(tmp_path / "one", tmp_path / "two") < TOLERANCE
    assert sorted(os.listdir(tmp_path)) == ["one", "two"]  # no worker copy left beside it


def _stream_job(kind, data, tmp_path):
    if kind == "sentiment":
        # 180 training rows in chunks of 54, 54, 54, 18: worker 0 takes chunks 0 and 2
        # (12 batches of 8), worker 1 chunks 1 and 3 (8 batches); both take 8 an epoch.
        config = dict(units=8, embedding_dim=8, max_tokens=64, max_length=24, dropout=0.0)
        fit = dict(epochs=2, batch_size=16, checkpoint_dir=None, learning_rate=1e-2)
        return {"task": "sentiment", "config": config, "data": data["sentiment"], "stream": 60,
                "fit": fit}  # fmt: skip
    rng = np.random.RandomState(0)  # word-level text in 5 chunks of 4,000 characters
    words = ["the", "king", "queen", "speaks", "and", "goes", "to", "war", "now", "we"]
    text = "\n".join(" ".join(rng.choice(words, 12)) for _ in range(400)) + "\n"
    (tmp_path / "corpus.txt").write_text(text)
    config = dict(level="word", seq_length=16, units=16, embedding_dim=8, dropout=0.0)
    fit = dict(epochs=2, batch_size=8, checkpoint_dir=None, learning_rate=1e-2)
    return {"task": "textgen", "config": config, "data": str(tmp_path / "corpus.txt"),
            "stream": 4000, "fit": fit}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sentiment", "textgen"])
def test_two_workers_shard_a_stream_by_chunk(tmp_path, data, kind):
    """Each worker trains on its own chunks: the cluster equals one process fed, step by
    step, both workers' batches joined."""
    job = _stream_job(kind, data, tmp_path)
    results = {}
    for name, n, extra in (("workers", 2, {}), ("reference", 1, {"reference": 2})):
        folder = tmp_path / name
        folder.mkdir()
        out = str(folder / "model")
        _wait(_workers({**job, "out": out, **extra}, n, folder), folder)
        results[name] = out
    assert _max_difference(results["workers"], results["reference"]) < TOLERANCE


def _forecast_job(data, out, ckpt, epochs=2):
    fit = dict(epochs=epochs, batch_size=16, checkpoint_dir=ckpt, learning_rate=1e-2, patience=5)
    return {"task": "forecasting", "config": FORECAST, "data": data, "out": out, "fit": fit}


@pytest.mark.slow
def test_two_workers_python_api_fit_and_fine_tune_equal_one_process_forecasting(tmp_path, data):
    results = {}
    for n in (1, 2):
        folder = tmp_path / f"run{n}"
        folder.mkdir()
        out = str(folder / "model")
        job = _forecast_job(data["forecasting"], out, None)
        job["fine_tune"] = dict(epochs=1, batch_size=16, checkpoint_dir=None, learning_rate=1e-3)
        procs = _workers(job, n, folder)
        _wait(procs, folder)
        results[n] = out
    assert _max_difference(results[1], results[2]) < TOLERANCE


@pytest.mark.slow
def test_workers_that_run_different_jobs_all_stop_with_one_error(tmp_path, data):
    jobs = [_forecast_job(data["forecasting"], str(tmp_path / "model"), None, epochs=e)
            for e in (2, 3)]  # fmt: skip
    procs = _workers(jobs, 2, tmp_path)
    for i, p in enumerate(procs):
        assert p.wait(timeout=TIMEOUT) != 0
        with open(tmp_path / f"worker{i}.log") as f:
            assert "UsageError: The workers disagree on the run (its arguments" in f.read()
    assert not (tmp_path / "model").exists()


@pytest.mark.slow
def test_sigkill_a_worker_then_restart_resumes_from_the_last_epoch(tmp_path, data):
    ckpt = str(tmp_path / "ckpt")
    reference = tmp_path / "reference"
    reference.mkdir()
    ref_job = _forecast_job(data["forecasting"], str(reference / "model"), None, epochs=3)
    _wait(_workers(ref_job, 1, reference), reference)

    folder = tmp_path / "cluster"
    folder.mkdir()
    job = _forecast_job(data["forecasting"], str(folder / "model"), ckpt, epochs=3)
    procs = _workers(job, 2, folder)
    deadline = time.monotonic() + TIMEOUT
    state = None
    while time.monotonic() < deadline and procs[0].poll() is None:
        paths = [
            os.path.join(r, "state.json") for r, _, files in os.walk(ckpt) if "state.json" in files
        ]
        if paths:
            with open(paths[0]) as f:
                state = json.load(f)
            if state["epoch"] >= 1:
                break
        time.sleep(0.05)
    assert state is not None and state["epoch"] == 1, "no epoch-1 checkpoint appeared"
    procs[1].send_signal(signal.SIGKILL)
    procs[0].send_signal(signal.SIGKILL)  # the chief would wait on its collectives forever
    for p in procs:
        p.wait(timeout=30)
    assert not os.path.exists(folder / "model")

    restarted = _workers(job, 2, folder)
    _wait(restarted, folder)
    with open(folder / "worker0.log") as f:
        assert "epochs trained: 3" in f.read()
    with open(folder / "model" / "pipeline.json") as f:
        history = json.load(f)["history"]
    # Epoch 1 was not rerun: its timing is the killed run's.
    assert history["epoch_seconds"][0] == state["history"]["epoch_seconds"][0]
    assert _max_difference(reference / "model", folder / "model") < TOLERANCE
