"""Subword tokenization (SentencePiece) that runs inside a TensorFlow graph.

:class:`SubwordTokenizer` learns a SentencePiece model (unigram or BPE) from
training texts with Google's ``sentencepiece`` library and runs it with
``tensorflow_text.SentencepieceTokenizer``, a TensorFlow op: the same model
tokenizes during training, in ``predict`` and inside an exported SavedModel,
which therefore takes raw strings.

Open vocabulary: digits are split into single pieces (numbers are copied
digit by digit) and characters the model never saw fall back to their UTF-8
bytes (``<0xNN>`` pieces), so no input becomes ``[UNK]`` and decoding gives
the text back. Ids 0-3 are ``[PAD]``, ``[UNK]``, ``[START]`` and ``[END]``,
the conventions of seqkit's word vocabularies.

Serving a SavedModel that holds this tokenizer needs ``import
tensorflow_text`` before ``tf.saved_model.load`` (it registers the op).
"""

from __future__ import annotations

import base64
import io
import re as _re

import numpy as np
import tensorflow as tf

from seqkit.text import encode_in_batches

__all__ = ["SubwordTokenizer", "SPECIALS", "require_tensorflow_text"]

SPECIALS = ["[PAD]", "[UNK]", "[START]", "[END]"]  # ids 0, 1, 2, 3
_MODEL_TYPES = ("unigram", "bpe")
# Characters that always get pieces of their own, however rare in training: ASCII and the
# Latin-1 letters (digits, ":" and "Ñ" are rare in everyday sentences, yet must be copied).
REQUIRED_CHARS = "".join(chr(c) for c in range(33, 127)) + "".join(
    chr(c) for c in range(0xC0, 0x100) if c not in (0xD7, 0xF7)
)
NEWLINE = "\u2424"  # "␤" stands for a line break inside pieces (SentencePiece drops "\n")
# A run of line breaks becomes "␤␤ ": a space after the run, so the next word starts with
# "▁" as everywhere else (one spelling per word); decoding turns "␤" and one space after
# it back into "\n". Spaces before a line break are dropped (SentencePiece would drop them).
_BREAKS = r"[ \t]*(?:\r\n?|\n)"
_BREAK_RUN = NEWLINE + "+"
_UNBREAK = NEWLINE + " ?"


def require_tensorflow_text():
    """Imports ``tensorflow_text`` (registers its ops) or says how to install it."""
    try:
        import tensorflow_text
    except ImportError as error:  # pragma: no cover - it is a dependency
        raise ImportError(
            "Subword tokenization needs tensorflow-text (the SentencePiece op): "
            "pip install 'tensorflow-text' matching your TensorFlow version."
        ) from error
    return tensorflow_text


def _positive_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"Received `{name}={value!r}`; expected an integer >= {minimum}.")
    return int(value)


