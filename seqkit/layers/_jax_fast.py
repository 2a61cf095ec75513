"""JAX fast path: one fused `lax.scan` per layer call, with a hand-written
backward pass (`jax.custom_vjp`).

Registered for the JAX backend by `seqkit/layers/__init__.py` (the
`_fast_path` registry) and reached only through
`seqkit.layers.rnn._fast_sequence`, for the default activations (tanh /
sigmoid), no recurrent dropout and no unrolling: SimpleRNN ("simple"), LSTM
("lstm") and GRU ("gru", reset_after=True; "gru_v1", reset_after=False).
Anything else raises `NotImplementedError` and runs the generic `keras.ops`
loop.

The layout mirrors the TensorFlow fast path (`_tf_cells`, `_tf_loops`):

* The input projection `x_t @ W + b` is done inside the forward scan, step by
  step, from the unprojected inputs (`RNN.call`'s `inputs()`; registered with
  `projects=True`, this runner gets `xp=None`): a (time, batch, G) all-steps
  buffer allocated on every call cost more than the small per-step matmuls
  (train ratio against Keras 1.03-1.04 -> 0.87-0.94 for the LSTM rows,
  benchmarks/RESULTS.md). The scan does that, `h_tm1 @ R` and the gate
  arithmetic, LSTM's four gates through one tanh over the whole
  (batch, 4 * units) tensor (sigmoid(x) = (tanh(x / 2) + 1) / 2). The input
  weights' gradients stay one matmul over all steps each (`X^T @ dZ`,
  `dZ @ W^T`), as the recurrent one.
* The forward scan of a differentiated call keeps what the backward reads
  (the state sequences, LSTM's gates, GRU's z, r, candidate and recurrent
  part); a call that is not differentiated runs the primal function, which
  keeps nothing.
* The reverse scan propagates only the state gradients (one matmul a step)
  and emits the pre-activation gradients dZ; the recurrent-weight gradient
  is then one large matmul over all steps, `H_prev^T @ dZ`, instead of T
  small ones as JAX's own autodiff of a scan does.

Masks: the fused function returns the carried state sequence H (a masked
step carries the states unchanged); the layer's outputs come from H outside
it, with `jnp.where` (zero before a row's first valid step, or at every
masked step with `zero_output_for_mask`), so JAX differentiates that part.

Every op is a plain XLA op (no cuDNN, no custom call), so `model.export`
under JAX (jax2tf) gives a graph that serves on any CPU.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from seqkit.layers._gates import gate_scale_offset

__all__ = ["run", "ENABLED", "UNROLL"]

# Switch for tests and benchmarks: False sends every call to the generic loop.
ENABLED = True
# `x_t @ W + b` inside the forward scan, from the unprojected inputs, instead
# of over all steps before it (no (time, batch, G) buffer); False scans `xp`.
PROJECT_INSIDE = True
PROJECT_KINDS = ("lstm", "simple", "gru", "gru_v1")
# `lax.scan(unroll=...)` of both loops (measured on the 2-core machine;
# see benchmarks/RESULTS.md).
UNROLL = 1


def _outer(A, B):
    """sum_t A[t]^T @ B[t] as one matmul: (T, batch, m), (T, batch, n) -> (m, n)."""
    return jnp.matmul(A.reshape(-1, A.shape[-1]).T, B.reshape(-1, B.shape[-1]))


def _sigmoid(x):
    return 0.5 * jnp.tanh(0.5 * x) + 0.5


def _lstm_consts(units, dtype):
    scale, offset = gate_scale_offset(units)
    gmask = (scale == 1.0).astype(np.float32)  # 1 on the candidate (tanh) block
    return tuple(jnp.asarray(a, dtype) for a in (scale, offset, gmask))


# ---------------------------------------------------------------- cells
# step(kind, xp_t, states, w) -> (new_states, saves): one forward step; saves
#   are what the backward step reads beyond the state sequences.
# back(kind, dnew, res_t, w) -> (dxp_t, d_prev_states, di_t): one reverse
#   step from the gradients wrt the new (uncarried) states; di_t is GRU's
#   gradient wrt the recurrent part `h @ R + br` (None elsewhere).


def _step(kind, xp_t, states, w):
    u = w["u"]
    if kind == "simple":
        (h,) = states
        hn = jnp.tanh(xp_t + h @ w["R"])
        return (hn,), ()
    if kind == "lstm":
        h, c = states
        scale, offset, _ = w["consts"]
        z = xp_t + h @ w["R"]  # (batch, 4u)
        a = jnp.tanh(z * scale) * scale + offset  # i, f, c~, o
        i, f, g, o = a[:, :u], a[:, u : 2 * u], a[:, 2 * u : 3 * u], a[:, 3 * u :]
        cn = f * c + i * g
        tc = jnp.tanh(cn)
        return (o * tc, cn), (a, tc)
    (h,) = states
    if kind == "gru":  # reset_after=True: hh = tanh(x_h + r * (h U_h + b_h))
        inner = h @ w["R"] + w["br"]  # (batch, 3u)
        zr = _sigmoid(xp_t[:, : 2 * u] + inner[:, : 2 * u])
        i_h = inner[:, 2 * u :]
        hh = jnp.tanh(xp_t[:, 2 * u :] + zr[:, u:] * i_h)
        hn = hh + zr[:, :u] * (h - hh)
        return (hn,), (zr, hh, i_h)
    # gru_v1, reset_after=False: hh = tanh(x_h + (r * h) U_h)
    R = w["R"]
    zr = _sigmoid(xp_t[:, : 2 * u] + h @ R[:, : 2 * u])
    hh = jnp.tanh(xp_t[:, 2 * u :] + (zr[:, u:] * h) @ R[:, 2 * u :])
    hn = hh + zr[:, :u] * (h - hh)
    return (hn,), (zr, hh)


def _residuals(kind, S, S_prev, saves):
    """What the reverse scan reads at each step, from the forward's results."""
    if kind == "simple":
        return (S[0],)  # h_new
    if kind == "lstm":
        return (S_prev[1],) + tuple(saves)  # c_prev, gates, tanh(c_new)
    return (S_prev[0],) + tuple(saves)  # h_prev, z and r, candidate (, recurrent part)


