"""The native C++ kernels (TensorFlow, CPU): built, used, correct, and safe to lose.

The parity tests run every case on the default path, which reaches these
kernels for float32 without a mask; here: shapes wide enough for the vector
code and its tails, proof that training actually goes through them, the
fallback when they cannot be built, and models compiled with XLA.
"""

from __future__ import annotations

import shutil

import keras
import numpy as np
import pytest

import seqkit.layers as sk
from tests.helpers import BACKEND, assert_close

pytestmark = pytest.mark.skipif(BACKEND != "tensorflow", reason="TensorFlow custom ops")

KINDS = {
    "simple_rnn": (keras.layers.SimpleRNN, sk.SimpleRNN),
    "lstm": (keras.layers.LSTM, sk.LSTM),
    "gru": (keras.layers.GRU, sk.GRU),
    "gru_reset_before": (
        lambda *a, **k: keras.layers.GRU(*a, reset_after=False, **k),
        lambda *a, **k: sk.GRU(*a, reset_after=False, **k),
    ),
}


def _outputs_and_grads(layer, x, **kwargs):
    import tensorflow as tf

    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        outs = layer(x, **kwargs)
        outs = outs if isinstance(outs, list | tuple) else [outs]
        loss = sum(tf.reduce_sum(tf.sin(o) * (1.0 + 0.1 * i)) for i, o in enumerate(outs))
    grads = tape.gradient(loss, [x] + layer.trainable_weights)
    return [o.numpy() for o in outs], [g.numpy() for g in grads]


