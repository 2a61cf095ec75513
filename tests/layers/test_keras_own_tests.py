"""Keras's own RNN tests, run against seqkit's classes (issue 22, item 0).

The test files ship in the installed keras wheel (`keras/src/layers/rnn/`):
lstm_test, gru_test, simple_rnn_test, bidirectional_test,
stacked_rnn_cells_test and dropout_rnn_cell_test. They build their layers as
`layers.LSTM(...)` from `keras.src.layers`; the fixture below puts seqkit's
`LSTM`, `GRU`, `SimpleRNN`, `Bidirectional` and cells there for each test, so
each Keras test checks the drop-in promise (same arguments, defaults, weights,
numbers, serialization). Only tests of Keras's private attributes are skipped,
each with its reason. Runs under every backend of the README's test command.
"""

from __future__ import annotations

import importlib

import pytest

import seqkit.layers as sk

KL = pytest.importorskip("keras.src.layers")
_modules = {}
for _name in (
    "lstm_test",
    "gru_test",
    "simple_rnn_test",
    "bidirectional_test",
    "stacked_rnn_cells_test",
    "dropout_rnn_cell_test",
):
    try:  # a keras wheel without its tests: nothing to run
        _modules[_name] = importlib.import_module(f"keras.src.layers.rnn.{_name}")
    except ImportError:
        _modules[_name] = None
if not all(_modules.values()):
    pytest.skip("this keras wheel ships without its RNN test files", allow_module_level=True)

SWAP = {
    "LSTM": sk.LSTM,
    "GRU": sk.GRU,
    "SimpleRNN": sk.SimpleRNN,
    "Bidirectional": sk.Bidirectional,
    "LSTMCell": sk.LSTMCell,
    "GRUCell": sk.GRUCell,
    "SimpleRNNCell": sk.SimpleRNNCell,
}
PRIVATE = "tests Keras's private `_can_attempt_fused_lstm` (its cuDNN dispatch); seqkit has none"


@pytest.fixture(autouse=True)
def seqkit_in_keras(monkeypatch):
    for name, cls in SWAP.items():
        monkeypatch.setattr(KL, name, cls)


class TestKerasLSTM(_modules["lstm_test"].LSTMTest):
    pass


class TestKerasGRU(_modules["gru_test"].GRUTest):
    pass


class TestKerasSimpleRNN(_modules["simple_rnn_test"].SimpleRNNTest):
    pass


class TestKerasBidirectional(_modules["bidirectional_test"].SimpleRNNTest):
    @pytest.mark.skip(reason=PRIVATE)
    def test_fused_lstm_eligibility(self):
        pass

    @pytest.mark.skip(reason=PRIVATE)
    def test_fused_gru_eligibility(self):
        pass


class TestKerasStackedCells(_modules["stacked_rnn_cells_test"].StackedRNNTest):
    pass


class TestKerasDropoutCell(_modules["dropout_rnn_cell_test"].DropoutRNNCellTest):
    pass
