"""Text corpora for language models: strings, files (``.gz`` too), documents, streams."""

from __future__ import annotations

import copy
import gzip
import os

import numpy as np

from seqkit.data._common import (
    dataset_elements,
    file_digest,
    is_tf_dataset,
    positive_int,
    texts_digest,
    undecodable,
)
from seqkit.errors import DataError

__all__ = ["DOCUMENT_SEPARATOR", "TextCorpus", "TextFileStream", "read_corpus"]

DOCUMENT_SEPARATOR = "\n\n"  # between the documents of a corpus


class TextCorpus:
    """Training text for a language model: one string (documents already joined).

    Args:
        text: the text.

    Attributes:
        text: the text; ``texts`` is ``[text]`` and ``labels`` is ``None`` (the
            shape of :class:`~seqkit.data.TextLabelData`).

    Example:

    >>> len(TextCorpus("to be or not to be"))
    18
    """

    def __init__(self, text: str):
        self.text = text
        self.texts = [text]
        self.labels = None

    def __len__(self) -> int:
        return len(self.text)

    def fingerprint(self) -> str:
        """sha256 hex of the text (the same digest as seqkit 0.1.0's checkpoints used)."""
        return texts_digest(self.texts, self.labels)


def _read_file(path: str, encoding: str) -> str:
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding=encoding, newline="") as f:
            return f.read()
    except UnicodeDecodeError as error:
        raise undecodable(path, encoding, error) from None


class TextFileStream:
    """A .txt / .txt.gz file read in chunks, never whole: training text larger than memory.

    ``TextGenPipeline.fit`` / ``fine_tune`` take it in place of a string. The
    held-out validation text is still the end of the file (by character
    position, and at word level never inside a word); training windows are
    shuffled within each chunk. ``evaluate`` reads text in memory.

    Args:
        path: the file.
        encoding: its text encoding.
        chunk_chars: characters read at a time.

    Example:

    >>> lm = TextGenPipeline().fit(TextFileStream("corpus.txt.gz"))  # doctest: +SKIP
    """

    def __init__(self, path, encoding: str = "utf-8", chunk_chars: int = 1_000_000):
        if not isinstance(path, str | os.PathLike) or not os.path.isfile(os.fspath(path)):
            raise DataError(f"TextFileStream: received `path={path!r}`; expected a file.")
        self.path = os.fspath(path)
        self.encoding = encoding
        self.chunk_chars = positive_int("chunk_chars", chunk_chars)
        self.start, self.stop = 0, None  # the characters [start, stop) of the file
        self.part = None  # (index, count): only the chunks c with c % count == index
        self.labels = None
        self._length = None
        for _ in self._raw():  # fail now, not mid-training, on a wrong encoding
            break

    def _raw(self):
        """(offset, text) chunks of the whole file."""
        opener = gzip.open if self.path.endswith(".gz") else open
        try:
            with opener(self.path, "rt", encoding=self.encoding, newline="") as f:
                offset = 0
                while True:
                    text = f.read(self.chunk_chars)
                    if not text:
                        return
                    yield offset, text
                    offset += len(text)
        except UnicodeDecodeError as error:
            raise undecodable(self.path, self.encoding, error) from None

    def _pieces(self):
        """The file's chunks clipped to the view [start, stop), in order."""
        for offset, text in self._raw():
            if offset + len(text) <= self.start:
                continue
            if self.stop is not None and offset >= self.stop:
                break
            yield text[
                max(0, self.start - offset) : None if self.stop is None else self.stop - offset
            ]

    def shard(self, index: int, count: int) -> TextFileStream:
        """Worker ``index`` of ``count``'s part: the view's chunks ``index``, ``index +
        count``, ... (multi-worker training shards a stream by chunk). At word level
        a word cut by a chunk boundary goes whole to the chunk it starts in.

        Raises DataError when the view has fewer chunks than workers.
        """
        if not (isinstance(count, int) and isinstance(index, int) and 0 <= index < count):
            raise DataError(
                f"TextFileStream.shard: received ({index!r}, {count!r}); expected "
                "0 <= index < count."
            )
        chunks = sum(1 for _ in self._pieces())
        if chunks < count:
            raise DataError(
                f"{self.path} cannot be sharded over {count} workers: its text reads as "
                f"{chunks} chunk(s) of up to {self.chunk_chars} characters, and each worker "
                f"needs whole chunks of its own. Pass chunk_chars={max(1, len(self) // count)}"
                " or fewer to TextFileStream."
            )
        view = self._view(self.start, self.stop)
        view.part = (index, count)
        return view

    def _part_chunks(self, whole_words: bool):
        index, count = self.part
        pending = None  # our last piece, waiting for the end of its last word
        for position, text in enumerate(self._pieces()):
            cut = 0
            if whole_words and position:  # the text up to the first word boundary
                spaces = [i for i in (text.find(" "), text.find("\n")) if i >= 0]
                cut = min(spaces) + 1 if spaces else len(text)
            if pending:
                yield pending + text[:cut]
            pending = None
            if position % count == index:
                if whole_words:
                    pending = text[cut:]
                elif text:
                    yield text
        if pending:
            yield pending

    def chunks(self, whole_words: bool = False):
        """Yields the view's text in pieces; with ``whole_words`` each piece ends after a
        space or line break (the rest is carried into the next piece). A :meth:`shard`
        yields only its own chunks."""
        if self.part is not None:
            yield from self._part_chunks(whole_words)
            return
        carry = ""
        for text in self._pieces():
            text = carry + text
            carry = ""
            if whole_words:
                cut = max(text.rfind(" "), text.rfind("\n")) + 1
                if cut > 0:
                    text, carry = text[:cut], text[cut:]
                else:
                    text, carry = "", text
            if text:
                yield text
        if carry:
            yield carry

    def __len__(self) -> int:
        if self._length is None:
            self._length = sum(len(text) for text in self.chunks())
        return self._length

    def _view(self, start, stop):
        view = copy.copy(self)
        view.start, view.stop, view._length = start, stop, None
        return view

    def split(self, fraction: float, whole_words: bool = False):
        """(train, validation): the first and last parts of the text."""
        cut = self.start + int(len(self) * (1 - fraction))
        if whole_words:  # move the cut just after the last space or line break before it
            before = ""
            for offset, text in self._raw():
                if offset + len(text) >= cut:
                    before = text[: cut - offset]
                    break
            space = max(before.rfind(" "), before.rfind("\n"))
            if space >= 0:
                cut = cut - len(before) + space + 1
        return self._view(self.start, cut), self._view(cut, self.stop)

    def fingerprint(self) -> str:
        """Identifies the view of the file cheaply (path, size, modification time, start, stop).

        sha256 hex, stable across processes; the file is not read.
        """
        if self.part is not None:
            return file_digest(self.path, self.start, self.stop, self.part, self.chunk_chars)
        return file_digest(self.path, self.start, self.stop)


