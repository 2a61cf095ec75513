"""What seqkit's layers do beyond Keras: learned initial state, streaming with
stateful layers and reset_state(states), one-step cells, masks, training."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import seqkit.layers as sk
from tests.helpers import BACKEND, assert_close, outputs_and_grads

X = np.random.default_rng(0).normal(size=(3, 8, 4)).astype("float32")
CLASSES = [sk.SimpleRNN, sk.LSTM, sk.GRU]


def n_states(cls):
    return 2 if cls is sk.LSTM else 1


def built(*layers):
    """The layers, each called once on X (in order), so their weights exist."""
    for layer in layers:
        layer(X)
    return layers


@pytest.mark.parametrize("cls", CLASSES)
def test_trainable_initial_state_is_learned_and_overridable(cls):
    layer, plain = built(
        cls(5, return_sequences=True, trainable_initial_state=True), cls(5, return_sequences=True)
    )
    names = [w.name for w in layer.trainable_weights]
    assert names[:3] == ["kernel", "recurrent_kernel", "bias"]
    assert names[3:] == ["initial_h", "initial_c"][: n_states(cls)]
    # zero-initialised: same as the Keras layout starting from zeros
    plain.set_weights(layer.get_weights()[:3])
    assert_close(layer(X), plain(X))
    # set the learned state: the layer starts from it, broadcast over the batch
    rng = np.random.default_rng(1)
    init = [rng.normal(size=(5,)).astype("float32") for _ in range(n_states(cls))]
    layer.set_weights(layer.get_weights()[:3] + init)
    batch_states = [np.tile(v, (3, 1)) for v in init]
    assert_close(layer(X), plain(X, initial_state=batch_states))
    # an initial_state given at call time wins
    other = [np.ones((3, 5), "float32") for _ in init]
    assert_close(layer(X, initial_state=other), plain(X, initial_state=other))
    # gradients reach the initial-state weights
    _, grads = outputs_and_grads(layer, X)
    for g in grads[4:]:
        assert np.abs(g).sum() > 0


@pytest.mark.parametrize("cls", CLASSES)
def test_stateful_streaming_equals_one_pass(cls):
    """Feeding a sequence in chunks to a stateful layer equals one pass over it."""
    full = cls(6, return_sequences=True)
    stream = cls(6, return_sequences=True, stateful=True)
    full(X)
    stream(X[:, :3])
    stream.set_weights(full.get_weights())
    stream.reset_state()
    parts = [np.asarray(stream(X[:, a:b])) for a, b in [(0, 3), (3, 5), (5, 8)]]
    assert_close(np.concatenate(parts, axis=1), np.asarray(full(X)))
    # reset_state() starts over
    stream.reset_state()
    assert_close(stream(X[:, :3]), np.asarray(full(X))[:, :3])


@pytest.mark.parametrize("cls", CLASSES)
def test_reset_state_to_given_states(cls):
    layer, ref = built(cls(6, stateful=True, return_state=True), cls(6, return_state=True))
    ref.set_weights(layer.get_weights())
    rng = np.random.default_rng(2)
    states = [rng.normal(size=(3, 6)).astype("float32") for _ in range(n_states(cls))]
    layer.reset_state(states)
    for a, e in zip(layer.states, states):
        assert_close(np.asarray(a), e)
    out = layer(X)
    expected = ref(X, initial_state=states)
    for a, e in zip(out, expected):
        assert_close(a, e)
    with pytest.raises(ValueError, match=r"expected \(3, 6\)"):
        layer.reset_state([np.zeros((2, 6), "float32")] * n_states(cls))


def test_stateful_batch_size_taken_from_input():
    layer = sk.LSTM(4, stateful=True)
    layer(np.zeros((7, 2, 3), "float32"))
    assert layer.states[0].shape == (7, 4)


def test_stateful_reset_goes_to_learned_initial_state():
    layer = sk.GRU(4, stateful=True, trainable_initial_state=True)
    layer(X)
    w = layer.get_weights()
    layer.set_weights(w[:3] + [np.full((4,), 0.25, "float32")])
    layer.reset_state()
    np.testing.assert_allclose(np.asarray(layer.states[0]), 0.25)


def test_bidirectional_stateful_reset():
    bi = sk.Bidirectional(sk.LSTM(4, stateful=True))
    bi(X)
    assert len(bi.states) == 4
    bi.reset_state()
    for s in bi.states:
        np.testing.assert_array_equal(np.asarray(s), 0.0)


@pytest.mark.parametrize(
    "cell_cls,layer_cls",
    [(sk.SimpleRNNCell, sk.SimpleRNN), (sk.LSTMCell, sk.LSTM), (sk.GRUCell, sk.GRU)],
)
def test_cell_steps_equal_layer(cell_cls, layer_cls):
    """Decoding one step at a time with the cell gives the layer's outputs."""
    layer = layer_cls(5, return_sequences=True)
    layer(X)
    cell = cell_cls(5)
    cell.build((None, X.shape[-1]))
    cell.set_weights(layer.get_weights())
    states = cell.get_initial_state(X.shape[0])
    outs = []
    for t in range(X.shape[1]):
        y, states = cell(X[:, t], states)
        outs.append(np.asarray(y))
    assert_close(np.stack(outs, axis=1), np.asarray(layer(X)))


