"""Folders saved by seqkit 0.1.0 (format 1): their weights mapped onto today's models.

seqkit 0.1.0 built each task's recurrent layers one by one; today they sit in
a ``RecurrentStack``, so the weights have new names in ``model.weights.h5``.
Each task maps a weight's new name to its old one (``_legacy_weight_path``);
:func:`load_legacy_weights` copies every old array to its new place, checking
that shapes agree and that nothing is left over.
"""

from __future__ import annotations

import os
import tempfile

from tasks.arguments import PipelineError

__all__ = ["load_legacy_weights"]


def load_legacy_weights(pipeline, weights_path: str, meta: dict) -> None:
    """Loads a seqkit 0.1.0 weight file into the current model layout.

    Every weight of the new model is looked up under its 0.1.0 name
    (``pipeline._legacy_weight_path``); shapes must agree and every old weight
    must be used, or the error names the saving version and the upgrade.
    """
    import h5py

    version = meta.get("seqkit_version", "0.1.0")
    model = pipeline.model
    with tempfile.TemporaryDirectory() as tmp:
        fresh = os.path.join(tmp, "current.weights.h5")
        model.save_weights(fresh)
        with h5py.File(weights_path, "r") as old, h5py.File(fresh, "r+") as new:
            old_paths = _datasets(old)
            used = set()
            for new_path in _datasets(new):
                old_path = pipeline._legacy_weight_path(new_path)
                if old_path not in old_paths or old[old_path].shape != new[new_path].shape:
                    raise PipelineError(
                        f"{weights_path} was saved by seqkit {version} and does not fit this "
                        f"seqkit's {type(pipeline).__name__} ({new_path} <- {old_path}). "
                        "Load it with the seqkit that saved it and save it again."
                    )
                new[new_path][...] = old[old_path][()].astype(new[new_path].dtype)
                used.add(old_path)
            if used != set(old_paths):
                raise PipelineError(
                    f"{weights_path} was saved by seqkit {version} and holds weights this "
                    f"seqkit's {type(pipeline).__name__} has no place for: "
                    f"{sorted(set(old_paths) - used)}."
                )
        model.load_weights(fresh)


def _datasets(group) -> list[str]:
    import h5py

    names = []
    group.visititems(
        lambda name, item: names.append(name) if isinstance(item, h5py.Dataset) else None
    )
    return names
