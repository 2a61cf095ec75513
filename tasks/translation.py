"""Translation: a (bi)recurrent encoder and an attention decoder, with batched beam search.

source words → embedding → seqkit (bidirectional) encoder → decoder RNN over the
target words → attention over the encoder outputs → vocabulary logits.

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

import unicodedata
import warnings

import keras
import numpy as np
import tensorflow as tf
from keras import ops

import seqkit.layers as sk
from seqkit.data import DataError, PairData, read_pairs, repair_surrogates
from seqkit.samplers import beam_search, greedy_search, length_normalize
from seqkit.text import OOV, PAD, WordVectorizer
from tasks.base import Pipeline, PipelineError, atomic_file, atomic_folder, register
from tasks.base import choice as _choice
from tasks.base import int_arg as _int_arg
from tasks.base import rate_arg as _rate_arg

__all__ = ["TranslationPipeline", "Seq2Seq"]

_CELLS = {"lstm": sk.LSTM, "gru": sk.GRU, "rnn": sk.SimpleRNN}
_ATTENTION = ("bahdanau", "luong")
START, END = "[START]", "[END]"
MAX_DECODED = 1000  # most target tokens translate() will produce per sentence
START_ID, END_ID = 2, 3
_BUCKET = 8  # batches are padded to a multiple of this many tokens (fewer XLA shapes)
_NO_SPACE_BEFORE = ".,;:!?)]}»%"
_NO_SPACE_AFTER = "¿¡([{«"


def _nfc(texts):
    return [unicodedata.normalize("NFC", t) for t in texts]


def detokenize_python(tokens: list[str]) -> str:
    """Joins word tokens with spaces, none before closing or after opening punctuation."""
    out = ""
    for tok in tokens:
        if out and tok[0] not in _NO_SPACE_BEFORE and out[-1] not in _NO_SPACE_AFTER:
            out += " "
        out += tok
    return out


def _detokenize_graph(words):
    """Graph twin of :func:`detokenize_python`: ``words`` ragged (batch, None) strings."""
    text = tf.strings.reduce_join(words, axis=-1, separator=" ")
    text = tf.strings.regex_replace(text, r" ([.,;:!?)\]}»%])", r"\1")
    return tf.strings.regex_replace(text, r"([¿¡(\[{«]) ", r"\1")


# --------------------------------------------------------------------------- model
@keras.saving.register_keras_serializable(package="seqkit")
class Seq2Seq(keras.Model):
    """Encoder-decoder with attention on seqkit layers.

    Call arguments:
        inputs: ``(source_ids (batch, S), target_in (batch, T))``, 0 = padding.

    Returns:
        logits ``(batch, T, target_vocabulary)``.
    """

    def __init__(
        self,
        source_vocabulary: int,
        target_vocabulary: int,
        embedding_dim: int = 256,
        cell: str = "gru",
        units: int = 256,
        encoder_layers: int = 1,
        bidirectional_encoder: bool = True,
        attention: str = "luong",
        dropout: float = 0.2,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.config = dict(
            source_vocabulary=source_vocabulary,
            target_vocabulary=target_vocabulary,
            embedding_dim=embedding_dim,
            cell=cell,
            units=units,
            encoder_layers=encoder_layers,
            bidirectional_encoder=bidirectional_encoder,
            attention=attention,
            dropout=dropout,
        )
        layer = _CELLS[cell]
        self.cell_name = cell
        self.n_states = 2 if cell == "lstm" else 1
        self.dec_units = 2 * units if bidirectional_encoder else units
        self.source_embedding = keras.layers.Embedding(source_vocabulary, embedding_dim)
        self.target_embedding = keras.layers.Embedding(target_vocabulary, embedding_dim)
        self.encoders = []
        for i in range(encoder_layers):
            rnn = layer(units, return_sequences=True, return_state=True, name=f"encoder_{i}")
            if bidirectional_encoder:
                rnn = sk.Bidirectional(rnn, merge_mode="concat", name=f"bi_encoder_{i}")
            self.encoders.append(rnn)
        self.bridges = [
            keras.layers.Dense(self.dec_units, activation="tanh", name=f"bridge_{k}")
            for k in range(self.n_states)
        ]
        self.decoder = layer(
            self.dec_units, return_sequences=True, return_state=True, name="decoder"
        )
        self.attention = sk.DecoderAttention(self.dec_units, score=attention, name="attention")
        self.combine = keras.layers.Dense(self.dec_units, activation="tanh", name="combine")
        self.head = keras.layers.Dense(target_vocabulary, name="logits")
        self.drop = keras.layers.Dropout(dropout)

    def encode(self, source_ids, training=False):
        """-> (encoder outputs (batch, S, D), source mask (batch, S), decoder states)."""
        mask = ops.not_equal(source_ids, 0)
        x = self.drop(self.source_embedding(source_ids), training=training)
        finals = None
        for rnn in self.encoders:
            out = rnn(x, mask=mask, training=training)
            x, finals = out[0], list(out[1:])
        if isinstance(self.encoders[-1], sk.Bidirectional):
            n = self.n_states  # finals = forward states then backward states
            finals = [ops.concatenate([finals[k], finals[n + k]], axis=-1) for k in range(n)]
        states = [bridge(s) for bridge, s in zip(self.bridges, finals)]  # (batch, dec_units)
        return x, mask, states

    def decode(self, target_in, memory, mask, states, training=False):
        """Teacher-forced decoding: -> (logits (batch, T, V), attention (batch, T, S))."""
        y = self.drop(self.target_embedding(target_in), training=training)
        out = self.decoder(
            y, initial_state=states, mask=ops.not_equal(target_in, 0), training=training
        )
        h = out[0]  # (batch, T, dec_units)
        context, weights = self.attention(h, memory, mask)
        z = self.combine(ops.concatenate([h, context], axis=-1))
        return self.head(self.drop(z, training=training)), weights

    def step(self, token_ids, states, memory, mask, keys):
        """One decoding step: -> (logits (batch, V), new states, attention (batch, S))."""
        y = self.target_embedding(token_ids)  # (batch, embedding_dim)
        h, new_states = self.decoder.cell(y, list(states), training=False)
        context, weights = self.attention(h, memory, mask, keys=keys)
        z = self.combine(ops.concatenate([h, context], axis=-1))
        return self.head(z), list(new_states), weights

    def call(self, inputs, training=False):
        source_ids, target_in = inputs
        memory, mask, states = self.encode(source_ids, training)
        return self.decode(target_in, memory, mask, states, training)[0]

    def get_config(self):
        return {**super().get_config(), **self.config}


# --------------------------------------------------------------------------- pipeline
@register("translation")
class TranslationPipeline(Pipeline):
    """Neural machine translation between two languages, trained on sentence pairs.

    Args:
        source_lang, target_lang: language codes (used to pick the Anki TSV
            columns: English is the first column there).
        cell: "gru", "lstm" or "rnn".
        units: encoder units per direction (the decoder has 2× with a
            bidirectional encoder).
        encoder_layers: stacked encoder layers.
        bidirectional_encoder: read the source both ways.
        attention: "bahdanau" (additive) or "luong" (multiplicative) scores.
        dropout: on embeddings and before the output layer.
        embedding_dim: word vector size (source and target).
        source_vocab_size, target_vocab_size: vocabulary sizes (with padding,
            unknown and, for the target, start and end tokens).
        source_max_length: longest source in tokens; longer ones are truncated
            (with a warning).
        target_max_length: longest target in tokens, including the end token;
            also the default limit on generated length.
        lowercase: lowercase both sides (off: output keeps its case).
        seed: seeds weights, data order and dropout.

    Text is Unicode-normalised (NFC), split into words and punctuation marks
    ("¿", "?" are tokens of their own), all inside the TensorFlow graph.
    """

    default_learning_rate = 2e-3

    def __init__(
        self,
        source_lang: str = "es",
        target_lang: str = "en",
        cell: str = "gru",
        units: int = 256,
        encoder_layers: int = 1,
        bidirectional_encoder: bool = True,
        attention: str = "luong",
        dropout: float = 0.2,
        embedding_dim: int = 256,
        source_vocab_size: int = 16000,
        target_vocab_size: int = 12000,
        source_max_length: int = 40,
        target_max_length: int = 40,
        lowercase: bool = False,
        seed: int = 0,
    ):
        super().__init__(seed=seed)
        for name, value in (("source_lang", source_lang), ("target_lang", target_lang)):
            if not isinstance(value, str) or not value:
                raise PipelineError(f"Received `{name}={value!r}`; expected a language code.")
        self.source_lang, self.target_lang = source_lang, target_lang
        self.cell = _choice("cell", cell, tuple(_CELLS))
        self.units = _int_arg("units", units)
        self.encoder_layers = _int_arg("encoder_layers", encoder_layers)
        if not isinstance(bidirectional_encoder, bool):
            raise PipelineError(
                f"Received `bidirectional_encoder={bidirectional_encoder!r}`; expected True or False."
            )
        self.bidirectional_encoder = bidirectional_encoder
        self.attention = _choice("attention", attention, _ATTENTION)
        self.dropout = _rate_arg("dropout", dropout)
        self.embedding_dim = _int_arg("embedding_dim", embedding_dim)
        self.source_vocab_size = _int_arg("source_vocab_size", source_vocab_size, 3)
        self.target_vocab_size = _int_arg("target_vocab_size", target_vocab_size, 5)
        self.source_max_length = _int_arg("source_max_length", source_max_length)
        self.target_max_length = _int_arg("target_max_length", target_max_length, 2)
        if not isinstance(lowercase, bool):
            raise PipelineError(f"Received `lowercase={lowercase!r}`; expected True or False.")
        self.lowercase = lowercase
        common = dict(
            lowercase=lowercase,
            strip_html=False,
            punctuation="split",
            truncating="post",
            unicode_normalize=True,
        )
        self.source_vectorizer = WordVectorizer(
            max_tokens=self.source_vocab_size, max_length=self.source_max_length, **common
        )
        self.target_vectorizer = WordVectorizer(
            max_tokens=self.target_vocab_size - 2,
            max_length=self.target_max_length - 1,
            **common,
        )
        self.target_vocabulary: list[str] | None = None

    def get_config(self) -> dict:
        return {
            "source_lang": self.source_lang,
            "target_lang": self.target_lang,
            "cell": self.cell,
            "units": self.units,
            "encoder_layers": self.encoder_layers,
            "bidirectional_encoder": self.bidirectional_encoder,
            "attention": self.attention,
            "dropout": self.dropout,
            "embedding_dim": self.embedding_dim,
            "source_vocab_size": self.source_vocab_size,
            "target_vocab_size": self.target_vocab_size,
            "source_max_length": self.source_max_length,
            "target_max_length": self.target_max_length,
            "lowercase": self.lowercase,
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
        require_two_classes=None,
    ):
        src, tgt = self._tsv_columns()
        try:
            pairs = read_pairs(
                data,
                source_column=source_column,
                target_column=target_column,
                tsv_source_column=src if tsv_source_column is None else tsv_source_column,
                tsv_target_column=tgt if tsv_target_column is None else tsv_target_column,
            )
        except DataError as error:
            raise PipelineError(str(error)) from None
        return PairData(_nfc(pairs.texts), _nfc(pairs.labels), pairs.source)

    def _subset(self, data, index):
        return PairData(
            [data.texts[i] for i in index], [data.labels[i] for i in index], data.source
        )

    def _fit_preprocessor(self, train) -> None:
        self.source_vectorizer.build_vocabulary(train.texts)
        self.target_vectorizer.build_vocabulary(train.labels)
        words = self.target_vectorizer.vocabulary[2:]
        self.target_vocabulary = [PAD, OOV, START, END] + [
            w for w in words if w not in (START, END)
        ]
        self.target_vectorizer.set_vocabulary(
            [PAD, OOV] + self.target_vocabulary[2:]
        )  # ids: START=2, END=3 are never produced by splitting text
        self._decoders = {}

    def _encode(self, data: PairData):
        cached = getattr(data, "_ids", None)
        if cached is None:
            src = self.source_vectorizer.encode(data.texts)
            tgt = self.target_vectorizer.encode(data.labels)
            cached = (src, tgt)
            data._ids = cached
        return cached

    def _dataset(self, data, batch_size, shuffle_seed):
        src, tgt = self._encode(data)
        lengths = np.array([len(s) + len(t) for s, t in zip(src, tgt)])
        order = (
            np.arange(len(src))
            if shuffle_seed is None
            else np.random.RandomState(shuffle_seed % 2**32).permutation(len(src))
        )
        chunk = batch_size * 50
        batches = []
        for start in range(0, len(order), chunk):  # similar lengths together: less padding
            part = order[start : start + chunk]
            part = part[np.argsort(lengths[part], kind="stable")]
            batches.extend(part[b : b + batch_size] for b in range(0, len(part), batch_size))
        if shuffle_seed is not None:
            np.random.RandomState(shuffle_seed % 2**32 + 1).shuffle(batches)

        def pad(seqs, index, extra):
            width = max(len(seqs[i]) for i in index) + extra
            width = -(-width // _BUCKET) * _BUCKET
            out = np.zeros((len(index), width), np.int32)
            return out

        def generate():
            for index in batches:
                s = pad(src, index, 0)
                t_in = pad(tgt, index, 1)
                t_out = np.zeros_like(t_in)
                for row, i in enumerate(index):
                    s[row, : len(src[i])] = src[i]
                    n = len(tgt[i])
                    t_in[row, 0] = START_ID
                    t_in[row, 1 : n + 1] = tgt[i]
                    t_out[row, :n] = tgt[i]
                    t_out[row, n] = END_ID
                if s.shape[1] == 0:
                    s = np.zeros((len(index), _BUCKET), np.int32)
                yield (s, t_in), t_out

        spec = tf.TensorSpec((None, None), tf.int32)
        dataset = tf.data.Dataset.from_generator(generate, output_signature=((spec, spec), spec))
        return dataset.apply(tf.data.experimental.assert_cardinality(len(batches))).prefetch(2)

    def _build_model(self):
        if self.target_vocabulary is None:
            raise PipelineError("The preprocessor is not fitted; call fit() first.")
        model = Seq2Seq(
            self.source_vectorizer.vocabulary_size,
            len(self.target_vocabulary),
            embedding_dim=self.embedding_dim,
            cell=self.cell,
            units=self.units,
            encoder_layers=self.encoder_layers,
            bidirectional_encoder=self.bidirectional_encoder,
            attention=self.attention,
            dropout=self.dropout,
        )
        model((np.ones((1, 3), np.int32), np.ones((1, 2), np.int32)))
        return model

    def _loss(self):
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)

    def _get_assets(self) -> dict:
        return {
            "source_vocabulary": list(self.source_vectorizer.vocabulary or []),
            "target_vocabulary": list(self.target_vocabulary or []),
        }

    def _set_assets(self, assets: dict) -> None:
        try:
            self.source_vectorizer.set_vocabulary(assets["source_vocabulary"])
            target = list(assets["target_vocabulary"])
            if target[:4] != [PAD, OOV, START, END]:
                raise ValueError(f"the target vocabulary must start with {[PAD, OOV, START, END]}")
            self.target_vectorizer.set_vocabulary([PAD, OOV] + target[2:])
        except (KeyError, TypeError, ValueError) as error:
            raise PipelineError(f"The saved assets are damaged ({error}).") from None
        self.target_vocabulary = target
        self._decoders = {}

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
    def _decoder(self, beam_width: int, with_attention: bool):
        key = (beam_width, with_attention, id(self.model))
        decoders = getattr(self, "_decoders", None)
        if decoders is None:
            decoders = self._decoders = {}
        if key not in decoders:
            decoders[key] = _Decoder(self, self.model, beam_width)
        return decoders[key]

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
        return _nfc([repair_surrogates(t) for t in texts])

    def translate(
        self,
        texts,
        beam_width: int = 1,
        length_penalty: float = 0.6,
        max_length: int | None = None,
        return_attention: bool = False,
        batch_size: int = 64,
        warn: bool = True,
    ):
        """Translates a string or a list of strings.

        Greedy decoding (``beam_width=1``) or beam search, batched over the
        inputs and the beams inside one TensorFlow graph. Beam search ranks
        finished hypotheses by ``score / ((5 + length) / 6) ** length_penalty``
        (GNMT); the greedy translation is also a candidate, so the answer never
        scores lower than greedy's.

        Args:
            texts: a string or a list of strings.
            beam_width: 1 is greedy.
            length_penalty: 0 ranks by raw log-probability; higher favours longer.
            max_length: most target tokens (default ``target_max_length``; at most 1000).
            return_attention: also return attention maps.

        Returns:
            A list of translations, or with ``return_attention`` a list of dicts
            ``{"translation", "source_tokens", "target_tokens", "attention"}``
            (``attention``: (target tokens, source tokens) array, rows sum to 1).
            Empty sources translate to "" (with a warning).
        """
        single = isinstance(texts, str)
        texts = self._texts(texts, "translate")
        beam_width = _int_arg("beam_width", beam_width)
        batch_size = _int_arg("batch_size", batch_size)
        if isinstance(length_penalty, bool) or not isinstance(length_penalty, float | int):
            raise PipelineError(
                f"Received `length_penalty={length_penalty!r}`; expected a number >= 0."
            )
        if length_penalty < 0:
            raise PipelineError(
                f"Received `length_penalty={length_penalty!r}`; expected a number >= 0."
            )
        max_length = (
            self.target_max_length
            if max_length is None
            else _int_arg("max_length", max_length, maximum=MAX_DECODED)
        )
        if warn:
            self._warn_long_or_empty(texts)
        from seqkit.layers._tf_fast import exporting

        dec = self._decoder(beam_width, return_attention)
        results = []
        for start in range(0, len(texts), batch_size):
            batch = texts[start : start + batch_size]
            with exporting():  # plain while loops: one trace serves every sentence length
                out = dec.run(
                    tf.constant(batch),
                    tf.constant(max_length, tf.int32),
                    tf.constant(float(length_penalty), tf.float32),
                )
            results.extend(self._postprocess(batch, out, return_attention))
        return results[0] if single and not return_attention else results

    def _warn_long_or_empty(self, texts):
        words = self.source_vectorizer.split(tf.constant(texts))
        lengths = words.row_lengths().numpy()
        long = [i for i, n in enumerate(lengths) if n > self.source_max_length]
        if long:
            warnings.warn(
                f"{len(long)} source text(s) (e.g. number {long[0]}, {lengths[long[0]]} tokens) "
                f"are longer than source_max_length={self.source_max_length}; only their first "
                f"{self.source_max_length} tokens are translated.",
                stacklevel=3,
            )
        empty = [i for i, n in enumerate(lengths) if n == 0]
        if empty:
            warnings.warn(
                f"{len(empty)} source text(s) (e.g. number {empty[0]}) are empty; they "
                "translate to ''.",
                stacklevel=3,
            )

    def _postprocess(self, batch, out, return_attention):
        ids = out["ids"].numpy()
        att = out["attention"].numpy() if return_attention else None
        source_len = out["source_length"].numpy()
        vocab = self.target_vocabulary
        results = []
        for row in range(len(batch)):
            tokens = []
            for token in ids[row]:
                if token in (0, END_ID):
                    break
                tokens.append(vocab[token])
            text = detokenize_python(tokens) if source_len[row] > 0 else ""
            if not return_attention:
                results.append(text)
                continue
            src_tokens = self.source_vectorizer.tokens(batch[row])[: self.source_max_length]
            ended = len(tokens) < ids.shape[1] and ids[row, len(tokens)] == END_ID
            n = len(tokens) + int(ended)  # rows: the target tokens and the end token
            results.append(
                {
                    "translation": text,
                    "source_tokens": src_tokens,
                    "target_tokens": tokens + [END] * int(ended),
                    "attention": att[row, :n, : len(src_tokens)],
                    "score": float(out["score"].numpy()[row]),
                }
            )
        return results

    def score(self, sources, targets) -> np.ndarray:
        """Summed log-probability of each target (with its end token) under the decoding
        distribution (the model's softmax without [PAD], [UNK] and [START])."""
        sources = self._texts(sources, "score")
        targets = self._texts(targets, "score")
        if len(sources) != len(targets):
            raise PipelineError(
                f"Received {len(sources)} sources and {len(targets)} targets; expected as many."
            )
        src = self.source_vectorizer.encode(sources)
        tgt = self.target_vectorizer.encode(targets)
        banned = _banned(len(self.target_vocabulary))
        total = np.zeros(len(sources))
        for start in range(0, len(src), 64):
            rows = range(start, min(start + 64, len(src)))
            s = np.zeros((len(rows), max(1, max(len(src[i]) for i in rows))), np.int32)
            t_in = np.zeros((len(rows), max(len(tgt[i]) for i in rows) + 1), np.int32)
            t_out = np.zeros_like(t_in)
            for r, i in enumerate(rows):
                s[r, : len(src[i])] = src[i]
                t_in[r, 0] = START_ID
                t_in[r, 1 : len(tgt[i]) + 1] = tgt[i]
                t_out[r, : len(tgt[i])] = tgt[i]
                t_out[r, len(tgt[i])] = END_ID
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
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        if not isinstance(text, str):
            raise PipelineError("plot_attention() takes one string.")
        r = self.translate([text], beam_width=beam_width, return_attention=True)[0]
        fig, ax = plt.subplots(
            figsize=(1 + 0.5 * len(r["source_tokens"]), 1 + 0.4 * len(r["target_tokens"]))
        )
        ax.imshow(r["attention"], cmap="viridis", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(r["source_tokens"])), r["source_tokens"], rotation=60)
        ax.set_yticks(range(len(r["target_tokens"])), r["target_tokens"])
        ax.set_title(r["translation"], fontsize=9)
        fig.tight_layout()
        with atomic_file(path) as tmp:
            fig.savefig(tmp, format=path.rsplit(".", 1)[-1] if "." in path else "png")
        plt.close(fig)
        return path

    # ----------------------------------------------------------------- export
    def export(self, path: str, beam_width: int = 4, length_penalty: float = 0.6) -> str:
        """Writes a SavedModel: ``translate(text: tf.string[None]) -> tf.string[None]``.

        Tokenization, beam search (``beam_width``; 1 is greedy) and detokenization
        are in the graph; serving needs only TensorFlow.
        """
        self._require_fitted("export")
        from seqkit.layers._tf_fast import exporting

        beam_width = _int_arg("beam_width", beam_width)
        model = self._bare_model()
        module = _Serving(self, model, beam_width, float(length_penalty))
        with atomic_folder(path) as tmp, exporting():
            tf.saved_model.save(
                module,
                tmp,
                signatures={"translate": module.translate, "serving_default": module.translate},
            )
        return path


