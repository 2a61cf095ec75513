"""TensorFlow fast path: fused recurrent loops with hand-written gradients.

Reached only through `seqkit.layers.rnn._fast_sequence`, for the default
activations (tanh / sigmoid), no recurrent dropout and no unrolling; anything
else runs the generic `keras.ops` loop.

Two implementations of the same loops and gradients: on CPU, in float32, for
SimpleRNN, LSTM and GRU (reset_after True and False), the native C++ kernels
of `_native` (`_run_native`; the fastest, see benchmarks/RESULTS.md);
otherwise (GPU, float64 / float16, XLA-compiled models, graphs that may be
exported, or no C++ compiler) the XLA-compiled TensorFlow loops
below, which the rest of this docstring describes.

What makes it fast (see ../shared/PERF_NOTES.md):

* the inputs are projected for all timesteps before the loop (done by the
  caller), so a step is one `h @ U` matmul plus elementwise gate arithmetic;
* LSTM gates go through one tanh over the whole (batch, 4 * units) tensor
  (sigmoid(x) = (tanh(x / 2) + 1) / 2 for the i, f, o blocks), with no
  slicing before the nonlinearity; GRU's sigmoids use the same identity
  (XLA's CPU tanh measured ~1.5x faster than its sigmoid);
* the backward pass is written by hand: the reverse loop only propagates
  dh (one matmul a step) and stores dxp; the recurrent-kernel gradient is then
  one large matmul over all steps, `H_prev^T @ dZ`, instead of T small ones;
* few kernels a step: under XLA on CPU every fused kernel and every
  TensorArray write costs a few microseconds, about as much as the gate
  arithmetic itself. So the loops store as little as they can (the output
  sequence doubles as the h-state sequence when there is no mask; previous
  states come from shifting the state sequences by one step; tanh(c) is
  recomputed for all steps at once), the backward loop writes one tensor a
  step (two for GRU), and the weight-gradient matmuls run after it, outside
  XLA;
* but a full-width sigmoid must stay a kernel of its own: fused into
  consumers that slice it, XLA on CPU emits scalar code (measured 10x
  slower). Saving the gates it feeds (LSTM's a, GRU's z and r) keeps it
  materialized.

Every op here is a plain TensorFlow CPU/GPU op (no cuDNN), so graphs that use
this path export and serve anywhere.

Masks follow Keras: at a masked step the states are carried unchanged and the
output repeats the previous output (or is zero with `zero_output_for_mask`).
"""

from __future__ import annotations

import contextlib

import numpy as np
import tensorflow as tf

from seqkit.layers import _native
from seqkit.layers.lstm import gate_scale_offset

# ---------------------------------------------------------------- cells
# Each cell defines:
#   fwd(xp_t, states, w) -> (h_new, raw_new_states, saves)
#       saves: per-step tensors the backward pass needs beyond the state
#       sequences (the loop stacks them to (T, batch, ...)).
#   bwd_seqs(S, S_prev, saves, w) -> seqs
#       from the stacked forward results, the (T, batch, ...) tensors the
#       backward step reads: S / S_prev are the carried state sequences
#       after / before each step (lists, one per state). Runs once, for all
#       steps, before the reverse loop.
#   bwd(d_new_states, s, w) -> (dxp_t, d_prev_states, parts)
#       one reverse step; `s` is the tuple of seqs at this step; `parts` are
#       extra per-step tensors for the weight gradients (n_parts of them).
#   weight_grads(DXP, parts, H_prev, saves, w) -> list of recurrent weight
#       gradients (R, and the recurrent bias for GRU), each one op over all
#       steps.
# At a masked step the incoming gradients are zero, so the values read there
# only have to be finite.


def _sigmoid(x):
    """sigmoid(x) = (tanh(x / 2) + 1) / 2: XLA's CPU tanh is faster than its sigmoid."""
    return 0.5 * tf.tanh(0.5 * x) + 0.5


def _lstm_consts(units, dtype):
    """a = tanh(z * scale) * scale + offset gives sigmoid for i, f, o and tanh for g."""
    scale, offset = gate_scale_offset(units)
    gmask = (scale == 1.0).astype(np.float32)  # 1 on the candidate (tanh) block
    return tf.constant(scale, dtype), tf.constant(offset, dtype), tf.constant(gmask, dtype)


