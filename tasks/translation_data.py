"""The data side of a TranslationPipeline: its preprocessor and its batches.

- :class:`TranslationPreprocessor`: source and target texts -> ids, with one
  shared SentencePiece vocabulary (``tokenizer="subword"``, the default) or two
  ``WordVectorizer`` vocabularies (``"word"``); target ids 2 and 3 are
  ``[START]`` and ``[END]``; fitted on the training pairs, saved with the pipeline.
- :func:`teacher_forcing`: rows of id arrays -> (source, target in, target out) arrays.
- :func:`pair_dataset`: ``tf.data`` batches of ((source, target in), target out),
  pairs of similar length batched together.
"""

from __future__ import annotations

import unicodedata

import numpy as np
import tensorflow as tf

from seqkit.data import PairData
from seqkit.subword import SubwordTokenizer
from seqkit.text import OOV, PAD, WordVectorizer
from tasks.arguments import choice
from tasks.base import PipelineError, Preprocessor, bool_arg, int_arg
from tasks.translation_model import END, END_ID, START, START_ID
from tasks.translation_names import build_lexicon
from tasks.translation_serving import detokenize_graph, detokenize_python

__all__ = ["TranslationPreprocessor", "SubwordSide", "nfc", "teacher_forcing", "pair_dataset"]

TOKENIZERS = ("subword", "word")
# Defaults by tokenizer: (max_tokens, target_max_tokens, max_length, target_max_length).
DEFAULTS = {"word": (16000, 12000, 40, 40), "subword": (8000, None, 64, 64)}

_SPECIALS = [PAD, OOV, START, END]  # target ids 0-3
_BUCKET = 8  # batches are padded to a multiple of this many tokens (fewer XLA shapes)
_SORT_SPAN = 50  # batches are sorted by length within spans of this many batches


def nfc(texts: list[str]) -> list[str]:
    """The texts in Unicode normal form C (composed accents)."""
    return [unicodedata.normalize("NFC", t) for t in texts]


class SubwordSide(tf.Module):
    """One side (source or target) of a shared SentencePiece vocabulary, with the
    interface of a ``WordVectorizer``: ids truncated to ``max_length``."""

    def __init__(self, tokenizer: SubwordTokenizer, max_length: int):
        super().__init__()
        self.tokenizer = tokenizer
        self.max_length = max_length

    @property
    def vocabulary(self):
        return self.tokenizer.vocabulary

    @property
    def vocabulary_size(self) -> int:
        return self.tokenizer.size

    def split(self, text):
        """Untruncated ragged ids (their row lengths are the token counts)."""
        return self.tokenizer(text)

    def __call__(self, text):
        return self.tokenizer(text)[:, : self.max_length]

    def tokens(self, text: str) -> list[str]:
        return self.tokenizer.tokens(text)

    def encode(self, texts) -> list[np.ndarray]:
        return [ids[: self.max_length] for ids in self.tokenizer.encode(list(texts))]