def _looks_like_path(text: str) -> bool:
    return (
        len(text) < 4096
        and "\n" not in text
        and text.strip() == text
        and text.lower().endswith((".txt", ".gz", ".text", ".md"))
    )


def read_corpus(
    data, text_column: str = "text", encoding: str = "utf-8", purpose: str = "training"
) -> TextCorpus:
    """Reads training text from any of the forms ``TextGenPipeline.fit`` accepts.

    Args:
        data: a string (the text itself, or the path of a .txt / .txt.gz file),
            a path object, a list or tuple of documents, a pandas Series or
            DataFrame (``text_column``), or a ``tf.data.Dataset`` of strings.
            Documents are joined with a blank line between them.

        text_column: the DataFrame column (or dataset dict key) holding the texts.
        encoding: the encoding of a file.
        purpose: what the text is for, as errors name it: "training" (the
            default), or the call that scores it (e.g. "evaluate").

    Returns:
        A :class:`TextCorpus`. Raises :class:`~seqkit.errors.DataError` for a
        missing file, empty text or a document that is not a string.

    Example:

    >>> read_corpus(["first document", "second"]).text
    'first document\n\nsecond'
    """
    import pandas as pd

    if isinstance(data, os.PathLike) or (isinstance(data, str) and os.path.isfile(data)):
        path = os.fspath(data)
        if not os.path.isfile(path):
            raise DataError(f"No such file: {path}.")
        text = _read_file(path, encoding)
        where = path
    elif isinstance(data, str):
        if _looks_like_path(data):
            raise DataError(
                f"No such file: {data}. (To train on a string that looks like a file name, "
                "pass it inside a list.)"
            )
        text, where = data, "the text"
    elif isinstance(data, pd.DataFrame):
        if text_column not in data.columns:
            raise DataError(
                f"The DataFrame has no column {text_column!r}; its columns are "
                f"{list(map(str, data.columns))}. Pass text_column=..."
            )
        text, where = _join_documents(data[text_column].tolist()), f"column {text_column!r}"
    elif isinstance(data, pd.Series):
        text, where = _join_documents(data.tolist()), "the Series"
    elif isinstance(data, list | tuple):
        text, where = _join_documents(list(data)), "the documents"
    elif is_tf_dataset(data):
        docs = []
        missing = (
            "The dataset's elements have no {column} key; they have {keys}. Pass text_column=..."
        )
        for element in dataset_elements(data, text_column, missing):
            if isinstance(element, dict):
                element = element[text_column]
            for item in np.ravel(element):
                docs.append(item.decode("utf-8") if isinstance(item, bytes) else item)
        text, where = _join_documents(docs), "the dataset"
    else:
        raise DataError(
            f"Cannot read {'training text' if purpose == 'training' else 'text'} from a "
            f"{type(data).__name__}; pass a string, a file "
            "path, a list of documents, a pandas Series/DataFrame or a tf.data.Dataset."
        )
    if not text or not text.strip():
        if purpose == "training":
            raise DataError(f"The training text is empty ({where}); give some text to learn from.")
        source = "" if where == "the text" else f" ({where})"
        raise DataError(f"The text given to {purpose}() is empty{source}; give some text to score.")
    return TextCorpus(text)


def _join_documents(docs: list) -> str:
    for i, doc in enumerate(docs):
        if not isinstance(doc, str):
            raise DataError(
                f"Document {i} is a {type(doc).__name__} ({doc!r:.40}); every document must "
                "be a string."
            )
    return DOCUMENT_SEPARATOR.join(d for d in docs if d)