class _Simple:
    n_states = 1
    lean_inference = True  # inference skips the saves (see `run`)
    n_parts = 0
    n_saves = 0

    def fwd(self, xp_t, states, w):
        (h,) = states
        hn = tf.tanh(xp_t + tf.matmul(h, w["R"]))
        return hn, (hn,), ()

    def bwd_seqs(self, S, S_prev, saves, w):
        return (S[0],)  # h_new

    def bwd(self, dnew, s, w):
        (dhn,) = dnew
        (hn,) = s
        dz = dhn * (1.0 - hn * hn)
        dh_prev = tf.matmul(dz, w["R"], transpose_b=True)
        return dz, (dh_prev,), ()

    def weight_grads(self, DXP, parts, Hprev, saves, w):
        return [_outer_sum(Hprev, DXP)]


class _LSTM:
    n_states = 2
    lean_inference = True  # predict 0.67-0.75x the time without the saves
    n_parts = 0
    n_saves = 1  # a (gates after activation)

    def fwd(self, xp_t, states, w):
        h, c = states
        z = xp_t + tf.matmul(h, w["R"])  # (batch, 4u)
        a = tf.tanh(z * w["scale"]) * w["scale"] + w["offset"]  # i, f, g(tanh), o
        i, f, g, o = tf.split(a, 4, axis=1)
        cn = f * c + i * g
        hn = o * tf.tanh(cn)
        return hn, (hn, cn), (a,)

    def bwd_seqs(self, S, S_prev, saves, w):
        (A,) = saves
        return A, S_prev[1], tf.tanh(S[1])  # gates, c_prev, tanh(c_new)

    def bwd(self, dnew, s, w):
        dhn, dcn = dnew
        a, c_prev, tc = s
        i, f, g, o = tf.split(a, 4, axis=1)
        do = dhn * tc
        dct = dcn + dhn * o * (1.0 - tc * tc)
        da = tf.concat([dct * g, dct * c_prev, dct * i, do], axis=1)  # (batch, 4u)
        dz = da * (w["gmask"] + a * (1.0 - w["gmask"]) - a * a)
        dh_prev = tf.matmul(dz, w["R"], transpose_b=True)
        return dz, (dh_prev, dct * f), ()

    def weight_grads(self, DXP, parts, Hprev, saves, w):
        return [_outer_sum(Hprev, DXP)]


class _GRU:
    """reset_after=True: hh = tanh(x_h + r * (h U_h + b_h))."""

    # Saving z and r separately keeps the full-width sigmoid a kernel of its
    # own: fused into its sliced consumers, XLA on CPU emits scalar code for
    # it (~10x slower in isolation). Hence no lean inference either (measured
    # 1.2-1.4x slower without the saves), and no recomputing gates in bwd.
    lean_inference = False
    n_states = 1
    n_parts = 1  # d_inner
    n_saves = 4  # z, r, hh, inner_h

    def fwd(self, xp_t, states, w):
        (h,) = states
        inner = tf.matmul(h, w["R"]) + w["br"]  # (batch, 3u)
        sg = _sigmoid(xp_t + inner)  # z, r (third block unused)
        z, r, _ = tf.split(sg, 3, axis=1)
        _, _, x_h = tf.split(xp_t, 3, axis=1)
        _, _, i_h = tf.split(inner, 3, axis=1)
        hh = tf.tanh(x_h + r * i_h)
        hn = hh + z * (h - hh)
        return hn, (hn,), (z, r, hh, i_h)

    def bwd_seqs(self, S, S_prev, saves, w):
        return tuple(saves) + (S_prev[0],)  # z, r, hh, i_h, h_prev

    def bwd(self, dnew, s, w):
        (dhn,) = dnew
        z, r, hh, i_h, h_prev = s
        dah = dhn * (1.0 - z) * (1.0 - hh * hh)
        dsz = dhn * (h_prev - hh) * z * (1.0 - z)
        dsr = dah * i_h * r * (1.0 - r)
        dzr = tf.concat([dsz, dsr], axis=1)
        d_inner = tf.concat([dzr, dah * r], axis=1)  # (batch, 3u)
        dh_prev = dhn * z + tf.matmul(d_inner, w["R"], transpose_b=True)
        return tf.concat([dzr, dah], axis=1), (dh_prev,), (d_inner,)

    def weight_grads(self, DXP, parts, Hprev, saves, w):
        # d_inner is written by the loop: forming it here from DXP and r, as
        # one op over all steps, measured slower (sliced bulk fusion).
        (DI,) = parts
        return [_outer_sum(Hprev, DI), tf.reduce_sum(DI, axis=[0, 1])]


