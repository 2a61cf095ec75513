"""Every shipped pipeline, exported to ONNX and LiteRT, run in a fresh process
without seqkit, gives the pipeline's own answers: sentiment probabilities,
forecasts, greedy text and greedy translations."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import tasks
from tasks.translation import END_ID
from tests.tasks.test_portable_generation import (
    RUN_EXPORTED,
    RUN_GREEDY,
    read_vocabulary,
    run_fresh,
)

pytestmark = pytest.mark.slow
FORMATS = ("onnx", "litert")


def _files(folder, part):
    ext = "onnx" if folder.endswith("onnx") else "tflite"
    return os.path.join(folder, f"{part}.{ext}")


def _export(pipeline, root):
    return {fmt: pipeline.export(os.path.join(root, fmt), format=fmt) for fmt in FORMATS}


def _run_model_part(folders, tmp_path):
    """Each folder's `model` part on in.npz, in a fresh process: (jobs, outputs)."""
    jobs = [
        {
            "path": _files(f, "model"),
            "inputs": str(tmp_path / "in.npz"),
            "output": str(tmp_path / f"{k}.npz"),
        }
        for k, f in folders.items()
    ]
    return jobs, run_fresh(RUN_EXPORTED, jobs, str(tmp_path))


def _check_builtin(got):
    if "operators" in got:
        operators = [str(op) for op in got["operators"]]
        assert not [op for op in operators if op.startswith("custom:")], operators


def test_shipped_sentiment(tmp_path):
    clf = tasks.load("sentiment")
    texts = [
        "A moving, beautifully acted film.",
        "Dull, predictable and far too long. I wanted my money back.",
        "Not bad at all.",
        "",
    ]
    ids = clf.vectorizer(tf.constant(texts)).to_tensor().numpy()
    np.savez(tmp_path / "in.npz", token_ids=np.pad(ids, [(0, 0), (0, 1)]).astype("int32"))
    jobs, got = _run_model_part(_export(clf, str(tmp_path)), tmp_path)
    want = clf.predict_proba(texts)
    for job in jobs:
        out = got[job["output"]]
        assert "error" not in out, out.get("error")
        _check_builtin(out)
        np.testing.assert_allclose(out["name:probabilities"], want, atol=1e-5, rtol=0)


def test_shipped_forecasting(tmp_path):
    fc = tasks.load("forecasting")
    rng = np.random.RandomState(0)
    n = fc.lookback + 30
    frames = []
    for k, ticker in enumerate(["AAA", "BBB"]):
        close = 40 * (k + 1) * np.exp(np.cumsum(rng.normal(0, 0.015, n)))
        frame = {"date": pd.bdate_range("2021-01-04", periods=n), "ticker": ticker, "close": close}
        for column in fc.columns:
            if column != "close":
                base = rng.randint(10**5, 10**6, n).astype(float) if column == "volume" else close
                frame[column] = base * np.exp(rng.normal(0, 0.003, n))
        frames.append(pd.DataFrame(frame))
    history = pd.concat(frames, ignore_index=True)
    windows, _, _ = fc.preprocessor.history_windows(fc._read(history))
    windows = windows.astype("float32")
    want = fc._forecast_windows(windows)
    np.savez(tmp_path / "in.npz", window=windows)
    jobs, got = _run_model_part(_export(fc, str(tmp_path)), tmp_path)
    for job in jobs:
        out = got[job["output"]]
        assert "error" not in out, out.get("error")
        _check_builtin(out)
        np.testing.assert_allclose(out["name:quantiles"], want, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(
            out["name:forecast"], want[:, :, fc.point_index], rtol=1e-5, atol=1e-4
        )


def test_shipped_textgen_greedy(tmp_path):
    lm = tasks.load("textgen")
    prompt = "ROMEO:\nBut soft"
    folders = _export(lm, str(tmp_path))
    jobs = [
        {
            "kind": "lm",
            "folder": folder,
            "prompt": lm.preprocessor(prompt).tolist(),
            "rows": 1,
            "steps": 40,
            "output": str(tmp_path / f"{fmt}.npz"),
        }
        for fmt, folder in folders.items()
    ]
    got = run_fresh(RUN_GREEDY, jobs, str(tmp_path))
    want = lm.generate(prompt, max_length=40, temperature=0, include_prompt=False)
    for job in jobs:
        out = got[job["output"]]
        assert "error" not in out, out.get("error")
        assert lm.tokenizer.decode_python(out["tokens"][0].tolist()) == want


def test_shipped_translation_greedy(tmp_path):
    mt = tasks.load("translation")
    sentences = ["Tengo hambre.", "¿Dónde está la estación?", "Me gusta leer libros por la noche."]
    source = mt.preprocessor(sentences).astype(np.int32)
    np.savez(tmp_path / "source.npz", source_ids=source)
    folders = _export(mt, str(tmp_path))
    jobs = [
        {
            "kind": "seq2seq",
            "folder": folder,
            "inputs": str(tmp_path / "source.npz"),
            "steps": mt.preprocessor.target_max_length,
            "output": str(tmp_path / f"{fmt}.npz"),
        }
        for fmt, folder in folders.items()
    ]
    got = run_fresh(RUN_GREEDY, jobs, str(tmp_path))
    want = mt.translate(sentences, beam_width=1, return_attention=True)
    for job, folder in zip(jobs, folders.values()):
        out = got[job["output"]]
        assert "error" not in out, out.get("error")
        shared = os.path.join(folder, "vocabulary.txt")  # subwords: one shared vocabulary
        if not os.path.exists(shared):
            shared = os.path.join(folder, "target_vocabulary.txt")
        vocabulary = read_vocabulary(shared)
        for row, tokens in zip(want, out["tokens"]):
            tokens = tokens.tolist()
            n = tokens.index(END_ID) + 1 if END_ID in tokens else len(tokens)
            assert [vocabulary[t] for t in tokens[:n]] == row["target_tokens"]
