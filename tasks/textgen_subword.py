"""Subword tokens for text generation: ``TextGenPipeline(level="subword")``.

:class:`SubwordLMTokenizer` gives :class:`seqkit.subword.SubwordTokenizer`
(SentencePiece, run in the graph by tensorflow-text; line breaks kept as the
piece "␤") the interface the text-generation pipeline uses of
:class:`seqkit.text.LMTokenizer`: the model writes words piece by piece, so it
can write words it never saw whole, and no text is ever unknown (characters
without a piece of their own are spelled in UTF-8 bytes).

Decoding: "▁" marks a space before a piece; byte pieces become characters
once their UTF-8 sequence is complete. SentencePiece drops repeated spaces and
the spaces at the ends of a text (``"a  b "`` reads as ``"a b"``).

Example:

>>> tok = SubwordLMTokenizer(max_tokens=300)
>>> tok.build_vocabulary("the cat sat on the mat.\\nthe dog sat on the cat.\\n" * 40)
>>> ids = tok.encode("the catdog sat.\\n")  # int32 ids (tokens,), never 1 ([UNK])
>>> tok.decode(ids)
'the catdog sat.\\n'
"""

from __future__ import annotations

import hashlib

import numpy as np
import tensorflow as tf

from seqkit.subword import NEWLINE, SPECIALS, SubwordTokenizer

__all__ = ["SubwordLMTokenizer", "training_texts", "SUBWORD_MAX_TOKENS", "MIN_SUBWORD_TOKENS"]

SUBWORD_MAX_TOKENS = 8000  # the vocabulary when max_tokens is None
MIN_SUBWORD_TOKENS = 300  # 4 special ids, 256 byte pieces, the line break and a few more
LINES_PER_TEXT = 8  # SentencePiece trains on texts of a few lines (so "␤" is seen in context)
MAX_TEXT_CHARS = 4000  # longer lines are cut at a space (SentencePiece skips long sentences)
MAX_TRAINING_TEXTS = 200_000  # of a stream: the first ones train the model (about 1.6M lines)
_SENTINEL = "<0x41>"  # the byte piece of "A": decoded before a continuation, then dropped
_DROPPED_SPACE = " \t\n"  # a prompt's last character after which "▁" is no space
# (SentencePiece drops a trailing space; a line break is followed by "▁" as a word start)


def training_texts(text: str) -> list[str]:
    """``text`` as SentencePiece's training sentences: groups of ``LINES_PER_TEXT`` lines,
    each group keeping its line breaks, a line over ``MAX_TEXT_CHARS`` cut at spaces.

    Example:

    >>> training_texts("a\\nb\\n")
    ['a\\nb\\n']
    """
    lines: list[str] = []
    for line in text.splitlines(keepends=True):
        while len(line) > MAX_TEXT_CHARS:
            cut = line.rfind(" ", 0, MAX_TEXT_CHARS) + 1 or MAX_TEXT_CHARS
            lines.append(line[:cut])
            line = line[cut:]
        lines.append(line)
    return ["".join(lines[i : i + LINES_PER_TEXT]) for i in range(0, len(lines), LINES_PER_TEXT)]