class _GRUv1:
    """reset_after=False: hh = tanh(x_h + (r * h) U_h)."""

    lean_inference = False  # same sliced-sigmoid fusion risk as _GRU
    n_states = 1
    n_parts = 0
    n_saves = 2  # zr, hh

    def fwd(self, xp_t, states, w):
        (h,) = states
        x_zr, x_h = tf.split(xp_t, [2 * w["u"], w["u"]], axis=1)
        zr = _sigmoid(x_zr + tf.matmul(h, w["Rzr"]))
        z, r = tf.split(zr, 2, axis=1)
        hh = tf.tanh(x_h + tf.matmul(r * h, w["Rh"]))
        hn = hh + z * (h - hh)
        return hn, (hn,), (zr, hh)

    def bwd_seqs(self, S, S_prev, saves, w):
        ZR, HH = saves
        return ZR, HH, S_prev[0]

    def bwd(self, dnew, s, w):
        (dhn,) = dnew
        zr, hh, h_prev = s
        z, r = tf.split(zr, 2, axis=1)
        dah = dhn * (1.0 - z) * (1.0 - hh * hh)
        d_rh = tf.matmul(dah, w["Rh"], transpose_b=True)
        dsz = dhn * (h_prev - hh) * z * (1.0 - z)
        dsr = d_rh * h_prev * r * (1.0 - r)
        dzr = tf.concat([dsz, dsr], axis=1)
        dh_prev = dhn * z + d_rh * r + tf.matmul(dzr, w["Rzr"], transpose_b=True)
        return tf.concat([dzr, dah], axis=1), (dh_prev,), ()

    def weight_grads(self, DXP, parts, Hprev, saves, w):
        ZR, _ = saves
        u = w["u"]
        R_gate = ZR[..., u:]
        return [
            tf.concat(
                [
                    _outer_sum(Hprev, DXP[..., : 2 * u]),
                    _outer_sum(R_gate * Hprev, DXP[..., 2 * u :]),
                ],
                axis=1,
            )
        ]


# XLA-compile the loops (measured faster on CPU; see benchmarks/RESULTS.md).
USE_XLA = True
# Native C++ kernels (`_native`) for the cases they cover, on CPU: measured
# faster again than the XLA loops (benchmarks/RESULTS.md).
USE_NATIVE = True
# While tracing a graph for export, inference loops skip XLA: an XLA cluster is
# compiled once per input shape, and a served model sees a new (batch, time)
# shape with almost every request (measured: 4 texts/s at batch 1 with XLA).
_EXPORTING = [False]


@contextlib.contextmanager
def exporting():
    """Within this block, traced inference loops are plain TF while loops (no XLA)."""
    _EXPORTING.append(True)
    try:
        yield
    finally:
        _EXPORTING.pop()


_CELLS = {"simple": _Simple(), "lstm": _LSTM(), "gru": _GRU(), "gru_v1": _GRUv1()}


def _outer_sum(A, B):
    """sum_t A[t]^T @ B[t] as one matmul: (T, batch, m), (T, batch, n) -> (m, n)."""
    m, n = tf.shape(A)[-1], tf.shape(B)[-1]
    return tf.matmul(tf.reshape(A, [-1, m]), tf.reshape(B, [-1, n]), transpose_a=True)


def _shift(S, s0):
    """States before each step: (T, batch, n), (batch, n) -> [s0, S[0], ..., S[T-2]]."""
    return tf.concat([s0[None], S[:-1]], axis=0)


def _ta(dtype, size, element_shape=None):
    return tf.TensorArray(dtype, size=size, element_shape=element_shape)