def _back(kind, dnew, res, w):
    """res: this step's `_residuals`."""
    u = w["u"]
    R = w["R"]
    if kind == "simple":
        (dhn,) = dnew
        (hn,) = res
        dz = dhn * (1.0 - hn * hn)
        return dz, (dz @ R.T,), None
    if kind == "lstm":
        dhn, dcn = dnew
        c_prev, a, tc = res
        gmask = w["consts"][2]
        i, f, g, o = a[:, :u], a[:, u : 2 * u], a[:, 2 * u : 3 * u], a[:, 3 * u :]
        dct = dcn + dhn * o * (1.0 - tc * tc)
        da = jnp.concatenate([dct * g, dct * c_prev, dct * i, dhn * tc], axis=1)
        dz = da * (gmask + a * (1.0 - gmask) - a * a)  # (batch, 4u)
        return dz, (dz @ R.T, dct * f), None
    (dhn,) = dnew
    if kind == "gru":
        h_prev, zr, hh, i_h = res
        z, r = zr[:, :u], zr[:, u:]
        dah = dhn * (1.0 - z) * (1.0 - hh * hh)
        dsz = dhn * (h_prev - hh) * z * (1.0 - z)
        dsr = dah * i_h * r * (1.0 - r)
        di = jnp.concatenate([dsz, dsr, dah * r], axis=1)  # (batch, 3u)
        dxp = jnp.concatenate([dsz, dsr, dah], axis=1)
        return dxp, (dhn * z + di @ R.T,), di
    h_prev, zr, hh = res
    z, r = zr[:, :u], zr[:, u:]
    dah = dhn * (1.0 - z) * (1.0 - hh * hh)
    d_rh = dah @ R[:, 2 * u :].T
    dsz = dhn * (h_prev - hh) * z * (1.0 - z)
    dsr = d_rh * h_prev * r * (1.0 - r)
    dzr = jnp.concatenate([dsz, dsr], axis=1)
    dh_prev = dhn * z + d_rh * r + dzr @ R[:, : 2 * u].T
    return jnp.concatenate([dzr, dah], axis=1), (dh_prev,), None