class SubwordTokenizer(tf.Module):
    """A SentencePiece model: raw strings <-> subword ids, in TensorFlow ops.

    Args:
        vocabulary_size: pieces in the model, with the 4 special ids and the
            256 byte pieces.
        model_type: "unigram" (Kudo, 2018) or "bpe".
        lowercase: lowercase text before tokenizing (in the graph).
        newlines: keep line breaks as a piece of their own (``"\\n"`` is
            otherwise whitespace); for language models.
        character_coverage: share of the training characters that get pieces of
            their own; the rarest others are spelled in bytes.

    Example:

    >>> tok = SubwordTokenizer(vocabulary_size=300).train(["el gato come.", "el perro."] * 50)
    >>> ids = tok.encode(["María tiene 34 gatos."])[0]
    >>> tok.decode(ids)
    'María tiene 34 gatos.'
    """

    def __init__(
        self,
        vocabulary_size: int = 8000,
        model_type: str = "unigram",
        lowercase: bool = False,
        newlines: bool = False,
        character_coverage: float = 0.9995,
        name: str | None = None,
    ):
        super().__init__(name=name)
        self.vocabulary_size = _positive_int("vocabulary_size", vocabulary_size, 300)
        if model_type not in _MODEL_TYPES:
            raise ValueError(
                f"Received `model_type={model_type!r}`; expected one of {_MODEL_TYPES}."
            )
        self.model_type = model_type
        self.lowercase = bool(lowercase)
        self.newlines = bool(newlines)
        if not 0.9 <= float(character_coverage) <= 1.0:
            raise ValueError(
                f"Received `character_coverage={character_coverage!r}`; expected 0.9 to 1.0."
            )
        self.character_coverage = float(character_coverage)
        self.model_proto: bytes | None = None
        self.vocabulary: list[str] | None = None

    def get_config(self) -> dict:
        names = ("vocabulary_size", "model_type", "lowercase", "newlines", "character_coverage")
        return {name: getattr(self, name) for name in names}

    # ----------------------------------------------------------------- training
    def _prepare_python(self, text: str) -> str:
        if self.lowercase:
            text = text.lower()
        if not self.newlines:
            return text
        text = _re.sub(_BREAKS, NEWLINE, text)
        return _re.sub(_BREAK_RUN, lambda m: m.group(0) + " ", text)

    def train(self, texts, max_sentences: int = 2_000_000, seed: int = 0) -> SubwordTokenizer:
        """Learns the model from ``texts`` (a list of strings); returns self.

        Deterministic for the same texts (one training thread, no sampling of
        the input below ``max_sentences``).
        """
        import sentencepiece as spm

        texts = [self._prepare_python(t) for t in texts if isinstance(t, str) and t.strip()]
        if not texts:
            raise ValueError("SubwordTokenizer.train needs at least one non-empty text.")
        seen = set().union(*map(set, texts))
        required = "".join(c for c in REQUIRED_CHARS if c in seen)
        out = io.BytesIO()
        spm.set_random_generator_seed(seed)
        try:
            self._train(spm, texts, out, required, max_sentences)
        except RuntimeError as error:
            raise ValueError(
                f"SentencePiece could not learn {self.vocabulary_size} pieces from "
                f"{len(texts)} texts ({str(error).splitlines()[-1]}); pass a larger "
                "vocabulary_size (it holds 4 special and 256 byte pieces) or more text."
            ) from None
        self.set_model(out.getvalue())
        return self

    def _train(self, spm, texts, out, required, max_sentences):
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(texts),
            model_writer=out,
            vocab_size=self.vocabulary_size,
            model_type=self.model_type,
            character_coverage=self.character_coverage,
            byte_fallback=True,  # no [UNK]: unseen characters are spelled in UTF-8 bytes
            split_digits=True,  # numbers are copied digit by digit
            required_chars=required,
            pad_id=0,
            unk_id=1,
            bos_id=2,
            eos_id=3,
            pad_piece=SPECIALS[0],
            unk_piece=SPECIALS[1],
            bos_piece=SPECIALS[2],
            eos_piece=SPECIALS[3],
            user_defined_symbols=[NEWLINE] if self.newlines else [],
            input_sentence_size=max_sentences,
            shuffle_input_sentence=len(texts) > max_sentences,
            max_sentence_length=1 << 16,
            hard_vocab_limit=False,  # small corpora get fewer pieces instead of an error
            num_threads=1,
            minloglevel=2,
        )

    # ----------------------------------------------------------------- the model
    def set_model(self, proto: bytes) -> None:
        """Uses a serialized SentencePiece model (as :attr:`model_proto` or a .model file)."""
        import sentencepiece as spm

        processor = spm.SentencePieceProcessor()
        try:
            processor.LoadFromSerializedProto(proto)
        except (RuntimeError, TypeError, OSError) as error:
            raise ValueError(f"not a SentencePiece model ({error})") from None
        vocabulary = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
        if vocabulary[:4] != SPECIALS:
            raise ValueError(f"a SentencePiece model for seqkit starts with {SPECIALS}")
        self.model_proto = bytes(proto)
        self.vocabulary = vocabulary
        self._processor = processor
        self._text = require_tensorflow_text()

    def _op(self):
        """The TensorFlow tokenizer, made where it runs (eagerly or in the graph being
        traced). Its model resource belongs to the op's kernel, which
        ``tf.random.set_seed`` drops with the eager caches: one made once and kept
        would fail after the next seeding (as every ``fit`` epoch does)."""
        return self._text.SentencepieceTokenizer(model=self.model_proto, out_type=tf.int32)

    def to_text(self) -> str:
        """The model as base64 text (what a pipeline's assets.json stores)."""
        return base64.b64encode(self.model_proto).decode("ascii")

    def from_text(self, text: str) -> None:
        self.set_model(base64.b64decode(text.encode("ascii"), validate=True))

    @property
    def fitted(self) -> bool:
        return self.model_proto is not None

    @property
    def size(self) -> int:
        """Pieces in the fitted model (``vocabulary_size`` or fewer)."""
        return len(self.vocabulary or [])

    def _require(self):
        if self.model_proto is None:
            raise RuntimeError("The subword model is not trained; call train first.")

    # ----------------------------------------------------------------- graph ops
    def prepare(self, text: tf.Tensor) -> tf.Tensor:
        """The graph twin of the training-time text preparation (valid UTF-8, case, breaks)."""
        text = tf.strings.unicode_transcode(
            text, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD
        )
        if self.lowercase:
            text = tf.strings.lower(text, encoding="utf-8")
        if self.newlines:
            text = tf.strings.regex_replace(text, _BREAKS, NEWLINE)
            text = tf.strings.regex_replace(text, _BREAK_RUN, "\\0 ")
        return text

    def __call__(self, text: tf.Tensor) -> tf.RaggedTensor:
        """A 1-D string tensor -> ragged int32 ids ``(batch, None)`` (no start or end)."""
        self._require()
        return self._op().tokenize(self.prepare(text))

    def detokenize(self, ids) -> tf.Tensor:
        """int ids ``(batch, n)`` (dense: ids < 4 are dropped; or ragged) -> strings."""
        self._require()
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.cast(ids, tf.int32)
            ids = tf.ragged.boolean_mask(ids, ids >= len(SPECIALS))
        text = self._op().detokenize(ids)
        if self.newlines:
            text = tf.strings.regex_replace(text, _UNBREAK, "\n")
        return text

    # ----------------------------------------------------------------- Python convenience
    def encode(self, texts: list[str], batch_size: int = 4096) -> list[np.ndarray]:
        """One int32 id array per text (through the graph op, as serving tokenizes)."""
        return encode_in_batches(self, texts, batch_size)

    def decode(self, ids) -> str:
        """The text of one id sequence (ids < 4 are dropped)."""
        self._require()
        kept = [int(i) for i in ids if int(i) >= len(SPECIALS)]
        text = self._processor.decode(kept)
        return _re.sub(_UNBREAK, "\n", text) if self.newlines else text

    def tokens(self, text: str) -> list[str]:
        """The pieces of one text as the model sees them ("▁" marks a word start)."""
        return [self.vocabulary[i] for i in self.encode([text])[0]]
