"""PyTorch fast path: torch's own fused recurrent kernels (`torch._VF.lstm`,
`torch._VF.gru`, `torch._VF.rnn_tanh`, the functions behind `torch.nn.LSTM`,
`GRU` and `RNN`).

Registered for the PyTorch backend by `seqkit/layers/__init__.py` (the
`_fast_path` registry) and reached only through
`seqkit.layers.rnn._fast_sequence`, which `RNN.call` skips for recurrent
dropout while training and for `unroll=True`. This runner takes the
default activations (tanh / sigmoid) of SimpleRNN ("simple"), LSTM ("lstm")
and GRU with reset_after=True ("gru"); anything else (GRU reset_after=False,
another activation, float16 / bfloat16 compute, a symbolic or meta-device
trace, `torch.compile`, a mask with a hole in a row) raises
`NotImplementedError` and the generic `keras.ops` loop runs.

The weights go to torch in its layout, built from the Keras variables with
differentiable ops (transpose, column reorder), so autograd carries the
gradients back to the variables and no variable is created:

* LSTM: Keras i, f, c, o is torch's i, f, g, o; `weight_ih = kernel.T`,
  `weight_hh = recurrent_kernel.T`, `bias_ih = bias`, `bias_hh = 0`.
* GRU (reset_after): Keras z, r, h becomes torch's r, z, n; the bias rows
  are the input and recurrent biases. torch's `h' = (1 - z) n + z h` is Keras's.
* SimpleRNN: `rnn_tanh`, `bias_hh = 0`.

The kernels do their own input projection, so they read the unprojected
sequence (`inputs()`: time-major, input dropout applied, in processing
order, i.e. already reversed for go_backwards); `xp` only gives the dtype and
device.

Masks: a row whose valid steps form one block (left padding, right padding,
both, or no valid step at all) goes to the packed-sequence kernel, the block
shifted to the start of the row. The outputs then follow the generic loop:
zero before a row's first valid step, the row's last state after its block
(zero with `zero_output_for_mask`), and a fully masked row keeps its initial
state. A mask with a hole inside a row falls back.
"""

from __future__ import annotations

import numpy as np
import torch
from keras import ops

__all__ = ["run", "ENABLED"]

# Switch for tests and benchmarks: False sends every call to the generic loop.
ENABLED = True

_KERNELS = {"simple": torch._VF.rnn_tanh, "lstm": torch._VF.lstm, "gru": torch._VF.gru}


def _gru_order(w, units):
    """Keras z, r, h blocks (last axis) -> torch's r, z, n."""
    u = units
    return torch.cat([w[..., u : 2 * u], w[..., :u], w[..., 2 * u :]], dim=-1)


def _params(kind, cell, dtype):
    """The torch weight list [w_ih, w_hh(, b_ih, b_hh)] and whether it has biases."""
    kernel = ops.cast(cell.kernel, dtype)  # (features, G)
    recurrent = ops.cast(cell.recurrent_kernel, dtype)  # (units, G)
    if kind == "gru":
        kernel, recurrent = _gru_order(kernel, cell.units), _gru_order(recurrent, cell.units)
    params = [kernel.t(), recurrent.t()]  # torch: (G, features), (G, units)
    b_in = cell.input_bias()
    if b_in is None:
        return params, False
    b_in = ops.cast(b_in, dtype)
    if kind == "gru":
        b_rec = _gru_order(ops.cast(cell.recurrent_bias(), dtype), cell.units)
        return params + [_gru_order(b_in, cell.units), b_rec], True
    return params + [b_in, torch.zeros_like(b_in)], True


def _layout(mask):
    """Where each row's valid steps are: None when every step is valid.

    Returns (first, lengths) int64 NumPy arrays of shape (batch,), or raises
    NotImplementedError for a row whose valid steps do not form one block.
    """
    m = mask.reshape(mask.shape[0], mask.shape[1]).cpu().numpy()  # (time, batch)
    steps = m.shape[0]
    lengths = m.sum(axis=0).astype(np.int64)
    if (lengths == steps).all():
        return None
    first = np.argmax(m, axis=0).astype(np.int64)  # 0 for a fully masked row
    t = np.arange(steps)[:, None]
    if not np.array_equal(m, (t >= first) & (t < first + lengths)):
        raise NotImplementedError  # a hole inside a row: the generic loop
    return first, lengths


