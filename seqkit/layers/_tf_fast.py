"""TensorFlow fast path, the driver: fused recurrent loops with hand-written
gradients.

Registered for the TensorFlow backend by `seqkit/layers/__init__.py` (the
`_fast_path` registry) and reached only through
`seqkit.layers.rnn._fast_sequence`, for the default activations
(tanh / sigmoid), no recurrent dropout and no unrolling; anything else runs
the generic `keras.ops` loop.

Two implementations of the same loops and gradients, chosen here by `run`:

* on CPU, in float32, for SimpleRNN, LSTM and GRU (reset_after True and
  False), the native C++ kernels of `_native` (`_run_native`; the fastest);
* otherwise (GPU, float64 / float16, XLA-compiled models, graphs that may be
  exported, or no C++ compiler) the XLA-compiled TensorFlow loops of
  `_tf_loops`, over the per-cell math of `_tf_cells`.

Both form the recurrent-weight gradients after the backward loop, as one
large matmul each, outside XLA: TensorFlow's own (oneDNN) matmul is faster
than XLA's at that size. The measurements behind these choices are in
benchmarks/RESULTS.md ("Layers: seqkit vs Keras built-ins").

Every op of the XLA loops is a plain TensorFlow CPU/GPU op (no cuDNN), and
graphs that may be saved never get the native ops, so exported graphs serve
anywhere without seqkit.

Masks follow Keras: at a masked step the states are carried unchanged and the
output repeats the previous output (or is zero with `zero_output_for_mask`).
"""

from __future__ import annotations

import tensorflow as tf

from seqkit.export import export_target
from seqkit.layers import _native
from seqkit.layers._tf_cells import CELLS, unpack
from seqkit.layers._tf_loops import compiled, forward_lstm_onnx, forward_portable, shift

__all__ = ["run", "USE_XLA", "USE_NATIVE"]

# XLA-compile the loops (measured faster on CPU; see benchmarks/RESULTS.md).
USE_XLA = True
# Native C++ kernels (`_native`) for the cases they cover, on CPU: measured
# faster again than the XLA loops (benchmarks/RESULTS.md).
USE_NATIVE = True
# While tracing a graph for export (`seqkit.export.export_target()`: an
# `exporting()` block, or Keras's / TF's / tf2onnx's / LiteRT's exporters),
# inference runs `_tf_loops.forward_portable` inline and skips XLA: an XLA
# cluster is compiled once per input shape, and a served model sees a new
# (batch, time) shape with almost every request (measured: 4 texts/s at
# batch 1 with XLA).


def _could_record():
    """Whether a gradient tape is active (True when unsure)."""
    try:
        from tensorflow.python.eager import record
    except ImportError:  # private module moved: always keep the saves
        return True
    return record.could_possibly_record()


_NATIVE_KINDS = ("simple", "lstm", "gru", "gru_v1")
_HAS_GPU = []
# Graphs Keras's trainer traces for fit / evaluate / predict: never saved.
_KERAS_STEP_GRAPHS = ("one_step_on_data", "one_step_on_data_distributed", "multi_step_on_iterator")


def _graph_may_be_saved(tf_ops):
    """Whether the graph being traced could end up in a SavedModel.

    Eager calls and graphs under a gradient tape (training) are not saved;
    nor are Keras's own fit / evaluate / predict functions. Any other graph
    (`model.export`, `tf.saved_model.save`, a user's tf.function) may be, so
    it gets plain TensorFlow ops that load without seqkit.
    """
    if tf.executing_eagerly() or _could_record():
        return False
    g = tf_ops.get_default_graph()
    while g is not None:
        if getattr(g, "name", None) in _KERAS_STEP_GRAPHS:
            return False
        g = getattr(g, "outer_graph", None)
    return True


def _native_ops(kind, dtype, target=None):
    """The native op library when it covers this call, else None."""
    if not USE_NATIVE or kind not in _NATIVE_KINDS or dtype != tf.float32:
        return None
    if target is None:
        target = export_target(stack=False)
    if target is not None or not _native.enabled():
        return None  # exported graphs keep plain TensorFlow ops
    if not _HAS_GPU:
        _HAS_GPU.append(bool(tf.config.list_logical_devices("GPU")))
    if _HAS_GPU[0]:
        return None  # CPU kernels only: on a GPU machine the tensors live there
    try:  # inside an XLA cluster (e.g. jit_compile=True) a custom op cannot compile
        from tensorflow.python.framework import ops as tf_ops
        from tensorflow.python.ops import control_flow_util

        if control_flow_util.GraphOrParentsInXlaContext(tf_ops.get_default_graph()):
            return None
    except ImportError:  # private modules moved: do not risk it
        return None
    if _graph_may_be_saved(tf_ops):
        return None
    return _native.ops()


def _last(S, s0):
    """The state after the last step: S[-1], or s0 for an empty sequence."""
    if S.shape[0] is not None and S.shape[0] > 0:
        return S[-1]
    return tf.cond(tf.shape(S)[0] > 0, lambda: S[-1], lambda: s0)


