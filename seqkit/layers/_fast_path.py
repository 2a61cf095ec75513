"""Where `RNN` finds a backend's fast loop: a registry, and a leaf module.

`seqkit/layers/__init__.py` registers the TensorFlow loops of `_tf_fast`
here when Keras runs on TensorFlow; `rnn.py` looks the current backend up at
call time. So the recurrent base never imports the fast path (which needs the
cells' constants) and the layer modules import one way.

A runner has the signature of `seqkit.layers._tf_fast.run`:
`run(kind, cell, xp, states, mask, zero_output_for_mask, need_sequence=True,
inputs=None) -> (outputs, states)` (outputs of one step may come back when
need_sequence is False; `inputs()` gives the unprojected sequence),
and raises `NotImplementedError` for a call it does not take (the generic
`keras.ops` loop runs instead). `kind` is None for a configuration without a
fused loop (e.g. activation="relu"): a runner may still take it, e.g. to give
an export trace a portable loop over the cell's own `step`. A runner
registered with `projects=True` reads `inputs()` and projects it itself: it is
given `xp=None`, so the all-steps projection is never computed for it.
"""

from __future__ import annotations

_RUNNERS: dict = {}
_PROJECTS: set = set()


def register(backend: str, run, projects: bool = False) -> None:
    """Make `run` the fast loop for Keras backend `backend` (e.g. "tensorflow")."""
    _RUNNERS[backend] = run
    (_PROJECTS.add if projects else _PROJECTS.discard)(backend)


def projects(backend: str) -> bool:
    """Whether the runner of `backend` projects `inputs()` itself (it gets `xp=None`)."""
    return backend in _PROJECTS


def get(backend: str):
    """The fast loop registered for `backend`, or None."""
    return _RUNNERS.get(backend)
