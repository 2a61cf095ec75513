"""The text generation preprocessor: text -> token ids -> training windows.

``TextGenPreprocessor`` holds the tokenizer: a :class:`seqkit.text.LMTokenizer`
(characters or words) or a :class:`tasks.textgen_subword.SubwordLMTokenizer`
(SentencePiece pieces); its vocabulary is what a text-generation pipeline
learns from data besides the weights. It cuts token ids into the
``seq_length`` windows the language model trains on, from a text in memory or
from a :class:`seqkit.data.TextFileStream` read chunk by chunk.
"""

from __future__ import annotations

import weakref

import numpy as np
import tensorflow as tf

from seqkit.data import TextCorpus, TextFileStream
from seqkit.text import LMTokenizer
from tasks.base import PipelineError, Preprocessor, choice, int_arg
from tasks.textgen_subword import MIN_SUBWORD_TOKENS, SUBWORD_MAX_TOKENS, SubwordLMTokenizer

__all__ = ["TextGenPreprocessor", "LEVELS", "WORD_LEVEL_MAX_TOKENS", "SUBWORD_MAX_TOKENS"]

LEVELS = ("char", "word", "subword")
WORD_LEVEL_MAX_TOKENS = 20000  # the word-level vocabulary when max_tokens is None
_CONFIG = ("level", "max_tokens", "lowercase", "seq_length")  # the constructor's arguments