class TranslationPreprocessor(Preprocessor):
    """Source texts → ids, target texts → ids: the vocabulary of a translator.

    ``tokenizer="subword"`` (the default): one SentencePiece unigram model,
    learnt from both sides of the training pairs, with digits split and byte
    fallback: names and numbers are spelled in pieces and copied, and no input
    is ``[UNK]``. ``"word"``: text split into words and punctuation marks
    ("¿", "?" are tokens of their own), one vocabulary per side. Both run
    inside the TensorFlow graph, after Unicode normalisation (NFC). Target ids
    2 and 3 are ``[START]`` and ``[END]``, which tokenizing text never produces.

    Args:
        max_tokens: source vocabulary size (with padding and unknown); with
            subwords, the shared vocabulary's size (default 8,000; words 16,000).
        target_max_tokens: target vocabulary size (with padding, unknown,
            start and end; words only, default 12,000).
        max_length: longest source in tokens; longer ones are truncated
            (default 64 pieces or 40 words).
        target_max_length: longest target in tokens, including the end token.
        lowercase: lowercase both sides.
        tokenizer: "subword" or "word".

    Example:

    >>> pre = TranslationPreprocessor(max_tokens=100, target_max_tokens=100, tokenizer="word")
    >>> pre = pre.fit(PairData(["el gato."], ["the cat."], "lists"))
    >>> pre.target_vocabulary, pre(["el gato."])
    (['[PAD]', '[UNK]', '[START]', '[END]', '.', 'cat', 'the'], array([[3, 4, 2]], dtype=int32))
    """

    def __init__(
        self,
        max_tokens: int | None = None,
        target_max_tokens: int | None = None,
        max_length: int | None = None,
        target_max_length: int | None = None,
        lowercase: bool = False,
        tokenizer: str = "subword",
    ):
        self.tokenizer = choice("tokenizer", tokenizer, TOKENIZERS)
        given = (max_tokens, target_max_tokens, max_length, target_max_length)
        max_tokens, target_max_tokens, max_length, target_max_length = (
            default if value is None else value
            for value, default in zip(given, DEFAULTS[self.tokenizer])
        )
        self.lowercase = bool_arg("lowercase", lowercase)
        self.max_length = int_arg("max_length", max_length)
        self.target_max_length = int_arg("target_max_length", target_max_length, 2)
        self.target_vocabulary: list[str] | None = None
        # What the training pairs show of names and numbers (tasks.translation_names).
        self.names: dict | None = None
        if self.tokenizer == "subword":
            if target_max_tokens is not None:
                raise PipelineError(
                    f"Received `target_max_tokens={target_max_tokens!r}` with "
                    "tokenizer='subword'; source and target share one vocabulary: set "
                    "`max_tokens` (its size) instead."
                )
            self.max_tokens = int_arg("max_tokens", max_tokens, 300)
            self.target_max_tokens = None
            self.subword = SubwordTokenizer(self.max_tokens, lowercase=self.lowercase)
            self.source_vectorizer = SubwordSide(self.subword, self.max_length)
            self.target_vectorizer = SubwordSide(self.subword, self.target_max_length - 1)
            return
        self.max_tokens = int_arg("max_tokens", max_tokens, 3)
        self.target_max_tokens = int_arg("target_max_tokens", target_max_tokens, 5)
        self.subword = None
        common = dict(
            lowercase=lowercase,
            strip_html=False,
            punctuation="split",
            truncating="post",
            unicode_normalize=True,
        )
        self.source_vectorizer = WordVectorizer(
            max_tokens=self.max_tokens, max_length=self.max_length, **common
        )
        self.target_vectorizer = WordVectorizer(
            max_tokens=self.target_max_tokens - 2, max_length=self.target_max_length - 1, **common
        )

    def get_config(self) -> dict:
        names = ("max_tokens", "target_max_tokens", "max_length", "target_max_length", "lowercase")
        return {**{name: getattr(self, name) for name in names}, "tokenizer": self.tokenizer}

    def fit(self, data: PairData) -> TranslationPreprocessor:
        """Builds the vocabularies from the pairs' sources (``texts``) and targets (``labels``),
        and the lexicon of the names and numbers they show."""
        self.names = build_lexicon(data.texts, data.labels)
        if self.subword is not None:
            self.subword.train(list(data.texts) + list(data.labels))
            self.target_vocabulary = list(self.subword.vocabulary)
            return self
        self.source_vectorizer.build_vocabulary(data.texts)
        self.target_vectorizer.build_vocabulary(data.labels)
        words = self.target_vectorizer.vocabulary[2:]
        self._set_target_vocabulary(_SPECIALS + [w for w in words if w not in (START, END)])
        return self

    def text_of_ids(self, ids) -> str:
        """The target text of one id sequence (up to, without, its end)."""
        if self.subword is not None:
            return self.subword.decode(ids)
        return detokenize_python([self.target_vocabulary[i] for i in ids])

    def graph_text(self, ids, keep):
        """Graph twin of :meth:`text_of_ids`: ids (batch, T), ``keep`` (batch, T) bool."""
        ids = tf.ragged.boolean_mask(ids, keep)
        if self.subword is not None:
            return self.subword.detokenize(ids)
        return detokenize_graph(tf.gather(tf.constant(self.target_vocabulary), ids))

    def _set_target_vocabulary(self, vocabulary: list[str]) -> None:
        # ids: START=2, END=3 are never produced by splitting text
        self.target_vectorizer.set_vocabulary([PAD, OOV] + vocabulary[2:])
        self.target_vocabulary = vocabulary

    @property
    def fitted(self) -> bool:
        return self.target_vocabulary is not None and self.source_vectorizer.vocabulary is not None

    def __call__(self, texts) -> np.ndarray:
        """Source ids of a text or texts, zero-padded: (n_texts, longest) int32."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        return self.source_vectorizer(tf.constant(texts)).to_tensor().numpy()

    def encode_targets(self, texts: list[str]) -> list[np.ndarray]:
        """One int32 array of target ids per text (no start or end token)."""
        return self.target_vectorizer.encode(texts)

    def encode_pairs(self, data: PairData) -> tuple[list, list]:
        """(source ids, target ids) of every pair, one int32 array each (cached on ``data``)."""
        cached = getattr(data, "_ids", None)
        if cached is None:
            cached = (self.source_vectorizer.encode(data.texts), self.encode_targets(data.labels))
            data._ids = cached
        return cached

    def get_assets(self) -> dict:
        names = {} if self.names is None else {"names_lexicon": self.names}
        if self.subword is not None:
            model = self.subword.to_text() if self.subword.fitted else None
            return {"subword_model": model, **names}
        return {
            "source_vocabulary": list(self.source_vectorizer.vocabulary or []),
            "target_vocabulary": list(self.target_vocabulary or []),
            **names,
        }

    def set_assets(self, assets: dict) -> None:
        self.names = assets.get("names_lexicon")  # (none in folders saved before the name guard)
        try:
            if self.subword is not None:
                self.subword.from_text(assets["subword_model"])
                self.target_vocabulary = list(self.subword.vocabulary)
                return
            self.source_vectorizer.set_vocabulary(assets["source_vocabulary"])
            target = list(assets["target_vocabulary"])
            if target[:4] != _SPECIALS:
                raise ValueError(f"the target vocabulary must start with {_SPECIALS}")
            self._set_target_vocabulary(target)
        except (KeyError, TypeError, ValueError) as error:
            raise PipelineError(f"The saved assets are damaged ({error}).") from None


def teacher_forcing(src, tgt, index, bucket: int):
    """Rows ``index`` as model arrays: (source (n, S), target in (n, T), target out (n, T)).

    Target in is ``[START] w1 .. wn``, target out ``w1 .. wn [END]``; widths are
    rounded up to a multiple of ``bucket`` (an empty source gets ``bucket`` steps).
    """

    def zeros(seqs, extra):
        width = max(len(seqs[i]) for i in index) + extra
        return np.zeros((len(index), -(-width // bucket) * bucket), np.int32)

    s, t_in = zeros(src, 0), zeros(tgt, 1)
    if s.shape[1] == 0:
        s = np.zeros((len(index), bucket), np.int32)
    t_out = np.zeros_like(t_in)
    for row, i in enumerate(index):
        s[row, : len(src[i])] = src[i]
        n = len(tgt[i])
        t_in[row, 0] = START_ID
        t_in[row, 1 : n + 1] = tgt[i]
        t_out[row, :n] = tgt[i]
        t_out[row, n] = END_ID
    return s, t_in, t_out


def pair_dataset(src: list, tgt: list, batch_size: int, shuffle_seed):
    """Batches of ((source (batch, S), target in (batch, T)), target out (batch, T)) int32.

    Pairs are taken in order (``shuffle_seed`` None) or a seeded random order,
    sorted by length within spans of 50 batches (less padding), the batches
    shuffled too; widths are multiples of 8 steps.

    Returns:
        A ``tf.data.Dataset`` of known length.
    """
    lengths = np.array([len(s) + len(t) for s, t in zip(src, tgt)])
    order = (
        np.arange(len(src))
        if shuffle_seed is None
        else np.random.RandomState(shuffle_seed % 2**32).permutation(len(src))
    )
    span = batch_size * _SORT_SPAN
    batches = []
    for start in range(0, len(order), span):  # similar lengths together: less padding
        part = order[start : start + span]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[b : b + batch_size] for b in range(0, len(part), batch_size))
    if shuffle_seed is not None:
        np.random.RandomState(shuffle_seed % 2**32 + 1).shuffle(batches)

    def generate():
        for index in batches:
            s, t_in, t_out = teacher_forcing(src, tgt, index, _BUCKET)
            yield (s, t_in), t_out

    spec = tf.TensorSpec((None, None), tf.int32)
    dataset = tf.data.Dataset.from_generator(generate, output_signature=((spec, spec), spec))
    return dataset.apply(tf.data.experimental.assert_cardinality(len(batches))).prefetch(2)
