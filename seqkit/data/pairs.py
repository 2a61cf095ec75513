"""Sentence pairs for translation: lists, DataFrames, Anki-style TSV files, datasets."""

from __future__ import annotations

import os
from dataclasses import dataclass

from seqkit.data._common import check_encoding, decode, is_tf_dataset, texts_digest, undecodable
from seqkit.errors import DataError

__all__ = ["PairData", "read_pairs"]


@dataclass
class PairData:
    """Source/target sentence pairs for translation.

    Attributes:
        texts: the source sentences (``str``).
        labels: the target sentences (``str``), one per source.
        source: a short description of where the pairs came from, used in errors.
    """

    texts: list
    labels: list
    source: str

    def __len__(self) -> int:
        return len(self.texts)

    def fingerprint(self) -> str:
        """sha256 hex of the sources and targets (the same digest as seqkit 0.1.0's).

        Example:

        >>> a, b = PairData(["hi"], ["hola"], "a"), PairData(["hi"], ["hola"], "b")
        >>> a.fingerprint() == b.fingerprint()
        True
        """
        return texts_digest(self.texts, self.labels)


def _read_tsv_pairs(path: str, source_column: int, target_column: int, encoding: str) -> PairData:
    import gzip

    opener = gzip.open if path.lower().endswith(".gz") else open
    sources, targets = [], []
    need = max(source_column, target_column) + 1
    try:
        with opener(path, "rt", encoding=encoding, newline="") as f:
            for number, line in enumerate(f, start=1):
                line = line.rstrip("\r\n")
                if not line.strip():
                    continue
                fields = line.split("\t")
                if len(fields) < need:
                    raise DataError(
                        f"{path}, line {number}: expected {need} tab-separated columns "
                        f"(Anki format: english<TAB>other), found {len(fields)}: {line[:60]!r}."
                    )
                sources.append(fields[source_column])
                targets.append(fields[target_column])
    except UnicodeDecodeError as error:
        raise undecodable(path, encoding, error) from None
    return PairData(sources, targets, path)


def read_pairs(
    data,
    source_column="source",
    target_column="target",
    tsv_source_column: int = 1,
    tsv_target_column: int = 0,
    encoding: str = "utf-8",
) -> PairData:
    """Reads sentence pairs for translation.

    Args:
        data: a list/tuple of ``(source, target)`` pairs, a ``(sources, targets)``
            pair of lists, a pandas DataFrame (``source_column``, ``target_column``),
            a TSV path (``.gz`` too) in the Anki format ``english<TAB>other[<TAB>...]``
            whose columns ``tsv_source_column`` / ``tsv_target_column`` are used,
            or a ``tf.data.Dataset`` of ``(source, target)`` string pairs.

        source_column, target_column: the DataFrame's columns.
        tsv_source_column, tsv_target_column: the TSV file's columns (0-based).
        encoding: the TSV file's text encoding (e.g. "latin-1").

    Returns:
        :class:`PairData`. Raises :class:`~seqkit.errors.DataError` for empty data,
        a line without a tab, or a source or target that is empty or not a string.

    Example:

    >>> read_pairs([("hello", "hola"), ("thanks", "gracias")]).labels
    ['hola', 'gracias']
    """
    import pandas as pd

    check_encoding(encoding)
    if isinstance(data, str | os.PathLike):
        path = os.fspath(data)
        if not os.path.isfile(path):
            raise DataError(f"No such file: {path}.")
        pairs = _read_tsv_pairs(path, tsv_source_column, tsv_target_column, encoding)
    elif isinstance(data, pd.DataFrame):
        for column in (source_column, target_column):
            if column not in data.columns:
                raise DataError(
                    f"The DataFrame has no column {column!r}; its columns are "
                    f"{list(map(str, data.columns))}. Pass source_column=/target_column=."
                )
        pairs = PairData(
            data[source_column].tolist(), data[target_column].tolist(), "the DataFrame"
        )
    elif is_tf_dataset(data):
        sources, targets = [], []
        for element in data.as_numpy_iterator():
            if not isinstance(element, tuple | list) or len(element) != 2:
                raise DataError("The dataset's elements must be (source, target) string pairs.")
            sources.append(decode(element[0]))
            targets.append(decode(element[1]))
        pairs = PairData(sources, targets, "the dataset")
    elif isinstance(data, list | tuple):
        if len(data) == 2 and all(isinstance(x, list | tuple) for x in data) and len(data[0]) != 2:
            if len(data[0]) != len(data[1]):
                raise DataError(
                    f"Received {len(data[0])} sources and {len(data[1])} targets; "
                    "expected as many of each."
                )
            pairs = PairData(list(data[0]), list(data[1]), "the lists")
        else:
            sources, targets = [], []
            for i, pair in enumerate(data):
                if not isinstance(pair, list | tuple) or len(pair) != 2:
                    raise DataError(
                        f"Pair {i} is {pair!r:.60}; expected a (source, target) pair of strings."
                    )
                sources.append(pair[0])
                targets.append(pair[1])
            pairs = PairData(sources, targets, "the pairs")
    else:
        raise DataError(
            f"Cannot read sentence pairs from a {type(data).__name__}; pass (source, target) "
            "pairs, a DataFrame, a TSV path or a tf.data.Dataset."
        )
    if len(pairs) == 0:
        raise DataError(f"No sentence pairs in {pairs.source}; give at least one.")
    for i, (src, tgt) in enumerate(zip(pairs.texts, pairs.labels)):
        for name, value in (("source", src), ("target", tgt)):
            if not isinstance(value, str):
                raise DataError(
                    f"Pair {i} of {pairs.source}: the {name} is a {type(value).__name__} "
                    f"({value!r:.40}); expected a string."
                )
            if not value.strip():
                raise DataError(
                    f"Pair {i} of {pairs.source}: the {name} is empty; remove the pair or "
                    "fill it in."
                )
    return pairs
