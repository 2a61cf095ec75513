"""The error classes of seqkit: one family, every one a ``ValueError``.

``SeqkitError`` is the base of every error seqkit raises for bad input, so a
caller can catch them all at once (or catch ``ValueError``, as before):

- :class:`DataError`: data that cannot be read or used (``seqkit.data``);
- :class:`SeriesError`: bad time-series input (``seqkit.data.read_series``),
  a kind of ``DataError``.

The pipelines in ``tasks/`` raise ``tasks.base.PipelineError``, also a
``SeqkitError``. This module imports nothing from seqkit.

Example:

>>> from seqkit.data import read_texts
>>> try:
...     read_texts([])
... except SeqkitError as error:
...     print(type(error).__name__, error)
DataError list of data: the data is empty (0 rows).
"""

from __future__ import annotations

__all__ = ["SeqkitError", "DataError", "SeriesError"]


class SeqkitError(ValueError):
    """Base of every seqkit input error; the message says what was wrong and how to fix it."""


class DataError(SeqkitError):
    """Raised when data given to a pipeline cannot be used; the message says why."""


class SeriesError(DataError):
    """Bad time-series input; the message says what was wrong and how to fix it."""
