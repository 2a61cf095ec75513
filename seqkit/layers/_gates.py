"""Constants shared by the LSTM cell and the TensorFlow fast path.

A leaf module: it imports nothing from seqkit, so `lstm.py` and the fast-path
modules can both use it without importing each other.
"""

from __future__ import annotations

import functools

import numpy as np


@functools.cache
def gate_scale_offset(units):
    """Constants for all four LSTM gates in one tanh (gate order i, f, c~, o).

    `tanh(z * scale) * scale + offset` is sigmoid on the i, f, o blocks
    (scale 0.5, offset 0.5: sigmoid(x) = (tanh(x / 2) + 1) / 2) and tanh on
    the candidate block (scale 1, offset 0).

    Args:
        units: the cell's units.

    Returns:
        Two read-only float32 arrays of shape (4 * units,): scale and offset.

    Example:

    >>> scale, offset = gate_scale_offset(1)
    >>> scale.tolist(), offset.tolist()
    ([0.5, 0.5, 1.0, 0.5], [0.5, 0.5, 0.0, 0.5])
    """
    scale = np.full((4 * units,), 0.5, np.float32)
    scale[2 * units : 3 * units] = 1.0
    offset = np.where(scale == 0.5, 0.5, 0.0).astype(np.float32)
    scale.flags.writeable = offset.flags.writeable = False  # shared by the cache
    return scale, offset
