"""The JAX fast path (`seqkit.layers._jax_fast`): the fused `lax.scan` with a
hand-written backward pass gives Keras's outputs and gradients, and the
generic loop's, with masks (left / right padding, fully masked rows),
go_backwards, initial states, stateful layers and Bidirectional; it is the
path actually taken; `model.export` under JAX serves in a fresh process.

Outputs and gradients are computed under `jax.jit` (one compile per case),
so the module stays quick.
"""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest

from tests.helpers import BACKEND, _loss, as_list, assert_close, run_python

pytestmark = pytest.mark.skipif(BACKEND != "jax", reason="the JAX fast path runs under JAX only")

if BACKEND == "jax":
    import jax

    import seqkit.layers as sk
    from seqkit.layers import _fast_path, _jax_fast

B, T, F, U = 4, 6, 5, 3

KINDS = {
    "simple_rnn": ("SimpleRNN", {}),
    "lstm": ("LSTM", {}),
    "gru": ("GRU", {}),
    "gru_reset_before": ("GRU", {"reset_after": False}),
    "gru_no_bias": ("GRU", {"use_bias": False}),
}


def make_mask(kind):
    m = np.ones((B, T), bool)
    if kind == "left":
        m[0, :2] = m[2, :4] = False
    elif kind == "right":
        m[1, 3:] = m[3, 5:] = False
    elif kind == "mixed":  # left, right, a fully masked row
        m[0, :2] = m[1, 4:] = m[2, :] = False
    return m


def data(seed=0, shape=(B, T, F)):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def jit_outputs_and_grads(layer, x, **call_kwargs):
    """As tests.helpers.outputs_and_grads under JAX, jitted: (outputs, [dx, dw...])."""
    if not layer.built:
        layer(x, **call_kwargs)
    tv = [v.value for v in layer.trainable_variables]
    ntv = [v.value for v in layer.non_trainable_variables]

    def f(tv, x):
        out, _ = layer.stateless_call(tv, ntv, x, **call_kwargs)
        outs = as_list(out)
        return _loss(outs), outs

    step = jax.jit(jax.value_and_grad(f, argnums=(0, 1), has_aux=True))
    (_, outs), (gw, gx) = step(tv, x)
    return [np.asarray(o) for o in outs], [np.asarray(gx)] + [np.asarray(g) for g in gw]


@pytest.fixture
def calls(monkeypatch):
    """Counts the calls the fused loop takes (not those it hands to the generic loop)."""
    taken = []
    run = _fast_path.get("jax")

    def counting(*args, **kwargs):
        out = run(*args, **kwargs)
        taken.append(args[0])
        return out

    monkeypatch.setitem(_fast_path._RUNNERS, "jax", counting)
    return taken


def assert_all_close(a_outs, a_grads, e_outs, e_grads, what):
    assert len(a_outs) == len(e_outs) and len(a_grads) == len(e_grads)
    for i, (a, e) in enumerate(zip(a_outs, e_outs)):
        assert_close(a, e, what=f"{what}: output {i}")
    for i, (a, e) in enumerate(zip(a_grads, e_grads)):
        assert_close(a, e, what=f"{what}: gradient {i} (0 = inputs)")


def pair(kind, **kwargs):
    name, extra = KINDS[kind]
    k = getattr(keras.layers, name)(U, **extra, **kwargs)
    s = getattr(sk, name)(U, **extra, **kwargs)
    return k, s


def check_against_keras(k, s, x, calls, **call_kwargs):
    k(x, **call_kwargs)
    s(x, **call_kwargs)
    s.set_weights(k.get_weights())
    calls.clear()
    expected = jit_outputs_and_grads(k, x, **call_kwargs)
    actual = jit_outputs_and_grads(s, x, **call_kwargs)
    assert calls, "the JAX fast path was not taken"
    assert_all_close(*actual, *expected, what=s.name)


# Each case compiles once (~2-3 s on 2 cores): the "mixed" mask holds left
# padding, right padding and a fully masked row at once.
@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("mask_kind, go_backwards", [(None, False), ("mixed", True)])
def test_matches_keras(kind, mask_kind, go_backwards, calls):
    k, s = pair(kind, return_sequences=True, return_state=True, go_backwards=go_backwards)
    kwargs = {} if mask_kind is None else {"mask": make_mask(mask_kind)}
    check_against_keras(k, s, data(1), calls, **kwargs)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_last_output_and_initial_state_match_keras(kind, calls):
    k, s = pair(kind, return_state=True)
    n = 2 if kind == "lstm" else 1
    states = [data(3 + i, (B, U)) for i in range(n)]
    # right padding: Keras's backends agree on masked outputs there (see test_parity)
    check_against_keras(k, s, data(2), calls, initial_state=states, mask=make_mask("right"))


@pytest.mark.parametrize("kind, mask_kind", [("lstm", "mixed"), ("gru", None)])
def test_bidirectional_matches_keras(kind, mask_kind, calls):
    """Bidirectional sets zero_output_for_mask on both layers (and go_backwards on one)."""
    k_inner, s_inner = pair(kind, return_sequences=True, return_state=True)
    k, s = keras.layers.Bidirectional(k_inner), sk.Bidirectional(s_inner)
    kwargs = {} if mask_kind is None else {"mask": make_mask(mask_kind)}
    check_against_keras(k, s, data(4), calls, **kwargs)