# ---------------------------------------------------------------- loops
def _forward(cell, xp, states, mask, zero_out, w, for_grad=True):
    """Returns (Y, final states, recorded state sequences, stacked saves).

    Without a mask the output sequence Y is the h-state sequence, so only the
    other states (LSTM's c) are recorded; with a mask every state is. With
    `for_grad=False` (inference) nothing is recorded beyond Y.
    """
    T = tf.shape(xp)[0]
    dtype = xp.dtype
    xp_ta = _ta(dtype, T).unstack(xp)
    mask_ta = _ta(tf.bool, T).unstack(mask) if mask is not None else None
    first_rec = 0 if mask is not None else 1
    if not for_grad:
        first_rec = len(states)
    y0 = tf.zeros_like(states[0])
    y_ta = _ta(dtype, T)
    seq_tas = [_ta(dtype, T) for _ in states[first_rec:]]
    saves_tas = [_ta(dtype, T) for _ in range(cell.n_saves if for_grad else 0)]

    def body(t, states, y, y_ta, seq_tas, saves_tas):
        hn, new, saves = cell.fwd(xp_ta.read(t), states, w)
        saves_tas = [ta.write(t, s) for ta, s in zip(saves_tas, saves)]
        if mask_ta is not None:
            m = mask_ta.read(t)  # (batch, 1) bool
            new = tuple(tf.where(m, n, s) for n, s in zip(new, states))
            y = tf.where(m, hn, tf.zeros_like(hn) if zero_out else y)
        else:
            y = hn
        y_ta = y_ta.write(t, y)
        seq_tas = [ta.write(t, s) for ta, s in zip(seq_tas, new[first_rec:])]
        return t + 1, tuple(new), y, y_ta, seq_tas, saves_tas

    _, final, _, y_ta, seq_tas, saves_tas = tf.while_loop(
        lambda t, *_: t < T,
        body,
        (tf.constant(0), tuple(states), y0, y_ta, seq_tas, saves_tas),
        maximum_iterations=T,
    )
    return (
        y_ta.stack(),
        list(final),
        [ta.stack() for ta in seq_tas],
        [ta.stack() for ta in saves_tas],
    )


def _backward(cell, dY, dfinal, seqs, mask, zero_out, w):
    """Reverse loop: returns (dXP (T, batch, G), d initial states, stacked parts)."""
    T = tf.shape(dY)[0]
    dtype = dY.dtype
    dy_ta = _ta(dtype, T).unstack(dY)
    s_tas = [_ta(dtype, T).unstack(s) for s in seqs]
    dxp_ta = _ta(dtype, T)
    part_tas = [_ta(dtype, T) for _ in range(cell.n_parts)]

    if mask is None:

        def body(t, dstates, dxp_ta, part_tas):
            dnew = (dy_ta.read(t) + dstates[0],) + tuple(dstates[1:])
            dxp_t, dprev, parts = cell.bwd(dnew, tuple(ta.read(t) for ta in s_tas), w)
            part_tas = [ta.write(t, p) for ta, p in zip(part_tas, parts)]
            return t - 1, tuple(dprev), dxp_ta.write(t, dxp_t), part_tas

        _, d0, dxp_ta, part_tas = tf.while_loop(
            lambda t, *_: t >= 0,
            body,
            (T - 1, tuple(dfinal), dxp_ta, part_tas),
            maximum_iterations=T,
        )
    else:
        mask_ta = _ta(dtype, T).unstack(tf.cast(mask, dtype))

        def mbody(t, dstates, dy, dxp_ta, part_tas):
            g = dy_ta.read(t) + dy
            m = mask_ta.read(t)  # (batch, 1) in {0, 1}
            keep = 1.0 - m
            dnew = (m * (g + dstates[0]),) + tuple(m * d for d in dstates[1:])
            passed = tuple(keep * d for d in dstates)
            dy = tf.zeros_like(g) if zero_out else keep * g
            dxp_t, dprev, parts = cell.bwd(dnew, tuple(ta.read(t) for ta in s_tas), w)
            dprev = tuple(a + b for a, b in zip(dprev, passed))
            part_tas = [ta.write(t, p) for ta, p in zip(part_tas, parts)]
            return t - 1, dprev, dy, dxp_ta.write(t, dxp_t), part_tas

        _, d0, _, dxp_ta, part_tas = tf.while_loop(
            lambda t, *_: t >= 0,
            mbody,
            (T - 1, tuple(dfinal), tf.zeros_like(dfinal[0]), dxp_ta, part_tas),
            maximum_iterations=T,
        )
    return dxp_ta.stack(), list(d0), [ta.stack() for ta in part_tas]


# ---------------------------------------------------------------- entry
def _could_record():
    """Whether a gradient tape is active (True when unsure)."""
    try:
        from tensorflow.python.eager import record
    except ImportError:  # private module moved: always keep the saves
        return True
    return record.could_possibly_record()