def _banned(vocabulary_size):
    """Subtracted from logits: [PAD], [UNK] and [START] are never generated."""
    return tf.reduce_sum(tf.one_hot([0, 1, START_ID], vocabulary_size), 0) * 1e9


class _Decoder(tf.Module):
    """Encoding + greedy or beam search for a batch of raw strings, in one graph."""

    def __init__(self, pipeline, model, beam_width):
        super().__init__()
        self.source_vectorizer = pipeline.source_vectorizer
        self.model = model
        self.beam_width = beam_width
        self.target_words = tf.constant(pipeline.target_vocabulary)
        self.vocabulary_size = len(pipeline.target_vocabulary)

    def _search(self, text, max_length, length_penalty):
        ids = self.source_vectorizer(text).to_tensor()  # (batch, S)
        source_length = tf.reduce_sum(tf.cast(ids > 0, tf.int32), axis=-1)
        ids = tf.pad(ids, [[0, 0], [0, 1]])  # at least one (padding) step: empty texts work
        memory, mask, states = self.model.encode(ids, training=False)
        keys = self.model.attention.project_keys(memory)
        batch = tf.shape(ids)[0]
        banned = _banned(self.vocabulary_size)

        def step(tokens, state):
            dec_states, memory, mask, keys = state
            logits, new_states, weights = self.model.step(tokens, dec_states, memory, mask, keys)
            logits = tf.cast(logits, tf.float32) - banned
            return logits, (new_states, memory, mask, keys), weights

        state = (states, memory, mask, keys)
        g_ids, g_score, g_len, g_att = greedy_search(
            step, state, batch, max_length, START_ID, END_ID
        )
        if self.beam_width == 1:
            return g_ids, g_score, g_att, source_length
        b_ids, b_score, b_len, b_att = beam_search(
            step, state, batch, self.beam_width, max_length, START_ID, END_ID, length_penalty
        )
        # The greedy hypothesis is a candidate too: never return a worse-scoring one.
        better = length_normalize(b_score, b_len, length_penalty) >= length_normalize(
            g_score, g_len, length_penalty
        )
        width = tf.maximum(tf.shape(b_ids)[1], tf.shape(g_ids)[1])
        b_ids = tf.pad(b_ids, [[0, 0], [0, width - tf.shape(b_ids)[1]]])
        g_ids = tf.pad(g_ids, [[0, 0], [0, width - tf.shape(g_ids)[1]]])
        b_att = tf.pad(b_att, [[0, 0], [0, width - tf.shape(b_att)[1]], [0, 0]])
        g_att = tf.pad(g_att, [[0, 0], [0, width - tf.shape(g_att)[1]], [0, 0]])
        ids = tf.where(better[:, None], b_ids, g_ids)
        att = tf.where(better[:, None, None], b_att, g_att)
        return ids, tf.where(better, b_score, g_score), att, source_length

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string),
            tf.TensorSpec([], tf.int32),
            tf.TensorSpec([], tf.float32),
        ]
    )
    def run(self, text, max_length, length_penalty):
        ids, score, att, source_length = self._search(text, max_length, length_penalty)
        return {"ids": ids, "score": score, "attention": att, "source_length": source_length}


class _Serving(_Decoder):
    """What ``export`` saves: strings in, strings out."""

    def __init__(self, pipeline, model, beam_width, length_penalty):
        super().__init__(pipeline, model, beam_width)
        self.max_length = pipeline.target_max_length
        self.length_penalty = length_penalty

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def translate(self, text):
        ids, _, _, source_length = self._search(
            text, tf.constant(self.max_length), tf.constant(self.length_penalty)
        )
        # Words up to the first [END] (or padding).
        stop = tf.cumsum(tf.cast(tf.logical_or(ids == END_ID, ids == 0), tf.int32), axis=-1)
        keep = tf.equal(stop, 0)
        words = tf.ragged.boolean_mask(tf.gather(self.target_words, ids), keep)
        text_out = _detokenize_graph(words)
        return {"translation": tf.where(source_length > 0, text_out, "")}
