"""cuDNN dispatch (`seqkit.layers._cudnn`): which calls go to Keras's cuDNN
functions on a GPU, on every backend, checked on a CPU.

A GPU is simulated (`gpu_available` patched) and Keras's `backend.lstm` /
`backend.gru` replaced: by Keras's own layer with cuDNN off (so the arguments
and the output packaging are checked against Keras), or by a spy that records
the call and raises NotImplementedError (Keras's "not here" answer, so
seqkit's fused loops run) to see where dispatch happens: in training, and
never in an export trace. The real cuDNN test runs only on a GPU.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras.src import backend as keras_backend

import seqkit.layers as sk
from seqkit.layers import _cudnn

BACKEND = keras.backend.backend()
KINDS = {"tensorflow": ("lstm", "gru"), "jax": ("lstm",)}.get(BACKEND, ())
needs_dispatch = pytest.mark.skipif(not KINDS, reason=f"no cuDNN dispatch on {BACKEND}")


@pytest.fixture
def gpu(monkeypatch):
    monkeypatch.setattr(_cudnn, "gpu_available", lambda: True)


def _layer(kind="lstm", **kwargs):
    cls = {"lstm": sk.LSTM, "gru": sk.GRU, "simple": sk.SimpleRNN}[kind]
    layer = cls(6, **kwargs)
    layer.build((3, 5, 4))
    return layer


def _spy(monkeypatch):
    calls = []

    def record(name):
        def fake(*args, **kwargs):
            calls.append(name)
            raise NotImplementedError

        return fake

    monkeypatch.setattr(keras_backend, "lstm", record("lstm"))
    monkeypatch.setattr(keras_backend, "gru", record("gru"))
    return calls


@needs_dispatch
@pytest.mark.parametrize(
    "kind, kwargs, reason",
    [
        ("lstm", {}, None),
        ("gru", {}, None if "gru" in KINDS else "configuration"),
        ("gru", {"reset_after": False}, "configuration"),
        ("simple", {}, "configuration"),
        ("lstm", {"activation": "relu"}, "configuration"),
        ("lstm", {"use_cudnn": False}, "use_cudnn=False"),
        ("lstm", {"use_cudnn": True}, None),
        ("lstm", {"use_bias": False}, "use_bias=False"),
        ("lstm", {"unroll": True}, "unroll=True"),
    ],
)
def test_which_configurations_go_to_cudnn(gpu, kind, kwargs, reason):
    found = _cudnn.plan(_layer(kind, **kwargs))
    assert found == reason or (reason is not None and found and reason in found)


@needs_dispatch
def test_what_keeps_a_call_off_cudnn(gpu, monkeypatch):
    layer = _layer("lstm")
    assert _cudnn.plan(layer, recurrent_dropout=True) == "recurrent dropout"
    assert _cudnn.plan(layer, mask=np.ones((3, 5), bool)) == "a mask"
    monkeypatch.setattr(_cudnn, "ENABLED", False)
    assert _cudnn.plan(layer) == "disabled"


def test_no_gpu_no_cudnn():
    reason = _cudnn.plan(_layer("lstm"))
    if not KINDS:
        assert reason == f"no dispatch here on {BACKEND}"
    elif not _cudnn.gpu_available():
        assert reason == "no GPU"


def _keras_as_cudnn(monkeypatch):
    """Keras's backend.lstm / gru computed by Keras's own layer with cuDNN off."""

    def run(cls, inputs, states, kernel, recurrent_kernel, bias, return_sequences, go_backwards):
        units = recurrent_kernel.shape[0]
        extra = {"reset_after": True} if cls is keras.layers.GRU else {}
        layer = cls(units, return_sequences=True, return_state=True, go_backwards=go_backwards,
                    use_cudnn=False, **extra)  # fmt: skip
        layer.build(inputs.shape)
        layer.set_weights([np.asarray(w) for w in (kernel, recurrent_kernel, bias)])
        out = layer(inputs, initial_state=list(states))
        y, final = out[0], list(out[1:])
        return y[:, -1], (y if return_sequences else y[:, -1:]), final

    def lstm(inputs, h, c, mask, **kw):
        return run(keras.layers.LSTM, inputs, [h, c], kw["kernel"], kw["recurrent_kernel"],
                   kw["bias"], kw["return_sequences"], kw["go_backwards"])  # fmt: skip

    def gru(inputs, h, mask, **kw):
        return run(keras.layers.GRU, inputs, [h], kw["kernel"], kw["recurrent_kernel"],
                   kw["bias"], kw["return_sequences"], kw["go_backwards"])  # fmt: skip

    monkeypatch.setattr(keras_backend, "lstm", lstm)
    monkeypatch.setattr(keras_backend, "gru", gru)


@needs_dispatch
@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_the_cudnn_call_gives_what_keras_gives(gpu, monkeypatch, kind, return_sequences,
                                               go_backwards):  # fmt: skip
    if kind not in KINDS:
        pytest.skip(f"no cuDNN {kind} on {BACKEND}")
    x = np.random.RandomState(0).randn(3, 5, 4).astype("float32")
    kw = dict(return_sequences=return_sequences, go_backwards=go_backwards, return_state=True)
    ours = _layer(kind, **kw)
    theirs = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[kind](6, use_cudnn=False, **kw)
    theirs.build(x.shape)
    theirs.set_weights(ours.get_weights())
    expected = theirs(x)
    calls = []
    _keras_as_cudnn(monkeypatch)
    real = _cudnn.call
    monkeypatch.setattr(_cudnn, "call", lambda *a: calls.append(r := real(*a)) or r)
    got = ours(x)
    assert calls and calls[0] is not None  # cuDNN's answer was used
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)


@needs_dispatch
def test_training_goes_to_cudnn_and_an_export_never_does(gpu, monkeypatch, tmp_path):
    if BACKEND == "jax":
        pytest.importorskip("tensorflow")  # model.export under JAX goes through jax2tf
    calls = _spy(monkeypatch)
    model = keras.Sequential([keras.Input((5, 4)), sk.LSTM(6), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    x = np.random.RandomState(1).randn(8, 5, 4).astype("float32")
    model.fit(x, np.zeros((8, 1)), epochs=1, verbose=0)
    assert calls, "training never asked for cuDNN"
    calls.clear()
    model.export(str(tmp_path / "served"), verbose=False)
    assert calls == [], "an export trace asked for cuDNN"
    if BACKEND == "tensorflow":
        import tensorflow as tf

        calls.clear()
        tf.function(lambda t: model(t))(x)  # a user's graph: it may be saved
        assert calls == []
        loaded = tf.saved_model.load(str(tmp_path / "served"))
        ops = {
            node.op
            for f in loaded.serve.get_concrete_function(tf.TensorSpec((None, 5, 4), tf.float32))
            .graph.as_graph_def()
            .library.function
            for node in f.node_def
        }
        assert not any("Cudnn" in op for op in ops)


@pytest.mark.skipif(not (KINDS and _cudnn.gpu_available()), reason="needs a GPU")
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_on_a_gpu_seqkit_runs_cudnn_and_matches_keras(monkeypatch, kind):
    if kind not in KINDS:
        pytest.skip(f"no cuDNN {kind} on {BACKEND}")
    calls = []
    real = {"lstm": keras_backend.lstm, "gru": keras_backend.gru}[kind]
    monkeypatch.setattr(keras_backend, kind, lambda *a, **k: calls.append(1) or real(*a, **k))
    x = np.random.RandomState(2).randn(16, 30, 8).astype("float32")
    ours = {"lstm": sk.LSTM, "gru": sk.GRU}[kind](6, return_sequences=True)
    theirs = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[kind](6, return_sequences=True)
    theirs.build((16, 30, 8))
    ours.build((16, 30, 8))
    theirs.set_weights(ours.get_weights())
    np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(theirs(x)), atol=1e-5)
    assert calls
