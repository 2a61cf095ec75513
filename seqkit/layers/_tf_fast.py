"""TensorFlow fast path: fused recurrent loops with hand-written gradients.

Reached only through `seqkit.layers.rnn._fast_sequence`, for the default
activations (tanh / sigmoid), no recurrent dropout and no unrolling; anything
else runs the generic `keras.ops` loop.

What makes it fast (see ../shared/PERF_NOTES.md):

* the inputs are projected for all timesteps before the loop (done by the
  caller), so a step is one `h @ U` matmul plus elementwise gate arithmetic;
* LSTM gates go through one sigmoid over the whole (batch, 4 * units) tensor
  (tanh(x) = 2 * sigmoid(2x) - 1 for the candidate block), with no slicing
  before the nonlinearity;
* the backward pass is written by hand: the reverse loop only propagates
  dh (one matmul a step) and stores dz; the recurrent-kernel gradient is then
  one large matmul over all steps, `H_prev^T @ dZ`, instead of T small ones.

Every op here is a plain TensorFlow CPU/GPU op (no cuDNN), so graphs that use
this path export and serve anywhere.

Masks follow Keras: at a masked step the states are carried unchanged and the
output repeats the previous output (or is zero with `zero_output_for_mask`).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

# ---------------------------------------------------------------- cells
# Each cell defines:
#   fwd(xp_t, states, w) -> (h_new, raw_new_states, saves)
#   bwd(d_new_states, s, w) -> (dxp_t, d_prev_states, dR_parts)
# where `s` is the tuple of saved tensors at this step (saves + (h_prev, ...))
# and dR_parts are per-step tensors stacked and reduced into weight
# gradients after the loop.


def _lstm_consts(units, dtype):
    scale = np.ones((4 * units,), np.float32)
    scale[2 * units : 3 * units] = 2.0
    offset = np.zeros((4 * units,), np.float32)
    offset[2 * units : 3 * units] = 1.0
    return tf.constant(scale, dtype), tf.constant(offset, dtype)


class _Simple:
    n_states = 1
    n_parts = 1
    n_saves = 1  # h_new

    def fwd(self, xp_t, states, w):
        (h,) = states
        hn = tf.tanh(xp_t + tf.matmul(h, w["R"]))
        return hn, (hn,), (hn,)

    def bwd(self, dnew, s, w):
        (dhn,) = dnew
        hn, _h_prev = s
        dz = dhn * (1.0 - hn * hn)
        dh_prev = tf.matmul(dz, w["R"], transpose_b=True)
        return dz, (dh_prev,), (dz,)

    def weight_grads(self, stacked, Hprev, saves_stacked, w):
        (DZ,) = stacked
        return {"R": _outer_sum(Hprev, DZ)}


class _LSTM:
    n_states = 2
    n_parts = 1
    n_saves = 3  # a (gates after activation), c_prev, tanh(c_new)

    def fwd(self, xp_t, states, w):
        h, c = states
        z = xp_t + tf.matmul(h, w["R"])  # (batch, 4u)
        a = tf.sigmoid(z * w["scale"]) * w["scale"] - w["offset"]  # i, f, g(tanh), o
        i, f, g, o = tf.split(a, 4, axis=1)
        cn = f * c + i * g
        tc = tf.tanh(cn)
        hn = o * tc
        return hn, (hn, cn), (a, c, tc)

    def bwd(self, dnew, s, w):
        dhn, dcn = dnew
        a, c_prev, tc, _h_prev = s
        i, f, g, o = tf.split(a, 4, axis=1)
        do = dhn * tc
        dct = dcn + dhn * o * (1.0 - tc * tc)
        da = tf.concat([dct * g, dct * c_prev, dct * i, do], axis=1)  # (batch, 4u)
        dz = da * (w["gmask"] + a * (1.0 - w["gmask"]) - a * a)
        dh_prev = tf.matmul(dz, w["R"], transpose_b=True)
        return dz, (dh_prev, dct * f), (dz,)

    def weight_grads(self, stacked, Hprev, saves_stacked, w):
        (DZ,) = stacked
        return {"R": _outer_sum(Hprev, DZ)}


class _GRU:
    """reset_after=True: hh = tanh(x_h + r * (h U_h + b_h))."""

    n_states = 1
    n_parts = 1
    n_saves = 4  # z, r, hh, inner_h

    def fwd(self, xp_t, states, w):
        (h,) = states
        inner = tf.matmul(h, w["R"]) + w["br"]  # (batch, 3u)
        sg = tf.sigmoid(xp_t + inner)  # z, r (third block unused)
        z, r, _ = tf.split(sg, 3, axis=1)
        _, _, x_h = tf.split(xp_t, 3, axis=1)
        _, _, i_h = tf.split(inner, 3, axis=1)
        hh = tf.tanh(x_h + r * i_h)
        hn = hh + z * (h - hh)
        return hn, (hn,), (z, r, hh, i_h)

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

    def weight_grads(self, stacked, Hprev, saves_stacked, w):
        (DI,) = stacked
        return {"R": _outer_sum(Hprev, DI), "br": tf.reduce_sum(DI, axis=[0, 1])}


class _GRUv1:
    """reset_after=False: hh = tanh(x_h + (r * h) U_h)."""

    n_states = 1
    n_parts = 2
    n_saves = 3  # z, r, hh

    def fwd(self, xp_t, states, w):
        (h,) = states
        x_zr, x_h = tf.split(xp_t, [2 * w["u"], w["u"]], axis=1)
        zr = tf.sigmoid(x_zr + tf.matmul(h, w["Rzr"]))
        z, r = tf.split(zr, 2, axis=1)
        hh = tf.tanh(x_h + tf.matmul(r * h, w["Rh"]))
        hn = hh + z * (h - hh)
        return hn, (hn,), (z, r, hh)

    def bwd(self, dnew, s, w):
        (dhn,) = dnew
        z, r, hh, h_prev = s
        dah = dhn * (1.0 - z) * (1.0 - hh * hh)
        d_rh = tf.matmul(dah, w["Rh"], transpose_b=True)
        dsz = dhn * (h_prev - hh) * z * (1.0 - z)
        dsr = d_rh * h_prev * r * (1.0 - r)
        dzr = tf.concat([dsz, dsr], axis=1)
        dh_prev = dhn * z + d_rh * r + tf.matmul(dzr, w["Rzr"], transpose_b=True)
        return tf.concat([dzr, dah], axis=1), (dh_prev,), (dzr, dah)

    def weight_grads(self, stacked, Hprev, saves_stacked, w):
        DZR, DAH = stacked
        _, R_gate, _ = saves_stacked
        return {"R": tf.concat([_outer_sum(Hprev, DZR), _outer_sum(R_gate * Hprev, DAH)], axis=1)}


# XLA-compile the loops (measured faster on CPU; see benchmarks/RESULTS.md).
USE_XLA = True

_CELLS = {"simple": _Simple(), "lstm": _LSTM(), "gru": _GRU(), "gru_v1": _GRUv1()}


def _outer_sum(A, B):
    """sum_t A[t]^T @ B[t] as one matmul: (T, batch, m), (T, batch, n) -> (m, n)."""
    m, n = tf.shape(A)[-1], tf.shape(B)[-1]
    return tf.matmul(tf.reshape(A, [-1, m]), tf.reshape(B, [-1, n]), transpose_a=True)


def _ta(dtype, size, element_shape=None):
    return tf.TensorArray(dtype, size=size, element_shape=element_shape)


# ---------------------------------------------------------------- loops
def _forward(cell, xp, states, mask, zero_out, w):
    T = tf.shape(xp)[0]
    dtype = xp.dtype
    xp_ta = _ta(dtype, T).unstack(xp)
    mask_ta = _ta(tf.bool, T).unstack(mask) if mask is not None else None
    y0 = tf.zeros_like(states[0])
    saves_ta = [_ta(dtype, T) for _ in range(cell.n_saves)]
    hprev_ta = _ta(dtype, T)
    y_ta = _ta(dtype, T)

    def body(t, states, y, y_ta, hprev_ta, saves_ta):
        hn, new, saves = cell.fwd(xp_ta.read(t), states, w)
        hprev_ta = hprev_ta.write(t, states[0])
        saves_ta = [ta.write(t, s) for ta, s in zip(saves_ta, saves)]
        if mask_ta is not None:
            m = mask_ta.read(t)  # (batch, 1) bool
            new = tuple(tf.where(m, n, s) for n, s in zip(new, states))
            y = tf.where(m, hn, tf.zeros_like(hn) if zero_out else y)
        else:
            y = hn
        y_ta = y_ta.write(t, y)
        return t + 1, tuple(new), y, y_ta, hprev_ta, saves_ta

    _, final, _, y_ta, hprev_ta, saves_ta = tf.while_loop(
        lambda t, *_: t < T,
        body,
        (tf.constant(0), tuple(states), y0, y_ta, hprev_ta, saves_ta),
        maximum_iterations=T,
    )
    return y_ta.stack(), list(final), hprev_ta.stack(), [ta.stack() for ta in saves_ta]


def _backward(cell, dY, dfinal, Hprev, saves, mask, zero_out, w):
    T = tf.shape(dY)[0]
    dtype = dY.dtype
    dy_ta = _ta(dtype, T).unstack(dY)
    s_tas = [_ta(dtype, T).unstack(s) for s in list(saves) + [Hprev]]
    mask_ta = _ta(dtype, T).unstack(tf.cast(mask, dtype)) if mask is not None else None
    dxp_ta = _ta(dtype, T)
    part_tas = [_ta(dtype, T) for _ in range(cell.n_parts)]

    def body(t, dstates, dy, dxp_ta, part_tas):
        g = dy_ta.read(t) + dy
        if mask_ta is not None:
            m = mask_ta.read(t)  # (batch, 1) in {0, 1}
            keep = 1.0 - m
            dnew = (m * (g + dstates[0]),) + tuple(m * d for d in dstates[1:])
            passed = tuple(keep * d for d in dstates)
            dy = tf.zeros_like(g) if zero_out else keep * g
        else:
            dnew = (g + dstates[0],) + tuple(dstates[1:])
            passed = None
        s = tuple(ta.read(t) for ta in s_tas)
        dxp_t, dprev, parts = cell.bwd(dnew, s, w)
        if passed is not None:
            dprev = tuple(a + b for a, b in zip(dprev, passed))
        dxp_ta = dxp_ta.write(t, dxp_t)
        part_tas = [ta.write(t, p) for ta, p in zip(part_tas, parts)]
        return t - 1, tuple(dprev), dy, dxp_ta, part_tas

    _, d0, _, dxp_ta, part_tas = tf.while_loop(
        lambda t, *_: t >= 0,
        body,
        (T - 1, tuple(dfinal), tf.zeros_like(dfinal[0]), dxp_ta, part_tas),
        maximum_iterations=T,
    )
    return dxp_ta.stack(), list(d0), [ta.stack() for ta in part_tas]


# ---------------------------------------------------------------- entry
def _unpack(kind, ws, units, dtype):
    w = {"R": ws[0], "u": units}
    if kind == "lstm":
        w["scale"], w["offset"] = _lstm_consts(units, dtype)
        w["gmask"] = w["offset"]
    elif kind == "gru":
        w["br"] = ws[1]
    elif kind == "gru_v1":
        w["Rzr"], w["Rh"] = ws[0][:, : 2 * units], ws[0][:, 2 * units :]
    return w


_COMPILED = {}


def _compiled(kind, units, has_mask, zero_out, use_xla):
    """Forward and backward loops as (XLA-compiled) tf.functions, cached."""
    key = (kind, units, has_mask, zero_out, use_xla)
    if key not in _COMPILED:
        cell = _CELLS[kind]

        def fwd(xp, states, ws, mask):
            w = _unpack(kind, ws, units, xp.dtype)
            return _forward(cell, xp, states, mask, zero_out, w)

        def bwd(dY, dfinal, Hprev, saves, ws, mask):
            w = _unpack(kind, ws, units, dY.dtype)
            dxp, d0, parts = _backward(cell, dY, dfinal, Hprev, saves, mask, zero_out, w)
            wg = cell.weight_grads(parts, Hprev, saves, w)
            dws = [wg["R"]] + ([wg["br"]] if kind == "gru" else [])
            return dxp, d0, dws

        if use_xla:
            fwd = tf.function(fwd, jit_compile=True)
            bwd = tf.function(bwd, jit_compile=True)
        _COMPILED[key] = (fwd, bwd)
    return _COMPILED[key]


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
        br = tf.cast(tf.convert_to_tensor(rb), dtype) if rb is not None else tf.zeros((3 * units,), dtype)
        weights.append(br)
    trainable_br = kind == "gru" and cell_layer.recurrent_bias() is not None

    n = len(states)

    @tf.custom_gradient
    def fused(xp, *args):
        st, ws = list(args[:n]), list(args[n:])
        fwd, bwd = _compiled(kind, units, mask is not None, zero_output_for_mask, use_xla)
        # The gradient is ours: hide the compiled loops from the tape.
        sg = tf.stop_gradient
        Y, final, Hprev, saves = fwd(sg(xp), [sg(v) for v in st], [sg(v) for v in ws], mask)

        def grad(dY, *dfinal):
            dY = tf.zeros_like(Y) if dY is None else dY
            dfinal = [tf.zeros_like(s) if d is None else d for d, s in zip(dfinal, final)]
            dxp, d0, dws = bwd(sg(dY), [sg(d) for d in dfinal], Hprev, saves, [sg(v) for v in ws], mask)
            if kind == "gru" and not trainable_br:
                dws = [dws[0], tf.zeros_like(ws[1])]
            return [dxp] + list(d0) + list(dws)

        return (Y, *final), grad

    out = fused(xp, *states, *weights)
    return out[0], list(out[1:])
