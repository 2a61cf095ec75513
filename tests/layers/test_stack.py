"""RecurrentStack (the tasks' backbone) and seqkit.layers.get.

The stack is checked against the same seqkit layers stacked by hand with the
same weights: outputs and flat states, unidirectional and bidirectional, with
padded masks and initial states; `step()` over a sequence against the sequence
call; config and `.keras` round trips; the weight paths the task helpers map
old folders to; state counts from the cells; and the argument errors.
"""

from __future__ import annotations

import re

import h5py
import keras
import numpy as np
import pytest

import seqkit.layers as sk
from tests.helpers import BACKEND, as_list, assert_close

B, T, F, U = 3, 5, 4, 3
RNG = np.random.default_rng(0)
X = RNG.normal(size=(B, T, F)).astype("float32")
MASK = np.ones((B, T), bool)
MASK[1, 3:] = False  # right padding
MASK[2, :2] = False  # left padding
CELLS = ["lstm", "gru", "rnn"]


def _hand_built(cell, layers, bidirectional, return_sequences, merge_mode="concat"):
    """The stack written out: seqkit layers, every one returning its states."""
    out = []
    for i in range(layers):
        rnn = sk.get(cell)(
            U, return_sequences=return_sequences or i < layers - 1, return_state=True
        )
        out.append(sk.Bidirectional(rnn, merge_mode=merge_mode) if bidirectional else rnn)
    return out


def _run_hand_built(rnns, x, mask=None, initial_state=None):
    states = []
    for i, rnn in enumerate(rnns):
        initial = None if initial_state is None else initial_state[i]
        out = rnn(x, mask=mask, initial_state=initial)
        x = out[0]
        states.extend(out[1:])
    return [x, *states]


def _random_states(counts):
    return [[RNG.normal(size=(B, U)).astype("float32") for _ in range(n)] for n in counts]


# Every cell x direction x mask under TensorFlow. JAX runs these loops op by op
# and compiles a scan for every call (seconds a case): there, every cell and
# both directions once, with and without a mask.
HAND_BUILT_CASES = [
    (cell, bidirectional, masked)
    for cell in CELLS
    for bidirectional in (False, True)
    for masked in (False, True)
]
if BACKEND != "tensorflow":
    HAND_BUILT_CASES = [
        ("lstm", False, True),
        ("gru", False, False),
        ("rnn", False, True),
        ("lstm", True, False),
        ("gru", True, True),
    ]


@pytest.mark.parametrize(
    "cell,bidirectional,masked",
    HAND_BUILT_CASES,
    ids=[
        f"{c}-{'bi' if b else 'uni'}-{'mask' if m else 'no_mask'}" for c, b, m in HAND_BUILT_CASES
    ],
)
def test_matches_hand_built_stack(cell, bidirectional, masked):
    mask = MASK if masked else None
    stack = sk.RecurrentStack(
        cell, units=U, layers=2, bidirectional=bidirectional, return_state=True
    )
    rnns = _hand_built(cell, 2, bidirectional, return_sequences=True)
    expected = _run_hand_built(rnns, X, mask)
    stack.build(X.shape)
    stack.set_weights([w for rnn in rnns for w in rnn.get_weights()])
    got = as_list(stack(X, mask=mask))
    assert len(got) == 1 + stack.num_states == len(expected)
    for i, (a, e) in enumerate(zip(got, expected)):
        assert_close(a, e, what=f"output {i}")

    # the flat initial_state, split layer by layer
    per_layer = _random_states(stack.states_per_layer)
    expected = _run_hand_built(rnns, X, mask, per_layer)
    flat = [s for layer_states in per_layer for s in layer_states]
    got = as_list(stack(X, mask=mask, initial_state=flat))
    for i, (a, e) in enumerate(zip(got, expected)):
        assert_close(a, e, what=f"output {i} from initial_state")


