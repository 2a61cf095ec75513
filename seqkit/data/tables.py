"""Labelled texts for the text pipelines, from lists, tables, files, folders and datasets.

Every reader returns a :class:`TextLabelData` whose ``texts`` is a list of
Python strings and whose ``labels`` is a list (or ``None`` when the data has
no labels). Accepted inputs:

- a list or tuple of strings (no labels), a ``(texts, labels)`` pair of
  sequences, or a list of ``(text, label)`` pairs;
- a pandas DataFrame with ``text_column`` and ``label_column``;
- a path to a CSV or TSV file (``.gz`` too), read with pandas (``encoding=``,
  UTF-8 by default);
- a path to a folder laid out as ``<folder>/<label>/*.txt``;
- a ``tf.data.Dataset`` of ``(text, label)`` pairs or of dicts with the two
  column names as keys (read once into memory);
- the name of a tensorflow-datasets data set, such as ``"imdb_reviews"``
  (``tfds:imdb_reviews/test`` picks a split; needs a network the first time).

Bad data raises :class:`~seqkit.errors.DataError` (a ``ValueError``) saying
what was wrong and how to fix it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from seqkit.data._common import (
    check_encoding,
    dataset_elements,
    normalise_label,
    normalise_text,
    repair_surrogates,
    texts_digest,
    undecodable,
)
from seqkit.errors import DataError

__all__ = ["TextLabelData", "read_texts", "read_text_classification"]


@dataclass
class TextLabelData:
    """Texts and (optionally) labels read from any accepted source.

    Attributes:
        texts: list of ``str``.
        labels: list of labels (``int`` or ``str``), or ``None``.
        source: a short description of where the data came from, used in errors.
    """

    texts: list
    labels: list | None
    source: str

    def __len__(self) -> int:
        return len(self.texts)

    def fingerprint(self) -> str:
        """sha256 hex of the texts and labels; checkpoints use it to know their data.

        The same value as seqkit 0.1.0 computed, so runs saved by it still resume.

        Example:

        >>> a = TextLabelData(["good", "bad"], [1, 0], "lists")
        >>> a.fingerprint() == TextLabelData(["good", "bad"], [1, 0], "elsewhere").fingerprint()
        True
        """
        return texts_digest(self.texts, self.labels)


_TEXT_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".txt.gz")


def _from_frame(frame, text_column: str, label_column: str | None, where: str, need_labels):
    columns = [str(c) for c in frame.columns]
    if text_column not in frame.columns:
        raise DataError(
            f"{where}: no text column {text_column!r}; the columns are {columns}. "
            "Pass text_column=... to name the right one."
        )
    labels = None
    if label_column is not None and label_column in frame.columns:
        labels = list(frame[label_column])
    elif need_labels:
        raise DataError(
            f"{where}: no label column {label_column!r}; the columns are {columns}. "
            "Pass label_column=... to name the right one."
        )
    return list(frame[text_column]), labels


def _read_table(path: str, text_column, label_column, need_labels, sep=None, encoding="utf-8"):
    import pandas as pd

    lower = path.lower()
    if sep is None:
        sep = "\t" if lower.endswith((".tsv", ".tsv.gz")) else ","
    try:
        frame = pd.read_csv(
            path, sep=sep, keep_default_na=False, na_values=[""], dtype=object, encoding=encoding
        )
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty.") from None
    except UnicodeDecodeError as error:
        raise undecodable(path, encoding, error) from None
    except pd.errors.ParserError as error:
        raise DataError(f"{path}: could not be read as a table ({error}).") from None
    texts, labels = _from_frame(frame, text_column, label_column, path, need_labels)
    return texts, _whole_numbers(labels)


_WHOLE = re.compile(r"\s*[+-]?\d+(\.0*)?\s*")


def _whole_numbers(labels):
    """A file's labels as ints when every one is a whole number ("1", "0.0"), as a
    DataFrame's numbers are; otherwise unchanged (strings)."""
    if labels and all(isinstance(x, str) and _WHOLE.fullmatch(x) for x in labels):
        return [int(x.strip().split(".")[0]) for x in labels]
    return labels


