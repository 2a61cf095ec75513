"""cuDNN dispatch (`seqkit.layers._cudnn`): which calls go to Keras's cuDNN
functions on a GPU, on every backend, checked on a CPU.

A GPU is simulated (`gpu_available` patched) and the cuDNN functions replaced
by reference code that computes what they compute: on TF, Keras's
`backend.lstm` / `backend.gru` by Keras's own layer with cuDNN off; on JAX,
`jax.experimental.rnn.lstm` by JAX's own `lstm_ref` over the same flat weight
vector (so the weight layout, the sequence lengths and the output packaging
are checked). A spy on `_cudnn._kernel` records the call and raises
NotImplementedError ("not here", so seqkit's fused loops run) to see where
dispatch happens: in training, and never in an export trace. The real cuDNN
tests run only on a GPU.
"""

from __future__ import annotations

import contextlib

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

    def fake(layer, *args):
        calls.append(layer.cell._fast_kind())
        raise NotImplementedError

    monkeypatch.setattr(_cudnn, "_kernel", fake)
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
    assert _cudnn.plan(layer, mask=np.ones((3, 5), bool)) is None  # masks go as lengths
    monkeypatch.setattr(_cudnn, "ENABLED", False)
    assert _cudnn.plan(layer) == "disabled"


def test_no_gpu_no_cudnn():
    reason = _cudnn.plan(_layer("lstm"))
    if not KINDS:
        assert reason == f"no dispatch here on {BACKEND}"
    elif not _cudnn.gpu_available():
        assert reason == "no GPU"


def _keras_as_cudnn(monkeypatch):
    """The cuDNN functions computed by reference code (module docstring)."""
    if BACKEND == "jax":
        from jax.experimental import rnn

        def lstm(x, h0, c0, weights, lengths, input_size, hidden_size, **kw):
            packed = rnn.unpack_lstm_weights(weights, input_size, hidden_size, 1, False)
            return rnn.lstm_ref(x, h0, c0, *packed, lengths, input_size, hidden_size, 1,
                                0.0, False)  # fmt: skip

        monkeypatch.setattr(rnn, "lstm", lstm)
        return

    def run(cls, inputs, states, mask, kernel, recurrent_kernel, bias, return_sequences,
            go_backwards):  # fmt: skip
        units = recurrent_kernel.shape[0]
        extra = {"reset_after": True} if cls is keras.layers.GRU else {}
        layer = cls(units, return_sequences=True, return_state=True, go_backwards=go_backwards,
                    use_cudnn=False, **extra)  # fmt: skip
        layer.build(inputs.shape)
        layer.set_weights([np.asarray(w) for w in (kernel, recurrent_kernel, bias)])
        out = layer(inputs, initial_state=list(states), mask=mask)
        y, final = out[0], list(out[1:])
        return y[:, -1], (y if return_sequences else y[:, -1:]), final

    def lstm(inputs, h, c, mask, **kw):
        return run(keras.layers.LSTM, inputs, [h, c], mask, kw["kernel"], kw["recurrent_kernel"],
                   kw["bias"], kw["return_sequences"], kw["go_backwards"])  # fmt: skip

    def gru(inputs, h, mask, **kw):
        return run(keras.layers.GRU, inputs, [h], mask, kw["kernel"], kw["recurrent_kernel"],
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


MASKS = {
    "right": [[1, 1, 1, 1, 0], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]],
    "left": [[0, 0, 1, 1, 1], [0, 1, 1, 1, 1], [1, 1, 1, 1, 1]],
    "holes": [[1, 0, 1, 0, 1], [0, 1, 1, 0, 0], [1, 1, 1, 1, 1]],
    "empty row": [[1, 1, 1, 0, 0], [0, 0, 0, 0, 0], [0, 0, 1, 1, 0]],
}


def _cudnn_and_not(kind, x, mask, monkeypatch, **kw):
    """(outputs through the simulated cuDNN call, outputs of seqkit's own loops), same weights."""
    ours = _layer(kind, return_state=True, **kw)
    loops = _layer(kind, return_state=True, use_cudnn=False, **kw)
    loops.set_weights(ours.get_weights())
    expected = loops(x, mask=mask)
    calls = []
    _keras_as_cudnn(monkeypatch)
    real = _cudnn.call
    monkeypatch.setattr(_cudnn, "call", lambda *a: calls.append(r := real(*a)) or r)
    got = ours(x, mask=mask)
    assert calls and calls[0] is not None  # cuDNN's answer was used
    return got, expected


@needs_dispatch
@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("mask_name", list(MASKS))
@pytest.mark.parametrize(
    "kw",
    [
        {"return_sequences": True},
        {"return_sequences": True, "go_backwards": True},
        {"return_sequences": True, "zero_output_for_mask": True},
        {"go_backwards": True},
    ],
    ids=["sequences", "backwards", "zero-output", "last-backwards"],
)
def test_a_masked_call_goes_to_cudnn_as_lengths_and_matches(gpu, monkeypatch, kind, mask_name,
                                                            kw):  # fmt: skip
    """Any mask (left padding, holes, a row with no valid step) reaches cuDNN as
    right-padded rows of sequence lengths, and gives what seqkit's loops give."""
    if kind not in KINDS:
        pytest.skip(f"no cuDNN {kind} on {BACKEND}")
    x = np.random.RandomState(3).randn(3, 5, 4).astype("float32")
    got, expected = _cudnn_and_not(kind, x, np.array(MASKS[mask_name], bool), monkeypatch, **kw)
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)


