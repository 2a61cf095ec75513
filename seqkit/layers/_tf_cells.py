"""TensorFlow fast path, per-cell math: one forward step and one backward step
of each fused loop, and its recurrent-weight gradients.

Used by the XLA loops of `_tf_loops` and, for the weight gradients, by the
native kernels' driver in `_tf_fast`. The formulation is what makes the loops
fast on CPU (measured; figures in benchmarks/RESULTS.md, "What was tried on
the XLA loops"):

* LSTM gates go through one tanh over the whole (batch, 4 * units) tensor
  (sigmoid(x) = (tanh(x / 2) + 1) / 2 for the i, f, o blocks), with no
  slicing before the nonlinearity; GRU's sigmoids use the same identity
  (XLA's CPU tanh measured ~1.5x faster than its sigmoid);
* the backward step only propagates dh (one matmul a step) and returns dxp;
  the recurrent-kernel gradient is one large matmul over all steps,
  `H_prev^T @ dZ`, run after the loop, instead of T small ones;
* but a full-width sigmoid must stay a kernel of its own: fused into
  consumers that slice it, XLA on CPU emits scalar code (measured 10x
  slower). Saving the gates it feeds (LSTM's a, GRU's z and r) keeps it
  materialized.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from seqkit.layers._gates import gate_scale_offset


def outer_sum(A, B):
    """sum_t A[t]^T @ B[t] as one matmul: (T, batch, m), (T, batch, n) -> (m, n)."""
    m, n = tf.shape(A)[-1], tf.shape(B)[-1]
    return tf.matmul(tf.reshape(A, [-1, m]), tf.reshape(B, [-1, n]), transpose_a=True)


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
    lean_inference = True  # inference skips the saves (see `_tf_fast.run`)
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
        return [outer_sum(Hprev, DXP)]


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
        return [outer_sum(Hprev, DXP)]


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
        return [outer_sum(Hprev, DI), tf.reduce_sum(DI, axis=[0, 1])]


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
                    outer_sum(Hprev, DXP[..., : 2 * u]),
                    outer_sum(R_gate * Hprev, DXP[..., 2 * u :]),
                ],
                axis=1,
            )
        ]


CELLS = {"simple": _Simple(), "lstm": _LSTM(), "gru": _GRU(), "gru_v1": _GRUv1()}


def unpack(kind, ws, units, dtype):
    """The weights of a loop as the dict `w` the cells read: R (and br or Rzr / Rh)."""
    w = {"R": ws[0], "u": units}
    if kind == "lstm":
        w["scale"], w["offset"], w["gmask"] = _lstm_consts(units, dtype)
    elif kind == "gru":
        w["br"] = ws[1]
    elif kind == "gru_v1":
        w["Rzr"], w["Rh"] = ws[0][:, : 2 * units], ws[0][:, 2 * units :]
    return w
