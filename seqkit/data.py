"""Readers that turn what users have into (texts, labels) for the text pipelines.

Every reader returns a :class:`TextLabelData` whose ``texts`` is a list of
Python strings and whose ``labels`` is a list (or ``None`` when the data has
no labels). Accepted inputs:

- a list or tuple of strings (no labels), a ``(texts, labels)`` pair of
  sequences, or a list of ``(text, label)`` pairs;
- a pandas DataFrame with ``text_column`` and ``label_column``;
- a path to a CSV or TSV file (``.gz`` too), read with pandas;
- a path to a folder laid out as ``<folder>/<label>/*.txt``;
- a ``tf.data.Dataset`` of ``(text, label)`` pairs or of dicts with the two
  column names as keys (read once into memory);
- the name of a tensorflow-datasets data set, such as ``"imdb_reviews"``
  (``tfds:imdb_reviews/test`` picks a split; needs a network the first time).

Bad data raises :class:`DataError` (a ``ValueError``) saying what was wrong
and how to fix it.
"""

from __future__ import annotations

import copy
import hashlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "TextStream",
    "repair_surrogates",
    "DataError",
    "TextLabelData",
    "PairData",
    "read_text_classification",
    "read_texts",
    "read_pairs",
]


class DataError(ValueError):
    """Raised when data given to a pipeline cannot be used; the message says why."""


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


_TEXT_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".txt.gz")


def _is_missing(value) -> bool:
    if value is None:
        return True
    if isinstance(value, float | np.floating):
        return math.isnan(float(value))
    try:
        import pandas as pd

        return bool(pd.isna(value)) if np.ndim(value) == 0 else False
    except (TypeError, ValueError):
        return False


def _normalise_label(value, where: str):
    """Labels become ``int`` (whole numbers, bools) or ``str``; anything else is refused."""
    if _is_missing(value):
        raise DataError(
            f"{where}: a label is missing (NaN or None). Drop those rows or fill them in "
            "before training."
        )
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        if float(value).is_integer():
            return int(value)
        raise DataError(
            f"{where}: label {value!r} is a fractional number; class labels must be "
            "integers or strings."
        )
    if isinstance(value, str):
        if not value.strip():
            raise DataError(f"{where}: a label is an empty string.")
        return value
    raise DataError(
        f"{where}: label {value!r} has type {type(value).__name__}; class labels must be "
        "integers or strings."
    )