def _unpack(kind, ws, units, dtype):
    w = {"R": ws[0], "u": units}
    if kind == "lstm":
        w["scale"], w["offset"], w["gmask"] = _lstm_consts(units, dtype)
    elif kind == "gru":
        w["br"] = ws[1]
    elif kind == "gru_v1":
        w["Rzr"], w["Rh"] = ws[0][:, : 2 * units], ws[0][:, 2 * units :]
    return w


_COMPILED = {}


def _compiled(kind, units, has_mask, zero_out, use_xla):
    """Forward, inference-only forward and backward loops as (XLA-compiled)
    tf.functions, cached."""
    key = (kind, units, has_mask, zero_out, use_xla)
    if key not in _COMPILED:
        cell = _CELLS[kind]

        def fwd(xp, states, ws, mask):
            w = _unpack(kind, ws, units, xp.dtype)
            return _forward(cell, xp, states, mask, zero_out, w)

        def fwd_inference(xp, states, ws, mask):
            w = _unpack(kind, ws, units, xp.dtype)
            return _forward(cell, xp, states, mask, zero_out, w, for_grad=False)[:2]

        def bwd(dY, dfinal, states0, S, saves, ws, mask):
            # S: carried state sequences (T, batch, units), one per state.
            w = _unpack(kind, ws, units, dY.dtype)
            S_prev = [_shift(s, s0) for s, s0 in zip(S, states0)]
            seqs = cell.bwd_seqs(S, S_prev, saves, w)
            return _backward(cell, dY, dfinal, seqs, mask, zero_out, w)

        if use_xla:
            fwd = tf.function(fwd, jit_compile=True)
            fwd_inference = tf.function(fwd_inference, jit_compile=True)
            bwd = tf.function(bwd, jit_compile=True)
        _COMPILED[key] = (fwd, fwd_inference, bwd)
    return _COMPILED[key]


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


def _native_ops(kind, dtype):
    """The native op library when it covers this call, else None."""
    if not USE_NATIVE or kind not in _NATIVE_KINDS or dtype != tf.float32:
        return None
    if _EXPORTING[-1] or not _native.enabled():
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
    cell = _CELLS[kind]
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
            dws = cell.weight_grads(dxp, parts, _shift(H, st[0]), saves, w)
            if kind == "gru" and not trainable_br:
                dws = [dws[0], tf.zeros_like(ws[1])]
            return [dxp] + d0 + list(dws)

        return (Y, *final), grad

    out = fused(xp, *states, *weights)
    return out[0], list(out[1:])


def run(kind, cell_layer, xp, states, mask, zero_output_for_mask, use_xla=None):
    """Run the recurrence of `cell_layer` over projected inputs.

    Args:
        kind: "simple", "lstm", "gru" or "gru_v1".
        cell_layer: the seqkit cell (weights are read from it).
        xp: (time, batch, G) projected inputs, input bias included.
        states: list of (batch, units) initial states.
        mask: (time, batch, 1) bool or None.
        zero_output_for_mask: output zeros at masked steps.

    Returns:
        (outputs (time, batch, units), final states list).
    """
    if not tf.is_tensor(xp):
        raise NotImplementedError  # e.g. symbolic KerasTensors: generic path traces
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

    lib = _native_ops(kind, dtype)
    if lib is not None:
        for_grad = _could_record() or kind != "lstm"
        return _run_native(
            lib, kind, xp, states, weights, trainable_br, mask, zero_output_for_mask, for_grad
        )

    n = len(states)
    # No tape watching (predict, inference): skip the per-step saves. Should a
    # gradient be asked for anyway (e.g. tf.gradients on the graph later), it
    # reruns the forward loop with them.
    for_grad = _could_record() or not _CELLS[kind].lean_inference
    if _EXPORTING[-1]:
        use_xla = False

    @tf.custom_gradient
    def fused(xp, *args):
        st, ws = list(args[:n]), list(args[n:])
        fwd, fwd_inference, bwd = _compiled(
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
            w = _unpack(kind, ws, units, dtype)
            dws = _CELLS[kind].weight_grads(dxp, parts, _shift(S[0], st[0]), sv, w)
            if kind == "gru" and not trainable_br:
                dws = [dws[0], tf.zeros_like(ws[1])]
            return [dxp] + list(d0) + list(dws)

        return (Y, *final), grad

    out = fused(xp, *states, *weights)
    return out[0], list(out[1:])
