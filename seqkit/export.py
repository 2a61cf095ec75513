"""Writing models and pipelines to disk: atomic writes, float16 weights, export tracing.

- :func:`atomic_folder` / :func:`atomic_file`: a save that crashes half-way
  leaves the previous copy intact.
- :func:`halve_weights`: rewrites a Keras ``.weights.h5`` file in float16.
- :func:`exporting`: a context in which traced inference graphs are portable
  (plain TensorFlow loops: no XLA cluster, no native kernel, no custom
  gradient), for graphs that will be saved and served elsewhere;
  :func:`export_target` tells the layers whether they are inside one, or
  inside one of the exporters of Keras, TensorFlow, tf2onnx and LiteRT, and
  for which format (:func:`is_exporting`: whether any).

This module imports nothing else from seqkit, so every part of the library
(layers included) may import it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import uuid

import numpy as np

__all__ = [
    "atomic_folder",
    "atomic_file",
    "halve_weights",
    "exporting",
    "is_exporting",
    "export_target",
    "FORMATS",
]

# The export formats, in the order they are checked for on the call stack.
FORMATS = ("litert", "onnx", "saved_model")

# A stack rather than a flag: `exporting()` blocks may nest. Each entry is the
# format being written (None outside any block).
_EXPORTING: list = [None]

# Where each format's exporter lives: a graph traced while one of these files
# is on the call stack is being traced for that format. LiteRT and ONNX first:
# their Keras exporters go through Keras's SavedModel code too.
_EXPORTER_FILES = {
    "litert": ("/keras/src/export/litert", "/tensorflow/lite/python/", "/ai_edge_litert/"),
    "onnx": ("/keras/src/export/onnx", "/tf2onnx/"),
    "saved_model": ("/keras/src/export/", "/tensorflow/python/saved_model/"),
}


@contextlib.contextmanager
def exporting(format: str = "saved_model"):
    """Within this block, traced inference loops are portable TF loops.

    An XLA cluster is compiled once per input shape, and a served model sees a
    new (batch, time) shape with almost every request (measured: 4 texts/s at
    batch 1 with XLA); native kernels would tie the graph to this library.
    For ``format="litert"`` the loops also keep to plain tensors (no
    TensorArray), which TFLite's converter lowers to built-in operators.

    Example:

    >>> with seqkit.export.exporting():
    ...     tf.saved_model.save(module, "serving/model")
    """
    if format not in FORMATS:
        raise ValueError(f"Received `format={format!r}`; expected one of {list(FORMATS)}.")
    _EXPORTING.append(format)
    try:
        yield
    finally:
        _EXPORTING.pop()


def export_target(stack: bool = True) -> str | None:
    """The format being exported to ("saved_model", "onnx", "litert"), or None.

    Inside an :func:`exporting` block, its format. Otherwise (with
    ``stack=True``) the call stack tells: a graph traced under Keras's
    ``model.export`` (any format), ``tf.saved_model.save``, tf2onnx or
    TFLite's converter is an export trace. Traces consult the stack (rarely:
    once per traced shape), so walking it costs nothing that matters; eager
    calls pass ``stack=False``.
    """
    if _EXPORTING[-1] is not None or not stack:
        return _EXPORTING[-1]
    files = []
    frame = sys._getframe(1)
    while frame is not None:
        files.append(frame.f_code.co_filename.replace(os.sep, "/"))
        frame = frame.f_back
    for fmt in FORMATS:
        if any(marker in f for f in files for marker in _EXPORTER_FILES[fmt]):
            return fmt
    return None


def is_exporting() -> bool:
    """True inside an :func:`exporting` block or an exporter's trace."""
    return export_target() is not None


@contextlib.contextmanager
def atomic_folder(path: str):
    """Yields a temporary folder that replaces ``path`` only when the block succeeds.

    The new copy is written beside ``path`` and moved into place with renames,
    so a crash at any moment leaves either the old folder or the new one. If a
    crash falls between the two renames, the old copy survives as
    ``<path>.old-*`` (``tasks.load`` falls back to it).
    """
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=os.path.basename(path) + ".tmp-", dir=parent)
    try:
        yield tmp
        for root, _, files in os.walk(tmp):
            for name in files:
                with open(os.path.join(root, name), "rb") as f:
                    os.fsync(f.fileno())
        old = None
        if os.path.exists(path):
            old = f"{path}.old-{uuid.uuid4().hex[:8]}"
            os.rename(path, old)
        os.rename(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_file(path: str):
    """Yields a temporary path beside ``path`` that replaces it only when the block succeeds."""
    path = os.fspath(path)
    tmp = os.path.join(
        os.path.dirname(os.path.abspath(path)),
        f".{os.path.basename(path)}.tmp-{uuid.uuid4().hex[:8]}",
    )
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def halve_weights(path: str) -> None:
    """Rewrites a Keras ``.weights.h5`` file with its float32 arrays as float16.

    A fresh file is written and renamed over the old one: HDF5 never gives back
    the space of a deleted dataset, so converting in place would not shrink it.

    Raises:
        ValueError: a weight exceeds the float16 range (save in float32 instead).
    """
    import h5py

    def copy(src, dst):
        dst.attrs.update(dict(src.attrs))
        for name, item in src.items():
            if isinstance(item, h5py.Group):
                copy(item, dst.create_group(name))
                continue
            values = item[()]
            if item.dtype == np.float32:
                if np.abs(values).max(initial=0) > np.finfo(np.float16).max:
                    raise ValueError(
                        f"A weight ({item.name}) exceeds the float16 range; save with "
                        "weights_dtype='float32'."
                    )
                values = values.astype(np.float16)
            dst.create_dataset(name, data=values)
            dst[name].attrs.update(dict(item.attrs))

    with atomic_file(path) as tmp, h5py.File(path, "r") as src, h5py.File(tmp, "w") as dst:
        copy(src, dst)