def _read_folder(path: str, encoding="utf-8"):
    texts, labels = [], []
    for label in sorted(os.listdir(path)):
        sub = os.path.join(path, label)
        if not os.path.isdir(sub) or label.startswith("."):
            continue
        for name in sorted(os.listdir(sub)):
            if not name.endswith(".txt"):
                continue
            with open(os.path.join(sub, name), encoding=encoding, errors="replace") as f:
                texts.append(f.read())
            labels.append(label)
    if not texts:
        raise DataError(
            f"{path}: found no <label>/*.txt files. A folder of training data must hold one "
            "sub-folder per label with one .txt file per example."
        )
    return texts, labels


def _read_dataset(dataset, text_column, label_column):
    import tensorflow as tf

    texts, labels = [], []
    spec = dataset.element_spec
    missing = (
        "tf.data.Dataset: no key {column}; the keys are {keys}. "
        "Pass text_column=... to name the right one."
    )
    for element in dataset_elements(dataset, text_column, missing):
        if isinstance(element, dict):
            texts.append(element[text_column])
            labels.append(element.get(label_column))
        elif isinstance(element, tuple) and len(element) == 2:
            texts.append(element[0])
            labels.append(element[1])
        elif isinstance(spec, tf.TensorSpec) and spec.dtype == tf.string:
            texts.append(element)
            labels.append(None)
        else:
            raise DataError(
                "tf.data.Dataset: expected elements (text, label) or dicts with "
                f"{text_column!r} and {label_column!r}; got {spec}."
            )
    if all(label is None for label in labels):
        labels = None
    return texts, labels


def _read_tfds(name: str, text_column, label_column):
    import tensorflow_datasets as tfds

    split = "train"
    if "/" in name:
        name, split = name.split("/", 1)
    try:
        dataset = tfds.load(name, split=split, as_supervised=True)
    except Exception as error:  # tfds raises many kinds; report them all the same way
        raise DataError(
            f"tensorflow-datasets {name!r} (split {split!r}) could not be loaded: {error}"
        ) from None
    return _read_dataset(dataset, text_column, label_column)


def _split_pairs(data, where):
    if (
        isinstance(data, tuple)
        and len(data) == 2
        and not isinstance(data[0], str)
        and isinstance(data[0], Sequence | np.ndarray)
    ):
        texts, labels = list(data[0]), list(data[1])
        if len(texts) != len(labels):
            raise DataError(
                f"{where}: {len(texts)} texts but {len(labels)} labels; they must pair up."
            )
        return texts, labels
    items = list(data)
    if items and all(isinstance(item, tuple | list) and len(item) == 2 for item in items):
        return [item[0] for item in items], [item[1] for item in items]
    return items, None


def read_texts(
    data, text_column: str = "text", label_column: str | None = "label", encoding: str = "utf-8"
):
    """Reads texts for prediction; labels are returned when the source has them.

    A single string is one text (never a file path: paths are read only by
    the training and evaluation entry points, through
    :func:`read_text_classification`).

    Args:
        data: one string, or any source the module docstring lists.
        text_column: column (or dict key) holding the texts.
        label_column: column (or dict key) holding the labels, when there are any.
        encoding: the text encoding of a file or folder (e.g. "latin-1").

    Returns:
        A :class:`TextLabelData`; ``labels`` is ``None`` when the source has none.

    Example:

    >>> read_texts(["a fine film", "dull"]).texts
    ['a fine film', 'dull']
    """
    if isinstance(data, str):
        return TextLabelData([repair_surrogates(data)], None, "text")
    return _read(data, text_column, label_column, need_labels=False, encoding=encoding)