def _run_native(lib, kind, xp, states, weights, trainable_br, mask, zero_out, for_grad):
    """`run` on the native kernels: a forward op and a backward op, each one
    time loop in C++; the weight gradients as one matmul each afterwards (as
    on the XLA path)."""
    n = len(states)
    units = states[0].shape[-1]
    cell = CELLS[kind]
    # (T, B) of 0 / 1, or an empty vector for no mask
    m = tf.zeros((0,), tf.float32) if mask is None else tf.cast(mask[..., 0], tf.float32)
    seq_shape = xp.shape[:2].concatenate([units])

    def forward(xp, st, ws, save):
        if kind == "simple":
            Y, H = lib.seqkit_simple_fwd(xp, st[0], ws[0], m, zero_out=zero_out)
            extra = ()
        elif kind == "lstm":
            Y, H, C, A = lib.seqkit_lstm_fwd(
                xp, st[0], st[1], ws[0], m, save_gates=save, zero_out=zero_out
            )
            C.set_shape(seq_shape)
            extra = (C, A)
        elif kind == "gru":
            Y, H, S = lib.seqkit_gru_fwd(xp, st[0], ws[0], ws[1], m, zero_out=zero_out)
            extra = (S,)
        else:  # gru_v1: S = [z, r, hh]
            Y, H, S = lib.seqkit_gru1_fwd(xp, st[0], ws[0], m, zero_out=zero_out)
            extra = (S,)
        H = Y if mask is None else H  # without a mask the outputs are the states
        Y.set_shape(seq_shape)
        H.set_shape(seq_shape)
        return (Y, H) + extra

    @tf.custom_gradient
    def fused(xp, *args):
        sg = tf.stop_gradient
        st = [sg(v) for v in args[:n]]
        ws = [sg(v) for v in args[n:]]
        xp = sg(xp)
        keep = forward(xp, st, ws, for_grad)
        Y, H = keep[:2]
        final = [_last(H, st[0])] + ([_last(keep[2], st[1])] if kind == "lstm" else [])
        for f, s in zip(final, st):
            f.set_shape(s.shape)

        def grad(dY, *dfinal):
            kp = keep
            if kind == "lstm" and not for_grad:  # the gates were not kept: rerun
                kp = forward(xp, st, ws, True)
            dY = tf.zeros_like(Y) if dY is None else dY
            dfinal = [tf.zeros_like(s) if d is None else d for d, s in zip(dfinal, st)]
            parts = []
            if kind == "simple":
                dxp, dh0 = lib.seqkit_simple_bwd(dY, dfinal[0], H, ws[0], m, zero_out=zero_out)
                d0 = [dh0]
            elif kind == "lstm":
                C, A = kp[2:]
                dxp, dh0, dc0 = lib.seqkit_lstm_bwd(
                    dY, dfinal[0], dfinal[1], A, C, st[1], ws[0], m, zero_out=zero_out
                )
                d0 = [dh0, dc0]
            elif kind == "gru":
                dxp, DI, dh0 = lib.seqkit_gru_bwd(
                    dY, dfinal[0], kp[2], H, st[0], ws[0], m, zero_out=zero_out
                )
                d0 = [dh0]
                parts = [DI]
            else:
                dxp, dh0 = lib.seqkit_gru1_bwd(
                    dY, dfinal[0], kp[2], H, st[0], ws[0], m, zero_out=zero_out
                )
                d0 = [dh0]
            dxp.set_shape(xp.shape)
            w = {"R": ws[0], "u": units}
            # gru_v1's weight gradient reads the z, r gates (the first 2u columns of S)
            saves = [kp[2][..., : 2 * units], None] if kind == "gru_v1" else None
            dws = cell.weight_grads(dxp, parts, shift(H, st[0]), saves, w)
            if kind == "gru" and not trainable_br:
                dws = [dws[0], tf.zeros_like(ws[1])]
            return [dxp] + d0 + list(dws)

        return (Y, *final), grad

    out = fused(xp, *states, *weights)
    return out[0], list(out[1:])


class _Step:
    """A seqkit cell's own `step` (any activation) in the `_tf_cells` interface,
    for `forward_portable`: the traced inference loop of configurations without
    a fused loop. Keras's scan there fails in onnxruntime ("Invalid tensor data
    type 0"), needs Flex ops in LiteRT, and failed in `predict` retracing a
    masked GRU(recurrent_activation="hard_sigmoid") for a new batch shape."""

    def __init__(self, cell):
        self.cell = cell

    def fwd(self, xp_t, states, w):
        y, new = self.cell.step(xp_t, list(states), None)
        return y, tuple(new), ()


