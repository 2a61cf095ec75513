"""Every seqkit layer configuration through Keras's own ``model.export`` to
ONNX and LiteRT, run in a fresh process (onnxruntime, the LiteRT
interpreter; seqkit not imported) and compared with ``model.predict``; every
``.tflite`` holds TFLite built-in operators only (no Flex, no custom op)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import seqkit.layers as L

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        keras.backend.backend() != "tensorflow",
        reason="Keras exports ONNX and LiteRT from the TensorFlow backend (tested there)",
    ),
]

RUNNER = os.path.join(os.path.dirname(os.path.dirname(__file__)), "run_exported.py")
F, B, T = 3, 4, 7


def _seq(layer, **input_kw):
    x = keras.Input((None, F), name="x", **input_kw)
    y = layer(x)
    y = y[0] if isinstance(y, (list, tuple)) else y
    return keras.Model(x, y)


def _masked(layer):
    """Integer tokens, 0 = padding: Embedding(mask_zero=True) gives the mask."""
    x = keras.Input((None,), dtype="int32", name="x")
    e = keras.layers.Embedding(9, F, mask_zero=True)(x)
    return keras.Model(x, layer(e))


def _state_outputs(layer):
    x = keras.Input((None, F), name="x")
    return keras.Model(x, layer(x))  # output, then the final states


def _initial_state(cell_units=5):
    x = keras.Input((None, F), name="x")
    h0 = keras.Input((cell_units,), name="h0")
    return keras.Model([x, h0], L.GRU(cell_units, return_sequences=True)(x, initial_state=[h0]))


def _attention():
    q = keras.Input((None, 6), name="q")
    k = keras.Input((None, 6), name="k")
    dec = L.LSTM(6, return_sequences=True)(q)
    enc = L.GRU(6, return_sequences=True)(k)
    context, weights = L.DecoderAttention(6)(dec, enc)
    return keras.Model([q, k], [context, weights])


def _pooled():
    x = keras.Input((None,), dtype="int32", name="x")
    e = keras.layers.Embedding(9, F, mask_zero=True)(x)
    y = L.GRU(5, return_sequences=True)(e)
    return keras.Model(x, L.MaskedGlobalPooling("max_mean")(y))


CONFIGS = {
    "simple_rnn": lambda: _seq(L.SimpleRNN(5)),
    "lstm": lambda: _seq(L.LSTM(5)),
    "gru": lambda: _seq(L.GRU(5)),
    "gru_reset_before": lambda: _seq(L.GRU(5, reset_after=False)),
    "lstm_sequences": lambda: _seq(L.LSTM(5, return_sequences=True)),
    "gru_sequences_reset_before": lambda: _seq(L.GRU(5, reset_after=False, return_sequences=True)),
    "simple_rnn_go_backwards": lambda: _seq(
        L.SimpleRNN(5, go_backwards=True, return_sequences=True)
    ),
    "lstm_go_backwards": lambda: _seq(L.LSTM(5, go_backwards=True)),
    "lstm_return_state": lambda: _state_outputs(
        L.LSTM(5, return_sequences=True, return_state=True)
    ),
    "gru_return_state": lambda: _state_outputs(L.GRU(5, return_state=True)),
    "lstm_trainable_initial_state": lambda: _seq(L.LSTM(5, trainable_initial_state=True)),
    "gru_initial_state_input": _initial_state,
    "lstm_mask": lambda: _masked(L.LSTM(5)),
    "gru_mask_sequences": lambda: _masked(L.GRU(5, return_sequences=True)),
    "simple_rnn_mask_go_backwards": lambda: _masked(L.SimpleRNN(5, go_backwards=True)),
    "bidirectional_concat": lambda: _seq(L.Bidirectional(L.LSTM(4, return_sequences=True))),
    "bidirectional_sum": lambda: _seq(L.Bidirectional(L.GRU(4), merge_mode="sum")),
    "bidirectional_mul": lambda: _seq(L.Bidirectional(L.SimpleRNN(4), merge_mode="mul")),
    "bidirectional_ave_mask": lambda: _masked(L.Bidirectional(L.LSTM(4), merge_mode="ave")),
    "bidirectional_none": lambda: _state_outputs(L.Bidirectional(L.GRU(4), merge_mode=None)),
    "bidirectional_return_state": lambda: _state_outputs(
        L.Bidirectional(L.LSTM(4, return_state=True))
    ),
    "stacked_lstm": lambda: keras.Sequential(
        [keras.Input((None, F), name="x"), L.LSTM(6, return_sequences=True), L.LSTM(5)]
    ),
    "recurrent_stack_bidirectional_mask": lambda: _masked(
        L.RecurrentStack("gru", units=4, layers=2, bidirectional=True, return_sequences=False)
    ),
    "lstm_relu": lambda: _seq(L.LSTM(5, activation="relu")),  # no fused loop: the cell's step
    "gru_hard_sigmoid_mask": lambda: _masked(
        L.GRU(5, recurrent_activation="hard_sigmoid", return_sequences=True)
    ),
    "attention": _attention,
    "masked_pooling": _pooled,
}


def _inputs(model, batch, time, rng):
    arrays = {}
    for spec in model.inputs:
        name = spec.name
        if "int" in str(spec.dtype):
            tokens = rng.integers(1, 9, size=(batch, time)).astype("int32")
            for row in range(batch):  # right padding of every length, a full row too
                tokens[row, time - row % time :] = 0 if row % time else tokens[row, 0]
            tokens[0, 0] = 0  # and a left-padded row
            arrays[name] = tokens
        elif len(spec.shape) == 2:
            arrays[name] = rng.normal(size=(batch, spec.shape[1])).astype("float32")
        else:
            arrays[name] = rng.normal(size=(batch, time, spec.shape[-1])).astype("float32")
    return arrays


def _flat(y):
    return [np.asarray(v) for v in (y if isinstance(y, (list, tuple)) else [y])]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Exports every configuration to both formats, then runs all of them in
    one fresh process; returns {(config, format): (expected, got, extra)}."""
    root = tmp_path_factory.mktemp("formats")
    rng = np.random.default_rng(0)
    jobs, expected, failures = [], {}, {}
    for name, build in CONFIGS.items():
        keras.utils.set_random_seed(1)
        model = build()
        # Two input shapes: the exported files must take any batch and length.
        feeds = [_inputs(model, B, T, rng), _inputs(model, 1, 3, rng)]
        wants = []
        for arrays in feeds:  # predict first: Keras exports only a model that was called
            order = [arrays[i.name] for i in model.inputs]
            wants.append(_flat(model.predict(order if len(order) > 1 else order[0], verbose=0)))
        for fmt, ext in (("onnx", "onnx"), ("litert", "tflite")):
            path = str(root / f"{name}.{ext}")
            try:
                model.export(path, format=fmt, verbose=False)
            except Exception as error:  # reported by the test of this configuration
                failures[(name, fmt)] = f"{type(error).__name__}: {str(error)[:2000]}"
                continue
            for k, arrays in enumerate(feeds):
                stem = str(root / f"{name}-{fmt}-{k}")
                np.savez(stem + "-in.npz", **arrays)
                expected[(name, fmt, k)] = wants[k]
                jobs.append({"path": path, "inputs": stem + "-in.npz", "output": stem + "-out.npz"})
    with open(root / "jobs.json", "w") as f:
        json.dump(jobs, f)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, RUNNER, str(root / "jobs.json")],
        capture_output=True,
        text=True,
        cwd=str(root),
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = {}
    for key, want in expected.items():
        name, fmt, k = key
        with np.load(str(root / f"{name}-{fmt}-{k}-out.npz")) as data:
            error = str(data["error"]) if "error" in data.files else None
            got = [] if error else [data[f"out_{i}"] for i in range(len(want))]
            extra = list(data["operators"]) if "operators" in data.files else None
        results[key] = (want, got, extra, error)
    return results, failures


@pytest.mark.parametrize("fmt", ["onnx", "litert"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_export_runs_and_matches_predict(exported, name, fmt):
    results, failures = exported
    assert (name, fmt) not in failures, failures.get((name, fmt))
    for k in (0, 1):
        want, got, operators, error = results[(name, fmt, k)]
        if fmt == "litert":
            flex = [op for op in operators if op.startswith("custom:")]
            assert not flex, f"{name}: non-built-in operators {flex}"
        assert error is None, error
        assert len(got) == len(want)
        for w, g in zip(want, got):
            assert g.shape == w.shape
            np.testing.assert_allclose(g, w, atol=1e-5, rtol=0)
