"""Word-level text vectorization that runs inside a TensorFlow graph.

:class:`WordVectorizer` turns raw strings into integer token ids with
TensorFlow string ops only, so the same code tokenizes during training, in
``predict`` and inside an exported SavedModel (no Python in the serving graph).
Id 0 is padding and id 1 is the out-of-vocabulary token; the vocabulary is
built from training texts, most frequent first, ties broken alphabetically,
so the same texts always give the same ids.
"""

from __future__ import annotations

import collections
import re as _re

import numpy as np
import tensorflow as tf

from seqkit.layers._validation import check_bool

__all__ = ["WordVectorizer", "LMTokenizer", "encode_in_batches", "nfc_compose", "PAD", "OOV"]

PAD = "[PAD]"
OOV = "[UNK]"

_PUNCTUATION_MODES = ("split", "strip", "keep")
_TRUNCATING = ("pre", "post")
# Punctuation and symbols: anything that is not a letter, digit, mark, space or the
# apostrophe (which stays inside words: "don't").
_PUNCT_RE2 = r"([^\p{L}\p{N}\p{M}\p{Z}\s'])"


def _positive_int(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"Received `{name}={value!r}`; expected an integer >= {minimum}.")
    return int(value)


def _composition_rules() -> list[tuple[str, str]]:
    """(decomposed, composed) pairs for Latin letters with one combining mark."""
    import unicodedata

    rules = []
    for cp in list(range(0xC0, 0x250)) + list(range(0x1E00, 0x1F00)):
        ch = chr(cp)
        d = unicodedata.normalize("NFD", ch)
        if len(d) == 2 and unicodedata.combining(d[1]) and unicodedata.normalize("NFC", d) == ch:
            rules.append((d, ch))
    return rules


_NFC_RULES = None


def nfc_compose(text: tf.Tensor) -> tf.Tensor:
    """Unicode NFC composition for Latin letters, in TensorFlow string ops.

    TensorFlow has no normalisation op; this composes a base letter followed
    by one combining mark ("e" + U+0301 -> "é") for the Latin-1, Latin
    Extended and Latin Extended Additional letters, which covers Western
    European languages. Strings without combining marks pass through untouched
    (one regex test for the batch).
    """
    global _NFC_RULES
    if _NFC_RULES is None:
        _NFC_RULES = _composition_rules()
    text = tf.convert_to_tensor(text, tf.string)

    def compose():
        out = text
        for decomposed, composed in _NFC_RULES:
            out = tf.strings.regex_replace(out, decomposed, composed)
        return out

    has_marks = tf.reduce_any(tf.strings.regex_full_match(text, r"(?s).*\p{M}.*"))
    return tf.cond(has_marks, compose, lambda: text)


class _Vocabulary(tf.Module):
    """What the tokenizers share: a vocabulary (id 0 padding, 1 OOV) and its lookup table."""

    def _use_vocabulary(self, vocabulary: list[str]) -> None:
        """Keeps ``vocabulary`` (its head checked by the caller); builds the token -> id table."""
        if len(set(vocabulary)) != len(vocabulary):
            raise ValueError("The vocabulary has duplicate entries.")
        self.vocabulary = vocabulary
        keys = tf.constant(vocabulary[2:], dtype=tf.string)
        values = tf.range(2, len(vocabulary), dtype=tf.int64)
        self._table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(keys, values), default_value=1
        )

    @property
    def vocabulary_size(self) -> int:
        return len(self.vocabulary) if self.vocabulary is not None else 0