def run(
    kind,
    cell_layer,
    xp,
    states,
    mask,
    zero_output_for_mask,
    use_xla=None,
    need_sequence=True,
    inputs=None,
):
    """Run the recurrence of `cell_layer` over projected inputs.

    Args:
        kind: "simple", "lstm", "gru" or "gru_v1"; None (no fused loop) is
            taken by traced inference only (over the cell's own step).
        cell_layer: the seqkit cell (weights are read from it).
        xp: (time, batch, G) projected inputs, input bias included.
        states: list of (batch, units) initial states.
        mask: (time, batch, 1) bool or None.
        zero_output_for_mask: output zeros at masked steps.
        need_sequence: False when the caller reads only the last output; an
            export trace then returns outputs of one step (1, batch, units).
        inputs: a callable giving the unprojected (time, batch, features)
            sequence, in processing order (ONNX export traces of LSTM use it).

    Returns:
        (outputs (time, batch, units), final states list).
    """
    if not tf.is_tensor(xp):
        raise NotImplementedError  # e.g. symbolic KerasTensors: generic path traces
    if kind is None:  # no fused loop: traced inference runs the cell's own step
        if tf.executing_eagerly() or _could_record():
            raise NotImplementedError  # eager, or training: Keras's scan (the generic loop)
        return forward_portable(
            _Step(cell_layer),
            xp,
            list(states),
            mask,
            zero_output_for_mask,
            None,
            need_sequence,
            export_target() == "litert",
        )
    if use_xla is None:
        use_xla = USE_XLA
    dtype = xp.dtype
    units = cell_layer.units
    R = tf.cast(tf.convert_to_tensor(cell_layer.recurrent_kernel), dtype)
    states = [tf.cast(tf.convert_to_tensor(s), dtype) for s in states]
    weights = [R]
    if kind == "gru":
        rb = cell_layer.recurrent_bias()
        br = (
            tf.cast(tf.convert_to_tensor(rb), dtype)
            if rb is not None
            else tf.zeros((3 * units,), dtype)
        )
        weights.append(br)
    trainable_br = kind == "gru" and cell_layer.recurrent_bias() is not None

    # Traced for an export and not for training: the portable inline loop.
    eager = tf.executing_eagerly()
    target = export_target(stack=not eager)
    if target is not None and not eager and not _could_record():
        if target == "onnx" and kind == "lstm" and mask is None and inputs is not None:
            bias = cell_layer.bias if cell_layer.use_bias else None
            return forward_lstm_onnx(
                inputs(),
                states,
                tf.cast(tf.convert_to_tensor(cell_layer.kernel), dtype),
                R,
                None if bias is None else tf.cast(tf.convert_to_tensor(bias), dtype),
            )
        w = unpack(kind, weights, units, dtype)
        return forward_portable(
            CELLS[kind],
            xp,
            states,
            mask,
            zero_output_for_mask,
            w,
            need_sequence,
            target == "litert",
        )
    lib = _native_ops(kind, dtype, target)
    if lib is not None:
        for_grad = _could_record() or kind != "lstm"
        return _run_native(
            lib, kind, xp, states, weights, trainable_br, mask, zero_output_for_mask, for_grad
        )

    n = len(states)
    # No tape watching (predict, inference): skip the per-step saves. Should a
    # gradient be asked for anyway (e.g. tf.gradients on the graph later), it
    # reruns the forward loop with them.
    for_grad = _could_record() or not CELLS[kind].lean_inference
    if target is not None:
        use_xla = False

    @tf.custom_gradient
    def fused(xp, *args):
        st, ws = list(args[:n]), list(args[n:])
        fwd, fwd_inference, bwd = compiled(
            kind, units, mask is not None, zero_output_for_mask, use_xla
        )
        # The gradient is ours: hide the compiled loops from the tape.
        sg = tf.stop_gradient
        inputs = (sg(xp), [sg(v) for v in st], [sg(v) for v in ws], mask)
        if for_grad:
            Y, final, recorded, saves = fwd(*inputs)
        else:
            (Y, final), recorded, saves = fwd_inference(*inputs), None, None

        def grad(dY, *dfinal):
            Y_, rec, sv = Y, recorded, saves
            if rec is None:  # the forward ran without saves: rerun it with them
                Y_, _, rec, sv = fwd(*inputs)
            S = ([Y_] if mask is None else []) + list(rec)  # state sequences
            dY = tf.zeros_like(Y) if dY is None else dY
            dfinal = [tf.zeros_like(s) if d is None else d for d, s in zip(dfinal, final)]
            dxp, d0, parts = bwd(
                sg(dY),
                [sg(d) for d in dfinal],
                [sg(v) for v in st],
                S,
                sv,
                [sg(v) for v in ws],
                mask,
            )
            # The big weight-gradient matmuls run outside XLA: TensorFlow's own
            # (oneDNN) matmul is faster than XLA's at this size (measured 0.84-0.95x
            # train-step time for SimpleRNN-256 / GRU-256 / LSTM-128).
            w = unpack(kind, ws, units, dtype)
            dws = CELLS[kind].weight_grads(dxp, parts, shift(S[0], st[0]), sv, w)
            if kind == "gru" and not trainable_br:
                dws = [dws[0], tf.zeros_like(ws[1])]
            return [dxp] + list(d0) + list(dws)

        return (Y, *final), grad

    out = fused(xp, *states, *weights)
    return out[0], list(out[1:])
