"""Recurrent layers: Keras drop-ins that are faster and do more.

- Cells (`SimpleRNNCell`, `LSTMCell`, `GRUCell`) do one step; `RNN` runs a
  cell over a sequence; `SimpleRNN`, `LSTM`, `GRU` and `Bidirectional` are
  drop-ins for the Keras layers of the same names.
- `RecurrentStack` is the backbone the tasks build on: `layers` recurrent
  layers of one cell kind, optionally bidirectional, with dropout between
  them and a flat state list; `get("lstm" | "gru" | "rnn")` names the layer
  classes.

Under the TensorFlow backend the recurrent loops take a fast path (native C++
kernels or XLA-compiled loops, `_tf_fast`), under JAX a fused `lax.scan` with
a hand-written backward pass (`_jax_fast`), under PyTorch torch's own fused
kernels (`_torch_fast`); all registered below.
"""

import keras

from seqkit.layers import _fast_path
from seqkit.layers.attention import DecoderAttention
from seqkit.layers.bidirectional import Bidirectional
from seqkit.layers.gru import GRU, GRUCell
from seqkit.layers.lstm import LSTM, LSTMCell
from seqkit.layers.pooling import MaskedGlobalPooling
from seqkit.layers.rnn import RNN, RecurrentCell
from seqkit.layers.simple_rnn import SimpleRNN, SimpleRNNCell
from seqkit.layers.stack import CELLS, RecurrentStack, get

if keras.backend.backend() == "tensorflow":
    from seqkit.layers import _tf_fast

    _fast_path.register("tensorflow", _tf_fast.run)
elif keras.backend.backend() == "jax":
    from seqkit.layers import _jax_fast

    _fast_path.register("jax", _jax_fast.run, projects=True)
elif keras.backend.backend() == "torch":
    from seqkit.layers import _torch_fast

    _fast_path.register("torch", _torch_fast.run, projects=True)

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
    "RecurrentStack",
    "get",
    "CELLS",
]
