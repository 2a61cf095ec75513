"""cuDNN on a GPU: LSTM and GRU calls whose configuration cuDNN computes run
Keras's own cuDNN functions (``keras.src.backend.lstm`` / ``gru``).

Which backend reaches cuDNN here:

* TensorFlow: LSTM and GRU (``reset_after=True``), through Keras's
  ``CudnnRNNV3`` wrappers;
* JAX: LSTM, through ``jax.experimental.rnn.lstm`` (called here, with the
  sequence lengths; Keras has no cuDNN GRU on JAX, and its wrapper refuses
  masks);
* PyTorch: not here: the PyTorch fast path (``_torch_fast``) calls
  ``torch._VF.lstm`` / ``gru``, which take cuDNN by themselves on CUDA
  tensors, masks included (packed sequences).

A call goes to cuDNN when (:func:`plan` says why not, otherwise):

* the layer's ``use_cudnn`` is "auto" or True, and :data:`ENABLED`;
* default activations (tanh / sigmoid), a bias, GRU ``reset_after=True``;
* no recurrent dropout in this call, not unrolled;
* a GPU is present for the backend;
* the graph is not being traced for export, nor (TensorFlow) one that may be
  saved (a user's ``tf.function``), nor inside an XLA cluster: every graph
  that may be served keeps the portable ops, so a GPU-trained model serves on
  a CPU, and a saved model never holds a ``CudnnRNN*`` op.

Masks: cuDNN takes right-padded rows, given as sequence lengths. Any mask is
made so here: each row's valid steps move, in order, to the front (left
padding, holes, anything), cuDNN runs with the rows' valid-step counts, and
each output step then reads the output of the last valid step at or before
it, as the generic loop gives it (zero before the first, or at every masked
step with ``zero_output_for_mask``); a row with no valid step keeps its
initial state. This is exact: a masked step leaves the state unchanged.

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
    if not gpu_available():  # (before the stack walk below: CPU calls pay nothing more)
        return "no GPU"
    if export_target() is not None:
        return "export trace"
    if backend == "tensorflow" and _tf_graph_must_stay_portable():
        return "a graph that may be saved, or an XLA cluster"
    return None


def call(layer, sequences, states, mask, rec_mask):
    """``(outputs_tm, final_states)`` from cuDNN (the runners' format: time-major
    outputs in processing order, or the last output alone), or None when the
    call does not go there.

    ``sequences``: batch-major, input dropout applied; ``mask``: (batch, time) or None.
    """
    if plan(layer, mask, rec_mask is not None) is not None:
        return None
    from keras import ops

    x = sequences
    if layer.go_backwards:  # (processing order from here on, as the runners)
        x = ops.flip(x, axis=1)
    if mask is None:
        try:
            y, final = _kernel(layer, x, states, None)
        except NotImplementedError:  # (Keras's own checks: e.g. no cuDNN in this build)
            return None
        return (ops.transpose(y, (1, 0, 2)) if layer.return_sequences else y[None, :, -1]), final
    m = ops.cast(mask, "bool")
    if layer.go_backwards:
        m = ops.flip(m, axis=1)
    steps = ops.arange(ops.shape(m)[1], dtype="int32")[None]
    # Valid steps first, in order: unique keys, so any sort keeps the order.
    order = ops.argsort(ops.where(m, steps, steps + ops.shape(m)[1]), axis=1)
    count = ops.sum(ops.cast(m, "int32"), axis=1)
    lengths = ops.maximum(count, 1)  # (a row with no valid step: its result is replaced)
    packed = ops.take_along_axis(x, order[:, :, None], axis=1)
    try:
        y, final = _kernel(layer, packed, states, lengths)
    except NotImplementedError:
        return None
    seen = ops.cumsum(ops.cast(m, "int32"), axis=1)  # valid steps up to and including t
    y = ops.take_along_axis(y, ops.maximum(seen - 1, 0)[:, :, None], axis=1)
    keep = m if layer.zero_output_for_mask else seen > 0
    y = ops.where(keep[:, :, None], y, ops.zeros_like(y))
    some = (count > 0)[:, None]
    final = [ops.where(some, f, ops.cast(s, f.dtype)) for f, s in zip(final, states)]
    return (ops.transpose(y, (1, 0, 2)) if layer.return_sequences else y[None, :, -1]), final


def _kernel(layer, x, states, lengths):
    """cuDNN over batch-major ``x`` (processing order, right-padded rows of
    ``lengths`` valid steps, or all valid when None): ``(y, final_states)``,
    ``y`` batch-major with every step. Raises NotImplementedError where it cannot run."""
    from keras import ops
    from keras.src import backend

    cell = layer.cell
    if keras.backend.backend() == "jax":
        steps = ops.shape(x)[1]
        if lengths is None:
            lengths = ops.full((ops.shape(x)[0],), steps, dtype="int32")
        return _jax_lstm(x, states, lengths, cell.kernel, cell.recurrent_kernel, cell.bias)
    mask = None if lengths is None else ops.arange(ops.shape(x)[1])[None] < lengths[:, None]
    common = dict(
        kernel=cell.kernel,
        recurrent_kernel=cell.recurrent_kernel,
        bias=cell.bias,
        activation=keras.activations.tanh,
        recurrent_activation=keras.activations.sigmoid,
        return_sequences=True,
        go_backwards=False,
        unroll=False,
    )
    if cell._fast_kind() == "lstm":
        _, y, final = backend.lstm(x, states[0], states[1], mask, **common)
    else:
        _, y, final = backend.gru(x, states[0], mask, reset_after=True, **common)
    return y, list(final)


def _jax_lstm(x, states, lengths, kernel, recurrent_kernel, bias):
    """``jax.experimental.rnn.lstm`` with Keras's weights (its i, f, g, o gate order is
    Keras's i, f, c, o; one bias, the recurrent one zero)."""
    import jax.numpy as jnp

    try:
        from jax.experimental import rnn
    except ImportError as e:
        raise NotImplementedError(f"jax.experimental.rnn unavailable: {e}") from e
    kernel, recurrent_kernel, bias = (jnp.asarray(v) for v in (kernel, recurrent_kernel, bias))
    weights = jnp.concatenate(
        [kernel.T.ravel(), recurrent_kernel.T.ravel(), bias, jnp.zeros_like(bias)]
    )
    h0, c0 = (jnp.asarray(s)[None] for s in states)
    y, h, c = rnn.lstm(
        x,
        h0,
        c0,
        weights,
        jnp.asarray(lengths, jnp.int32),
        input_size=kernel.shape[0],
        hidden_size=recurrent_kernel.shape[0],
        num_layers=1,
        dropout=0.0,
        bidirectional=False,
    )
    return y, [h[0], c[0]]
