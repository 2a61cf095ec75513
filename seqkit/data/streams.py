"""A labelled CSV/TSV file streamed in chunks: training data larger than memory."""

from __future__ import annotations

import copy
import os

import numpy as np

from seqkit.data._common import (
    check_encoding,
    file_digest,
    normalise_label,
    normalise_text,
    undecodable,
)
from seqkit.data.tables import TextLabelData
from seqkit.errors import DataError

__all__ = ["TextStream"]


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
        encoding: the file's text encoding (e.g. "latin-1").

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
        encoding: str = "utf-8",
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
        self.encoding = check_encoding(encoding)
        self._every, self._keep = None, None  # row filter: index % every == 0 kept or dropped
        self.part = None  # (index, count): only the chunks c with c % count == index
        self._count, self._sizes = None, None
        self._check_header()

    def _check_header(self):
        import pandas as pd

        try:
            header = pd.read_csv(self.path, sep=self.sep, nrows=0, encoding=self.encoding)
        except UnicodeDecodeError as error:
            raise undecodable(self.path, self.encoding, error) from None
        except (pd.errors.EmptyDataError, pd.errors.ParserError) as error:
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

    def shard(self, index: int, count: int) -> TextStream:
        """Worker ``index`` of ``count``'s part: the view's chunks ``index``, ``index +
        count``, ... (multi-worker training shards a stream by chunk: each worker
        reads the file but parses and encodes only its own chunks).

        Raises DataError when the view has fewer chunks than workers.
        """
        if not (isinstance(count, int) and isinstance(index, int) and 0 <= index < count):
            raise DataError(
                f"TextStream.shard: received ({index!r}, {count!r}); expected 0 <= index < count."
            )
        chunks = len(self.chunk_sizes())
        if chunks < count:
            raise DataError(
                f"{self.source} cannot be sharded over {count} workers: it reads as "
                f"{chunks} chunk(s) of up to {self.chunk_rows} rows, and each worker needs "
                f"whole chunks of its own. Pass chunk_rows={max(1, len(self) // count)} "
                "or fewer to TextStream."
            )
        view = copy.copy(self)
        view.part, view._count, view._sizes = (index, count), None, None
        view.source = f"{self.source} (worker {index}'s chunks of {count})"
        return view

    def chunks(self):
        """Yields :class:`TextLabelData` of up to ``chunk_rows`` rows, in file order
        (a :meth:`shard`: only its own chunks)."""
        import pandas as pd

        reader = pd.read_csv(
            self.path,
            sep=self.sep,
            usecols=[self.text_column, self.label_column],
            dtype=object,
            keep_default_na=False,
            na_values=[""],
            chunksize=self.chunk_rows,
            encoding=self.encoding,
        )
        start, position = 0, -1
        try:
            for frame in reader:
                index = np.arange(start, start + len(frame))
                start += len(frame)
                if self._every is not None:
                    chosen = (index % self._every == 0) == self._keep
                    frame, index = frame[chosen], index[chosen]
                if not len(frame):
                    continue
                position += 1
                if self.part is not None and position % self.part[1] != self.part[0]:
                    continue
                where = f"{self.path} rows {index[0] + 2}-{index[-1] + 2}"
                texts = [
                    normalise_text(t, int(i) + 2, where)
                    for t, i in zip(frame[self.text_column], index)
                ]
                labels = [normalise_label(v, where) for v in frame[self.label_column]]
                yield TextLabelData(texts, labels, where)
        except UnicodeDecodeError as error:
            raise undecodable(self.path, self.encoding, error) from None
        except pd.errors.ParserError as error:
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
        """Identifies the file's content cheaply (path, size, modification time, view).

        sha256 hex, stable across processes; the file is not read.
        """
        view = (self.text_column, self.label_column, self._every, self._keep)
        if self.part is not None:
            view += (self.part, self.chunk_rows)
        if self.encoding != "utf-8":  # (only then: older UTF-8 checkpoints keep their key)
            view += (self.encoding,)
        return file_digest(self.path, *view)