def _read(data, text_column, label_column, need_labels, encoding="utf-8") -> TextLabelData:
    import pandas as pd

    check_encoding(encoding)
    if data is None:
        raise DataError("No data given (got None).")
    if isinstance(data, os.PathLike):
        data = os.fspath(data)
    if isinstance(data, str):
        if data.startswith("tfds:"):
            where = data
            texts, labels = _read_tfds(data[5:], text_column, label_column)
        elif os.path.isdir(data):
            where = data
            texts, labels = _read_folder(data, encoding)
        elif os.path.isfile(data):
            where = data
            texts, labels = _read_table(
                data, text_column, label_column, need_labels, encoding=encoding
            )
        elif data.lower().endswith(_TEXT_SUFFIXES) or os.sep in data:
            raise DataError(f"{data}: no such file or folder.")
        else:
            where = f"tensorflow-datasets {data!r}"
            texts, labels = _read_tfds(data, text_column, label_column)
    elif isinstance(data, pd.DataFrame):
        where = "DataFrame"
        texts, labels = _from_frame(data, text_column, label_column, where, need_labels)
    elif isinstance(data, pd.Series):
        where = "Series"
        texts, labels = list(data), None
    elif type(data).__module__.startswith("tensorflow") and hasattr(data, "element_spec"):
        where = "tf.data.Dataset"
        texts, labels = _read_dataset(data, text_column, label_column)
    elif isinstance(data, np.ndarray) and data.ndim == 0:
        raise DataError(
            f"Received a single value ({data!r:.60}), not a collection of texts. Pass a list "
            "of texts, (texts, labels), a pandas DataFrame or a CSV/TSV path."
        )
    elif isinstance(data, list | tuple | np.ndarray):
        where = f"{type(data).__name__} of data"
        texts, labels = _split_pairs(data, where)
    else:
        raise DataError(
            f"Cannot read data of type {type(data).__name__}. Pass a list of texts, "
            "(texts, labels), a pandas DataFrame, a CSV/TSV path, a folder of "
            "<label>/*.txt files, a tf.data.Dataset or a tensorflow-datasets name."
        )
    if len(texts) == 0:
        raise DataError(f"{where}: the data is empty (0 rows).")
    texts = [normalise_text(text, i, where) for i, text in enumerate(texts)]
    if labels is not None:
        labels = [normalise_label(label, where) for label in labels]
    elif need_labels:
        raise DataError(
            f"{where}: the data has no labels. Training and evaluation need (text, label) "
            "pairs: pass (texts, labels), a DataFrame or file with a label column, or a "
            "folder of <label>/*.txt files."
        )
    return TextLabelData(texts, labels, where)


def read_text_classification(
    data,
    text_column: str = "text",
    label_column: str = "label",
    require_two_classes: bool = True,
    encoding: str = "utf-8",
) -> TextLabelData:
    """Reads labelled texts from any accepted source (see the module docstring).

    Args:
        data: the data (list, tuple, DataFrame, path, folder, tf.data.Dataset, tfds name).
        text_column: column (or dict key) holding the texts.
        label_column: column (or dict key) holding the labels.
        require_two_classes: refuse data with a single class (training needs two).
        encoding: the text encoding of a CSV/TSV file or a folder of .txt files
            (e.g. "latin-1"; a file that does not decode says so and suggests it).

    Returns:
        A :class:`TextLabelData` with ``labels`` set.

    Example:

    >>> read_text_classification((["good", "bad"], ["pos", "neg"])).labels
    ['pos', 'neg']
    """
    read = _read(data, text_column, label_column, need_labels=True, encoding=encoding)
    kinds = {type(label) for label in read.labels}
    if len(kinds) > 1:
        raise DataError(
            f"{read.source}: labels mix integers and strings; use one kind for all labels."
        )
    if require_two_classes and len(set(read.labels)) < 2:
        raise DataError(
            f"{read.source}: every row has the same label ({read.labels[0]!r}); training "
            "a classifier needs at least two classes."
        )
    return read
