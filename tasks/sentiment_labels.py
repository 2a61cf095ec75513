"""Which of a SentimentPipeline's labels each row of labelled data has: ``label_map=``.

A file's labels need not be the pipeline's: ``label_map={0: "negative", 1:
"positive"}`` (or ``{"0": ..., "1": ...}``: a CSV's whole numbers are read as
integers, and a key matches a label with the same text) renames them as the
data is read, for ``fit``, ``fine_tune``, ``evaluate`` and ``head_accuracy``.
Several of the file's labels may map to one of the pipeline's (1-5 stars to
two classes). Without a map, 0/1 labels against a pipeline whose labels are
``["negative", "positive"]`` mean negative and positive (the IMDB convention);
nothing else is guessed.

:func:`relabel` applies either to in-memory data (a new ``TextLabelData``) or
to a :class:`~seqkit.data.TextStream` (a :class:`MappedStream`, mapped chunk
by chunk, never read whole).

Example:

>>> data = TextLabelData(["good", "bad"], [1, 0], "lists")
>>> relabel(data, None, ["negative", "positive"]).labels
['positive', 'negative']
>>> relabel(data, {"1": "yes", "0": "no"}, None).labels
['yes', 'no']
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping

import numpy as np

from seqkit.data import TextLabelData, TextStream
from tasks.arguments import PipelineError

__all__ = ["relabel", "MappedStream", "BINARY"]

BINARY = ["negative", "positive"]  # the labels 0/1 stand for without a label_map
_EXAMPLE = "label_map={0: 'negative', 1: 'positive'}"


def _label(x, what: str):
    if isinstance(x, bool | np.bool_) or not isinstance(x, int | np.integer | str):
        raise PipelineError(
            f"label_map: the {what} {x!r} is a {type(x).__name__}; labels are integers or "
            f"strings, as in {_EXAMPLE}."
        )
    return int(x) if isinstance(x, np.integer) else x


def check_label_map(label_map) -> dict[str, int | str] | None:
    """``label_map`` as {str(data label): pipeline label}, or a PipelineError saying what is wrong."""
    if label_map is None:
        return None
    if not isinstance(label_map, Mapping):
        raise PipelineError(
            f"Received `label_map={label_map!r}` (a {type(label_map).__name__}); expected a "
            f"dict from the data's labels to the pipeline's, e.g. {_EXAMPLE}."
        )
    table: dict[str, int | str] = {}
    for key, value in label_map.items():
        key, value = _label(key, "key"), _label(value, "value")
        # 0 and "0" are one label: CSV readers turn whole numbers into integers.
        if str(key) in table and table[str(key)] != value:
            raise PipelineError(
                f"label_map maps {key!r} twice (to {table[str(key)]!r} and {value!r}; the "
                "keys 0 and '0' are the same label); keep one entry."
            )
        table[str(key)] = value
    if len({type(v) for v in table.values()}) > 1:
        values = ", ".join(map(repr, sorted(set(table.values()), key=lambda v: (str(type(v)), v))))
        raise PipelineError(
            f"label_map's values mix integers and strings ({values}); use one kind, as the "
            "pipeline's labels do."
        )
    return table


def _onto(table: dict, labels: list) -> dict:
    """The map's values as the pipeline's own labels (matched by their text)."""
    by_text = {str(x): x for x in labels}
    unknown = sorted({str(v) for v in table.values()} - set(by_text))
    if unknown:
        raise PipelineError(
            f"label_map maps to {unknown}, which are not among the pipeline's labels "
            f"{labels}; map each of the data's labels to one of those (fine_tune and "
            "evaluate keep the classes fit learnt)."
        )
    return {k: by_text[str(v)] for k, v in table.items()}


def _implicit(found: set, labels) -> dict | None:
    """{"0": "negative", "1": "positive"} where that is what 0/1 data must mean."""
    if labels is None or list(labels) != BINARY or not found:
        return None
    return dict(zip("01", BINARY)) if {str(x) for x in found} <= {"0", "1"} else None


def _check_covered(table: dict, found: set, source: str) -> None:
    missing = sorted((x for x in found if str(x) not in table), key=str)
    if missing:
        raise PipelineError(
            f"{source}: label_map has no entry for the label(s) {missing} found in the data; "
            f"add one for each (e.g. {missing[0]!r}: <one of the pipeline's labels>)."
        )


def relabel(data, label_map, labels):
    """``data`` with its labels mapped by ``label_map`` (or the 0/1 rule), else unchanged.

    Args:
        data: a ``TextLabelData`` with labels, or a ``TextStream``.
        label_map: None or a dict {data label: pipeline label}.
        labels: the pipeline's labels; None while ``fit`` is choosing them (then
            the map's values become the labels, and there must be two or more).

    Returns:
        The same kind of data.
    """
    table = check_label_map(label_map)
    if (table is None and labels is None) or data.labels is None:
        return data  # nothing to map (and a stream is not read for it)
    found = set(data.labels)  # (a stream: one streamed pass, cached on it)
    if table is None:
        table = _implicit(found, labels)
        if table is None:
            return data
    elif labels is not None:
        table = _onto(table, labels)
    _check_covered(table, found, data.source)
    if labels is None and len({table[str(x)] for x in found}) < 2:
        raise PipelineError(
            f"{data.source}: label_map maps every label to {table[str(next(iter(found)))]!r}; "
            "training a classifier needs at least two classes."
        )
    if isinstance(data, TextStream):
        return MappedStream.of(data, table)
    mapped = [table[str(x)] for x in data.labels]
    return TextLabelData(list(data.texts), mapped, data.source)


class MappedStream(TextStream):
    """A :class:`~seqkit.data.TextStream` whose chunks carry mapped labels (see :func:`relabel`).

    Its validation views (``split``) map too; its fingerprint names the map, so a
    checkpoint of one mapping is not resumed under another.
    """

    _label_table: dict

    @classmethod
    def of(cls, stream: TextStream, table: dict) -> MappedStream:
        view = copy.copy(stream)
        view.__class__ = cls
        view._label_table = dict(table)
        # (TextStream caches its summary, (rows, labels), in `_count`; the same rows here.)
        if stream._count is not None:
            n, labels = stream._count
            view._count = (n, sorted({view._label_table.get(str(x), x) for x in labels}))
        return view

    def chunks(self):
        for chunk in super().chunks():
            labels = [self._label_table.get(str(x), x) for x in chunk.labels]
            yield TextLabelData(chunk.texts, labels, chunk.source)

    def fingerprint(self) -> str:
        table = json.dumps(sorted(self._label_table.items()), default=str)
        return hashlib.sha256(f"{super().fingerprint()}|{table}".encode()).hexdigest()