def _generic(monkeypatch, on):
    monkeypatch.setattr(_jax_fast, "ENABLED", not on)


@pytest.mark.parametrize(
    "kind, zero_output",
    [
        ("lstm", True),
        ("lstm", False),
        ("gru", False),
        ("gru_reset_before", True),
        ("simple_rnn", True),
        ("gru_no_bias", False),
    ],
)
def test_matches_generic_loop(kind, zero_output, monkeypatch, calls):
    """Fused vs generic loop, same layer: masks, go_backwards, a learned initial state
    (its gradient flows through the fused backward's initial-state gradient)."""
    name, extra = KINDS[kind]
    layer = getattr(sk, name)(
        U,
        return_sequences=True,
        return_state=True,
        go_backwards=True,
        trainable_initial_state=True,
        zero_output_for_mask=zero_output,
        **extra,
    )
    x, mask = data(5), make_mask("mixed")
    layer(x, mask=mask)
    for w in layer.cell.initial_state_weights:  # non-zero learned states
        w.assign(data(6, (U,)))
    fused = jit_outputs_and_grads(layer, x, mask=mask)
    assert calls
    _generic(monkeypatch, True)
    calls.clear()
    generic = jit_outputs_and_grads(layer, x, mask=mask)
    assert not calls
    assert_all_close(*fused, *generic, what=f"{kind} fused vs generic")


def test_stateful_carries_states(calls):
    k, s = pair("lstm", return_sequences=True, stateful=True)
    x1, x2 = data(7), data(8)
    k(x1)
    s(x1)
    s.set_weights(k.get_weights())
    k.reset_state()
    s.reset_state()
    assert_close(s(x1), k(x1), what="first call")
    assert_close(s(x2), k(x2), what="second call (carried states)")
    assert calls
    for a, e in zip(s.states, k.states):
        assert_close(np.asarray(a), np.asarray(e), what="carried state")


def test_other_configurations_use_the_generic_loop(calls):
    """relu, recurrent dropout in training, unroll: no fused loop (and still correct)."""
    x = data(9)
    keras.utils.set_random_seed(0)
    relu = sk.SimpleRNN(U, activation="relu", return_sequences=True)
    ref = keras.layers.SimpleRNN(U, activation="relu", return_sequences=True)
    relu(x)
    ref(x)
    relu.set_weights(ref.get_weights())
    assert_close(relu(x), ref(x), what="relu")
    sk.LSTM(U, recurrent_dropout=0.5)(x, training=True)
    sk.GRU(U, unroll=True)(x)
    assert calls == []
    sk.GRU(U)(x)
    assert calls == ["gru"]


def test_fit_step_matches_keras(calls):
    """A compiled model (Keras's jitted train step) takes the fused path and trains
    exactly as the built-in layer does."""
    x, y = data(10), data(11, (B, 1))

    def model(lib):
        inp = keras.Input((T, F))
        out = keras.layers.Dense(1)(lib.LSTM(U)(inp))
        m = keras.Model(inp, out)
        m.compile(keras.optimizers.SGD(0.1), "mse")
        return m

    mk, ms = model(keras.layers), model(sk)
    ms.set_weights(mk.get_weights())
    calls.clear()
    lk = [mk.train_on_batch(x, y) for _ in range(3)]
    ls = [ms.train_on_batch(x, y) for _ in range(3)]
    assert calls
    np.testing.assert_allclose(ls, lk, rtol=1e-5)
    for a, e in zip(ms.get_weights(), mk.get_weights()):
        assert_close(a, e, what="weights after 3 steps")


@pytest.mark.slow
def test_export_serves_without_seqkit(tmp_path, calls):
    """`model.export` under JAX (jax2tf) over the fused loops: a fresh process that
    never imports seqkit loads the SavedModel and gives predict's outputs, for a
    new batch size and length too."""
    pytest.importorskip("tensorflow")
    inp = keras.Input((None, F))
    h = sk.GRU(U, return_sequences=True)(inp)
    h = sk.Bidirectional(sk.LSTM(U, return_sequences=True))(h)
    model = keras.Model(inp, keras.layers.Dense(1)(sk.SimpleRNN(U)(h)))
    x1, x2 = data(12), data(13, (3, 9, F))
    path = os.path.join(tmp_path, "served")
    model.export(path, format="tf_saved_model", verbose=False)
    assert calls  # the traced graph went through the fused loops
    np.save(os.path.join(tmp_path, "x1.npy"), x1)
    np.save(os.path.join(tmp_path, "x2.npy"), x2)
    proc = run_python(
        f"""
        import sys, numpy as np, tensorflow as tf
        m = tf.saved_model.load({path!r})
        for name in ("x1", "x2"):
            x = np.load({str(tmp_path)!r} + "/" + name + ".npy")
            np.save({str(tmp_path)!r} + "/" + name + "_out.npy", m.serve(tf.constant(x)).numpy())
        print("seqkit" in sys.modules)
        """,
        cwd=str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "False"
    for name, x in (("x1", x1), ("x2", x2)):
        served = np.load(os.path.join(tmp_path, f"{name}_out.npy"))
        assert_close(served, model.predict(x, verbose=0), what=f"served {name}")
