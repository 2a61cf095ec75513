"""cuDNN on a GPU: LSTM and GRU calls whose configuration cuDNN computes run
Keras's own cuDNN functions (``keras.src.backend.lstm`` / ``gru``).

Which backend reaches cuDNN here:

* TensorFlow: LSTM and GRU (``reset_after=True``), through Keras's
  ``CudnnRNNV3`` wrappers;
* JAX: LSTM, through Keras's ``jax.experimental.rnn`` wrapper (Keras has no
  cuDNN GRU on JAX);
* PyTorch: not here: the PyTorch fast path (``_torch_fast``) calls
  ``torch._VF.lstm`` / ``gru``, which take cuDNN by themselves on CUDA
  tensors, masks included (packed sequences).

A call goes to cuDNN when (:func:`plan` says why not, otherwise):

* the layer's ``use_cudnn`` is "auto" or True, and :data:`ENABLED`;
* default activations (tanh / sigmoid), a bias, GRU ``reset_after=True``;
* no recurrent dropout in this call, not unrolled;
* no mask (a masked call runs seqkit's own fused loops, which take any mask;
  Keras's JAX path refuses masks too, and its TF path fails on left padding);
* a GPU is present for the backend;
* the graph is not being traced for export, nor (TensorFlow) one that may be
  saved (a user's ``tf.function``), nor inside an XLA cluster: every graph
  that may be served keeps the portable ops, so a GPU-trained model serves on
  a CPU, and a saved model never holds a ``CudnnRNN*`` op.

``use_cudnn=True`` does not force cuDNN: where it cannot run, the call takes
the fused loops (the results agree within float tolerance).
"""

from __future__ import annotations

import keras

from seqkit.export import export_target

__all__ = ["ENABLED", "plan", "call", "gpu_available"]

# Switch for tests and benchmarks: False keeps every call off cuDNN.
ENABLED = True
_GPU: dict = {}

_KINDS = {"tensorflow": ("lstm", "gru"), "jax": ("lstm",)}


def gpu_available() -> bool:
    """Whether the backend computes on a GPU (cached per backend)."""
    backend = keras.backend.backend()
    if backend not in _GPU:
        if backend == "tensorflow":
            import tensorflow as tf

            _GPU[backend] = bool(tf.config.list_logical_devices("GPU"))
        elif backend == "jax":
            import jax

            _GPU[backend] = jax.default_backend() == "gpu"
        else:
            _GPU[backend] = False
    return _GPU[backend]


def _tf_graph_must_stay_portable() -> bool:
    import tensorflow as tf
    from tensorflow.python.framework import ops as tf_ops

    from seqkit.layers._tf_fast import _graph_may_be_saved

    if tf.executing_eagerly():
        return False
    try:
        from tensorflow.python.ops import control_flow_util

        if control_flow_util.GraphOrParentsInXlaContext(tf_ops.get_default_graph()):
            return True  # CudnnRNN has no XLA kernel
    except ImportError:  # private module moved: do not risk it
        return True
    return _graph_may_be_saved(tf_ops)


def plan(layer, mask=None, recurrent_dropout=False) -> str | None:
    """None when this call of ``layer`` goes to cuDNN, else why not (a short reason)."""
    backend = keras.backend.backend()
    cell = layer.cell
    kind = cell._fast_kind()
    if not ENABLED:
        return "disabled"
    if backend not in _KINDS:
        return f"no dispatch here on {backend}"
    if kind not in _KINDS[backend]:
        return "a configuration (cell, activations, reset_after) cuDNN does not compute here"
    if getattr(layer, "use_cudnn", "auto") is False:
        return "use_cudnn=False"
    if not cell.use_bias:
        return "use_bias=False"
    if recurrent_dropout:
        return "recurrent dropout"
    if layer.unroll:
        return "unroll=True"
    if mask is not None:
        return "a mask"
    if not gpu_available():  # (before the stack walk below: CPU calls pay nothing more)
        return "no GPU"
    if export_target() is not None:
        return "export trace"
    if backend == "tensorflow" and _tf_graph_must_stay_portable():
        return "a graph that may be saved, or an XLA cluster"
    return None


def call(layer, sequences, states, mask, rec_mask):
    """``(outputs_tm, final_states)`` from cuDNN (the runners' format: time-major
    outputs, or the last output alone), or None when the call does not go there.

    ``sequences``: batch-major, input dropout applied.
    """
    if plan(layer, mask, rec_mask is not None) is not None:
        return None
    from keras import ops
    from keras.src import backend

    cell = layer.cell
    common = dict(
        kernel=cell.kernel,
        recurrent_kernel=cell.recurrent_kernel,
        bias=cell.bias,
        activation=keras.activations.tanh,
        recurrent_activation=keras.activations.sigmoid,
        return_sequences=layer.return_sequences,
        go_backwards=layer.go_backwards,
        unroll=False,
    )
    try:
        if cell._fast_kind() == "lstm":
            last, outputs, final = backend.lstm(sequences, states[0], states[1], None, **common)
        else:
            last, outputs, final = backend.gru(
                sequences, states[0], None, reset_after=True, **common
            )
    except NotImplementedError:  # (Keras's own checks: e.g. no cuDNN in this build)
        return None
    outputs_tm = ops.transpose(outputs, (1, 0, 2)) if layer.return_sequences else last[None]
    return outputs_tm, list(final)