def _weight_grads(kind, DXP, DI, H_prev, saves, w):
    u = w["u"]
    if kind == "gru":
        return [_outer(H_prev, DI), jnp.sum(DI, axis=(0, 1))]
    if kind == "gru_v1":
        rh_prev = saves[0][..., u:] * H_prev
        dR = jnp.concatenate(
            [_outer(H_prev, DXP[..., : 2 * u]), _outer(rh_prev, DXP[..., 2 * u :])], axis=1
        )
        return [dR]
    return [_outer(H_prev, DXP)]


# ---------------------------------------------------------------- loops
def _forward(kind, xp, states, w, m, keep):
    """The forward scan: (final states, state sequences, per-step saves).

    Without `keep` (a call that is not differentiated) only the first state's
    sequence is stacked, and the saves are None.
    """

    def body(carry, x):
        xp_t, m_t = x if m is not None else (x, None)
        if "W" in w:  # the input projection inside the loop (`PROJECT_INSIDE`)
            xp_t = xp_t @ w["W"] + w["b"]
        new, saves = _step(kind, xp_t, carry, w)
        if m_t is not None:
            new = tuple(jnp.where(m_t, s, p) for s, p in zip(new, carry))
        return new, ((new, saves) if keep else new[0])

    xs = xp if m is None else (xp, m)
    final, ys = lax.scan(body, tuple(states), xs, unroll=UNROLL)
    if keep:
        return final, ys[0], ys[1]
    return final, (ys,), None


@functools.cache
def _fused(kind, units, has_mask, project=False):
    """The fused loop of one configuration, a `jax.custom_vjp` function:
    f(xp, m, states, ws) -> (H, final states after the first), H the carried
    (time, batch, units) sequence of the first state."""

    def weights(ws, dtype):
        w = {"R": ws[0], "u": units}
        if project:
            w["W"], w["b"] = ws[-2], ws[-1]
        if kind == "lstm":
            w["consts"] = _lstm_consts(units, dtype)
        if kind == "gru":
            w["br"] = ws[1]
        return w

    def primal(xp, m, states, ws):
        final, S, _ = _forward(kind, xp, states, weights(ws, xp.dtype), m, keep=False)
        return S[0], tuple(final[1:])

    def fwd(xp, m, states, ws):
        final, S, saves = _forward(kind, xp, states, weights(ws, xp.dtype), m, keep=True)
        return (S[0], tuple(final[1:])), (S, saves, states, ws, m) + ((xp,) if project else ())

    def bwd(res, cotangents):
        S, saves, states, ws, m = res[:5]
        dH, dfinal = cotangents
        w = weights(ws, dH.dtype)
        # the states before each step: (time, batch, units)
        S_prev = tuple(jnp.concatenate([s0[None], s[:-1]], axis=0) for s0, s in zip(states, S))

        def body(carry, x):
            dH_t, m_t, res_t = x
            g = (carry[0] + dH_t,) + tuple(carry[1:])  # wrt the carried states after t
            if m is not None:
                dnew = tuple(m_t * d for d in g)
            else:
                dnew = g
            dxp_t, dprev, di = _back(kind, dnew, res_t, w)
            if m is not None:
                dprev = tuple(d + (1.0 - m_t) * gi for d, gi in zip(dprev, g))
            return dprev, (dxp_t, di) if di is not None else dxp_t

        zeros = jnp.zeros_like(states[0])
        carry0 = (zeros,) + tuple(dfinal)
        m_seq = m if m is not None else jnp.zeros((dH.shape[0],), dH.dtype)
        d0, out = lax.scan(
            body,
            carry0,
            (dH, m_seq, _residuals(kind, S, S_prev, saves)),
            reverse=True,
            unroll=UNROLL,
        )
        DXP, DI = out if kind == "gru" else (out, None)
        dws = _weight_grads(kind, DXP, DI, S_prev[0], saves, w)
        dm = None if m is None else jnp.zeros_like(m)
        if project:  # the scan read x: d/dx, d/dW, d/db through x @ W + b
            x = res[-1]
            dws += [_outer(x, DXP), jnp.sum(DXP, axis=(0, 1))]
            return DXP @ w["W"].T, dm, tuple(d0), tuple(dws)
        return DXP, dm, tuple(d0), tuple(dws)

    f = jax.custom_vjp(primal)
    f.defvjp(fwd, bwd)
    return jax.jit(f)