@pytest.mark.skipif(BACKEND != "jax", reason="the JAX reference LSTM is differentiable")
def test_a_masked_cudnn_call_has_the_loops_gradients(gpu, monkeypatch):
    from tests.helpers import outputs_and_grads

    x = np.random.RandomState(4).randn(3, 5, 4).astype("float32")
    mask = np.array(MASKS["holes"], bool)
    loops = _layer("lstm", return_sequences=True, use_cudnn=False)
    ours = _layer("lstm", return_sequences=True)
    ours.set_weights(loops.get_weights())
    expected = outputs_and_grads(loops, x, mask=mask)
    _keras_as_cudnn(monkeypatch)
    spy = []
    real = _cudnn._kernel
    monkeypatch.setattr(_cudnn, "_kernel", lambda *a: spy.append(1) or real(*a))
    got = outputs_and_grads(ours, x, mask=mask)
    assert spy
    for a, b in zip(got[0] + got[1], expected[0] + expected[1]):
        np.testing.assert_allclose(a, b, atol=1e-5)


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


@contextlib.contextmanager
def _full_float32():
    """float32 matmuls in full precision on the GPU (no TF32), for both paths."""
    if BACKEND == "jax":
        import jax

        with jax.default_matmul_precision("float32"):
            yield
        return
    import tensorflow as tf

    was = tf.config.experimental.tensor_float_32_execution_enabled()
    tf.config.experimental.enable_tensor_float_32_execution(False)
    try:
        yield
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(was)


on_a_gpu = pytest.mark.skipif(not (KINDS and _cudnn.gpu_available()), reason="needs a GPU")


@on_a_gpu
@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("mask_name", [None, "right", "left", "holes", "empty row"])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_on_a_gpu_seqkit_runs_cudnn_and_matches_its_loops(monkeypatch, kind, mask_name,
                                                          go_backwards):  # fmt: skip
    """Real cuDNN: outputs, states and gradients equal seqkit's own loops (and, unmasked,
    Keras's layer), within cuDNN's float32 tolerance."""
    from tests.helpers import outputs_and_grads

    if kind not in KINDS:
        pytest.skip(f"no cuDNN {kind} on {BACKEND}")
    rng = np.random.RandomState(2)
    x = rng.randn(16, 30, 8).astype("float32")
    mask = None
    if mask_name is not None:
        rows = {"right": [(0, n) for n in rng.randint(0, 31, 16)],
                "left": [(30 - n, 30) for n in rng.randint(0, 31, 16)],
                "empty row": [(0, 0)] + [(0, 30)] * 15}.get(mask_name)  # fmt: skip
        if rows is None:
            mask = rng.rand(16, 30) < 0.6
        else:
            mask = np.zeros((16, 30), bool)
            for r, (a, b) in enumerate(rows):
                mask[r, a:b] = True
    kw = dict(return_sequences=True, return_state=True, go_backwards=go_backwards)
    cls = {"lstm": sk.LSTM, "gru": sk.GRU}[kind]
    ours, loops = cls(6, **kw), cls(6, use_cudnn=False, **kw)
    ours.build(x.shape)
    loops.build(x.shape)
    loops.set_weights(ours.get_weights())
    spy = []
    real = _cudnn._kernel
    monkeypatch.setattr(_cudnn, "_kernel", lambda *a: spy.append(1) or real(*a))
    call = {} if mask is None else {"mask": mask}
    with _full_float32():  # (TF32 matmuls on recent GPUs: 1e-3 apart)
        got = outputs_and_grads(ours, x, **call)
        assert spy, "the call did not reach cuDNN"
        expected = outputs_and_grads(loops, x, **call)
    for a, b in zip(got[0] + got[1], expected[0] + expected[1]):
        np.testing.assert_allclose(a, b, atol=2e-4, rtol=1e-3)
    if mask is None and not go_backwards:
        theirs = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[kind](6, **kw)
        theirs.build(x.shape)
        theirs.set_weights(ours.get_weights())
        np.testing.assert_allclose(np.asarray(ours(x)[0]), np.asarray(theirs(x)[0]), atol=2e-4)


@on_a_gpu
def test_on_a_gpu_fit_runs_cudnn(monkeypatch):
    spy = []
    real = _cudnn._kernel
    monkeypatch.setattr(_cudnn, "_kernel", lambda *a: spy.append(1) or real(*a))
    inputs = keras.Input((12,), dtype="int32")
    h = keras.layers.Embedding(50, 8, mask_zero=True)(inputs)
    h = sk.LSTM(16)(h)
    model = keras.Model(inputs, keras.layers.Dense(1)(h))
    model.compile("adam", "mse")
    x = np.random.RandomState(5).randint(0, 50, (64, 12))
    x[:, 8:] = 0
    history = model.fit(x, np.ones((64, 1)), epochs=3, verbose=0)
    assert spy, "a masked fit on the GPU did not reach cuDNN"
    assert history.history["loss"][-1] < history.history["loss"][0]
