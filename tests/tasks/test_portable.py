"""Sentiment and forecasting pipelines exported to ONNX and LiteRT (plain and
quantized): run in a fresh process without seqkit (tests/run_exported.py),
compared with ``predict``; every .tflite built-in operators only; the folder
holds the files and README it promises; bad input gets a clear error."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tasks.base import PipelineError
from tasks.forecasting import ForecastPipeline
from tests.tasks.test_forecasting import random_walks
from tests.tasks.test_portable_generation import RUN_EXPORTED, run_fresh

pytestmark = pytest.mark.slow

# (format, quantize, tolerance on probabilities / on forecasts relative to the price)
VARIANTS = [("onnx", None, 1e-5), ("litert", None, 1e-5), ("litert", "float16", 2e-2)]
VARIANTS += [("litert", "dynamic_int8", 5e-2)]


def export_all(pipeline, root, feeds):
    """Exports every variant and runs it on `feeds`; returns {variant: outputs}."""
    jobs, where = [], {}
    for fmt, quantize, _ in VARIANTS:
        tag = f"{fmt}-{quantize}"
        folder = os.path.join(root, tag)
        kwargs = {"quantize": quantize} if quantize else {}
        assert pipeline.export(folder, format=fmt, **kwargs) == folder
        ext = "onnx" if fmt == "onnx" else "tflite"
        np.savez(os.path.join(root, f"{tag}-in.npz"), **feeds)
        job = {
            "path": os.path.join(folder, f"model.{ext}"),
            "inputs": os.path.join(root, f"{tag}-in.npz"),
            "output": os.path.join(root, f"{tag}-out.npz"),
        }
        jobs.append(job)
        where[(fmt, quantize)] = job["output"]
    results = run_fresh(RUN_EXPORTED, jobs, root)
    return {key: results[path] for key, path in where.items()}


def check_folder(folder, fmt, files):
    ext = "onnx" if fmt == "onnx" else "tflite"
    assert sorted(os.listdir(folder)) == sorted(
        files + ["README.md", "signature.json", f"model.{ext}"]
    )
    readme = open(os.path.join(folder, "README.md"), encoding="utf-8").read()
    signature = json.load(open(os.path.join(folder, "signature.json")))
    for part in signature["parts"].values():
        for tensor in part["inputs"] + part["outputs"]:
            assert f"`{tensor['name']}`" in readme


def check_builtin(outputs):
    operators = [str(op) for op in outputs["operators"]]
    assert operators and not [op for op in operators if op.startswith("custom:")], operators


@pytest.fixture(scope="module")
def with_ngrams():
    """A sentiment pipeline with every head the shipped one has: BiGRU and n-grams,
    combined by fitted weights."""
    from tasks.sentiment import SentimentPipeline
    from tests.tasks.conftest import SMALL, make_reviews

    texts, labels = make_reviews(300)
    clf = SentimentPipeline(**SMALL, ngram_buckets=128, ngram_order=3, seed=3)
    return clf.fit((texts, labels), epochs=2, verbose=0, checkpoint_dir=None)


def test_sentiment_exports_match_predict(with_ngrams, tmp_path):
    trained = with_ngrams
    texts = ["a good film", "the plot was dull and boring", "superb", "", "awful awful movie " * 3]
    ids = trained.vectorizer(tf.constant(texts)).to_tensor().numpy()
    ids = np.pad(ids, [(0, 0), (0, 1)]).astype("int32")  # as the README says: one more padding
    want = trained.predict_proba(texts)
    results = export_all(trained, str(tmp_path), {"token_ids": ids})
    for fmt, quantize, tol in VARIANTS:
        got = results[(fmt, quantize)]
        assert "error" not in got, got.get("error")
        np.testing.assert_allclose(got["name:probabilities"], want, atol=tol, rtol=0)
        if fmt == "litert":
            check_builtin(got)
    folder = str(tmp_path / "onnx-None")
    check_folder(folder, "onnx", ["tokenizer.json", "vocabulary.txt"])
    with open(os.path.join(folder, "vocabulary.txt"), encoding="utf-8") as f:
        vocabulary = [json.loads(f'"{line}"') for line in f.read().split("\n")[:-1]]
    assert vocabulary == trained.vectorizer.vocabulary
    settings = json.load(open(os.path.join(folder, "tokenizer.json")))
    assert settings["labels"] == [str(x) for x in trained.labels]


def test_forecasting_exports_match_predict(tmp_path):
    data = random_walks(n_series=2, n=300)
    fc = ForecastPipeline(lookback=20, horizon=3, units=8, seed=1)
    fc.fit(data, epochs=1, verbose=0, checkpoint_dir=None, batch_size=64)
    windows, _, _ = fc.preprocessor.history_windows(fc._read(data))
    windows = windows.astype("float32")
    want = fc._forecast_windows(windows)  # (series, horizon, Q), as predict() reports them
    table = fc.predict(data)
    np.testing.assert_allclose(want[:, :, fc.point_index].ravel(), table["forecast"], rtol=1e-5)
    results = export_all(fc, str(tmp_path), {"window": windows})
    for fmt, quantize, tol in VARIANTS:
        got = results[(fmt, quantize)]
        assert "error" not in got, got.get("error")
        scale = np.abs(want).max()
        np.testing.assert_allclose(got["name:quantiles"], want, atol=tol * scale * 0.1, rtol=0)
        np.testing.assert_allclose(
            got["name:forecast"], want[:, :, fc.point_index], atol=tol * scale * 0.1
        )
        if fmt == "litert":
            check_builtin(got)
    check_folder(str(tmp_path / "litert-None"), "litert", ["forecast.json"])


def test_export_errors_say_what_to_do(trained, tmp_path):
    cases = [
        (
            dict(format="tflite"),
            "Received `format='tflite'`; expected one of ['saved_model', 'onnx', 'litert']",
        ),
        (
            dict(format="onnx", quantize="float16"),
            "Received `quantize='float16'` with format='onnx'; quantization is a LiteRT option: pass format='litert'.",
        ),
        (
            dict(format="litert", quantize="int4"),
            "Received `quantize='int4'`; expected one of ['float16', 'dynamic_int8']",
        ),
        (
            dict(format="onnx", beam_width=2),
            "Unknown argument(s) ['beam_width'] for exporting a sentiment pipeline to onnx; it takes none.",
        ),
    ]
    for kwargs, message in cases:
        with pytest.raises(PipelineError, match=re.escape(message)):
            trained.export(str(tmp_path / "x"), **kwargs)
    assert not os.path.exists(tmp_path / "x")
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "mine.txt").write_text("keep me")
    for fmt in ("saved_model", "onnx", "litert"):
        with pytest.raises(PipelineError) as info:
            trained.export(str(taken), format=fmt)
        assert str(info.value) == (
            f"{taken} already exists; export to a new folder, or pass overwrite=True "
            "(--overwrite) to replace it once the new copy is complete."
        )
    assert (taken / "mine.txt").read_text() == "keep me"
    trained.export(str(taken), format="onnx", overwrite=True)
    assert os.path.isfile(taken / "model.onnx") and not os.path.exists(taken / "mine.txt")
    untrained = type(trained)()
    with pytest.raises(PipelineError, match="fit"):
        untrained.export(str(tmp_path / "never"), format="litert")


def test_cli_export_formats(tmp_path):
    """`seqkit export MODEL OUT --format litert --quantize dynamic_int8` on a shipped model."""
    out = tmp_path / "litert"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tasks.cli",
            "export",
            "sentiment",
            str(out),
            "--format",
            "litert",
            "--quantize",
            "dynamic_int8",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"Exported LiteRT to {out} (inputs, outputs and files: README.md there)" in proc.stdout
    assert json.load(open(out / "signature.json"))["quantize"] == "dynamic_int8"
    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "tasks.cli",
            "export",
            "sentiment",
            str(out),
            "--format",
            "onnx",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode != 0 and "already exists" in again.stderr
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "tasks.cli",
            "export",
            "sentiment",
            str(tmp_path / "y"),
            "--format",
            "onnx",
            "--quantize",
            "float16",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert bad.returncode != 0
    assert "quantization is a LiteRT option: pass format='litert'" in bad.stderr
