"""The PyTorch fast path (`seqkit.layers._torch_fast`): torch's fused kernels
give Keras's outputs, final states and gradients (same weights) for
SimpleRNN, LSTM and GRU, with return_sequences / return_state, masks (right,
left, both, fully masked rows), go_backwards, initial states, stateful
layers and Bidirectional; the kernel is actually called for default
configurations and not for the others; a model with the fast path saves and
reloads (.keras).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tests.helpers import BACKEND, as_list, assert_close, outputs_and_grads

pytestmark = pytest.mark.skipif(
    BACKEND != "torch", reason="the PyTorch fast path runs under PyTorch only"
)

if BACKEND == "torch":
    import seqkit.layers as sk
    from seqkit.layers import _torch_fast

B, T, F, U = 4, 6, 5, 3

KINDS = {
    "simple_rnn": ("SimpleRNN", {}),
    "lstm": ("LSTM", {}),
    "gru": ("GRU", {}),
    "gru_no_bias": ("GRU", {"use_bias": False}),
    "lstm_no_bias": ("LSTM", {"use_bias": False}),
}


def make_mask(kind):
    m = np.ones((B, T), bool)
    if kind == "right":
        m[1, 3:] = m[3, 5:] = False
    elif kind == "left":
        m[0, :2] = m[2, :4] = False
    elif kind == "mixed":  # left, right, a fully masked row, one block in the middle
        m[0, :2] = m[1, 4:] = m[2, :] = False
        m[3, :1] = m[3, 5:] = False
    elif kind == "holes":  # a masked step inside a row: not one block
        m[0, 2] = m[3, 1] = False
    return m


def data(seed=0, shape=(B, T, F)):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


@pytest.fixture
def kernel_calls(monkeypatch):
    """Records the torch kernels the fast path calls (a spy on `_KERNELS`)."""
    called = []
    for kind, fn in list(_torch_fast._KERNELS.items()):

        def spy(*args, _fn=fn, _kind=kind, **kwargs):
            called.append(_kind)
            return _fn(*args, **kwargs)

        monkeypatch.setitem(_torch_fast._KERNELS, kind, spy)
    real_packed = _torch_fast._run_packed

    def packed(*args):
        called.append("packed")
        return real_packed(*args)

    monkeypatch.setattr(_torch_fast, "_run_packed", packed)
    return called


@pytest.fixture
def generic(monkeypatch):
    """A context switch: `with generic():` runs seqkit's generic keras.ops loop."""
    import contextlib

    @contextlib.contextmanager
    def switch():
        with monkeypatch.context() as m:
            m.setattr(_torch_fast, "ENABLED", False)
            yield

    return switch


def pair(kind, **kwargs):
    name, extra = KINDS[kind]
    k = getattr(keras.layers, name)(U, **extra, **kwargs)
    s = getattr(sk, name)(U, **extra, **kwargs)
    return k, s


def assert_all_close(actual, expected, what, gtol=1e-4):
    a_outs, a_grads = actual
    e_outs, e_grads = expected
    assert len(a_outs) == len(e_outs) and len(a_grads) == len(e_grads)
    for i, (a, e) in enumerate(zip(a_outs, e_outs)):
        assert_close(a, e, what=f"{what}: output {i}")
    for i, (a, e) in enumerate(zip(a_grads, e_grads)):
        assert_close(a, e, tol=gtol, what=f"{what}: gradient {i} (0 = inputs)")


def check(k, s, x, calls, generic, expect_taken=True, **call_kwargs):
    """Keras's layer, seqkit's fast path and seqkit's generic loop agree.

    Returns the kernels the fast path called (also left in `calls`)."""
    k(x, **call_kwargs)
    s(x, **call_kwargs)
    s.set_weights(k.get_weights())
    expected = outputs_and_grads(k, x, **call_kwargs)
    calls.clear()
    actual = outputs_and_grads(s, x, **call_kwargs)
    taken = list(calls)
    if expect_taken:
        assert calls, "the torch kernel was not called"
    else:
        assert not calls, f"the torch kernel was called: {calls}"
    assert_all_close(actual, expected, f"{s.name} vs Keras")
    with generic():
        calls.clear()
        loop = outputs_and_grads(s, x, **call_kwargs)
        assert not calls
    assert_all_close(actual, loop, f"{s.name} vs the generic loop")
    calls[:] = taken
    return taken


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("return_sequences", [True, False])
def test_matches_keras(kind, return_sequences, kernel_calls, generic):
    k, s = pair(kind, return_sequences=return_sequences, return_state=True)
    check(k, s, data(1), kernel_calls, generic)


@pytest.mark.parametrize("kind", ["simple_rnn", "lstm", "gru"])
@pytest.mark.parametrize("return_sequences", [True, False])
def test_right_padded_mask(kind, return_sequences, kernel_calls, generic):
    k, s = pair(kind, return_sequences=return_sequences, return_state=True)
    check(k, s, data(2), kernel_calls, generic, mask=make_mask("right"))
    assert "packed" in kernel_calls


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("mask_kind, go_backwards", [("left", False), ("mixed", True)])
def test_other_masks(kind, mask_kind, go_backwards, kernel_calls, generic):
    k, s = pair(kind, return_sequences=True, return_state=True, go_backwards=go_backwards)
    check(k, s, data(3), kernel_calls, generic, mask=make_mask(mask_kind))