class WordVectorizer(_Vocabulary):
    """Lowercases, strips HTML line breaks, splits punctuation and maps words to ids.

    Args:
        max_tokens: vocabulary size including the padding and OOV entries.
        max_length: longest token sequence kept; longer texts are truncated.
        lowercase: lowercase (Unicode-aware) before splitting.
        strip_html: replace ``<br />`` (and other simple tags) with spaces.
        punctuation: ``"split"`` makes each punctuation mark its own token,
            ``"strip"`` removes punctuation, ``"keep"`` leaves it attached.
        truncating: ``"pre"`` keeps the end of a long text (drops the start),
            ``"post"`` keeps its beginning.
        min_count: words seen fewer times in training are left out of the vocabulary.
        unicode_normalize: compose letters and their combining accents (NFC, for
            Latin letters) so "e" + U+0301 and "é" are one word.

    Example:

    >>> v = WordVectorizer(max_tokens=10, max_length=4)
    >>> v.build_vocabulary(["A good film.", "A bad film!"])
    >>> v(tf.constant(["a good day"])).to_list()
    [[2, 6, 1]]
    """

    def __init__(
        self,
        max_tokens: int = 20000,
        max_length: int = 400,
        lowercase: bool = True,
        strip_html: bool = True,
        punctuation: str = "split",
        truncating: str = "pre",
        min_count: int = 1,
        unicode_normalize: bool = False,
        name: str | None = None,
    ):
        super().__init__(name=name)
        self.unicode_normalize = check_bool(unicode_normalize, "unicode_normalize")
        self.max_tokens = _positive_int("max_tokens", max_tokens, minimum=3)
        self.max_length = _positive_int("max_length", max_length)
        self.lowercase = check_bool(lowercase, "lowercase")
        self.strip_html = check_bool(strip_html, "strip_html")
        if punctuation not in _PUNCTUATION_MODES:
            raise ValueError(
                f"Received `punctuation={punctuation!r}`; expected one of {_PUNCTUATION_MODES}."
            )
        self.punctuation = punctuation
        if truncating not in _TRUNCATING:
            raise ValueError(
                f"Received `truncating={truncating!r}`; expected one of {_TRUNCATING}."
            )
        self.truncating = truncating
        self.min_count = _positive_int("min_count", min_count)
        self.vocabulary: list[str] | None = None
        self._table = None

    def get_config(self) -> dict:
        return {
            "max_tokens": self.max_tokens,
            "max_length": self.max_length,
            "lowercase": self.lowercase,
            "strip_html": self.strip_html,
            "punctuation": self.punctuation,
            "truncating": self.truncating,
            "min_count": self.min_count,
            "unicode_normalize": self.unicode_normalize,
        }

    # ----------------------------------------------------------------- tokenizing
    def standardize(self, text: tf.Tensor) -> tf.Tensor:
        """Applies the configured normalisation to a string tensor."""
        text = tf.strings.unicode_transcode(
            text, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD
        )
        if self.unicode_normalize:
            text = nfc_compose(text)
        text = tf.strings.regex_replace(text, r"[\p{Cc}\p{Cf}]", " ")
        if self.strip_html:
            text = tf.strings.regex_replace(text, r"<[a-zA-Z/][^<>]{0,40}>", " ")
        if self.lowercase:
            text = tf.strings.lower(text, encoding="utf-8")
        if self.punctuation == "split":
            text = tf.strings.regex_replace(text, _PUNCT_RE2, r" \1 ")
        elif self.punctuation == "strip":
            text = tf.strings.regex_replace(text, _PUNCT_RE2, " ")
        return text

    def split(self, text: tf.Tensor) -> tf.RaggedTensor:
        """Standardizes and splits a 1-D string tensor into a ragged tensor of words."""
        return tf.strings.split(self.standardize(text))

    def tokens(self, text: str) -> list[str]:
        """The words of one text as the model sees them (before truncation)."""
        words = self.split(tf.constant([text]))[0].numpy()
        return [w.decode("utf-8") for w in words]

    # ----------------------------------------------------------------- vocabulary
    def build_vocabulary(self, texts, batch_size: int = 2048) -> None:
        """Counts words over ``texts`` and keeps the ``max_tokens - 2`` most frequent.

        ``texts`` is a list of strings, or an iterable of such lists (chunks of a
        stream, counted one at a time).
        """
        counts: collections.Counter = collections.Counter()
        chunks = [texts] if isinstance(texts, list | tuple) else texts
        for chunk in chunks:
            for start in range(0, len(chunk), batch_size):
                batch = self.split(tf.constant(list(chunk[start : start + batch_size])))
                counts.update(batch.flat_values.numpy().tolist())
        words = [w for w, c in counts.items() if c >= self.min_count]
        words.sort(key=lambda w: (-counts[w], w))
        words = [w.decode("utf-8") for w in words[: self.max_tokens - 2]]
        self.set_vocabulary([PAD, OOV] + words)

    def set_vocabulary(self, vocabulary: list[str]) -> None:
        """Sets the vocabulary (as saved by a pipeline); entry 0 must be padding, 1 OOV."""
        vocabulary = list(vocabulary)
        if len(vocabulary) < 2 or vocabulary[0] != PAD or vocabulary[1] != OOV:
            raise ValueError(
                f"A vocabulary must start with {PAD!r} and {OOV!r}; got {vocabulary[:2]!r}."
            )
        self._use_vocabulary(vocabulary)

    # ----------------------------------------------------------------- ids
    def __call__(self, text: tf.Tensor) -> tf.RaggedTensor:
        """Maps a 1-D string tensor to a ragged int32 tensor of ids, truncated."""
        if self._table is None:
            raise RuntimeError("The vocabulary is not built; call build_vocabulary first.")
        words = self.split(text)  # (batch, None) ragged strings
        if self.truncating == "pre":
            words = words[:, -self.max_length :]
        else:
            words = words[:, : self.max_length]
        ids = tf.ragged.map_flat_values(self._table.lookup, words)
        return tf.cast(ids, tf.int32)

    def encode(self, texts: list[str], batch_size: int = 2048) -> list[np.ndarray]:
        """Python convenience: a list of int32 id arrays, one per text."""
        return encode_in_batches(self, texts, batch_size)