@pytest.mark.parametrize(
    "bidirectional,merge_mode", [(False, "concat"), (True, "concat"), (True, "ave")]
)
def test_last_output_only(bidirectional, merge_mode):
    """return_sequences=False applies to the last layer (Keras's last output per direction)."""
    stack = sk.RecurrentStack(
        "gru",
        units=U,
        layers=2,
        bidirectional=bidirectional,
        merge_mode=merge_mode,
        return_sequences=False,
    )
    rnns = _hand_built("gru", 2, bidirectional, return_sequences=False, merge_mode=merge_mode)
    expected = _run_hand_built(rnns, X, MASK)[0]
    stack.build(X.shape)
    stack.set_weights([w for rnn in rnns for w in rnn.get_weights()])
    width = 2 * U if bidirectional and merge_mode == "concat" else U
    assert tuple(stack.compute_output_shape(X.shape)) == (B, width)
    assert_close(stack(X, mask=MASK), expected)


@pytest.mark.parametrize("cell", CELLS)
def test_step_over_a_sequence_equals_the_call(cell):
    stack = sk.RecurrentStack(cell, units=U, layers=2, dropout=0.25, return_state=True)
    sequence, *final = stack(X)
    states = [np.zeros((B, U), "float32")] * stack.num_states
    ys = []
    for t in range(T):
        y, states = stack.step(X[:, t], states)
        ys.append(np.asarray(y))
    assert_close(np.stack(ys, axis=1), sequence)
    assert len(states) == len(final) == stack.num_states
    for a, e in zip(states, final):
        assert_close(a, e)
    assert [type(c) for c in stack.cells] == [type(stack.rnns[0].cell)] * 2


@pytest.mark.parametrize(
    "cell,bidirectional,layers,expected",
    [
        ("lstm", False, 1, [2]),
        ("gru", False, 1, [1]),
        ("rnn", False, 1, [1]),
        ("simple_rnn", False, 2, [1, 1]),
        ("lstm", False, 3, [2, 2, 2]),
        ("lstm", True, 2, [4, 4]),
        ("gru", True, 1, [2]),
        ("rnn", True, 2, [2, 2]),
    ],
)
def test_num_states_come_from_the_cells(cell, bidirectional, layers, expected):
    stack = sk.RecurrentStack(
        cell, units=U, layers=layers, bidirectional=bidirectional, return_state=True
    )
    assert stack.states_per_layer == expected
    assert stack.num_states == sum(expected)
    out = stack(X)
    assert len(out) == 1 + sum(expected)
    assert all(tuple(s.shape) == (B, U) for s in out[1:])


@pytest.mark.skipif(BACKEND != "tensorflow", reason="the TensorFlow fast path")
def test_every_layer_takes_the_fast_path(monkeypatch):
    """The stack adds no loop of its own: each direction of each layer runs
    the registered fast loop (native kernels or XLA), as a lone layer does."""
    from seqkit.layers import _fast_path

    real, kinds = _fast_path.get("tensorflow"), []

    def counting(kind, *args, **kwargs):
        kinds.append(kind)
        return real(kind, *args, **kwargs)

    monkeypatch.setitem(_fast_path._RUNNERS, "tensorflow", counting)
    sk.RecurrentStack("lstm", units=U, layers=2, bidirectional=True)(X)
    assert kinds == ["lstm"] * 4


def test_dropout_after_every_layer():
    stack = sk.RecurrentStack("lstm", units=U, layers=2, dropout=0.5, seed=7)
    assert [d.rate for d in stack.drops] == [0.5, 0.5]
    assert sk.RecurrentStack("lstm", units=U, layers=2).drops == []
    inference = np.asarray(stack(X, training=False))
    trained = np.asarray(stack(X, training=True))
    assert np.any(trained == 0.0) and not np.allclose(trained, inference)


def test_masks_propagate_from_embedding():
    ids = RNG.integers(1, 9, size=(B, T)).astype("int32")
    ids[1, 3:] = 0
    tokens = keras.Input((T,), dtype="int32")
    embedding = keras.layers.Embedding(9, F, mask_zero=True)
    stack = sk.RecurrentStack("gru", units=U, layers=2, return_sequences=False)
    model = keras.Model(tokens, stack(embedding(tokens)))
    expected = stack(embedding(ids), mask=ids != 0)
    assert_close(model(ids), expected)
    # padding changes nothing: the padded row equals its unpadded prefix
    assert_close(model(ids)[1], stack(embedding(ids[1:2, :3]))[0])