def _run_packed(kind, kernel, x, hx, params, has_biases, train, first, lengths):
    """The packed-sequence kernel over each row's valid block.

    Returns (Y (time * batch, units) with zeros off the blocks, final states
    (batch, units) each, a fully masked row keeping its initial state).
    """
    steps, batch = x.shape[0], x.shape[1]
    order = np.argsort(-lengths, kind="stable")  # longest row first, as packing wants
    n = int((lengths > 0).sum())
    if n == 0:  # nothing valid anywhere: zeros out, the initial states kept
        return x.new_zeros((steps * batch, hx[0].shape[-1])), list(hx)
    order = order[:n]
    sorted_len = lengths[order]
    t = np.arange(int(sorted_len[0]))[:, None]
    valid = t < sorted_len[None, :]  # (max length, n)
    batch_sizes = torch.from_numpy(valid.sum(axis=1).astype(np.int64))
    # The packed data, time step by time step: row b's k-th valid step sits
    # at time first_b + k of the (time * batch) sequence.
    flat = ((t + first[order][None, :]) * batch + order[None, :])[valid]
    flat = torch.from_numpy(flat).to(x.device)
    rows = torch.from_numpy(order).to(x.device)
    data = x.reshape(steps * batch, x.shape[-1]).index_select(0, flat)
    hx_sorted = tuple(h.index_select(0, rows).unsqueeze(0) for h in hx)
    h_arg = hx_sorted if kind == "lstm" else hx_sorted[0]
    out, *final = kernel(data, batch_sizes, h_arg, params, has_biases, 1, 0.0, train, False)
    Y = out.new_zeros((steps * batch, out.shape[-1])).index_copy(0, flat, out)
    final = [h0.index_copy(0, rows, f[0]) for h0, f in zip(hx, final)]
    return Y, final


def run(kind, cell, xp, states, mask, zero_output_for_mask, need_sequence=True, inputs=None):
    """Run the recurrence of `cell` with torch's fused kernel (see `_fast_path`).

    Args:
        kind: "simple", "lstm" or "gru"; anything else ("gru_v1", None)
            raises NotImplementedError (the generic loop runs).
        cell: the seqkit cell (weights are read from it).
        xp: None: registered with `projects=True`, this runner's kernels
            project `inputs()` themselves (`_fast_path`).
        states: list of (batch, units) initial states.
        mask: (time, batch, 1) bool or None.
        zero_output_for_mask: output zeros at masked steps.
        need_sequence: False when the caller reads only the last output.
        inputs: callable giving the (time, batch, features) sequence in
            processing order, input dropout applied.

    Returns:
        (outputs (time, batch, units), final states list).
    """
    if not ENABLED or kind not in _KERNELS or inputs is None:
        raise NotImplementedError
    x = inputs()  # (time, batch, features)
    if not isinstance(x, torch.Tensor) or x.device.type == "meta" or x.ndim != 3:
        raise NotImplementedError  # symbolic traces: the generic loop gives the shapes
    if x.shape[0] == 0 or x.dtype not in (torch.float32, torch.float64):
        raise NotImplementedError  # empty sequences, float16 / bfloat16: the generic loop
    if torch.compiler.is_compiling():
        raise NotImplementedError
    dtype = x.dtype
    layout = None if mask is None else _layout(mask)
    kernel = _KERNELS[kind]
    params, has_biases = _params(kind, cell, dtype)
    hx = [torch.as_tensor(s).to(dtype).contiguous() for s in states]  # (batch, units) each
    train = torch.is_grad_enabled()  # cuDNN keeps what its backward needs only then
    if layout is None:
        args = (params, has_biases, 1, 0.0, train, False, False)
        if kind == "lstm":
            Y, h, c = kernel(x, (hx[0][None], hx[1][None]), *args)
            final = [h[0], c[0]]
        else:
            Y, h = kernel(x, hx[0][None], *args)
            final = [h[0]]
        return (Y if need_sequence else Y[-1:]), final

    first, lengths = layout
    steps, batch = x.shape[0], x.shape[1]
    Y, final = _run_packed(kind, kernel, x, hx, params, has_biases, train, first, lengths)
    Y = Y.reshape(steps, batch, -1)  # zeros off each row's valid block
    if not zero_output_for_mask:  # after its block a row repeats its last output
        t = np.arange(steps)[:, None]
        after = (t >= first + lengths) & (lengths > 0)
        after = torch.from_numpy(after[..., None]).to(Y.device)
        Y = torch.where(after, final[0][None], Y)
    return (Y if need_sequence else Y[-1:]), final