def _is_jax_array(x):
    return isinstance(x, jax.Array)  # tracers are jax.Arrays too; KerasTensors are not


def run(kind, cell, xp, states, mask, zero_output_for_mask, need_sequence=True, inputs=None):
    """Run the recurrence of `cell` over projected inputs (see `_fast_path`).

    Args:
        kind: "simple", "lstm", "gru" or "gru_v1"; None raises
            NotImplementedError (no fused loop: the generic loop runs).
        cell: the seqkit cell (weights are read from it).
        xp: (time, batch, G) projected inputs, input bias included, or None
            (`RNN` passes None: registered with `projects=True`).
        states: list of (batch, units) initial states.
        mask: (time, batch, 1) bool or None.
        zero_output_for_mask: output zeros at masked steps.
        need_sequence: False when the caller reads only the last output.
        inputs: a function giving the unprojected (time, batch, features)
            inputs in processing order, or None (then `xp` is scanned).

    Returns:
        (outputs (time, batch, units), final states list).
    """
    if not ENABLED or kind is None or (xp is None and inputs is None):
        raise NotImplementedError
    x = inputs() if xp is None else None  # (registered with projects=True: xp is None)
    probe = xp if x is None else x
    if not _is_jax_array(probe) or probe.ndim != 3 or probe.shape[0] == 0:
        raise NotImplementedError  # symbolic traces, empty sequences: the generic loop
    if not jnp.issubdtype(probe.dtype, jnp.floating):
        raise NotImplementedError
    dtype = probe.dtype
    units = cell.units
    states = [jnp.asarray(s).astype(dtype) for s in states]
    ws = [jnp.asarray(cell.recurrent_kernel).astype(dtype)]
    if kind == "gru":
        rb = cell.recurrent_bias()
        ws.append(
            jnp.asarray(rb).astype(dtype) if rb is not None else jnp.zeros((3 * units,), dtype)
        )
    m = None if mask is None else jnp.asarray(mask).astype(dtype)
    project = PROJECT_INSIDE and kind in PROJECT_KINDS and inputs is not None
    if not project:  # the scan reads the projected inputs
        seq = xp if x is None else jnp.asarray(cell.project(x))
    else:  # the scan reads the unprojected inputs, and W and b
        seq = jnp.asarray(inputs() if x is None else x).astype(dtype)
        b = cell.input_bias()
        ws += [
            jnp.asarray(cell.kernel).astype(dtype),
            jnp.asarray(b).astype(dtype) if b is not None else jnp.zeros((ws[0].shape[1],), dtype),
        ]
    H, rest = _fused(kind, units, m is not None, project)(seq, m, tuple(states), tuple(ws))
    final = [H[-1], *rest]
    if m is None:
        Y = H
    elif zero_output_for_mask:
        Y = jnp.where(m > 0, H, 0.0)
    else:  # zero before a row's first valid step, then the carried state
        seen = lax.cummax(m, axis=0)
        Y = jnp.where(seen > 0, H, 0.0)
    if not need_sequence:
        Y = Y[-1:]
    return Y, final
