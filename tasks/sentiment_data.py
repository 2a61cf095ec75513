"""The data side of a SentimentPipeline: its preprocessor and its batches.

- :class:`SentimentPreprocessor`: texts -> word ids (a ``WordVectorizer``) or
  subword ids (a :class:`~tasks.sentiment_subword.SubwordVectorizer`) and
  labels -> class ids; fitted on the training data, saved with the pipeline.
- :func:`labelled_dataset` / :func:`stream_dataset`: ``tf.data`` batches of
  (ids, class ids), texts of similar length batched together (:func:`length_batches`)
  and padded to a multiple of 32 steps (:func:`pad`).
"""

from __future__ import annotations

import warnings

import numpy as np
import tensorflow as tf

from seqkit.data import DataError, TextLabelData, TextStream, read_texts
from seqkit.text import WordVectorizer
from tasks.base import PipelineError, Preprocessor
from tasks.sentiment_subword import SubwordVectorizer

__all__ = ["SentimentPreprocessor", "pad", "length_batches", "labelled_dataset", "stream_dataset"]

_BUCKET = 32  # sequences in a batch are padded to a multiple of this
_SORT_SPAN = 50  # batches are sorted by length within spans of this many batches


def pad(ids: list[np.ndarray], index) -> np.ndarray:
    """The rows ``index`` of ``ids`` zero-padded to a multiple of 32 steps: (len(index), width)."""
    longest = max((len(ids[i]) for i in index), default=0)
    width = max(_BUCKET, -(-longest // _BUCKET) * _BUCKET)
    out = np.zeros((len(index), width), dtype=np.int32)
    for row, i in enumerate(index):
        out[row, : len(ids[i])] = ids[i]
    return out


def length_batches(ids, batch_size: int, order) -> list[np.ndarray]:
    """Index arrays of batches, taken in ``order`` and sorted by length within spans of
    50 batches (less padding, still shuffled when ``order`` is)."""
    lengths = np.array([len(x) for x in ids])
    span = batch_size * _SORT_SPAN
    batches = []
    for start in range(0, len(order), span):
        part = order[start : start + span]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[b : b + batch_size] for b in range(0, len(part), batch_size))
    return batches


class SentimentPreprocessor(Preprocessor):
    """Texts → padded word ids, labels → class ids: the vocabulary and labels of a classifier.

    Args:
        vectorizer: the ``seqkit.text.WordVectorizer`` that normalises texts and
            maps words to ids (or its config, a dict; default ``WordVectorizer()``),
            or a :class:`~tasks.sentiment_subword.SubwordVectorizer` (SentencePiece
            pieces; its model is saved in the assets as base64, ``subword_model``).

    Example:

    >>> pre = SentimentPreprocessor(WordVectorizer(max_tokens=100, max_length=8))
    >>> pre = pre.fit(TextLabelData(["good film", "bad film"], ["pos", "neg"], "lists"))
    >>> pre.labels, pre(["a good film"]).shape  # ids padded to a multiple of 32 steps
    (['neg', 'pos'], (1, 32))
    """

    def __init__(self, vectorizer: WordVectorizer | dict | None = None):
        if vectorizer is None or isinstance(vectorizer, dict):
            vectorizer = WordVectorizer(**(vectorizer or {}))
        elif not isinstance(vectorizer, WordVectorizer | SubwordVectorizer):
            raise PipelineError(
                f"Received `vectorizer={vectorizer!r}`; expected a seqkit.text.WordVectorizer "
                "(or its config, a dict) or a tasks.sentiment_subword.SubwordVectorizer."
            )
        self.vectorizer = vectorizer
        self.labels: list | None = None

    def get_config(self) -> dict:
        return {"vectorizer": self.vectorizer.get_config()}

    @property
    def subword(self) -> bool:
        """Whether ids are SentencePiece pieces (``tokenizer="subword"``), not words."""
        return isinstance(self.vectorizer, SubwordVectorizer)

    def fit(self, data: TextLabelData | TextStream) -> SentimentPreprocessor:
        """Builds the vocabulary (words; or trains the subword model) and the sorted label
        list (a stream: one pass over its chunks)."""
        if isinstance(data, TextStream):  # one streamed pass; the file is never whole
            self._build(chunk.texts for chunk in data.chunks())
            self.labels = data.labels
            if len(self.labels) < 2:
                raise DataError(
                    f"{data.source}: every row has the same label ({self.labels[0]!r}); "
                    "training needs at least two classes."
                )
            return self
        self._build(data.texts)
        self.labels = sorted(set(data.labels))
        return self

    def _build(self, texts) -> None:
        try:
            self.vectorizer.build_vocabulary(texts)
        except ValueError as error:  # (SentencePiece: too little text for max_tokens)
            if not self.subword:
                raise
            raise DataError(
                str(error).replace("vocabulary_size", "max_tokens") + " (tokenizer='subword')"
            ) from None

    @property
    def fitted(self) -> bool:
        return self.labels is not None and self.vectorizer.vocabulary is not None

    def encode(self, texts: list[str]) -> list[np.ndarray]:
        """One int32 array of word ids per text (truncated, not padded)."""
        return self.vectorizer.encode(texts)

    def truncated(self, texts: list[str], ids: list[np.ndarray]) -> list[tuple[int, int]]:
        """``(index, tokens)`` of the texts longer than ``max_length`` tokens (``ids``: theirs)."""
        m = self.vectorizer.max_length
        full = [i for i, x in enumerate(ids) if len(x) == m]  # at the limit: maybe cut
        if not full:
            return []
        words = self.vectorizer.split(tf.constant([texts[i] for i in full])).row_lengths()
        return [(i, int(n)) for i, n in zip(full, words.numpy()) if n > m]

    def warn_truncated(self, texts: list[str], ids: list[np.ndarray], stacklevel: int = 4):
        """One warning naming how many texts were cut to ``max_length`` words (as translation's)."""
        long = self.truncated(texts, ids)
        if long:
            m, how = self.vectorizer.max_length, self.vectorizer.truncating
            unit = getattr(self.vectorizer, "unit", "words")
            warnings.warn(
                f"{len(long)} text(s) (e.g. number {long[0][0]}, {long[0][1]} {unit}) are longer "
                f"than max_length={m}; only their {'last' if how == 'pre' else 'first'} {m} "
                f"{unit} are read (truncating={how!r}).",
                stacklevel=stacklevel,
            )

    def _aligned(self, labels) -> list:
        """Whole-number labels of data read as ints, for a pipeline saved with them as
        strings ('0', '1': CSV labels before seqkit 0.2.1)."""
        if all(isinstance(x, str) for x in self.labels) and all(isinstance(x, int) for x in labels):
            return [str(x) for x in labels]
        return list(labels)

    def label_ids(self, labels) -> np.ndarray:
        """Class ids (positions in ``labels``) of a list of labels."""
        index = {label: i for i, label in enumerate(self.labels)}
        return np.array([index[label] for label in self._aligned(labels)], dtype=np.int32)

    def check_labels(self, labels, name: str) -> None:
        """Refuses ``labels`` (of data called ``name``) that are not among the fitted ones."""
        labels = self._aligned(labels)
        unknown = sorted({str(x) for x in labels} - {str(x) for x in self.labels})
        if unknown:
            raise DataError(
                f"{name}: labels {unknown} are not among the pipeline's labels "
                f"{self.labels}. fine_tune keeps the classes; train a new pipeline with "
                "fit() to add classes."
            )
        kinds = {type(x) for x in labels} | {type(x) for x in self.labels}
        if len(kinds) > 1:
            raise DataError(
                f"{name}: labels are {sorted(k.__name__ for k in kinds)} but the pipeline's "
                f"labels are {self.labels}; use the same kind."
            )

    def __call__(self, texts) -> np.ndarray:
        """Word ids of a text or texts, zero-padded: (n_texts, steps) int32."""
        ids = self.encode(read_texts(texts).texts)
        return pad(ids, range(len(ids)))

    def get_assets(self) -> dict:
        if self.subword:  # the SentencePiece model itself (its pieces are in it)
            model = self.vectorizer.to_text() if self.vectorizer.model_proto else None
            return {"subword_model": model, "labels": self.labels}
        return {"vocabulary": list(self.vectorizer.vocabulary or []), "labels": self.labels}

    def set_assets(self, assets: dict) -> None:
        try:
            if self.subword:
                self.vectorizer.from_text(assets["subword_model"])
            else:
                self.vectorizer.set_vocabulary(assets["vocabulary"])
            labels = assets["labels"]
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise PipelineError(f"The saved assets are damaged ({error}).") from None
        if not isinstance(labels, list) or len(labels) < 2:
            raise PipelineError("The saved assets are damaged (labels must list >= 2 classes).")
        self.labels = labels


def labelled_dataset(ids: list[np.ndarray], y: np.ndarray, batch_size: int, shuffle_seed):
    """Batches of (ids (batch, steps) int32, y (batch,)) of in-memory texts.

    Args:
        ids: one id array per text.
        y: (n,) class ids.
        batch_size: texts per batch.
        shuffle_seed: None (fixed order) or an int (a shuffled order and batch order).

    Returns:
        A ``tf.data.Dataset`` of known length.
    """
    if shuffle_seed is None:
        batches = length_batches(ids, batch_size, np.arange(len(ids)))
    else:
        rng = np.random.RandomState(shuffle_seed % 2**32)
        batches = length_batches(ids, batch_size, rng.permutation(len(ids)))
        rng.shuffle(batches)

    def generate():
        for index in batches:
            yield pad(ids, index), y[index]

    return _dataset(generate, len(batches))


def stream_dataset(stream: TextStream, preprocessor, batch_size: int, shuffle_seed):
    """Batches read chunk by chunk from a file, shuffled within each chunk (see
    :func:`labelled_dataset`); ``preprocessor`` encodes each chunk. A worker's
    shard (``stream.part``) keeps full batches only, so that every worker can take
    the same number of them."""
    full_only = getattr(stream, "part", None) is not None

    def generate():
        rng = np.random.RandomState(shuffle_seed % 2**32) if shuffle_seed is not None else None
        for chunk in stream.chunks():
            ids, y = preprocessor.encode(chunk.texts), preprocessor.label_ids(chunk.labels)
            order = rng.permutation(len(ids)) if rng is not None else np.arange(len(ids))
            batches = length_batches(ids, batch_size, order)
            if rng is not None:
                rng.shuffle(batches)
            for index in batches:
                if len(index) == batch_size or not full_only:
                    yield pad(ids, index), y[index]

    span = batch_size * _SORT_SPAN  # length_batches splits each chunk the same way
    sizes = stream.chunk_sizes()
    n_batches = sum((n // span) * _SORT_SPAN + -(-(n % span) // batch_size) for n in sizes)
    if full_only:
        n_batches = sum(n // batch_size for n in sizes)
    return _dataset(generate, n_batches)


def _dataset(generate, n_batches: int):
    signature = (tf.TensorSpec((None, None), tf.int32), tf.TensorSpec((None,), tf.int32))
    dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
    # A known length lets Keras draw the progress bar and end the epoch cleanly.
    return dataset.apply(tf.data.experimental.assert_cardinality(n_batches)).prefetch(2)