def repair_surrogates(text: str) -> str:
    """``text`` as valid Unicode: surrogate pairs joined, lone surrogates -> U+FFFD.

    Python strings may hold lone surrogates (e.g. from ``errors="surrogateescape"``
    decoding or JSON with ``"\\ud800"``); TensorFlow cannot encode them to UTF-8.
    They are replaced like undecodable bytes are when files are read.
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _normalise_text(value, index: int, where: str) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as error:
            raise DataError(f"{where}: text #{index} is not valid UTF-8 ({error}).") from None
    if isinstance(value, str):  # np.str_ too
        return repair_surrogates(str(value))
    kind = "missing (NaN or None)" if _is_missing(value) else f"a {type(value).__name__}"
    raise DataError(
        f"{where}: text #{index} is {kind}, not a string. Every text must be a str; "
        "drop or fill empty rows first."
    )


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


def _read_table(path: str, text_column, label_column, need_labels, sep=None):
    import pandas as pd

    lower = path.lower()
    if sep is None:
        sep = "\t" if lower.endswith((".tsv", ".tsv.gz")) else ","
    try:
        frame = pd.read_csv(path, sep=sep, keep_default_na=False, na_values=[""], dtype=object)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty.") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: could not be read as a table ({error}).") from None
    return _from_frame(frame, text_column, label_column, path, need_labels)


def _read_folder(path: str):
    texts, labels = [], []
    for label in sorted(os.listdir(path)):
        sub = os.path.join(path, label)
        if not os.path.isdir(sub) or label.startswith("."):
            continue
        for name in sorted(os.listdir(sub)):
            if not name.endswith(".txt"):
                continue
            with open(os.path.join(sub, name), encoding="utf-8", errors="replace") as f:
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
    for element in dataset.as_numpy_iterator():
        if isinstance(element, dict):
            if text_column not in element:
                raise DataError(
                    f"tf.data.Dataset: no key {text_column!r}; the keys are "
                    f"{sorted(element)}. Pass text_column=... to name the right one."
                )
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


def read_texts(data, text_column: str = "text", label_column: str | None = "label"):
    """Reads texts for prediction; labels are returned when the source has them.

    A single string is one text (never a file path: paths are read only by
    the training and evaluation entry points, through
    :func:`read_text_classification`).
    """
    if isinstance(data, str):
        return TextLabelData([repair_surrogates(data)], None, "text")
    return _read(data, text_column, label_column, need_labels=False)


def _read(data, text_column, label_column, need_labels) -> TextLabelData:
    import pandas as pd

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
            texts, labels = _read_folder(data)
        elif os.path.isfile(data):
            where = data
            texts, labels = _read_table(data, text_column, label_column, need_labels)
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
    texts = [_normalise_text(text, i, where) for i, text in enumerate(texts)]
    if labels is not None:
        labels = [_normalise_label(label, where) for label in labels]
    elif need_labels:
        raise DataError(
            f"{where}: the data has no labels. Training and evaluation need (text, label) "
            "pairs: pass (texts, labels), a DataFrame or file with a label column, or a "
            "folder of <label>/*.txt files."
        )
    return TextLabelData(texts, labels, where)


class TextStream:
    """A labelled CSV/TSV file read in chunks, never whole: data larger than memory.

    ``SentimentPipeline.fit`` / ``fine_tune`` / ``evaluate`` take it in place of
    in-memory data; memory then depends on ``chunk_rows`` (and the vocabulary),
    not on the file's size. Training batches are shuffled within each chunk;
    chunks keep file order, so a sorted file should be shuffled once on disk.

    Args:
        path: a ``.csv``/``.tsv`` file, optionally gzipped, with a header row.
        text_column, label_column: the columns holding texts and labels.
        chunk_rows: rows read at a time.
        sep: the field separator (default: tab for ``.tsv``, else comma).

    A validation split holds out every k-th row (k = round(1 / fraction)) so
    that it too can be streamed.

    Example:

    >>> clf = SentimentPipeline().fit(TextStream("reviews.csv"))  # doctest: +SKIP
    """

    def __init__(
        self,
        path,
        text_column: str = "text",
        label_column: str = "label",
        chunk_rows: int = 20000,
        sep: str | None = None,
    ):
        if not isinstance(path, str | os.PathLike) or not os.fspath(path):
            raise DataError(f"TextStream: received `path={path!r}`; expected a file path.")
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise DataError(f"TextStream: {self.path} is not a file.")
        lower = self.path.lower()
        if not lower.endswith((".csv", ".tsv", ".csv.gz", ".tsv.gz")):
            raise DataError(f"TextStream: {self.path} is not a .csv or .tsv file (optionally .gz).")
        if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
            raise DataError(
                f"TextStream: received `chunk_rows={chunk_rows!r}`; expected a positive integer."
            )
        for name, value in (("text_column", text_column), ("label_column", label_column)):
            if not isinstance(value, str):
                raise DataError(f"TextStream: received `{name}={value!r}`; expected a string.")
        self.text_column, self.label_column = text_column, label_column
        self.chunk_rows = chunk_rows
        self.sep = (
            sep if sep is not None else ("\t" if lower.endswith((".tsv", ".tsv.gz")) else ",")
        )
        self.source = self.path
        self._every, self._keep = None, None  # row filter: index % every == 0 kept or dropped
        self._count, self._sizes = None, None
        self._check_header()

    def _check_header(self):
        import pandas as pd

        try:
            header = pd.read_csv(self.path, sep=self.sep, nrows=0)
        except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as error:
            raise DataError(f"{self.path}: could not be read as a table ({error}).") from None
        missing = [c for c in (self.text_column, self.label_column) if c not in header.columns]
        if missing:
            raise DataError(
                f"{self.path}: no column(s) {missing}; the columns are {list(header.columns)}. "
                "Pass text_column=... and label_column=... to name the right ones."
            )

    def _view(self, keep: bool, every: int) -> TextStream:
        view = copy.copy(self)
        view._every, view._keep, view._count, view._sizes = every, keep, None, None
        view.source = f"{self.path} ({'every' if keep else 'all but every'} {every}th row)"
        return view

    def split(self, fraction: float) -> tuple[TextStream, TextStream]:
        """(train, validation) views: validation is every k-th row, k = round(1/fraction)."""
        every = max(2, int(round(1 / fraction)))
        return self._view(False, every), self._view(True, every)

    def chunks(self):
        """Yields :class:`TextLabelData` of up to ``chunk_rows`` rows, in file order."""
        import pandas as pd

        reader = pd.read_csv(
            self.path,
            sep=self.sep,
            usecols=[self.text_column, self.label_column],
            dtype=object,
            keep_default_na=False,
            na_values=[""],
            chunksize=self.chunk_rows,
        )
        start = 0
        try:
            for frame in reader:
                index = np.arange(start, start + len(frame))
                start += len(frame)
                if self._every is not None:
                    chosen = (index % self._every == 0) == self._keep
                    frame, index = frame[chosen], index[chosen]
                if not len(frame):
                    continue
                where = f"{self.path} rows {index[0] + 2}-{index[-1] + 2}"
                texts = [
                    _normalise_text(t, int(i) + 2, where)
                    for t, i in zip(frame[self.text_column], index)
                ]
                labels = [_normalise_label(v, where) for v in frame[self.label_column]]
                yield TextLabelData(texts, labels, where)
        except (pd.errors.ParserError, UnicodeDecodeError) as error:
            raise DataError(f"{self.path}: could not be read as a table ({error}).") from None

    def summary(self) -> tuple[int, list]:
        """(number of rows, sorted distinct labels), from one streamed pass (cached)."""
        if self._count is None:
            n, labels, sizes = 0, set(), []
            for chunk in self.chunks():
                n += len(chunk)
                sizes.append(len(chunk))
                labels.update(chunk.labels)
            self._sizes = sizes
            if n == 0:
                raise DataError(f"{self.source}: no rows.")
            if len({type(label) for label in labels}) > 1:
                raise DataError(
                    f"{self.source}: labels mix integers and strings; use one kind for all labels."
                )
            self._count = (n, sorted(labels))
        return self._count

    def chunk_sizes(self) -> list[int]:
        """The number of rows in each chunk ``chunks`` yields (a streamed pass, cached)."""
        self.summary()
        return list(self._sizes)

    @property
    def labels(self) -> list:
        """The distinct labels (a streamed pass; labels of each row come with ``chunks``)."""
        return self.summary()[1]

    def __len__(self) -> int:
        return self.summary()[0]

    def fingerprint(self) -> str:
        """Identifies the file's content cheaply (path, size, modification time, view)."""
        stat = os.stat(self.path)
        key = (
            os.path.realpath(self.path),
            stat.st_size,
            stat.st_mtime_ns,
            self.text_column,
            self.label_column,
            self._every,
            self._keep,
        )
        return hashlib.sha256(repr(key).encode()).hexdigest()


