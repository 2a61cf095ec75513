"""Checksums of saved folders: a damaged save is named as damaged, not as a config mismatch.

``Task.save`` and ``Task.export`` (SavedModel) write ``CHECKSUMS.sha256`` into the
folder: the sha256 of every file in it, one ``<hex>  <relative path>`` line each
(the format of ``sha256sum``, so ``cd folder && sha256sum -c CHECKSUMS.sha256``
checks it without seqkit). ``tasks.load`` verifies it before reading anything
and names the first damaged file:

    runs/clf/model.weights.h5 is damaged (truncated or altered); re-save or
    re-download it.

Files added to a folder later (a MODEL_CARD.md) are not listed and not checked.
Folders written before checksums existed have no such file and still load (their
weights file is only checked to be readable HDF5). ``tf.saved_model.load`` itself
does not read the file: verify an exported SavedModel with :func:`verify_folder`
(or ``sha256sum -c``) before serving it.

Example:

>>> write_checksums("runs/clf")  # doctest: +SKIP
>>> verify_folder("runs/clf")    # doctest: +SKIP   (raises PipelineError if damaged)
"""

from __future__ import annotations

import hashlib
import os

from tasks.arguments import PipelineError

__all__ = ["CHECKSUMS_FILE", "write_checksums", "verify_folder", "damaged"]

CHECKSUMS_FILE = "CHECKSUMS.sha256"


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def damaged(path: str, why: str = "truncated or altered") -> PipelineError:
    """The error for a damaged file of a save."""
    return PipelineError(f"{path} is damaged ({why}); re-save or re-download it.")


def write_checksums(folder: str) -> str:
    """Writes ``CHECKSUMS.sha256`` over every file under ``folder``; returns its path."""
    lines = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            rel = os.path.relpath(path, folder).replace(os.sep, "/")
            if rel != CHECKSUMS_FILE and not os.path.islink(path):
                lines.append(f"{_sha256(path)}  {rel}\n")
    out = os.path.join(folder, CHECKSUMS_FILE)
    with open(out, "w", encoding="utf-8") as f:
        f.writelines(lines)
    return out


def verify_folder(folder: str, weights_file: str | None = "model.weights.h5") -> None:
    """Checks every file ``CHECKSUMS.sha256`` lists; raises :func:`damaged` for the first bad one.

    A folder without the file (saved by an older seqkit) passes, once its
    ``weights_file`` (if any) opens as HDF5.
    """
    listing = os.path.join(folder, CHECKSUMS_FILE)
    if not os.path.isfile(listing):
        weights = os.path.join(folder, weights_file) if weights_file else None
        if weights and os.path.isfile(weights):
            import h5py

            try:
                h5py.File(weights, "r").close()
            except OSError:
                raise damaged(weights) from None
        return
    with open(listing, encoding="utf-8", errors="replace") as f:
        entries = [line.rstrip("\n").split("  ", 1) for line in f if line.strip()]
    for entry in entries:
        if len(entry) != 2 or len(entry[0]) != 64:
            raise damaged(listing, "a line is not '<sha256>  <file>'")
        digest, rel = entry
        path = os.path.normpath(os.path.join(folder, rel))
        if os.path.isabs(rel) or os.path.relpath(path, folder).startswith(os.pardir):
            raise damaged(listing, f"it names {rel!r}, outside the folder")
        if not os.path.isfile(path):
            raise damaged(path, "missing")
        if _sha256(path) != digest:
            raise damaged(path)
