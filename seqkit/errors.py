"""One family of error classes for bad input, all ``ValueError`` subclasses.

- :class:`SeqkitError`: the base; catch it to catch any of seqkit's input errors
  (catching ``ValueError`` works too, as before).
- :class:`UsageError`: a function or pipeline was used wrongly (a bad argument,
  a pipeline that is not fitted); ``tasks.PipelineError`` is this class.
- :class:`DataError`: data that cannot be read or used (a missing column,
  empty data, undecodable text); the message names the problem and the fix.
  The readers of :mod:`seqkit.data` raise it.
- :class:`SeriesError`: a :class:`DataError` about time series
  (:func:`seqkit.data.read_series`).

This module imports nothing else from seqkit.

Example:

>>> from seqkit.data import read_texts
>>> try:
...     read_texts([])
... except SeqkitError as error:
...     print(type(error).__name__, error)
DataError list of data: the data is empty (0 rows).
"""

from __future__ import annotations

__all__ = ["SeqkitError", "UsageError", "DataError", "SeriesError"]


class SeqkitError(ValueError):
    """Base of every seqkit input error; the message says what was wrong and how to fix it."""


class UsageError(SeqkitError):
    """A function or pipeline was used wrongly (not fitted, bad argument)."""


class DataError(SeqkitError):
    """Data that cannot be read or used; the message names the problem and the fix."""


class SeriesError(DataError):
    """Time-series data that cannot be read or used."""