@pytest.fixture
def native_calls(monkeypatch):
    """A list that grows by one each time a layer call goes through the kernels."""
    from seqkit.layers import _tf_fast

    calls = []
    real = _tf_fast._run_native
    monkeypatch.setattr(_tf_fast, "_run_native", lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def test_kernels_build_on_this_machine():
    from seqkit.layers import _native

    if shutil.which("g++") is None:
        pytest.skip("no C++ compiler here: the XLA loops run instead")
    assert _native.ops() is not None


def _mask(batch, steps, seed=3):
    """Left padding, right padding, holes and a fully masked row."""
    rng = np.random.default_rng(seed)
    m = rng.random((batch, steps)) > 0.25
    m[0, :3] = False
    m[1, -2:] = False
    m[2, :] = False
    return m


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize(
    "batch,units,go_backwards,masked,zero_out",
    [
        (13, 37, False, False, False),
        (64, 128, True, False, False),
        (3, 40, False, False, False),
        (13, 37, False, True, False),
        (24, 40, True, True, True),
    ],
)
def test_native_matches_keras_at_vector_widths(
    kind, batch, units, go_backwards, masked, zero_out, native_calls
):
    """Batch and unit counts that leave tails at every vector and tile width,
    with and without masks (zero_output_for_mask as Bidirectional sets it)."""
    kcls, scls = KINDS[kind]
    kw = dict(return_sequences=True, return_state=True, go_backwards=go_backwards)
    k, s = kcls(units, **kw), scls(units, **kw)
    k.zero_output_for_mask = s.zero_output_for_mask = zero_out
    x = np.random.default_rng(1).normal(size=(batch, 9, 7)).astype("float32")
    k(x)
    s(x)
    s.set_weights(k.get_weights())
    rng = np.random.default_rng(2)
    n_states = 2 if kind == "lstm" else 1
    init = [rng.normal(size=(batch, units)).astype("float32") for _ in range(n_states)]
    call = {"initial_state": init}
    if masked:
        call["mask"] = _mask(batch, 9)
    ko, kg = _outputs_and_grads(k, x, **call)
    so, sg = _outputs_and_grads(s, x, **call)
    assert native_calls, "the native kernels were not used"
    for a, e in zip(so, ko):
        assert_close(a, e, what=f"{kind} output")
    for a, e in zip(sg, kg):
        assert_close(a, e, what=f"{kind} gradient")


def test_model_fit_runs_through_the_native_kernels(native_calls):
    model = keras.Sequential([keras.Input((12, 4)), sk.LSTM(16), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 12, 4)).astype("float32"), rng.normal(size=(32, 1))
    history = model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    assert native_calls
    losses = history.history["loss"]
    assert losses[-1] < losses[0]
    native_calls.clear()
    model.predict(x, verbose=0)
    assert native_calls, "predict did not use the native kernels"


def test_build_failure_warns_and_falls_back(tmp_path, monkeypatch):
    from seqkit.layers import _native, _tf_fast

    monkeypatch.setattr(_native, "_STATE", {})
    monkeypatch.setenv("SEQKIT_NATIVE_CACHE", str(tmp_path))
    monkeypatch.setenv("CXX", "no-such-compiler-seqkit")
    with pytest.warns(
        RuntimeWarning,
        match=r"native recurrent kernels unavailable.*no C\+\+ compiler found \(looked for 'no-such-compiler-seqkit'; set \$CXX\)",
    ):
        assert _native.ops() is None
    import tensorflow as tf

    assert _tf_fast._native_ops("lstm", tf.float32) is None
    k, s = keras.layers.GRU(8), sk.GRU(8)
    x = np.random.default_rng(0).normal(size=(5, 6, 3)).astype("float32")
    k(x)
    s(x)
    s.set_weights(k.get_weights())
    assert_close(s(x), k(x), what="GRU on the XLA fallback")


def test_native_can_be_switched_off(monkeypatch):
    from seqkit.layers import _native

    monkeypatch.setattr(_native, "_STATE", {})
    monkeypatch.setenv("SEQKIT_NATIVE", "0")
    assert _native.ops() is None


def test_exporting_keeps_plain_tensorflow_ops(native_calls):
    """Inside `seqkit.export.exporting()` the kernels are not used (graphs that
    are saved must load without seqkit)."""
    import tensorflow as tf

    import seqkit.export
    from seqkit.layers import _fast_path, _tf_fast

    assert _fast_path.get("tensorflow") is _tf_fast.run
    layer = sk.LSTM(4)
    x = np.random.default_rng(0).normal(size=(2, 3, 5)).astype("float32")
    expected = layer(x)
    assert native_calls or shutil.which("g++") is None
    native_calls.clear()
    with seqkit.export.exporting():
        assert seqkit.export.is_exporting()
        assert _tf_fast._native_ops("lstm", tf.float32) is None
        assert_close(layer(x), expected, what="LSTM inside exporting()")
    assert not native_calls and not seqkit.export.is_exporting()


def test_jit_compiled_model_trains_like_the_uncompiled_one():
    """Inside an XLA cluster the custom ops cannot compile: the layers use the
    plain TensorFlow loop there, with the same numbers."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 10, 4)).astype("float32"), rng.normal(size=(16, 1))

    def make(jit):
        keras.utils.set_random_seed(3)
        m = keras.Sequential([keras.Input((10, 4)), sk.GRU(8), keras.layers.Dense(1)])
        m.compile(keras.optimizers.SGD(0.1), "mse", jit_compile=jit)
        return m

    plain, jitted = make(False), make(True)
    jitted.set_weights(plain.get_weights())
    for _ in range(2):
        lp = plain.train_on_batch(x, y)
        lj = jitted.train_on_batch(x, y)
        assert abs(lp - lj) <= 1e-5 * max(1.0, abs(lp))
    assert_close(jitted.predict_on_batch(x), plain.predict_on_batch(x), what="after training")


AVX2_CHECK = """
import numpy as np, keras
import seqkit.layers as sk
from seqkit.layers import _native, _tf_fast
from tests.helpers import assert_close
import tests.layers.test_native as tn
assert _native.ops() is not None
calls = []
real = _tf_fast._run_native
_tf_fast._run_native = lambda *a, **k: calls.append(1) or real(*a, **k)
for kind in sorted(tn.KINDS):
    kcls, scls = tn.KINDS[kind]
    kw = dict(return_sequences=True, return_state=True)
    k, s = kcls(21, **kw), scls(21, **kw)
    x = np.random.default_rng(1).normal(size=(11, 7, 5)).astype("float32")
    k(x)
    s(x)
    s.set_weights(k.get_weights())
    for mask in (None, tn._mask(11, 7)):
        call = {} if mask is None else {"mask": mask}
        ko, kg = tn._outputs_and_grads(k, x, **call)
        so, sg = tn._outputs_and_grads(s, x, **call)
        for a, e in zip(so + sg, ko + kg):
            assert_close(a, e, what=kind)
assert calls
print("ok", _native._STATE["ops"])
"""


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("g++") is None, reason="no C++ compiler")
def test_portable_builds_agree_with_keras(tmp_path):
    """The kernels built for other x86 CPUs than this one (AVX2, and plain
    SSE2) give Keras's numbers too: the CI machine or a user's may be either."""
    import os
    import platform
    import subprocess
    import sys

    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("x86 targets")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for march in ("haswell", "x86-64"):
        env = dict(os.environ, SEQKIT_NATIVE_MARCH=march, PYTHONPATH=root)
        env["SEQKIT_NATIVE_CACHE"] = str(tmp_path / march)
        env["TF_CPP_MIN_LOG_LEVEL"] = "2"
        proc = subprocess.run(
            [sys.executable, "-c", AVX2_CHECK],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, f"-march={march}: " + proc.stderr[-3000:]
        assert "ok" in proc.stdout


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_empty_batch(kind, native_calls):
    import tensorflow as tf

    layer = KINDS[kind][1](4, return_sequences=True, return_state=True)
    x = tf.zeros((0, 5, 3))
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = layer(x)
        loss = sum(tf.reduce_sum(o) for o in out)
    grads = tape.gradient(loss, [x] + layer.trainable_weights)
    assert native_calls
    assert out[0].shape == (0, 5, 4)
    assert grads[0].shape == (0, 5, 3)
    assert all(np.all(g.numpy() == 0) for g in grads)