def read_text_classification(
    data,
    text_column: str = "text",
    label_column: str = "label",
    require_two_classes: bool = True,
) -> TextLabelData:
    """Reads labelled texts from any accepted source (see the module docstring).

    Args:
        data: the data (list, tuple, DataFrame, path, folder, tf.data.Dataset, tfds name).
        text_column: column (or dict key) holding the texts.
        label_column: column (or dict key) holding the labels.
        require_two_classes: refuse data with a single class (training needs two).

    Returns:
        A :class:`TextLabelData` with ``labels`` set.

    Example:

    >>> read_text_classification((["good", "bad"], ["pos", "neg"])).labels
    ['pos', 'neg']
    """
    read = _read(data, text_column, label_column, need_labels=True)
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


# --------------------------------------------------------------------------- translation pairs
@dataclass
class PairData:
    """Source/target sentence pairs. ``texts`` are the sources, ``labels`` the targets
    (the names the pipeline framework fingerprints)."""

    texts: list
    labels: list
    source: str

    def __len__(self) -> int:
        return len(self.texts)


def _read_tsv_pairs(path: str, source_column: int, target_column: int) -> PairData:
    import gzip

    opener = gzip.open if path.lower().endswith(".gz") else open
    sources, targets = [], []
    need = max(source_column, target_column) + 1
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as f:
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
        raise DataError(f"{path}: not UTF-8 text ({error}).") from None
    return PairData(sources, targets, path)


def read_pairs(
    data,
    source_column="source",
    target_column="target",
    tsv_source_column: int = 1,
    tsv_target_column: int = 0,
) -> PairData:
    """Reads sentence pairs for translation.

    Args:
        data: a list/tuple of ``(source, target)`` pairs, a ``(sources, targets)``
            pair of lists, a pandas DataFrame (``source_column``, ``target_column``),
            a TSV path (``.gz`` too) in the Anki format ``english<TAB>other[<TAB>...]``
            whose columns ``tsv_source_column`` / ``tsv_target_column`` are used,
            or a ``tf.data.Dataset`` of ``(source, target)`` string pairs.

    Returns:
        :class:`PairData`. Raises :class:`DataError` for empty data, a line
        without a tab, or a source or target that is empty or not a string.
    """
    import pandas as pd

    if isinstance(data, str | os.PathLike):
        path = os.fspath(data)
        if not os.path.isfile(path):
            raise DataError(f"No such file: {path}.")
        pairs = _read_tsv_pairs(path, tsv_source_column, tsv_target_column)
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
    elif _is_tf_dataset(data):
        sources, targets = [], []
        for element in data.as_numpy_iterator():
            if not isinstance(element, tuple | list) or len(element) != 2:
                raise DataError("The dataset's elements must be (source, target) string pairs.")
            sources.append(_decode(element[0]))
            targets.append(_decode(element[1]))
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


def _is_tf_dataset(data) -> bool:
    try:
        import tensorflow as tf
    except ImportError:  # pragma: no cover
        return False
    return isinstance(data, tf.data.Dataset)


def _decode(value):
    return value.decode("utf-8") if isinstance(value, bytes) else value
