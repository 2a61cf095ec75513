"""TensorFlow fast path, the fused loops: `tf.while_loop`s over the cells of
`_tf_cells`, forward and backward, compiled with XLA and cached.

What the loops do to stay fast (measured on CPU; figures in
benchmarks/RESULTS.md, "What was tried on the XLA loops"):

* the inputs are projected for all timesteps before the loop (done by the
  caller), so a step is one `h @ U` matmul plus elementwise gate arithmetic;
* a `tf.while_loop` with `maximum_iterations` over TensorArrays (indexing
  `x[t]` on a tensor that needs a gradient makes the backward pass quadratic);
* few kernels a step: under XLA on CPU every fused kernel and every
  TensorArray write costs a few microseconds, about as much as the gate
  arithmetic itself. So the loops store as little as they can (the output
  sequence doubles as the h-state sequence when there is no mask; previous
  states come from shifting the state sequences by one step; tanh(c) is
  recomputed for all steps at once), the backward loop writes one tensor a
  step (two for GRU), and the weight-gradient matmuls run after it, outside
  XLA (in `_tf_fast`).

Masks follow Keras: at a masked step the states are carried unchanged and the
output repeats the previous output (or is zero with `zero_output_for_mask`).
At a masked step the incoming gradients are zero, so the values read there
only have to be finite.
"""

from __future__ import annotations

import tensorflow as tf

from seqkit.layers._tf_cells import CELLS, unpack


def shift(S, s0):
    """States before each step: (T, batch, n), (batch, n) -> [s0, S[0], ..., S[T-2]]."""
    return tf.concat([s0[None], S[:-1]], axis=0)


def _ta(dtype, size, element_shape=None):
    return tf.TensorArray(dtype, size=size, element_shape=element_shape)


def forward(cell, xp, states, mask, zero_out, w, for_grad=True):
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


def _write_step(Y, t, y):
    """Y[t] = y on a plain tensor: XLA's DynamicUpdateSlice, which TFLite's
    converter turns into its built-in DYNAMIC_UPDATE_SLICE (measured 2.6x
    faster in the LiteRT interpreter than a scatter update: 18 vs 46 ms for
    T=100, batch 64, LSTM-128 with return_sequences); a scatter where TF's XLA
    module is missing."""
    try:
        from tensorflow.compiler.tf2xla.python import xla
    except ImportError:
        return tf.tensor_scatter_nd_update(Y, tf.reshape(t, [1, 1]), y[None])
    zero = tf.zeros_like(t)
    return xla.dynamic_update_slice(Y, y[None], tf.stack([t, zero, zero]))


def forward_portable(cell, xp, states, mask, zero_out, w, need_sequence, plain):
    """The inference loop of exported graphs: (Y, final states), inline.

    No custom gradient, no nested function and no XLA, so that every exporter
    sees plain ops (tf2onnx cannot convert a PartitionedCall). With
    `need_sequence=False`, Y is the last output alone, (1, batch, units): only
    tensors are carried. With `plain=True` (LiteRT) the loop also keeps off
    TensorArrays, which TFLite's converter can only turn into Flex ops: x[t] is
    a gather and the output sequence is written step by step into a carried
    tensor (`_write_step`), both built-in operators. The carried tensor costs
    O(T^2) copies (a scatter measured 0.53 s vs 0.06 s in TensorFlow for T=400,
    batch 64, LSTM-128), so the other formats keep the TensorArrays.
    """
    if need_sequence and not plain:
        return forward(cell, xp, states, mask, zero_out, w, for_grad=False)[:2]
    T = tf.shape(xp)[0]
    y0 = tf.zeros_like(states[0])
    Y0 = tf.zeros(tf.concat([[T], tf.shape(y0)], 0), xp.dtype) if need_sequence else y0[None]

    def body(t, states, y, Y):
        hn, new, _ = cell.fwd(tf.gather(xp, t), states, w)
        if mask is not None:
            m = tf.gather(mask, t)  # (batch, 1) bool
            new = tuple(tf.where(m, n, s) for n, s in zip(new, states))
            y = tf.where(m, hn, tf.zeros_like(hn) if zero_out else y)
        else:
            y = hn
        if need_sequence:
            Y = _write_step(Y, t, y)
        return t + 1, tuple(new), y, Y

    _, final, y, Y = tf.while_loop(
        lambda t, *_: t < T, body, (tf.constant(0), tuple(states), y0, Y0)
    )
    return (Y if need_sequence else y[None]), list(final)


def forward_lstm_onnx(x, states, W, R, b):
    """The unmasked LSTM inference loop in the form of Keras's own: (Y, final states).

    `x` is the unprojected input sequence (T, batch, features). Each step is
    `x_t @ W + h @ R`, a BiasAdd, a Split into i, f, g, o, then Keras's
    activations and products in Keras's order: the graph tf2onnx's LSTM
    rewriter recognises and turns into ONNX's fused LSTM operator (measured
    several times faster in onnxruntime than the same loop as an ONNX Loop).
    """
    T = tf.shape(x)[0]
    x_ta = _ta(x.dtype, T).unstack(x)
    y_ta = _ta(x.dtype, T)

    def body(t, h, c, y_ta):
        z = tf.matmul(x_ta.read(t), W) + tf.matmul(h, R)
        if b is not None:
            z = tf.nn.bias_add(z, b)
        i, f, g, o = tf.split(z, 4, axis=1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        h = tf.sigmoid(o) * tf.tanh(c)
        return t + 1, h, c, y_ta.write(t, h)

    _, h, c, y_ta = tf.while_loop(
        lambda t, *_: t < T, body, (tf.constant(0), states[0], states[1], y_ta)
    )
    return y_ta.stack(), [h, c]


def backward(cell, dY, dfinal, seqs, mask, zero_out, w):
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


_COMPILED = {}


def compiled(kind, units, has_mask, zero_out, use_xla):
    """Forward, inference-only forward and backward loops as (XLA-compiled)
    tf.functions, cached."""
    key = (kind, units, has_mask, zero_out, use_xla)
    if key not in _COMPILED:
        cell = CELLS[kind]

        def fwd(xp, states, ws, mask):
            w = unpack(kind, ws, units, xp.dtype)
            return forward(cell, xp, states, mask, zero_out, w)

        def fwd_inference(xp, states, ws, mask):
            w = unpack(kind, ws, units, xp.dtype)
            return forward(cell, xp, states, mask, zero_out, w, for_grad=False)[:2]

        def bwd(dY, dfinal, states0, S, saves, ws, mask):
            # S: carried state sequences (T, batch, units), one per state.
            w = unpack(kind, ws, units, dY.dtype)
            S_prev = [shift(s, s0) for s, s0 in zip(S, states0)]
            seqs = cell.bwd_seqs(S, S_prev, saves, w)
            return backward(cell, dY, dfinal, seqs, mask, zero_out, w)

        if use_xla:
            fwd = tf.function(fwd, jit_compile=True)
            fwd_inference = tf.function(fwd_inference, jit_compile=True)
            bwd = tf.function(bwd, jit_compile=True)
        _COMPILED[key] = (fwd, fwd_inference, bwd)
    return _COMPILED[key]