class TextGenPreprocessor(Preprocessor):
    """Tokenizes text for a recurrent language model and cuts it into training windows.

    Args:
        level: "char" (one token per character), "word" (words, punctuation
            marks and line breaks) or "subword" (SentencePiece pieces learnt
            from the training text, line breaks kept: words are written piece
            by piece, so unseen words can be read and written, and no text is
            unknown).
        max_tokens: vocabulary size including the special entries (None: every
            token for char level, 20,000 for word level, 8,000 pieces for
            subword level, which needs at least 300).
        lowercase: lowercase the text first.
        seq_length: tokens per training window.

    Call arguments:
        text: a string (or a ``TextCorpus``, whose ids are cached per vocabulary).

    Returns:
        int32 token ids ``(tokens,)``; id 0 is padding, 1 unknown (subword
        level: ids 0-3 are [PAD] [UNK] [START] [END], and [UNK] never occurs).

    Example:

    >>> pre = TextGenPreprocessor("char", seq_length=4).fit(TextCorpus("to be or not"))
    >>> pre("to be").tolist()
    [3, 4, 2, 5, 6]
    >>> x, y = pre.windows(pre("to be or not"), 0)  # (windows, 4) inputs and next tokens
    """

    def __init__(
        self,
        level: str = "char",
        max_tokens: int | None = None,
        lowercase: bool = False,
        seq_length: int = 100,
    ):
        self.level = choice("level", level, LEVELS)
        self.seq_length = int_arg("seq_length", seq_length, minimum=2)
        if max_tokens is not None:
            max_tokens = int_arg("max_tokens", max_tokens, minimum=3)
        if max_tokens is not None and level == "subword" and max_tokens < MIN_SUBWORD_TOKENS:
            raise PipelineError(
                f"Received `max_tokens={max_tokens}` with level='subword'; expected at least "
                f"{MIN_SUBWORD_TOKENS} (the pieces hold 4 special ids, 256 bytes and the line "
                f"break) or None ({SUBWORD_MAX_TOKENS:,})."
            )
        self.max_tokens = max_tokens
        if not isinstance(lowercase, bool):
            raise PipelineError(f"Received `lowercase={lowercase!r}`; expected True or False.")
        self.lowercase = lowercase
        cap = max_tokens
        if cap is None and level == "word":
            cap = WORD_LEVEL_MAX_TOKENS
        if level == "subword":
            self.tokenizer = SubwordLMTokenizer(max_tokens, lowercase=lowercase)
        else:
            self.tokenizer = LMTokenizer(level, max_tokens=cap, lowercase=lowercase)
        self._ids = weakref.WeakKeyDictionary()  # TextCorpus -> (vocabulary, ids)
        self._stream_token_counts: dict[str, int] = {}  # TextFileStream fingerprint -> tokens

    def get_config(self) -> dict:
        return {name: getattr(self, name) for name in _CONFIG}

    # ----------------------------------------------------------------- vocabulary
    def fit(self, data) -> TextGenPreprocessor:
        """Builds the vocabulary from a ``TextCorpus`` or a ``TextFileStream`` (streamed).

        Returns:
            self.
        """
        if isinstance(data, TextFileStream):
            self.tokenizer.build_vocabulary(self.chunks(data))
        else:
            self.tokenizer.build_vocabulary(data.text)
        return self

    @property
    def fitted(self) -> bool:
        return self.tokenizer.vocabulary is not None

    @property
    def primer_id(self) -> int:
        """The token an empty prompt starts from: a line break if known, else the commonest."""
        if self.level == "subword":
            return self.tokenizer.newline_id
        vocab = self.tokenizer.vocabulary
        return vocab.index("\n") if "\n" in vocab else 2

    def get_assets(self) -> dict:
        if self.level == "subword":  # the SentencePiece model, base64
            return {"subword_model": self.tokenizer.to_text() if self.fitted else None}
        return {"vocabulary": list(self.tokenizer.vocabulary or [])}

    def set_assets(self, assets: dict) -> None:
        try:
            if self.level == "subword":
                self.tokenizer.from_text(assets["subword_model"])
                return
            self.tokenizer.set_vocabulary(assets["vocabulary"])
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise PipelineError(f"The saved assets are damaged ({error}).") from None

    # ----------------------------------------------------------------- text -> ids
    def __call__(self, text) -> np.ndarray:
        if isinstance(text, TextCorpus):
            vocabulary, ids = self._ids.get(text, (None, None))
            if vocabulary is not self.tokenizer.vocabulary:
                ids = self.tokenizer.encode(text.text).astype(np.int32)
                self._ids[text] = (self.tokenizer.vocabulary, ids)
            return ids
        return self.tokenizer.encode(text).astype(np.int32)

    def chunks(self, stream: TextFileStream):
        """The stream's text in pieces that end on a token boundary."""
        return stream.chunks(whole_words=self.level != "char")

    def _split_count(self, text: str) -> int:
        if self.level == "subword":  # pieces need the model: a lower bound before it
            return len(self(text)) if self.fitted else self.tokenizer.count_at_least(text)
        return int(self.tokenizer.split(tf.constant([text])).row_lengths()[0])

    def count_tokens(self, data) -> int:
        """Tokens in a ``TextCorpus`` or ``TextFileStream`` (a stream: one pass, cached).

        Subword level before the model is trained: a lower bound (a piece per
        word and per line break).
        """
        if isinstance(data, TextFileStream):
            counts, key = self._stream_token_counts, data.fingerprint()
            if self.level == "subword":  # the count depends on the model
                key += ":" + self.tokenizer.fingerprint
            if key not in counts:
                counts[key] = sum(self._split_count(text) for text in self.chunks(data))
            return counts[key]
        if not self.fitted:
            return self._split_count(data.text)
        return len(self(data))

    def unknown(self, data) -> list[str]:
        """The distinct tokens of a corpus or stream that are not in the vocabulary, in order."""
        if isinstance(data, TextFileStream):
            seen: dict[str, None] = {}
            for text in self.chunks(data):
                seen.update(dict.fromkeys(self.tokenizer.unknown(text)))
            return list(seen)
        return self.tokenizer.unknown(data.text)

    def split(self, data, fraction: float):
        """(train, validation): the validation text is the **end** of ``data``, cut on a
        token boundary (word and subword level: never inside a word)."""
        if isinstance(data, TextFileStream):
            return data.split(fraction, whole_words=self.level != "char")
        text = data.text
        cut = int(len(text) * (1 - fraction))
        if self.level != "char":  # do not cut a word in two
            space = max(text.rfind(" ", 0, cut), text.rfind("\n", 0, cut))
            cut = space + 1 if space > 0 else cut
        return TextCorpus(text[:cut]), TextCorpus(text[cut:])

    # ----------------------------------------------------------------- windows
    def windows(self, ids: np.ndarray, offset: int) -> tuple[np.ndarray, np.ndarray]:
        """Inputs and next-token targets ``(windows, seq_length)`` cut from ``offset`` on."""
        L = self.seq_length
        n = (len(ids) - offset - 1) // L
        x = ids[offset : offset + n * L].reshape(n, L)  # (windows, L)
        y = ids[offset + 1 : offset + n * L + 1].reshape(n, L)  # next tokens
        return x, y

    def window_phase(self, shuffle_seed: int, n_tokens: int):
        """(the epoch's RNG, window offset): a new phase every epoch, so the model sees
        every boundary; the offset is the RNG's first draw."""
        rng = np.random.RandomState(shuffle_seed % 2**32)
        L = self.seq_length
        return rng, int(rng.randint(min(L, max(1, n_tokens - L))))

    def dataset(self, data, batch_size: int, shuffle_seed: int | None) -> tf.data.Dataset:
        """Batches of (x, y) windows; ``shuffle_seed`` None keeps the order and phase 0."""
        if isinstance(data, TextFileStream):
            return self._stream_dataset(data, batch_size, shuffle_seed)
        ids = self(data)
        if shuffle_seed is None:
            x, y = self.windows(ids, 0)
        else:
            rng, offset = self.window_phase(shuffle_seed, len(ids))
            x, y = self.windows(ids, offset)
            if len(x) == 0:
                x, y = self.windows(ids, 0)
            order = rng.permutation(len(x))
            x, y = x[order], y[order]
        return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)

    def _stream_dataset(self, stream, batch_size, shuffle_seed):
        """Windows cut from the file chunk by chunk, as ``dataset`` cuts them from memory."""
        L, n_tokens = self.seq_length, self.count_tokens(stream)
        offset = 0
        if shuffle_seed is not None:
            _, offset = self.window_phase(shuffle_seed, n_tokens)
            if (n_tokens - offset - 1) // L == 0:
                offset = 0
        n_windows = (n_tokens - offset - 1) // L

        def generate():
            order = None
            if shuffle_seed is not None:  # the same draws as dataset: one chunk = same batches
                order, _ = self.window_phase(shuffle_seed, n_tokens)
            buffer, skip = np.zeros(0, np.int32), offset
            pending_x, pending_y = np.zeros((0, L), np.int32), np.zeros((0, L), np.int32)
            for text in self.chunks(stream):
                ids = self(text)
                if skip:
                    ids, skip = ids[skip:], max(0, skip - len(ids))
                buffer = np.concatenate([buffer, ids])
                n = (len(buffer) - 1) // L
                if n <= 0:
                    continue
                x = buffer[: n * L].reshape(n, L)
                y = buffer[1 : n * L + 1].reshape(n, L)
                buffer = buffer[n * L :]
                if order is not None:
                    perm = order.permutation(n)
                    x, y = x[perm], y[perm]
                pending_x = np.concatenate([pending_x, x])
                pending_y = np.concatenate([pending_y, y])
                while len(pending_x) >= batch_size:
                    yield pending_x[:batch_size], pending_y[:batch_size]
                    pending_x, pending_y = pending_x[batch_size:], pending_y[batch_size:]
            if len(pending_x) and stream.part is None:  # (a worker's shard: full batches)
                yield pending_x, pending_y

        spec = tf.TensorSpec((None, L), tf.int32)
        dataset = tf.data.Dataset.from_generator(generate, output_signature=(spec, spec))
        n_batches = -(-n_windows // batch_size) if stream.part is None else n_windows // batch_size
        return dataset.apply(tf.data.experimental.assert_cardinality(n_batches)).prefetch(2)