class SubwordLMTokenizer(tf.Module):
    """SentencePiece pieces for a language model, with ``LMTokenizer``'s interface.

    Ids 0-3 are ``[PAD]``, ``[UNK]``, ``[START]``, ``[END]`` (none is ever
    generated, see :attr:`never_generate`); id 4 is the line break "␤"; then
    the 256 byte pieces and the learnt pieces.

    Args:
        max_tokens: pieces in the model (None: 8,000), at least 300; a small
            text gets fewer.
        lowercase: lowercase the text first.

    Example:

    >>> tok = SubwordLMTokenizer(300)
    >>> tok.build_vocabulary(["a first chunk of text\\n", "and a second\\n"])
    >>> tok(tf.constant(["a text"]))  # ragged int32 ids (1, None)
    """

    level = "subword"
    never_generate = tuple(range(len(SPECIALS)))  # [PAD] [UNK] [START] [END]

    def __init__(self, max_tokens: int | None = None, lowercase: bool = False, name=None):
        super().__init__(name=name)
        self.max_tokens = max_tokens
        self.lowercase = lowercase
        size = SUBWORD_MAX_TOKENS if max_tokens is None else max_tokens
        self.subword = SubwordTokenizer(size, lowercase=lowercase, newlines=True)
        self.fingerprint = ""  # sha256 of the SentencePiece model ("" before training)
        self._sentinel = None

    def get_config(self) -> dict:
        return {"level": self.level, "max_tokens": self.max_tokens, "lowercase": self.lowercase}

    # ----------------------------------------------------------------- the model
    @property
    def vocabulary(self) -> list[str] | None:
        """The pieces by id (None before training)."""
        return self.subword.vocabulary

    @property
    def vocabulary_size(self) -> int:
        return self.subword.size

    @property
    def newline_id(self) -> int:
        return self.vocabulary.index(NEWLINE)

    def build_vocabulary(self, text) -> None:
        """Trains the SentencePiece model on ``text``: a string or an iterable of strings
        (a stream's pieces; the first ``MAX_TRAINING_TEXTS`` training texts are used)."""
        texts: list[str] = []
        for piece in [text] if isinstance(text, str) else text:
            texts.extend(training_texts(piece))
            if len(texts) >= MAX_TRAINING_TEXTS:
                break
        self.subword.train(texts[:MAX_TRAINING_TEXTS])
        self._use_model()

    def to_text(self) -> str:
        """The SentencePiece model as base64 text (the assets' ``subword_model``)."""
        return self.subword.to_text()

    def from_text(self, text: str) -> None:
        self.subword.from_text(text)
        self._use_model()

    def _use_model(self) -> None:
        vocabulary = self.vocabulary
        self.fingerprint = hashlib.sha256(self.subword.model_proto).hexdigest()
        self._sentinel = vocabulary.index(_SENTINEL)

    # ----------------------------------------------------------------- text -> ids
    def __call__(self, text: tf.Tensor) -> tf.RaggedTensor:
        """A 1-D string tensor -> ragged int32 ids ``(batch, None)``."""
        return self.subword(text)

    def encode(self, text: str) -> np.ndarray:
        """Python convenience: the int32 ids of one string."""
        return self.subword.encode([text])[0].astype(np.int32)

    def unknown(self, text: str) -> list[str]:
        """Always ``[]``: byte fallback spells every character, nothing reads as [UNK]."""
        return []

    @staticmethod
    def count_at_least(text: str) -> int:
        """A lower bound on the pieces of ``text`` without a model: a piece per line
        break and at least one per word."""
        return len(text.split()) + text.count("\n")

    # ----------------------------------------------------------------- ids -> text
    def decode(self, ids) -> str:
        """The text of a sequence of ids (ids 0-3 dropped; leading spaces dropped)."""
        return self.subword.decode(ids)

    decode_python = decode

    def ids_to_text(self, ids: tf.Tensor) -> tf.Tensor:
        """int ids ``(batch, n)`` -> one string per row (the graph twin of ``decode``)."""
        return self.subword.detokenize(ids)

    def _after(self, ids) -> str:
        """The text of ``ids`` after some text: a leading "▁" stays a space."""
        return self.subword.decode([self._sentinel, *ids])[1:]

    def continuation(self, prompt: str, ids) -> str:
        """The text of ``ids`` written after ``prompt``: its first piece's "▁" is a space,
        except after an empty prompt or a space SentencePiece dropped from the prompt's end.

        Example: after "ROMEO:", the pieces "▁wh" "at" read " what".
        """
        if not prompt:
            return self.decode(ids)
        text = self._after(ids)
        if prompt[-1] in _DROPPED_SPACE and text.startswith(" "):
            text = text[1:]
        return text

    def continuation_text(self, prompt: tf.Tensor, ids: tf.Tensor) -> tf.Tensor:
        """The graph twin of :meth:`continuation`: ``prompt`` a scalar string,
        ``ids`` ``(1, n)``; returns a scalar string."""
        ids = tf.cast(ids, tf.int32)
        plain = self.ids_to_text(ids)[0]
        sentinel = tf.fill([tf.shape(ids)[0], 1], self._sentinel)
        after = self.ids_to_text(tf.concat([sentinel, ids], axis=1))[0]
        after = tf.strings.regex_replace(after, "^A", "")
        dropped = tf.strings.regex_full_match(prompt, f"(?s).*[{_DROPPED_SPACE}]")
        after = tf.where(dropped, tf.strings.regex_replace(after, "^ ", ""), after)
        return tf.where(tf.strings.length(prompt) > 0, after, plain)

    def stream_decoder(self, prompt: str):
        """``decode(ids) -> continuation(prompt, ids)`` for a growing list of ids, in
        time proportional to the ids since the last piece that is not a byte (the text
        before such a piece never changes): streaming decodes the text at every token.
        """
        done, head = 0, ""  # the first `done` ids are settled: their text is `head`

        def text_of(ids, stop):
            if not done:
                return self.continuation(prompt, ids[:stop])
            return head + self._after(ids[done:stop])

        def decode(ids):
            nonlocal done, head
            text = text_of(ids, len(ids))
            last = len(ids) - 1
            if last > done and not _is_byte(self.vocabulary[ids[last]]):
                settled = text_of(ids, last)
                if settled:  # (after an empty prompt, leading spaces are dropped)
                    done, head = last, settled
            return text

        return decode


def _is_byte(piece: str) -> bool:
    return len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">")