def encode_in_batches(op, texts, batch_size: int) -> list[np.ndarray]:
    """``op`` (strings -> ragged ids, e.g. a vectorizer) over ``texts`` in batches,
    as one numpy id array per text."""
    out: list[np.ndarray] = []
    for start in range(0, len(texts), batch_size):
        ids = op(tf.constant(list(texts[start : start + batch_size])))
        values, splits = ids.flat_values.numpy(), ids.row_splits.numpy()
        out.extend(values[splits[i] : splits[i + 1]] for i in range(len(splits) - 1))
    return out


# --------------------------------------------------------------------------- language models
_LEVELS = ("char", "word")
# Word level: a word is letters/digits/marks/apostrophes; every other non-space
# character is a token of its own; a line break is a token ("\n").
_LM_PUNCT_RE2 = r"([^\p{L}\p{N}\p{M}\s'])"
_NEWLINE_MARK = "\x01"  # stands for "\n" while splitting on whitespace


class LMTokenizer(_Vocabulary):
    """Reversible tokenization for language models, in TensorFlow string ops.

    ``level="char"``: one token per Unicode character (nothing is normalised,
    so decoding gives the text back). ``level="word"``: words, punctuation
    marks and line breaks are tokens; decoding joins them with single spaces,
    without a space before closing punctuation or around line breaks.

    Id 0 is padding and id 1 stands for a token not in the vocabulary
    (``[UNK]``); neither is ever generated.

    Args:
        level: "char" or "word".
        max_tokens: vocabulary size including the two special entries
            (None: every token seen in training).
        lowercase: lowercase before splitting (word level; default False).

    Example:

    >>> tok = LMTokenizer("char")
    >>> tok.build_vocabulary("hello")
    >>> tok.encode("hell").tolist()
    [3, 4, 2, 2]
    >>> tok.decode([3, 4, 2, 2])
    'hell'
    """

    def __init__(
        self,
        level: str = "char",
        max_tokens: int | None = None,
        lowercase: bool = False,
        name: str | None = None,
    ):
        super().__init__(name=name)
        if level not in _LEVELS:
            raise ValueError(f"Received `level={level!r}`; expected one of {_LEVELS}.")
        self.level = level
        self.max_tokens = None if max_tokens is None else _positive_int("max_tokens", max_tokens, 3)
        self.lowercase = check_bool(lowercase, "lowercase")
        self.vocabulary: list[str] | None = None
        self._table = None
        self._words = None

    def get_config(self) -> dict:
        return {"level": self.level, "max_tokens": self.max_tokens, "lowercase": self.lowercase}

    # ----------------------------------------------------------------- strings <-> tokens
    def split(self, text: tf.Tensor) -> tf.RaggedTensor:
        """A 1-D string tensor -> ragged string tokens ``(batch, None)``."""
        text = tf.strings.unicode_transcode(
            text, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD
        )
        if self.lowercase:
            text = tf.strings.lower(text, encoding="utf-8")
        if self.level == "char":
            return tf.strings.unicode_split(text, "UTF-8")
        text = tf.strings.regex_replace(text, r"\r\n?", "\n")
        text = tf.strings.regex_replace(text, "\n", " " + _NEWLINE_MARK + " ")
        text = tf.strings.regex_replace(text, _LM_PUNCT_RE2, r" \1 ")
        words = tf.strings.split(text)  # on whitespace
        return tf.ragged.map_flat_values(
            lambda w: tf.where(tf.equal(w, _NEWLINE_MARK), "\n", w), words
        )

    def join(self, tokens: tf.Tensor) -> tf.Tensor:
        """String tokens ``(batch, n)`` (dense or ragged) -> one string per row."""
        if self.level == "char":
            return tf.strings.reduce_join(tokens, axis=-1)
        text = tf.strings.reduce_join(tokens, axis=-1, separator=" ")
        text = tf.strings.regex_replace(text, r" ?\n ?", "\n")
        # No space before closing punctuation, none after opening brackets.
        text = tf.strings.regex_replace(text, r" ([.,;:!?)\]}»])", r"\1")
        return tf.strings.regex_replace(text, r"([(\[{«]) ", r"\1")

    # ----------------------------------------------------------------- vocabulary
    def build_vocabulary(self, text) -> None:
        """Counts tokens in ``text`` and keeps the most frequent (ties alphabetical).

        ``text`` is a string or an iterable of strings (pieces of a stream, each
        ending on a token boundary), counted one at a time.
        """
        counts: collections.Counter = collections.Counter()
        for piece in [text] if isinstance(text, str) else text:
            counts.update(self.split(tf.constant([piece]))[0].numpy().tolist())
        items = sorted(counts, key=lambda t: (-counts[t], t))
        if self.max_tokens is not None:
            items = items[: self.max_tokens - 2]
        self.set_vocabulary([PAD, OOV] + [t.decode("utf-8") for t in items])

    def set_vocabulary(self, vocabulary: list[str]) -> None:
        """Sets the vocabulary (as saved by a pipeline); entry 0 must be padding, 1 OOV."""
        vocabulary = list(vocabulary)
        if len(vocabulary) < 3 or vocabulary[0] != PAD or vocabulary[1] != OOV:
            raise ValueError(
                f"A vocabulary must start with {PAD!r} and {OOV!r} and hold at least one "
                f"token; got {vocabulary[:3]!r}."
            )
        self._use_vocabulary(vocabulary)
        self._words = tf.constant(vocabulary, dtype=tf.string)

    # ----------------------------------------------------------------- ids
    def __call__(self, text: tf.Tensor) -> tf.RaggedTensor:
        """A 1-D string tensor -> ragged int32 ids."""
        if self._table is None:
            raise RuntimeError("The vocabulary is not built; call build_vocabulary first.")
        return tf.cast(tf.ragged.map_flat_values(self._table.lookup, self.split(text)), tf.int32)

    def ids_to_text(self, ids: tf.Tensor) -> tf.Tensor:
        """int ids ``(batch, n)`` -> one string per row (special ids give empty strings)."""
        tokens = tf.gather(self._words, tf.cast(ids, tf.int32))
        tokens = tf.where(tf.cast(ids, tf.int32) < 2, "", tokens)
        if self.level == "word":
            # Drop the empties so they leave no double spaces.
            tokens = tf.ragged.boolean_mask(tokens, tf.strings.length(tokens) > 0)
        return self.join(tokens)

    def encode(self, text: str) -> np.ndarray:
        """Python convenience: the int32 ids of one string."""
        return self(tf.constant([text]))[0].numpy()

    def decode(self, ids) -> str:
        """Python convenience: the string of a sequence of ids."""
        ids = tf.constant(np.asarray(ids, dtype=np.int32).reshape(1, -1))
        return self.ids_to_text(ids)[0].numpy().decode("utf-8")

    def decode_python(self, ids) -> str:
        """``decode`` in plain Python (no TensorFlow ops): the same text, faster for
        the few ids of a streaming step."""
        vocab = self.vocabulary
        tokens = [vocab[i] for i in ids if i >= 2]
        if self.level == "char":
            return "".join(tokens)
        text = _re.sub(r" ?\n ?", "\n", " ".join(tokens))
        text = _re.sub(r" ([.,;:!?)\]}»])", r"\1", text)
        return _re.sub(r"([(\[{«]) ", r"\1", text)

    def unknown(self, text: str) -> list[str]:
        """The distinct tokens of ``text`` that are not in the vocabulary, in order."""
        tokens = self.split(tf.constant([text]))[0].numpy().tolist()
        known = set(self.vocabulary or [])
        seen: dict[str, None] = {}
        for t in tokens:
            t = t.decode("utf-8")
            if t not in known:
                seen.setdefault(t, None)
        return list(seen)
