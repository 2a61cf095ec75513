"""Translation: a (bi)recurrent encoder and an attention decoder, with batched beam search.

The pipeline is a :class:`TranslationPreprocessor` (texts → ids: one shared
SentencePiece vocabulary by default, or word vocabularies), a
:class:`~tasks.translation_model.Seq2Seq` model (a ``RecurrentStack`` encoder,
one recurrent decoder layer with attention) and decoding
(:mod:`tasks.translation_serving`: greedy or beam search in one graph).

The decoder follows Luong et al. (2015)'s global attention: the recurrent
decoder runs first and attention combines its output with a context vector
(``tanh(W [h_t; c_t])``), so teacher-forced training runs the decoder with
seqkit's fused loop over all target steps at once. ``attention`` picks the
score function: "bahdanau" (additive) or "luong" (multiplicative).

Example:

>>> from tasks.translation import TranslationPipeline
>>> mt = TranslationPipeline("es", "en", units=256).fit("spa-eng.tsv", epochs=10)
>>> mt.translate(["¿Dónde está la biblioteca?"], beam_width=4)
['Where is the library?']
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from seqkit.data import DataError, PairData, read_pairs, repair_surrogates
from seqkit.export import exporting
from seqkit.samplers import search_settings
from tasks.arguments import (
    bool_arg,
    cell_arg,
    choice,
    config_default,
    int_arg,
    rate_arg,
    renamed_arguments,
)
from tasks.base import Pipeline, PipelineError
from tasks.translation_data import TranslationPreprocessor, nfc, pair_dataset, teacher_forcing
from tasks.translation_model import END_ID, START_ID, Seq2Seq
from tasks.translation_names import build_lexicon, calibrate, guard_of, guarded, protect_pairs
from tasks.translation_serving import (
    Decoder,
    Serving,
    banned_logits,
    detokenize_python,
    plot_attention,
    postprocess,
    warn_long_or_empty,
)

__all__ = [
    "TranslationPipeline",
    "TranslationPreprocessor",
    "Seq2Seq",
    "START_ID",
    "END_ID",
    "detokenize_python",
]

_ATTENTION = ("bahdanau", "luong")
MAX_DECODED = 1000  # most target tokens translate() will produce per sentence


def _delegate(name: str, doc: str) -> property:
    """A read-only attribute of the pipeline that is the preprocessor's ``name``."""
    return property(lambda self: getattr(self.preprocessor, name), doc=doc)