def _config_cases():
    return {
        "default": dict(),
        "gru_bi_sum": dict(cell="gru", units=U, layers=2, bidirectional=True, merge_mode="sum"),
        "rnn_states": dict(
            cell="rnn", units=U, layers=3, dropout=0.1, seed=3, return_state=True, name="enc"
        ),
        "lstm_last": dict(cell="lstm", units=U, return_sequences=False),
    }


@pytest.mark.parametrize("case", sorted(_config_cases()))
def test_config_round_trip(case):
    stack = sk.RecurrentStack(**_config_cases()[case])
    config = stack.get_config()
    for key in (
        "cell",
        "units",
        "layers",
        "bidirectional",
        "merge_mode",
        "dropout",
        "return_sequences",
        "return_state",
        "seed",
    ):
        assert key in config and not isinstance(config[key], dict), key
    clone = sk.RecurrentStack.from_config(config)
    assert clone.get_config() == config
    assert clone.states_per_layer == stack.states_per_layer


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_keras_file_round_trip(bidirectional, tmp_path):
    inputs = keras.Input((T, F))
    out, *states = sk.RecurrentStack(
        "lstm", units=U, layers=2, bidirectional=bidirectional, dropout=0.1, return_state=True
    )(inputs)
    model = keras.Model(inputs, [keras.layers.Dense(2)(out), *states])
    expected = [np.asarray(o) for o in model(X)]
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert [type(layer) for layer in loaded.layers].count(sk.RecurrentStack) == 1
    for a, e in zip(loaded(X), expected):
        assert_close(a, e)


def _dataset_paths(model, tmp_path):
    model.save_weights(tmp_path / "model.weights.h5")
    names = []
    with h5py.File(tmp_path / "model.weights.h5", "r") as f:
        f.visititems(
            lambda name, item: names.append(name) if isinstance(item, h5py.Dataset) else None
        )
    return sorted(names)


def _cell_paths(prefix):
    return [f"{prefix}/cell/vars/{k}" for k in range(3)]


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_weight_paths(bidirectional, tmp_path):
    """The `.weights.h5` paths the tasks map 0.1.0 folders onto (see tasks' _legacy_weight_path)."""
    tokens = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(9, F, mask_zero=True)(tokens)
    x = sk.RecurrentStack("lstm", units=U, layers=2, bidirectional=bidirectional)(x)
    model = keras.Model(tokens, keras.layers.Dense(2)(x))
    stack = "layers/recurrent_stack/rnns"
    if bidirectional:
        rnns = [
            f"{stack}/{layer}/{direction}"
            for layer in ("bidirectional", "bidirectional_1")
            for direction in ("backward_layer", "forward_layer")
        ]
    else:
        rnns = [f"{stack}/lstm", f"{stack}/lstm_1"]
    expected = ["layers/dense/vars/0", "layers/dense/vars/1", "layers/embedding/vars/0"]
    expected += [p for rnn in rnns for p in _cell_paths(rnn)]
    assert _dataset_paths(model, tmp_path) == sorted(expected)


def test_weight_paths_as_a_model_attribute(tmp_path):
    class Model(keras.Model):
        def __init__(self):
            super().__init__()
            self.encoder = sk.RecurrentStack("lstm", units=U, layers=2)

        def call(self, x):
            return self.encoder(x)

    model = Model()
    model(X)
    expected = _cell_paths("encoder/rnns/lstm") + _cell_paths("encoder/rnns/lstm_1")
    assert _dataset_paths(model, tmp_path) == sorted(expected)


def test_sublayer_names():
    uni = sk.RecurrentStack("gru", units=U, layers=2, dropout=0.1)
    assert [r.name for r in uni.rnns] == ["gru_0", "gru_1"]
    assert [d.name for d in uni.drops] == ["dropout_0", "dropout_1"]
    bi = sk.RecurrentStack("lstm", units=U, layers=1, bidirectional=True)
    assert [r.name for r in bi.rnns] == ["bilstm_0"]
    assert bi.rnns[0].forward_layer.name == "forward_lstm_0"