def test_mask_with_holes_falls_back(kernel_calls, generic):
    k, s = pair("lstm", return_sequences=True, return_state=True)
    check(k, s, data(4), kernel_calls, generic, expect_taken=False, mask=make_mask("holes"))


def test_all_valid_mask_runs_unpacked(kernel_calls, generic):
    k, s = pair("gru", return_sequences=True)
    check(k, s, data(5), kernel_calls, generic, mask=np.ones((B, T), bool))
    assert kernel_calls == ["gru"]


@pytest.mark.parametrize("kind", ["simple_rnn", "lstm", "gru"])
@pytest.mark.parametrize("mask_kind", [None, "right"])
def test_bidirectional(kind, mask_kind, kernel_calls, generic):
    name, extra = KINDS[kind]
    k = keras.layers.Bidirectional(
        getattr(keras.layers, name)(U, return_sequences=True, return_state=True, **extra)
    )
    s = sk.Bidirectional(getattr(sk, name)(U, return_sequences=True, return_state=True, **extra))
    kwargs = {} if mask_kind is None else {"mask": make_mask(mask_kind)}
    taken = check(k, s, data(6), kernel_calls, generic, **kwargs)
    assert [c for c in taken if c != "packed"] == [kind.replace("_rnn", "")] * 2  # both ways


def test_initial_state_and_go_backwards(kernel_calls, generic):
    k, s = pair("lstm", return_sequences=True, return_state=True, go_backwards=True)
    x = data(7)
    h0, c0 = data(8, (B, U)), data(9, (B, U))
    k(x, initial_state=[h0, c0])
    s(x, initial_state=[h0, c0])
    s.set_weights(k.get_weights())
    kernel_calls.clear()
    actual = [np.asarray(o) for o in as_list(s(x, initial_state=[h0, c0]))]
    assert kernel_calls
    expected = [np.asarray(o) for o in as_list(k(x, initial_state=[h0, c0]))]
    for a, e in zip(actual, expected):
        assert_close(a, e, what="initial state")


def test_trainable_initial_state_gets_gradients(kernel_calls, generic):
    s = sk.GRU(U, trainable_initial_state=True, return_sequences=True)
    s(data(10))
    s.cell.initial_state_weights[0].assign(data(11, (U,)))
    kernel_calls.clear()
    actual = outputs_and_grads(s, data(10))
    assert kernel_calls
    with generic():
        expected = outputs_and_grads(s, data(10))
    assert_all_close(actual, expected, "trainable initial state")


def test_stateful_matches_keras(kernel_calls):
    k = keras.layers.LSTM(U, stateful=True, return_sequences=True)
    s = sk.LSTM(U, stateful=True, return_sequences=True)
    x1, x2 = data(12), data(13)
    k(x1)
    s(x1)
    s.set_weights(k.get_weights())
    k.reset_state()
    s.reset_state()
    kernel_calls.clear()
    for x in (x1, x2):
        assert_close(np.asarray(s(x)), np.asarray(k(x)), what="stateful")
    assert kernel_calls == ["lstm", "lstm"]


@pytest.mark.parametrize(
    "kind, kwargs, call_kwargs",
    [
        ("lstm", {"recurrent_dropout": 0.3, "seed": 1}, {"training": True}),
        ("simple_rnn", {"activation": "relu"}, {}),
        ("lstm", {"recurrent_activation": "hard_sigmoid"}, {}),
        ("gru", {"reset_after": False}, {}),
        ("gru", {"unroll": True}, {}),
    ],
)
def test_non_default_configs_fall_back(kind, kwargs, call_kwargs, kernel_calls):
    name, _ = KINDS[kind]
    s = getattr(sk, name)(U, return_sequences=True, **kwargs)
    kernel_calls.clear()
    out = s(data(14), **call_kwargs)
    assert tuple(out.shape) == (B, T, U)
    assert not kernel_calls, f"the torch kernel was called for {kwargs}"


def test_input_dropout_matches_generic_loop(kernel_calls, generic):
    """Input dropout is applied before the kernel, as in the generic loop (same seed)."""
    x = data(15)
    outs = []
    for fast in (True, False):
        keras.utils.set_random_seed(3)
        s = sk.LSTM(U, dropout=0.4, seed=5, return_sequences=True)
        kernel_calls.clear()
        if fast:
            outs.append(np.asarray(s(x, training=True)))
            assert kernel_calls
        else:
            with generic():
                outs.append(np.asarray(s(x, training=True)))
    assert_close(outs[0], outs[1], what="dropout")


def test_model_fit_and_save(tmp_path, kernel_calls):
    inp = keras.Input((T, F))
    h = sk.Bidirectional(sk.LSTM(U, return_sequences=True))(inp)
    out = keras.layers.Dense(1)(sk.GRU(U)(h))
    model = keras.Model(inp, out)
    model.compile("adam", "mse")
    n_weights = len(model.weights)
    model.fit(data(16), np.zeros((B, 1), "float32"), epochs=1, verbose=0)
    assert kernel_calls
    assert len(model.weights) == n_weights  # the fast path creates no variable
    path = str(tmp_path / "m.keras")
    model.save(path)
    again = keras.models.load_model(path)
    assert_close(np.asarray(again.predict(data(17), verbose=0)), model.predict(data(17), verbose=0))
