"""Getting a task's serving module ready for ``tf.saved_model.save``: what TF Serving needs.

TF Serving and ``saved_model_cli run`` load a SavedModel with the TF1 session
loader (``tf.compat.v1.saved_model.load``), which initializes only the
variables its checkpoint restores: those of the objects tracked from the
saved root. A Keras 3 variable is tracked as itself and saved as a *copy* of
the ``tf.Variable`` it wraps, while the traced signatures read that
``tf.Variable``; so under the TF1 loader every weight read failed ("Could not
find variable ... uninitialized"). ``tf.saved_model.load`` (TF2) binds the
functions to the restored objects, which is why it worked.

:func:`track_served_variables` makes the module track the ``tf.Variable``
objects its signatures read, as Keras's own ``ExportArchive`` does. Like
Keras's ``model.export``, the SavedModel then stores each weight twice (once
per tracked object): the Keras models stay on the module, and
``tf.saved_model.save`` retraces the signatures, so they cannot be dropped
before saving.
"""

from __future__ import annotations

import os

from seqkit.export import atomic_folder, exporting
from tasks.integrity import write_checksums

__all__ = ["track_served_variables", "write_saved_model"]


def write_saved_model(module, signatures: dict, path: str) -> str:
    """Saves a task's serving module (``Task._serving``) at ``path``, atomically,
    its graphs traced inside :func:`seqkit.export.exporting`; returns ``path``."""
    import tensorflow as tf

    with atomic_folder(os.fspath(path)) as tmp, exporting():
        track_served_variables(module, signatures)  # else TF Serving finds no weights
        tf.saved_model.save(module, tmp, signatures=signatures)
        # Beside saved_model.pb; tf.saved_model.load does not read it (tasks.integrity).
        write_checksums(tmp)
    return os.fspath(path)


def track_served_variables(module, signatures: dict) -> None:
    """Makes ``module`` track every ``tf.Variable`` that ``signatures`` read.

    Call it inside :func:`seqkit.export.exporting`, right before
    ``tf.saved_model.save(module, path, signatures=signatures)``.

    Args:
        module: the task's ``tf.Module`` (see ``Task._serving``).
        signatures: signature name -> ``tf.function`` with an ``input_signature``.
    """
    used = [fn.get_concrete_function().variables for fn in signatures.values()]
    module._served_variables = [v for variables in used for v in variables]
