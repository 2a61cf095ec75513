"""Sentiment analysis (text classification): words → embedding → recurrent encoders → classes.

The pipeline is a :class:`SentimentPreprocessor` (texts → word ids, or
SentencePiece subword ids with ``tokenizer="subword"``; labels → class ids,
renamed by ``label_map=``), a Keras model (an embedding, one ``seqkit.layers.RecurrentStack``
per encoder, pooling and a classifier per encoder, optionally the n-gram head
of :mod:`tasks.sentiment_heads`), and the head combination fitted after
training.

Example:

>>> from tasks.sentiment import SentimentPipeline
>>> clf = SentimentPipeline(cell="gru", units=32)
>>> clf.fit((["great film", "awful film"] * 50, ["positive", "negative"] * 50), epochs=2)
>>> clf.predict("a great film")
[{'label': 'positive', 'score': 0.93}]
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

import seqkit.layers as sk
from seqkit.data import (
    TextLabelData,
    TextStream,
    read_text_classification,
    read_texts,
)
from seqkit.text import WordVectorizer
from tasks.arguments import config_default
from tasks.base import Pipeline, PipelineError, bool_arg, cell_arg, choice, int_arg, rate_arg
from tasks.sentiment_data import (
    SentimentPreprocessor,
    labelled_dataset,
    length_batches,
    pad,
    stream_dataset,
)
from tasks.sentiment_heads import (
    HeadsCrossentropy,
    NgramBag,
    SentimentServing,
    StackHeads,
    count_ngram_prior,
    fit_head_weights,
    heads_accuracy,
    legacy_weight_path,
    read_head_weights,
    softmax,
)
from tasks.sentiment_labels import relabel
from tasks.sentiment_subword import TOKENIZERS, SubwordVectorizer, make_vectorizer

__all__ = ["SentimentPipeline", "SentimentPreprocessor", "NgramBag", "fit_head_weights"]

_POOLING = ("max_mean", "max", "mean", "last")
# The preprocessor's settings (its WordVectorizer's), in the order of the pipeline's config.
_VECTORIZER_ARGS = ("max_tokens", "max_length", "truncating", "lowercase", "strip_html")
_VECTORIZER_ARGS += ("punctuation",)


class SentimentPipeline(Pipeline):
    """Text classifier (binary or multi-class) built on seqkit's recurrent layers.

    Text is lowercased, stripped of HTML line breaks and split into words and
    punctuation inside the TensorFlow graph; words become ids from a
    vocabulary built on the training texts (``self.preprocessor``), or, with
    ``tokenizer="subword"``, the standardized text is cut into SentencePiece
    pieces learnt from the training texts (no word is out of vocabulary); an
    embedding feeds a (bi)recurrent encoder (a ``RecurrentStack``) whose outputs
    are max- and mean-pooled over the words; a dense layer gives one logit per
    class. Optionally (``ngram_buckets``) a second, linear head over the words
    and hashed word bigrams sits beside the recurrent one: each head is trained
    on its own cross-entropy in the same model, and predictions average the two
    heads' logits (``head_accuracy`` reports each head alone).

    Labels: ``fit``, ``fine_tune``, ``evaluate`` and ``head_accuracy`` take
    ``label_map=``, a dict from the data's labels to the pipeline's (e.g.
    ``{0: "negative", 1: "positive"}``; several may map to one); without it,
    0/1 labels mean negative/positive for a pipeline with those two labels
    (:mod:`tasks.sentiment_labels`).

    Args:
        cell: "lstm", "gru" or "rnn".
        units: state size of each recurrent layer (per direction).
        layers: number of stacked recurrent layers.
        bidirectional: read the text both ways.
        dropout: dropout on the embeddings (whole words) and before the classifier.
        embedding_dim: size of the word vectors.
        max_tokens, max_length, truncating, lowercase, strip_html, punctuation:
            the preprocessor's (see :class:`SentimentPreprocessor`); with
            subwords ``max_tokens`` is the SentencePiece model's size (>= 300)
            and ``max_length`` counts pieces.
        tokenizer: "word" (default: a word vocabulary; unseen words are
            ``[UNK]``, also in ``fine_tune``) or "subword" (a SentencePiece
            unigram model trained by ``fit`` and kept by ``fine_tune``, which can
            so learn new words as pieces; see :mod:`tasks.sentiment_subword`).
            The n-gram head then reads pieces and piece n-grams. A subword
            SavedModel needs ``import tensorflow_text`` before loading.
        pooling: "max_mean", "max", "mean" or "last" (the encoder's final state).
        ngram_buckets: size of the hashed word (or piece) n-gram table (0: none).
        ngram_order: longest n-gram in that table: 2 (words and bigrams) or 3
            (and trigrams).
        ngram_nb: scale each n-gram's weight by its naive-Bayes log-count ratio,
            counted on the training texts (as in NBSVM, Wang & Manning 2012): a
            strong prior for a linear text model. Kept, not recounted, by
            ``fine_tune``.
        encoders: independent recurrent encoders over the shared embedding, each
            with its own classifier and loss (an ensemble in one model).
        combine: how predictions join the heads' logits. "fit" (default): a
            weight per head and a bias per class, fitted after training by
            minimising the cross-entropy on the validation data (stacking; a
            weaker or over-confident head counts less, and with one head this is
            temperature-and-bias calibration); "mean": the plain mean of the
            heads' logits. ``fine_tune`` refits the weights on its validation
            part, or on its training data when it holds none out.
        seed: seeds weights, data order and dropout.

    Example:

    >>> clf = SentimentPipeline(units=16, max_tokens=1000).fit(train_df, epochs=3)
    >>> clf.predict(["What a film!"])
    [{'label': 'positive', 'score': 0.91}]
    >>> clf.evaluate("imdb_test.csv", label_map={0: "negative", 1: "positive"})["accuracy"]
    0.87
    """

    task = "sentiment"
    default_learning_rate = 2e-3

    def __init__(
        self,
        cell: str = "gru",
        units: int = 64,
        layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.3,
        embedding_dim: int = 128,
        max_tokens: int = 20000,
        max_length: int = 400,
        truncating: str = "pre",
        lowercase: bool = True,
        strip_html: bool = True,
        punctuation: str = "split",
        pooling: str = "max_mean",
        ngram_buckets: int = 0,
        ngram_order: int = 2,
        ngram_nb: bool = False,
        encoders: int = 1,
        combine: str = "fit",
        seed: int = 0,
        tokenizer: str = "word",
    ):
        super().__init__(seed=seed)
        self.cell = cell_arg(cell)
        self.units = int_arg("units", units)
        self.layers = int_arg("layers", layers)
        self.bidirectional = bool_arg("bidirectional", bidirectional)
        self.dropout = rate_arg("dropout", dropout)
        self.embedding_dim = int_arg("embedding_dim", embedding_dim)
        self.pooling = choice("pooling", pooling, _POOLING)
        self.ngram_buckets = int_arg("ngram_buckets", ngram_buckets, minimum=0)
        self.ngram_order = int_arg("ngram_order", ngram_order, minimum=2, maximum=3)
        self.ngram_nb = bool_arg("ngram_nb", ngram_nb)
        self._ngram_prior = None  # (rows, classes) log-count ratios, set by fit
        self.encoders = int_arg("encoders", encoders)
        self.combine = choice("combine", combine, ("fit", "mean"))
        self._head_weights = None  # (weights (heads,), bias (classes,)) fitted on validation
        self.tokenizer = choice("tokenizer", tokenizer, TOKENIZERS)
        args = (max_tokens, max_length, lowercase, strip_html, punctuation, truncating)
        try:
            vectorizer = make_vectorizer(self.tokenizer, *args)
        except ValueError as error:
            raise PipelineError(str(error)) from None
        self.preprocessor = SentimentPreprocessor(vectorizer)

    @classmethod
    def from_folder(cls, path: str, meta: dict):
        # Folders saved before subwords (seqkit <= 0.2.0) name no tokenizer: they used words.
        return super().from_folder(path, config_default(meta, "tokenizer", "word"))

    @property
    def vectorizer(self) -> WordVectorizer | SubwordVectorizer:
        """The preprocessor's vectorizer (vocabulary and text normalisation): a
        ``WordVectorizer``, or a ``SubwordVectorizer`` with ``tokenizer="subword"``."""
        return self.preprocessor.vectorizer

    @property
    def labels(self) -> list | None:
        """The classes, in the order of ``predict_proba``'s columns (None before fit)."""
        return self.preprocessor.labels

    def get_config(self) -> dict:
        encoder = {k: getattr(self, k) for k in ("cell", "units", "layers", "bidirectional")}
        head = {k: getattr(self, k) for k in ("ngram_buckets", "ngram_order", "ngram_nb")}
        words = self.vectorizer.get_config()
        return {
            **encoder,
            "dropout": self.dropout,
            "embedding_dim": self.embedding_dim,
            **{k: words[k] for k in _VECTORIZER_ARGS},
            "pooling": self.pooling,
            **head,
            "encoders": self.encoders,
            "combine": self.combine,
            "seed": self.seed,
            "tokenizer": self.tokenizer,
        }

    # ----------------------------------------------------------------- data
    def _read(
        self,
        data,
        need_labels=True,
        text_column="text",
        label_column="label",
        encoding="utf-8",
        label_map=None,
        fitted_labels=None,
    ):
        """Labelled data as ``fit`` reads it, its labels mapped by ``label_map`` (a dict
        {data label: pipeline label}; :mod:`tasks.sentiment_labels`). ``fitted_labels``:
        the labels mapped onto (None while ``fit`` chooses them)."""
        if not isinstance(data, TextLabelData | TextStream):
            two = fitted_labels is None  # fine-tuning data may hold a single label
            data = read_text_classification(
                data, text_column, label_column, require_two_classes=two, encoding=encoding
            )
        return relabel(data, label_map, fitted_labels)

    def _read_fine_tune(self, data, **read_kwargs):
        """Like ``_read``, onto the fitted labels (one label is enough; 0/1 data against
        the labels negative/positive needs no map)."""
        return self._read(data, fitted_labels=self.labels, **read_kwargs)

    def _subset(self, data, index):
        return TextLabelData(
            [data.texts[i] for i in index], [data.labels[i] for i in index], data.source
        )

    def _fit_preprocessor(self, train) -> None:
        self._head_weights = None  # a new fit starts from the plain mean again
        self.preprocessor.fit(train)
        if self.ngram_buckets and self.ngram_nb:  # a second pass (streamed for a stream)
            chunks = train.chunks() if isinstance(train, TextStream) else [train]
            self._ngram_prior = count_ngram_prior(self._ngram_bag(), self._prior_batches(chunks))

    def _prior_batches(self, chunks):
        for chunk in chunks:
            ids, y = self._encode(chunk), self.preprocessor.label_ids(chunk.labels)
            for start in range(0, len(ids), 256):
                index = np.arange(start, min(start + 256, len(ids)))
                yield pad(ids, index), y[index]

    def _ngram_bag(self):
        return NgramBag(
            self.vectorizer.vocabulary_size,
            self.ngram_buckets,
            len(self.labels),
            order=self.ngram_order,
            prior=self.ngram_nb,
            seed=self.seed,
            name="ngrams",
        )

    def _check_fine_tune_data(self, data, name) -> None:
        if data is not None:
            self.preprocessor.check_labels(data.labels, name)

    def _encode(self, data: TextLabelData) -> list[np.ndarray]:
        # Cached on the data with the vocabulary they are ids of (data can meet other pipelines).
        vocabulary, ids = getattr(data, "_ids", (None, None))
        if vocabulary is not self.vectorizer.vocabulary:
            vocabulary, ids = self.vectorizer.vocabulary, self.preprocessor.encode(data.texts)
            data._ids = (vocabulary, ids)
        return ids

    def _dataset(self, data, batch_size, shuffle_seed):
        if isinstance(data, TextStream):
            return stream_dataset(data, self.preprocessor, batch_size, shuffle_seed)
        y = self.preprocessor.label_ids(data.labels)
        return labelled_dataset(self._encode(data), y, batch_size, shuffle_seed)

    # ----------------------------------------------------------------- model
    def _build_model(self):
        if not self.preprocessor.fitted:
            raise PipelineError("The preprocessor is not fitted; call fit() first.")
        ids = keras.Input((None,), dtype="int32", name="token_ids")
        embedded = keras.layers.Embedding(
            self.vectorizer.vocabulary_size, self.embedding_dim, mask_zero=True, name="embedding"
        )(ids)  # (batch, time, embedding_dim)
        heads = []
        for e in range(self.encoders):
            # Encoders after the first share the embedding but nothing else; each has
            # its own classifier and loss, so they act as an ensemble in one model.
            tag = "" if e == 0 else f"_{e + 1}"
            x = embedded
            if self.dropout:
                x = keras.layers.SpatialDropout1D(self.dropout, name=f"word_dropout{tag}")(x)
            x = sk.RecurrentStack(
                self.cell,
                self.units,
                layers=self.layers,
                bidirectional=self.bidirectional,
                return_sequences=self.pooling != "last",
                name=f"encoder{tag}",
            )(x)  # (batch, time, units * directions) or (batch, units * directions)
            if self.pooling != "last":
                x = sk.MaskedGlobalPooling(self.pooling, name=f"pooling{tag}")(x)
            if self.dropout:
                x = keras.layers.Dropout(self.dropout, name=f"dropout{tag}")(x)
            heads.append(keras.layers.Dense(len(self.labels), name=f"classifier{tag}")(x))
        if self.ngram_buckets:
            bag = self._ngram_bag()
            heads.append(bag(ids))
            if self._ngram_prior is not None:  # a fresh fit; a loaded model reads its own
                bag.prior.assign(self._ngram_prior)
        logits = StackHeads(name="heads")(heads)  # (batch, heads, classes)
        return keras.Model(ids, logits, name="sentiment")

    def _legacy_weight_path(self, path: str) -> str:
        """The 0.1.0 name of a weight (see :func:`tasks.sentiment_heads.legacy_weight_path`)."""
        return legacy_weight_path(path, self.encoders)

    def _loss(self):
        return HeadsCrossentropy()

    def _metrics(self):
        return [keras.metrics.MeanMetricWrapper(heads_accuracy, name="accuracy")]

    def _get_assets(self) -> dict:
        if self._head_weights is None:
            return {}
        weights, bias = self._head_weights
        return {"head_weights": {"weights": weights.tolist(), "bias": bias.tolist()}}

    def _set_assets(self, assets: dict) -> None:
        self._head_weights = read_head_weights(assets, self._n_heads, len(self.labels))

    # ----------------------------------------------------------------- head combination
    @property
    def _n_heads(self) -> int:
        return self.encoders + (1 if self.ngram_buckets else 0)

    def _head_combination(self) -> tuple[np.ndarray, np.ndarray]:
        """(weights (heads,), bias (classes,)): the fitted ones, else the plain mean."""
        if self._head_weights is not None:
            return self._head_weights
        return (
            np.full(self._n_heads, 1.0 / self._n_heads, np.float32),
            np.zeros(len(self.labels), np.float32),
        )

    def _combine_heads(self, logits: np.ndarray) -> np.ndarray:
        """(n, heads, classes) -> (n, classes), as predictions and the export combine them."""
        weights, bias = self._head_combination()
        return np.einsum("nhc,h->nc", logits, weights) + bias

    def _labels_and_logits(self, data, batch_size: int = 256, heads: bool = False):
        """Label ids and logits of labelled data; a stream chunk by chunk (only
        labels and logits are kept)."""
        chunks = data.chunks() if isinstance(data, TextStream) else [data]
        ys, logits = [], []
        for chunk in chunks:
            ys.append(self.preprocessor.label_ids(chunk.labels))
            logits.append(self._logits(self._encode(chunk), batch_size, heads))
        return np.concatenate(ys), np.concatenate(logits)

    def _train(self, train, val, stage, *args, **kwargs):
        # The combination follows the heads: fit it on the held-out data, or (fine_tune
        # of fewer than 20 examples) on the fine-tuning data itself.
        self._combine_on = val if val is not None or stage == "fit" else train
        return super()._train(train, val, stage, *args, **kwargs)

    def _after_training(self, val) -> None:
        data = getattr(self, "_combine_on", val)
        self._combine_on = None
        if self.combine != "fit" or data is None:
            return
        y, logits = self._labels_and_logits(data, heads=True)
        self._head_weights = fit_head_weights(logits, y)

    # ----------------------------------------------------------------- inference
    def _texts(self, inputs, what) -> list[str]:
        self._require_fitted(what)
        return read_texts(inputs).texts

    def _logits(self, ids: list[np.ndarray], batch_size: int = 256, heads=False) -> np.ndarray:
        """Logits, (n, classes): the heads combined (see ``combine``), or (n, heads, classes)."""
        fn = getattr(self, "_forward", None)
        if fn is None or fn.model is not self.model:
            # One trace for every batch shape (Keras's predict_on_batch retraces per shape).
            fn = tf.function(
                lambda x: self.model(x, training=False),  # (batch, heads, classes)
                input_signature=[tf.TensorSpec((None, None), tf.int32)],
            )
            fn.model = self.model
            self._forward = fn
        out = np.zeros((len(ids), self._n_heads, len(self.labels)), dtype=np.float32)
        for index in length_batches(ids, batch_size, np.arange(len(ids))):
            out[index] = fn(tf.constant(pad(ids, index))).numpy()
        return out if heads else self._combine_heads(out)

    def head_accuracy(self, data, **read_kwargs) -> dict:
        """Accuracy of each head alone ("recurrent", "ngrams") and combined as predictions are."""
        self._require_fitted("head_accuracy")
        data = self._read_fine_tune(data, **read_kwargs)
        y, logits = self._labels_and_logits(data, heads=True)  # logits (n, heads, classes)
        names = ["recurrent"] + [f"recurrent_{e + 1}" for e in range(1, self.encoders)]
        names += ["ngrams"] if self.ngram_buckets else []
        out = {name: float((logits[:, h].argmax(-1) == y).mean()) for h, name in enumerate(names)}
        out["combined"] = float((self._combine_heads(logits).argmax(-1) == y).mean())
        return out

    def predict_proba(self, inputs, batch_size: int = 256) -> np.ndarray:
        """Class probabilities, shape (n_texts, n_classes), columns in ``self.labels`` order."""
        texts = self._texts(inputs, "predict_proba")
        self.preprocessor.warn_truncated(texts, ids := self.preprocessor.encode(texts))
        return softmax(self._logits(ids, batch_size))

    def predict(self, inputs, batch_size: int = 256) -> list[dict]:
        """Labels and scores: ``[{"label": ..., "score": ...}]``, one per text.

        Args:
            inputs: a string, a list of strings, a pandas Series or DataFrame
                (its ``text`` column).
        """
        proba = self.predict_proba(inputs, batch_size)
        best = proba.argmax(axis=-1)
        return [{"label": self.labels[k], "score": float(p[k])} for k, p in zip(best, proba)]

    def evaluate(self, data, batch_size: int = 256, **read_kwargs) -> dict:
        """Accuracy, macro F1, cross-entropy loss and the confusion matrix on labelled data.

        Args:
            data: labelled data in any form ``fit`` takes (a stream is read chunk by chunk).
            **read_kwargs: the reader's (``text_column``, ``label_column``,
                ``encoding``) and ``label_map``: a dict from the data's labels to
                the pipeline's (``{0: "negative", 1: "positive"}``; 0/1 labels need
                none against the labels negative/positive).

        Returns:
            ``{"accuracy", "f1", "loss", "confusion_matrix", "labels", "n"}``; rows of
            the confusion matrix are true labels, columns predictions, both in
            ``labels`` order.
        """
        from tasks.sentiment_inspect import classification_metrics

        self._require_fitted("evaluate")
        data = self._read_fine_tune(data, **read_kwargs)
        self._check_fine_tune_data(data, "data")
        return classification_metrics(*self._labels_and_logits(data, batch_size), self.labels)

    def explain(self, text: str, label=None) -> list[tuple[str, float]]:
        """Per-token attributions by occlusion: how much each token raises the label's probability.

        Each token (a word; a piece with ``tokenizer="subword"``) is deleted in
        turn; its weight is p(label | text) minus p(label | text without it).
        Positive weights push towards ``label`` (default: the predicted label),
        negative ones away from it (:mod:`tasks.sentiment_inspect`).

        Returns:
            ``[(token, weight), ...]`` for the tokens the model reads (after
            normalisation and truncation: the last ``max_length``, or the first
            with ``truncating="post"``, with a warning saying which), in text
            order; in float64, so a near-certain prediction still ranks its tokens.
        """
        from tasks.sentiment_inspect import explain

        return explain(self, text, label)

    # ----------------------------------------------------------------- export
    def _serving(self):
        """What ``export`` saves: ``serving_default(text: tf.string[None])``.

        The signature returns ``probabilities`` (float32, (n, classes)),
        ``label`` (the predicted label as a string) and ``score``. Tokenization is
        in the graph: it needs only TensorFlow to run, and with
        ``tokenizer="subword"`` ``import tensorflow_text`` before loading (the
        SentencePiece op).
        """
        # A bare copy: nothing of training (optimizer, compiled metrics) goes into the graph.
        labels = [str(x) for x in self.labels]
        module = SentimentServing(
            self.vectorizer, self._bare_model(), labels, *self._head_combination()
        )
        return module, {"serving_default": module.serve}
