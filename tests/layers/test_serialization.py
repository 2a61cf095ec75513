"""Config and `.keras` round trips for every public class."""

from __future__ import annotations

import inspect

import keras
import numpy as np
import pytest

import seqkit.layers as sk
from tests.helpers import as_list, assert_close

X = np.random.default_rng(0).normal(size=(3, 5, 4)).astype("float32")

LAYERS = {
    "SimpleRNN": lambda: sk.SimpleRNN(6, return_sequences=True, dropout=0.1, seed=3),
    "LSTM": lambda: sk.LSTM(6, unit_forget_bias=False, recurrent_dropout=0.2, go_backwards=True),
    "GRU": lambda: sk.GRU(6, reset_after=False, trainable_initial_state=True),
    "GRU_reset_after": lambda: sk.GRU(6, return_state=True, activation="relu"),
    "Bidirectional": lambda: sk.Bidirectional(sk.LSTM(6, return_sequences=True), merge_mode="sum"),
    "Bidirectional_backward_layer": lambda: sk.Bidirectional(
        sk.GRU(6), backward_layer=sk.SimpleRNN(6, go_backwards=True), merge_mode=None
    ),
    "RNN_SimpleRNNCell": lambda: sk.RNN(sk.SimpleRNNCell(6, kernel_regularizer="l2")),
    "RNN_LSTMCell": lambda: sk.RNN(
        sk.LSTMCell(6, trainable_initial_state=True), return_sequences=True
    ),
    "RNN_GRUCell": lambda: sk.RNN(sk.GRUCell(6, reset_after=False), return_state=True),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_config_round_trip(name):
    layer = LAYERS[name]()
    out = as_list(layer(X))
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert type(clone) is type(layer)
    assert clone.get_config() == config
    clone(X)
    clone.set_weights(layer.get_weights())
    for a, e in zip(as_list(clone(X)), out):
        assert_close(a, e)


@pytest.mark.parametrize("name", ["SimpleRNNCell", "LSTMCell", "GRUCell"])
def test_cell_config_round_trip(name):
    cell = getattr(sk, name)(5, dropout=0.25, seed=1, trainable_initial_state=True)
    config = cell.get_config()
    clone = type(cell).from_config(config)
    assert clone.get_config() == config
    assert clone.trainable_initial_state and clone.dropout == 0.25


def test_layer_config_is_flat_and_complete():
    """Every constructor argument is a key of get_config (STYLE habit 2)."""
    layer = sk.LSTM(7, trainable_initial_state=True, unroll=True, use_cudnn=False)
    config = layer.get_config()
    arguments = inspect.signature(sk.LSTM.__init__).parameters
    for key in [k for k in arguments if k not in ("self", "kwargs")]:
        assert key in config, key
    assert config["units"] == 7 and config["trainable_initial_state"] and config["unroll"]
    assert layer.units == 7 and layer.trainable_initial_state  # cell attributes exposed


def test_keras_config_loads_into_seqkit():
    """A config written by keras.layers.LSTM builds the seqkit layer (drop-in)."""
    config = keras.layers.LSTM(5, return_sequences=True, dropout=0.1).get_config()
    layer = sk.LSTM.from_config(config)
    assert layer.units == 5 and layer.return_sequences and layer.dropout == 0.1


def _sequential(layer):
    return keras.Sequential([keras.Input((5, 4)), layer, keras.layers.Dense(2)])


def _functional(layer):
    inp = keras.Input((5, 4))
    outs = as_list(layer(inp))
    flat = [keras.layers.Flatten()(o) if len(o.shape) == 3 else o for o in outs]
    merged = flat[0] if len(flat) == 1 else keras.layers.Concatenate()(flat)
    return keras.Model(inp, keras.layers.Dense(2)(merged))


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize("builder", ["sequential", "functional"])
def test_keras_file_round_trip(name, builder, tmp_path):
    layer = LAYERS[name]()
    if builder == "sequential":
        if isinstance(layer, sk.Bidirectional) and layer.merge_mode is None:
            pytest.skip("a list output does not fit a Sequential model")
        if getattr(layer, "return_state", False):
            pytest.skip("several outputs do not fit a Sequential model")
        model = _sequential(layer)
    else:
        model = _functional(layer)
    expected = np.asarray(model(X))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    inner = [lyr for lyr in loaded.layers if type(lyr) is type(layer)]
    assert len(inner) == 1, [type(lyr) for lyr in loaded.layers]
    assert_close(np.asarray(loaded(X)), expected)
