"""Bad arguments raise ValueError naming the argument, the value and what is expected."""

from __future__ import annotations

import re

import numpy as np
import pytest

import seqkit.layers as sk

CLASSES = [sk.SimpleRNN, sk.LSTM, sk.GRU, sk.SimpleRNNCell, sk.LSTMCell, sk.GRUCell]


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("units", [0, -3, 2.5, "8", True])
def test_bad_units(cls, units):
    with pytest.raises(
        ValueError, match=re.escape(f"Received `units={units!r}`; expected a positive integer.")
    ):
        cls(units)


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("arg", ["dropout", "recurrent_dropout"])
@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, "0.2"])
def test_bad_dropout(cls, arg, rate):
    msg = f"Received `{arg}={rate!r}`; expected a float in [0, 1) (the fraction of units to drop)."
    with pytest.raises(ValueError, match=re.escape(msg)):
        cls(4, **{arg: rate})


@pytest.mark.parametrize("cls", CLASSES)
def test_unknown_activation(cls):
    msg = (
        "Received `activation='tanhh'`; expected the name of a Keras activation "
        "(e.g. 'tanh', 'sigmoid', 'relu'), a callable, or None."
    )
    with pytest.raises(ValueError, match=re.escape(msg)):
        cls(4, activation="tanhh")


@pytest.mark.parametrize("cls", [sk.LSTM, sk.GRU, sk.LSTMCell, sk.GRUCell])
def test_unknown_recurrent_activation(cls):
    with pytest.raises(ValueError, match=re.escape("Received `recurrent_activation='sigmod'`")):
        cls(4, recurrent_activation="sigmod")


@pytest.mark.parametrize("merge_mode", ["avg", "max", "", 3])
def test_unknown_merge_mode(merge_mode):
    msg = f"Received `merge_mode={merge_mode!r}`; expected one of 'concat', 'sum', 'mul', 'ave' or None."
    with pytest.raises(ValueError, match=re.escape(msg)):
        sk.Bidirectional(sk.LSTM(4), merge_mode=merge_mode)


@pytest.mark.parametrize("cls", [sk.SimpleRNN, sk.LSTM, sk.GRU])
@pytest.mark.parametrize("shape", [(4, 8), (2, 3, 4, 5)])
def test_wrong_rank_input(cls, shape):
    layer = cls(4, name="enc")
    msg = (
        f"Received `inputs` with shape {shape} (rank {len(shape)}) in layer 'enc'; "
        "expected a 3D tensor of shape (batch, timesteps, features)."
    )
    with pytest.raises(ValueError, match=re.escape(msg)):
        layer(np.zeros(shape, "float32"))


def test_bidirectional_needs_a_layer():
    with pytest.raises(
        ValueError, match=re.escape("Received `layer='lstm'`; expected a recurrent layer")
    ):
        sk.Bidirectional("lstm")


def test_backward_layer_direction_checked():
    with pytest.raises(ValueError, match="same as the forward layer; expected the opposite value"):
        sk.Bidirectional(sk.LSTM(4), backward_layer=sk.LSTM(4))
    with pytest.raises(
        ValueError,
        match=re.escape(
            "`return_sequences=True` while the forward layer has `return_sequences=False`"
        ),
    ):
        sk.Bidirectional(
            sk.LSTM(4), backward_layer=sk.LSTM(4, go_backwards=True, return_sequences=True)
        )


def test_wrong_number_of_initial_states():
    layer = sk.LSTM(4, name="enc")
    x = np.zeros((2, 3, 5), "float32")
    msg = "Received `initial_state` with 1 tensor(s) in layer 'enc'; expected 2"
    with pytest.raises(ValueError, match=re.escape(msg)):
        layer(x, initial_state=[np.zeros((2, 4), "float32")])


def test_stateful_batch_mismatch():
    layer = sk.GRU(4, stateful=True, name="s")
    layer(np.zeros((2, 3, 5), "float32"))
    with pytest.raises(
        ValueError,
        match=re.escape(
            "Received a batch of 3 in stateful layer 's'; its states hold a batch of 2."
        ),
    ):
        layer(np.zeros((3, 3, 5), "float32"))


def test_reset_state_not_stateful():
    with pytest.raises(AttributeError, match="is not stateful"):
        sk.LSTM(4).reset_state()


def test_cell_wrong_number_of_states():
    cell = sk.LSTMCell(4, name="c")
    cell.build((2, 3))
    with pytest.raises(
        ValueError, match=re.escape("Received 1 state tensor(s) in cell 'c'; expected 2.")
    ):
        cell(np.zeros((2, 3), "float32"), [np.zeros((2, 4), "float32")])


@pytest.mark.parametrize("layer_class", [sk.SimpleRNN, sk.LSTM, sk.GRU])
def test_wrong_feature_count_names_both_shapes(layer_class):
    """A layer built for 3 features and called with 5: seqkit's message, in the
    user's terms (not TF's `Matrix size-incompatible: In[0]: [40,5], In[1]: [3,24]`)."""
    layer = layer_class(8, name="rnn")
    layer(np.zeros((2, 4, 3), "float32"))
    with pytest.raises(ValueError) as info:
        layer(np.zeros((40, 4, 5), "float32"))
    assert (
        "Layer 'rnn' was built for inputs of shape (batch, timesteps, 3) and received shape "
        "(40, 4, 5): 5 features where it expects 3. Feed 3 features per step, or use a new "
        "layer for the new input size."
    ) in str(info.value)


@pytest.mark.parametrize("layer_class", [sk.SimpleRNN, sk.LSTM, sk.GRU])
def test_mask_of_the_wrong_length_names_the_expected_shape(layer_class):
    """A (4, 7) mask for (4, 10, 3) inputs (the native kernel said, time-major,
    "mask must be (10, 4) or empty, got [7,4]")."""
    layer = layer_class(4, name="rnn")
    with pytest.raises(ValueError) as info:
        layer(np.zeros((4, 10, 3), "float32"), mask=np.ones((4, 7), bool))
    assert (
        "Received a `mask` of shape (4, 7) in layer 'rnn' for inputs of shape (4, 10, 3) "
        "(batch, timesteps, features); the mask must be (4, 10): one boolean per sample "
        "and timestep."
    ) in str(info.value)
    with pytest.raises(ValueError, match=r"the mask must be \(4, 10\)"):
        layer(np.zeros((4, 10, 3), "float32"), mask=np.ones((4, 10, 1), bool))
