"""Recurrent layers: Keras drop-ins that are faster and do more."""

from seqkit.layers.attention import DecoderAttention
from seqkit.layers.bidirectional import Bidirectional
from seqkit.layers.gru import GRU, GRUCell
from seqkit.layers.lstm import LSTM, LSTMCell
from seqkit.layers.pooling import MaskedGlobalPooling
from seqkit.layers.rnn import RNN, RecurrentCell
from seqkit.layers.simple_rnn import SimpleRNN, SimpleRNNCell

__all__ = [
    "RNN",
    "RecurrentCell",
    "SimpleRNN",
    "SimpleRNNCell",
    "LSTM",
    "LSTMCell",
    "GRU",
    "GRUCell",
    "Bidirectional",
    "MaskedGlobalPooling",
    "DecoderAttention",
]