def test_one_fit_step():
    stack = sk.RecurrentStack("lstm", units=U, layers=2, dropout=0.1, return_sequences=False)
    model = keras.Sequential([keras.Input((T, F)), stack, keras.layers.Dense(1)])
    model.compile("adam", "mse")
    before = [np.array(w) for w in stack.get_weights()]
    model.fit(X, np.ones((B, 1), "float32"), epochs=1, verbose=0)
    after = stack.get_weights()
    assert all(not np.allclose(a, b) for a, b in zip(after, before))


# --------------------------------------------------------------------- get, errors
def test_get_returns_the_layer_classes():
    assert sk.get("lstm") is sk.LSTM
    assert sk.get("gru") is sk.GRU
    assert sk.get("rnn") is sk.SimpleRNN
    assert sk.get("simple_rnn") is sk.SimpleRNN


@pytest.mark.parametrize("name", ["cnn", "LSTM", None, 3])
def test_get_unknown_name(name):
    msg = f"Received `name={name!r}`; expected one of 'lstm', 'gru', 'rnn', 'simple_rnn'."
    with pytest.raises(ValueError, match=re.escape(msg)):
        sk.get(name)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"cell": "cnn"}, "Received `cell='cnn'`; expected one of 'lstm', 'gru', 'rnn'"),
        ({"units": 0}, "Received `units=0`; expected a positive integer."),
        ({"units": 2.5}, "Received `units=2.5`; expected a positive integer."),
        ({"layers": 0}, "Received `layers=0`; expected a positive integer."),
        ({"bidirectional": "yes"}, "Received `bidirectional='yes'`; expected True or False."),
        ({"merge_mode": None}, "Received `merge_mode=None`; expected one of 'concat', 'sum'"),
        ({"merge_mode": "max"}, "Received `merge_mode='max'`; expected one of 'concat'"),
        ({"dropout": 1.0}, "Received `dropout=1.0`; expected a float in [0, 1)"),
        ({"return_state": 1}, "Received `return_state=1`; expected True or False."),
        ({"return_sequences": None}, "Received `return_sequences=None`; expected True or"),
        ({"seed": "a"}, "Received `seed='a'`; expected an integer or None."),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        sk.RecurrentStack(**kwargs)


def test_wrong_number_of_states():
    stack = sk.RecurrentStack("lstm", units=U, layers=2, name="enc")
    stack(X)
    msg = (
        "Received `initial_state` with 2 tensor(s) in layer 'enc'; expected 4: for each of "
        "the 2 layer(s), its 2 state(s) (h, c), each of shape (batch, 3)."
    )
    with pytest.raises(ValueError, match=re.escape(msg)):
        stack(X, initial_state=[np.zeros((B, U), "float32")] * 2)
    with pytest.raises(ValueError, match=re.escape("Received `states` with 3 tensor(s)")):
        stack.step(X[:, 0], [np.zeros((B, U), "float32")] * 3)
    with pytest.raises(ValueError, match=re.escape("Received `x_t` with shape (3, 5, 4)")):
        stack.step(X, [np.zeros((B, U), "float32")] * 4)


def test_bidirectional_has_no_step():
    stack = sk.RecurrentStack("gru", units=U, bidirectional=True, name="bi")
    with pytest.raises(ValueError, match="Layer 'bi' is bidirectional; step"):
        stack.step(X[:, 0], [np.zeros((B, U), "float32")] * 2)
    with pytest.raises(ValueError, match="Layer 'bi' is bidirectional: each layer has two cells"):
        stack.cells


def test_inputs_of_the_wrong_rank():
    stack = sk.RecurrentStack("gru", units=U, name="enc")
    with pytest.raises(ValueError, match=re.escape("in layer 'enc'; expected a 3D tensor")):
        stack(X[:, 0])
