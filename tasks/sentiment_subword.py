"""Subword ids for a SentimentPipeline (``tokenizer="subword"``).

:class:`SubwordVectorizer` has the interface of ``seqkit.text.WordVectorizer``
(the ``"word"`` tokenizer) over a SentencePiece model
(``seqkit.subword.SubwordTokenizer``, unigram): the text is standardized as
the word tokenizer does (control characters to spaces, HTML tags removed,
lowercased, punctuation split or stripped), then cut into pieces learnt from
the training texts. Any word, seen in training or not, becomes pieces (unseen
characters fall back to their UTF-8 bytes), so nothing is ``[UNK]`` and
``fine_tune`` can learn words the first training never saw. Ids 0-3 are
``[PAD]`` ``[UNK]`` ``[START]`` ``[END]``; ``max_tokens`` is the model's size
(at least 300: 4 special and 256 byte pieces and the characters), and
``max_length`` counts pieces.

A SavedModel exported with it needs ``import tensorflow_text`` before
``tf.saved_model.load`` (the SentencePiece op).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from seqkit.subword import SubwordTokenizer
from seqkit.text import WordVectorizer, encode_in_batches

__all__ = ["SubwordVectorizer", "TOKENIZERS", "MIN_PIECES"]

TOKENIZERS = ("word", "subword")
MIN_PIECES = 300  # 4 special + 256 byte pieces + the characters of the training text


class SubwordVectorizer(tf.Module):
    """Standardizes text as a ``WordVectorizer`` does, then maps it to SentencePiece ids.

    Args:
        max_tokens: pieces in the SentencePiece model (>= 300), the special
            and byte pieces included; a small corpus may give fewer.
        max_length: longest id sequence kept, in pieces.
        lowercase, strip_html, punctuation: the standardization (as
            ``WordVectorizer``'s).
        truncating: ``"pre"`` keeps the end of a long text, ``"post"`` its start.

    Example:

    >>> v = SubwordVectorizer(max_tokens=300, max_length=8)
    >>> v.build_vocabulary(["A good film.", "A bad film!"] * 50)
    >>> v.tokens("a goodish film")  # doctest: +SKIP
    ['▁a', '▁good', 'i', 's', 'h', '▁film']
    >>> v(tf.constant(["a good film"])).shape
    TensorShape([1, None])
    """

    unit = "pieces"  # what max_length counts, for messages

    def __init__(
        self,
        max_tokens: int = 20000,
        max_length: int = 400,
        lowercase: bool = True,
        strip_html: bool = True,
        punctuation: str = "split",
        truncating: str = "pre",
        name: str | None = None,
    ):
        super().__init__(name=name)
        small = isinstance(max_tokens, int | np.integer) and max_tokens < MIN_PIECES
        if small and not isinstance(max_tokens, bool):
            raise ValueError(
                f"Received `max_tokens={max_tokens!r}` with tokenizer='subword'; expected an "
                f"integer >= {MIN_PIECES} (the SentencePiece model holds 4 special and 256 "
                "byte pieces besides the characters and subwords)."
            )
        # The standardization is the word tokenizer's (its checks name bad arguments).
        self.words = WordVectorizer(
            max_tokens, max_length, lowercase, strip_html, punctuation, truncating
        )
        self.max_tokens = self.words.max_tokens
        self.max_length = self.words.max_length
        self.lowercase, self.strip_html = self.words.lowercase, self.words.strip_html
        self.punctuation, self.truncating = self.words.punctuation, self.words.truncating
        # Case is the standardization's business: the model sees lowercased text already.
        self.subword = SubwordTokenizer(self.max_tokens, model_type="unigram", lowercase=False)

    def get_config(self) -> dict:
        names = ("max_tokens", "max_length", "lowercase", "strip_html", "punctuation")
        return {**{name: getattr(self, name) for name in names}, "truncating": self.truncating}

    # ----------------------------------------------------------------- the model
    @property
    def vocabulary(self) -> list[str] | None:
        """The pieces by id ("▁" marks a word start), None before training."""
        return self.subword.vocabulary

    @property
    def vocabulary_size(self) -> int:
        return self.subword.size

    def standardize(self, text: tf.Tensor) -> tf.Tensor:
        """The word tokenizer's normalisation of a string tensor (what the model reads)."""
        return self.words.standardize(text)

    def standardize_python(self, texts: list[str]) -> list[str]:
        return [t.decode("utf-8") for t in self.standardize(tf.constant(texts)).numpy()]

    def build_vocabulary(self, texts, batch_size: int = 2048) -> None:
        """Trains the SentencePiece model on the standardized ``texts`` (a list of strings,
        or an iterable of such lists: the chunks of a stream)."""
        chunks = [texts] if isinstance(texts, list | tuple) else texts
        prepared = []
        for chunk in chunks:
            for start in range(0, len(chunk), batch_size):
                prepared.extend(self.standardize_python(list(chunk[start : start + batch_size])))
        self.subword.train(prepared)

    def to_text(self) -> str:
        """The SentencePiece model as base64 text (the pipeline's assets.json holds it)."""
        return self.subword.to_text()

    def from_text(self, text: str) -> None:
        self.subword.from_text(text)

    @property
    def model_proto(self) -> bytes | None:
        """The serialized SentencePiece model (``sentencepiece.model`` of a portable export)."""
        return self.subword.model_proto

    # ----------------------------------------------------------------- ids
    def split(self, text: tf.Tensor) -> tf.RaggedTensor:
        """Untruncated ragged ids (their row lengths are the piece counts)."""
        return self.subword(self.standardize(text))

    def __call__(self, text: tf.Tensor) -> tf.RaggedTensor:
        """A 1-D string tensor -> ragged int32 ids, truncated to ``max_length`` pieces."""
        if not self.subword.fitted:
            raise RuntimeError("The subword model is not trained; call build_vocabulary first.")
        ids = self.split(text)  # (batch, None)
        if self.truncating == "pre":
            return ids[:, -self.max_length :]
        return ids[:, : self.max_length]

    def tokens(self, text: str) -> list[str]:
        """The pieces of one text as the model sees them (before truncation)."""
        ids = self.split(tf.constant([text]))[0].numpy()
        return [self.vocabulary[i] for i in ids]

    def encode(self, texts: list[str], batch_size: int = 2048) -> list[np.ndarray]:
        """Python convenience: a list of int32 id arrays, one per text (truncated)."""
        return encode_in_batches(self, texts, batch_size)


def make_vectorizer(tokenizer: str, *args):
    """The preprocessor's vectorizer for ``tokenizer`` ("word" or "subword"), from
    (max_tokens, max_length, lowercase, strip_html, punctuation, truncating)."""
    if tokenizer == "subword":
        return SubwordVectorizer(*args)
    return WordVectorizer(*args)