def test_rnn_wrapper_equals_layer():
    layer, wrapped = built(
        sk.LSTM(5, return_sequences=True), sk.RNN(sk.LSTMCell(5), return_sequences=True)
    )
    wrapped.set_weights(layer.get_weights())
    assert_close(wrapped(X), layer(X))


@pytest.mark.parametrize("cls", CLASSES)
def test_dropout_only_in_training(cls):
    layer = cls(8, dropout=0.5, recurrent_dropout=0.3, seed=1, return_sequences=True)
    a = np.asarray(layer(X, training=False))
    b = np.asarray(layer(X, training=False))
    np.testing.assert_array_equal(a, b)
    c = np.asarray(layer(X, training=True))
    assert not np.allclose(a, c)


@pytest.mark.parametrize("cls", CLASSES)
def test_fit_reduces_loss(cls):
    """One layer of the toolkit trains inside a compiled Keras model."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 10, 3)).astype("float32")
    y = x.sum(axis=(1, 2))[:, None].astype("float32") / 5.0  # needs the whole sequence
    model = keras.Sequential([keras.Input((10, 3)), cls(16), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=15, batch_size=16, verbose=0)
    after = model.evaluate(x, y, verbose=0)
    assert after < 0.5 * before, (before, after)


def test_masked_model_with_embedding():
    """Left-padded ids through Embedding(mask_zero) -> LSTM: padding changes nothing."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((None,), dtype="int32")
    out = sk.LSTM(4)(keras.layers.Embedding(20, 3, mask_zero=True)(inp))
    model = keras.Model(inp, out)
    ids = np.array([[5, 6, 7]], "int32")
    left = np.array([[0, 0, 5, 6, 7]], "int32")
    right = np.array([[5, 6, 7, 0, 0]], "int32")
    a = np.asarray(model(ids))
    assert_close(np.asarray(model(left)), a)
    assert_close(np.asarray(model(right)), a)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="jit_compile fit path checked on TensorFlow")
def test_fit_with_jit_compile():
    model = keras.Sequential([keras.Input((6, 3)), sk.GRU(4), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse", jit_compile=True)
    x = np.ones((8, 6, 3), "float32")
    model.fit(x, np.ones((8, 1), "float32"), epochs=1, verbose=0)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="the lean inference forward is TensorFlow's")
@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("masked", [False, True])
def test_gradient_after_lean_forward_matches_tape(cls, masked):
    """Traced with no tape, the fast path skips its saves; tf.gradients on that
    graph must rerun the forward with them and give the tape's gradients."""
    import tensorflow as tf

    layer = cls(5, return_sequences=True)
    layer(X)
    mask = np.ones(X.shape[:2], bool)
    if masked:
        mask[0, :3] = False
        mask[2, 6:] = False
    probe = np.cos(np.arange(3 * 8 * 5)).reshape(3, 8, 5).astype("float32")

    @tf.function
    def graph_grads(x):
        out = layer(x, mask=mask)  # no tape is recording here
        return tf.gradients(tf.reduce_sum(out * probe), [x] + layer.trainable_weights)

    xt = tf.constant(X)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        loss = tf.reduce_sum(layer(xt, mask=mask) * probe)
    expected = tape.gradient(loss, [xt] + layer.trainable_weights)
    for a, e in zip(graph_grads(xt), expected):
        assert_close(np.asarray(a), np.asarray(e), what="tf.gradients vs tape")