class TranslationPipeline(Pipeline):
    """Neural machine translation between two languages, trained on sentence pairs.

    Args:
        source_lang, target_lang: language codes (used to pick the Anki TSV
            columns: English is the first column there).
        cell: "gru", "lstm" or "rnn".
        units: encoder units per direction (the decoder has 2× with a
            bidirectional encoder).
        layers: stacked encoder layers (was ``encoder_layers``).
        bidirectional: read the source both ways (was ``bidirectional_encoder``).
        attention: "bahdanau" (additive) or "luong" (multiplicative) scores.
        dropout: on embeddings and before the output layer.
        embedding_dim: word vector size (source and target).
        max_tokens, target_max_tokens: vocabulary sizes (with padding, unknown
            and, for the target, start and end tokens; were ``source_vocab_size``
            and ``target_vocab_size``). Subwords: ``max_tokens`` is the size of
            the one shared vocabulary (default 8,000); words: 16,000 and 12,000.
        max_length: longest source in tokens; longer ones are truncated (with a
            warning; was ``source_max_length``; default 64 pieces or 40 words).
        target_max_length: longest target in tokens, including the end token;
            also the default limit on generated length.
        lowercase: lowercase both sides (off: output keeps its case).
        tokenizer: "subword" (SentencePiece, learnt from the training pairs:
            open vocabulary, digits split, byte fallback) or "word".
        keep_names: names and numbers the training pairs never showed are
            swapped for ones the model copies before translating, and back
            after (:mod:`tasks.translation_names`); the default of ``translate``
            and ``export``.
        seed: seeds weights, data order and dropout.

    The old argument names still work, with a ``FutureWarning``; saved folders
    that use them load silently.

    Example:

    >>> mt = TranslationPipeline("es", "en", units=64).fit(pairs, epochs=5)
    >>> mt.translate("¿Dónde está el gato?", beam_width=4)
    'Where is the cat?'
    """

    task = "translation"
    default_learning_rate = 2e-3

    @renamed_arguments(
        encoder_layers="layers",
        bidirectional_encoder="bidirectional",
        source_vocab_size="max_tokens",
        target_vocab_size="target_max_tokens",
        source_max_length="max_length",
    )
    def __init__(
        self,
        source_lang: str = "es",
        target_lang: str = "en",
        cell: str = "gru",
        units: int = 256,
        layers: int = 1,
        bidirectional: bool = True,
        attention: str = "luong",
        dropout: float = 0.2,
        embedding_dim: int = 256,
        max_tokens: int | None = None,
        target_max_tokens: int | None = None,
        max_length: int | None = None,
        target_max_length: int | None = None,
        lowercase: bool = False,
        tokenizer: str = "subword",
        keep_names: bool = True,
        seed: int = 0,
    ):
        super().__init__(seed=seed)
        for name, value in (("source_lang", source_lang), ("target_lang", target_lang)):
            if not isinstance(value, str) or not value:
                raise PipelineError(f"Received `{name}={value!r}`; expected a language code.")
        self.source_lang, self.target_lang = source_lang, target_lang
        self.cell = cell_arg(cell)
        self.units = int_arg("units", units)
        self.layers = int_arg("layers", layers)
        self.bidirectional = bool_arg("bidirectional", bidirectional)
        self.attention = choice("attention", attention, _ATTENTION)
        self.dropout = rate_arg("dropout", dropout)
        self.embedding_dim = int_arg("embedding_dim", embedding_dim)
        self.keep_names = bool_arg("keep_names", keep_names)
        self.preprocessor = TranslationPreprocessor(
            max_tokens, target_max_tokens, max_length, target_max_length, lowercase, tokenizer
        )
        self._decoders = {}

    @classmethod
    def from_folder(cls, path: str, meta: dict):
        # Folders saved before subwords (seqkit <= 0.2.0) name no tokenizer: they used words.
        return super().from_folder(path, config_default(meta, "tokenizer", "word"))

    source_vectorizer = _delegate("source_vectorizer", "The source side's tokenizer.")
    target_vectorizer = _delegate("target_vectorizer", "The target side's WordVectorizer.")
    target_vocabulary = _delegate(
        "target_vocabulary", "Target words by id ([PAD], [UNK], [START], [END] first)."
    )

    def get_config(self) -> dict:
        model = ("cell", "units", "layers", "bidirectional", "attention", "dropout")
        return {
            "source_lang": self.source_lang,
            "target_lang": self.target_lang,
            **{name: getattr(self, name) for name in model},
            "embedding_dim": self.embedding_dim,
            **self.preprocessor.get_config(),
            "keep_names": self.keep_names,
            "seed": self.seed,
        }

    # ----------------------------------------------------------------- data
    def _tsv_columns(self):
        # Anki files are english<TAB>other: English is column 0.
        src = 0 if self.source_lang.lower().startswith("en") else 1
        return src, 1 - src

    def _read(
        self,
        data,
        need_labels=True,
        source_column="source",
        target_column="target",
        tsv_source_column=None,
        tsv_target_column=None,
        encoding="utf-8",
    ):
        src, tgt = self._tsv_columns()
        try:
            pairs = read_pairs(
                data,
                source_column=source_column,
                target_column=target_column,
                tsv_source_column=src if tsv_source_column is None else tsv_source_column,
                tsv_target_column=tgt if tsv_target_column is None else tsv_target_column,
                encoding=encoding,
            )
        except DataError as error:
            raise PipelineError(str(error)) from None
        return PairData(nfc(pairs.texts), nfc(pairs.labels), pairs.source)

    def _subset(self, data, index):
        return PairData(
            [data.texts[i] for i in index], [data.labels[i] for i in index], data.source
        )

    def _fit_preprocessor(self, train) -> None:
        self.preprocessor.fit(train)
        self._decoders = {}  # their graphs hold the old vocabularies

    def _dataset(self, data, batch_size, shuffle_seed):
        src, tgt = self.preprocessor.encode_pairs(data)
        return pair_dataset(src, tgt, batch_size, shuffle_seed)

    # ----------------------------------------------------------------- model
    def _build_model(self):
        if not self.preprocessor.fitted:
            raise PipelineError("The preprocessor is not fitted; call fit() first.")
        shape = (
            "embedding_dim",
            "cell",
            "units",
            "layers",
            "bidirectional",
            "attention",
            "dropout",
        )
        model = Seq2Seq(
            self.source_vectorizer.vocabulary_size,
            len(self.target_vocabulary),
            **{k: getattr(self, k) for k in shape},
        )
        model((np.ones((1, 3), np.int32), np.ones((1, 2), np.int32)))
        return model

    def _legacy_weight_path(self, path: str) -> str:
        # seqkit 0.1.0 kept the encoder layers in a list `encoders` of the model; they are
        # the `rnns` of the `encoder` stack now (same layer names: gru, bidirectional_1, ...).
        prefix = "encoder/rnns/"
        return "encoders/" + path[len(prefix) :] if path.startswith(prefix) else path

    def _loss(self):
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)

    def _set_assets(self, assets: dict) -> None:
        self._decoders = {}

    def _after_training(self, val) -> None:
        self._calibrate_names()

    def learn_names(self, data, **read_kwargs):
        """Learns which names and numbers the model knows from its training pairs
        (``fit`` does this itself; for folders saved before the name guard).

        Args:
            data: the pairs the model was trained on, in any form ``fit`` takes.

        Returns:
            self.
        """
        self._require_fitted("learn_names")
        pairs = self._read(data, True, **read_kwargs)
        self.preprocessor.names = build_lexicon(pairs.texts, pairs.labels)
        self._calibrate_names()
        return self

    def _calibrate_names(self) -> None:
        if self.preprocessor.names is not None:
            names = self.preprocessor.names
            self.preprocessor.names = calibrate(
                lambda x: self.translate(x, warn=False, keep_names=False), names
            )

    def _name_guard(self, keep_names):
        keep = self.keep_names if keep_names is None else bool_arg("keep_names", keep_names)
        return guard_of(self.preprocessor.names) if keep else None

    def _callbacks(self, val):
        if val is None:
            return []
        pipeline = self
        subset = self._subset(val, np.arange(min(len(val), 500)))

        class ValidationBLEU(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                score = pipeline._bleu_greedy(subset)
                if logs is not None:
                    logs["val_bleu"] = score
                print(f"validation BLEU (greedy, {len(subset)} pairs): {score:.2f}")

        return [ValidationBLEU()]

    def _bleu_greedy(self, data) -> float:
        from seqkit.metrics import bleu

        hyps = self.translate(data.texts, beam_width=1, warn=False)
        return bleu(hyps, data.labels)

    # ----------------------------------------------------------------- inference
    def _decoder(self, beam_width: int, with_attention: bool) -> Decoder:
        key = (beam_width, with_attention, id(self.model))
        if key not in self._decoders:
            self._decoders[key] = Decoder(self.preprocessor, self.model, beam_width)
        return self._decoders[key]

    def _texts(self, texts, what) -> list[str]:
        self._require_fitted(what)
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list | tuple) or not texts:
            raise PipelineError(f"{what}() takes a string or a non-empty list of strings.")
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise PipelineError(
                    f"Text {i} is a {type(t).__name__} ({t!r:.40}); expected a string."
                )
        return nfc([repair_surrogates(t) for t in texts])

    def translate(
        self,
        texts,
        beam_width: int | None = None,
        length_penalty: float | None = None,
        max_length: int | None = None,
        return_attention: bool = False,
        batch_size: int = 64,
        warn: bool = True,
        sampler=None,
        keep_names: bool | None = None,
    ):
        """Translates a string or a list of strings.

        Greedy decoding (``beam_width=1``) or beam search, batched over the
        inputs and the beams inside one TensorFlow graph. Beam search ranks
        finished hypotheses by ``score / ((5 + length) / 6) ** length_penalty``
        (GNMT); the greedy translation is also a candidate, so the answer never
        scores lower than greedy's.

        Args:
            texts: a string or a list of strings.
            beam_width: 1 (the default) is greedy.
            length_penalty: 0 ranks by raw log-probability; higher favours
                longer (default 0.6).
            max_length: most target tokens (default ``target_max_length``; at most 1000).
            return_attention: also return attention maps.
            batch_size: sentences decoded together.
            warn: warn about truncated and empty sources.
            sampler: the search as an object instead of ``beam_width`` and
                ``length_penalty``: ``seqkit.samplers.BeamSampler(num_beams,
                length_penalty)`` or ``GreedySampler()``.
            keep_names: protect unseen names and numbers (default: the
                pipeline's ``keep_names``); with it, ``source_tokens`` and
                ``target_tokens`` show the surrogates the model read and wrote.

        Returns:
            A list of translations (a string for a string), or with
            ``return_attention`` a list of dicts ``{"translation",
            "source_tokens", "target_tokens", "attention", "score"}``
            (``attention``: (target tokens, source tokens) array, rows sum to 1).
            Empty sources translate to "" (with a warning).

        Example:

        >>> mt.translate(["Tengo hambre.", "No sé."], beam_width=4)
        ["I'm hungry.", "I don't know."]
        >>> mt.translate("No sé.", sampler=BeamSampler(4))  # the same search
        "I don't know."
        """
        single = isinstance(texts, str)
        texts = self._texts(texts, "translate")
        beam_width, length_penalty = search_settings(sampler, beam_width, length_penalty)
        batch_size = int_arg("batch_size", batch_size)
        max_length = (
            self.preprocessor.target_max_length
            if max_length is None
            else int_arg("max_length", max_length, maximum=MAX_DECODED)
        )
        if warn:
            warn_long_or_empty(self, texts)
        dec = self._decoder(beam_width, return_attention)
        guard = self._name_guard(keep_names)

        def run(texts):
            results = []
            for start in range(0, len(texts), batch_size):
                batch = texts[start : start + batch_size]
                with exporting():  # plain while loops: one trace serves every sentence length
                    out = dec.run(
                        tf.constant(batch),
                        tf.constant(max_length, tf.int32),
                        tf.constant(length_penalty, tf.float32),
                    )
                results.extend(postprocess(self, batch, out, return_attention))
            return results

        results = run(texts) if guard is None else guarded(run, guard, texts)
        return results[0] if single and not return_attention else results

    def score(self, sources, targets, keep_names: bool | None = None) -> np.ndarray:
        """Summed log-probability of each target (with its end token) under the decoding
        distribution (the model's softmax without [PAD], [UNK] and [START]). With
        ``keep_names`` (default: the pipeline's) the pair is scored as ``translate``
        reads and writes it: unseen names in the source, and the same in the target,
        swapped for their surrogates.

        Returns:
            (n,) float64 array, one score per (source, target) pair.
        """
        sources = self._texts(sources, "score")
        targets = self._texts(targets, "score")
        if len(sources) != len(targets):
            raise PipelineError(
                f"Received {len(sources)} sources and {len(targets)} targets; expected as many."
            )
        guard = self._name_guard(keep_names)
        if guard is not None and sources:
            sources, targets = protect_pairs(guard, sources, targets)
        src = self.source_vectorizer.encode(sources)
        tgt = self.preprocessor.encode_targets(targets)
        banned = banned_logits(len(self.target_vocabulary))
        total = np.zeros(len(sources))
        for start in range(0, len(src), 64):
            rows = range(start, min(start + 64, len(src)))
            s, t_in, t_out = teacher_forcing(src, tgt, rows, bucket=1)
            logits = tf.cast(self.model((s, t_in), training=False), tf.float32)
            log_p = tf.nn.log_softmax(logits - banned, -1)  # the decoding distribution
            gain = tf.gather(log_p, t_out, batch_dims=2) * tf.cast(t_out > 0, tf.float32)
            total[start : start + len(rows)] = tf.reduce_sum(gain, -1).numpy()
        return total

    def evaluate(self, data, beam_width: int = 4, length_penalty: float = 0.6, **read_kwargs):
        """Corpus BLEU and chrF (sacreBLEU) for greedy decoding and for beam search.

        Returns:
            ``{"bleu_greedy", "chrf_greedy", "bleu_beam", "chrf_beam", "beam_width", "n"}``.
        """
        from seqkit.metrics import bleu, chrf

        self._require_fitted("evaluate")
        pairs = self._read(data, **read_kwargs)
        out = {"n": len(pairs), "beam_width": int(beam_width)}
        greedy = self.translate(pairs.texts, beam_width=1, warn=False)
        out["bleu_greedy"] = bleu(greedy, pairs.labels)
        out["chrf_greedy"] = chrf(greedy, pairs.labels)
        if beam_width > 1:
            beam = self.translate(
                pairs.texts, beam_width=beam_width, length_penalty=length_penalty, warn=False
            )
            out["bleu_beam"] = bleu(beam, pairs.labels)
            out["chrf_beam"] = chrf(beam, pairs.labels)
        return out

    def predict(self, inputs, **kwargs):
        """``translate`` under the pipeline-wide name."""
        return self.translate(inputs, **kwargs)

    def plot_attention(self, text: str, path: str, beam_width: int = 1) -> str:
        """Draws the attention map of one translation to an image file (matplotlib)."""
        return plot_attention(self, text, path, beam_width)

    # ----------------------------------------------------------------- export
    def _serving(
        self, beam_width: int | None = None, length_penalty=None, sampler=None, keep_names=None
    ):
        """What ``export`` saves: ``translate(text: tf.string[None]) -> tf.string[None]``.

        Tokenization, beam search (``beam_width``, default 4; 1 is greedy,
        ranked with ``length_penalty``, default 0.6; or ``sampler=BeamSampler(...)``)
        and detokenization are in the graph; serving needs only TensorFlow. The
        signature is also ``serving_default``. ``keep_names`` (default: the
        pipeline's) protects names and numbers in the graph, as ``translate`` does.
        """
        beam_width, length_penalty = search_settings(sampler, beam_width, length_penalty, 4)
        module = Serving(
            self.preprocessor,
            self._bare_model(),
            beam_width,
            length_penalty,
            self.preprocessor.target_max_length,
            self._name_guard(keep_names),
        )
        return module, {"translate": module.translate, "serving_default": module.translate}
