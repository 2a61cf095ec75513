"""Sentiment analysis (text classification): words → embedding → seqkit recurrent encoder → classes.

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
from keras import ops

import seqkit.layers as sk
from seqkit.data import (
    DataError,
    TextLabelData,
    TextStream,
    read_text_classification,
    read_texts,
    repair_surrogates,
)
from tasks.base import Pipeline, PipelineError, register
from tasks.base import choice as _choice
from tasks.base import int_arg as _int_arg
from tasks.base import rate_arg as _rate_arg

__all__ = ["SentimentPipeline"]

_CELLS = ("lstm", "gru", "rnn")
_POOLING = ("max_mean", "max", "mean", "last")
_BUCKET = 32  # sequences in a batch are padded to a multiple of this
_SORT_SPAN = 50  # batches are sorted by length within spans of this many batches


@register("sentiment")
class SentimentPipeline(Pipeline):
    """Text classifier (binary or multi-class) built on seqkit's recurrent layers.

    Text is lowercased, stripped of HTML line breaks and split into words and
    punctuation inside the TensorFlow graph; words become ids from a
    vocabulary built on the training texts; an embedding feeds a (bi)recurrent
    encoder whose outputs are max- and mean-pooled over the words; a dense
    layer gives one logit per class. Optionally (``ngram_buckets``) a second,
    linear head over the words and hashed word bigrams sits beside the
    recurrent one: each head is trained on its own cross-entropy in the same
    model, and predictions average the two heads' logits (``head_accuracy``
    reports each head alone).

    Args:
        cell: "lstm", "gru" or "rnn".
        units: state size of each recurrent layer (per direction).
        layers: number of stacked recurrent layers.
        bidirectional: read the text both ways.
        dropout: dropout on the embeddings (whole words) and before the classifier.
        embedding_dim: size of the word vectors.
        max_tokens: vocabulary size (including padding and out-of-vocabulary).
        max_length: longest text in words; longer texts are truncated.
        truncating: "pre" keeps a long text's end, "post" its beginning.
        lowercase, strip_html: text normalisation switches.
        punctuation: "split" (own tokens), "strip" (removed) or "keep" (attached).
        pooling: "max_mean", "max", "mean" or "last" (the encoder's final state).
        ngram_buckets: size of the hashed word n-gram table (0: none).
        ngram_order: longest word n-gram in that table: 2 (words and bigrams) or 3
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
            temperature-and-bias calibration); without validation data, or with
            "mean", the plain mean of the heads' logits.
        seed: seeds weights, data order and dropout.

    Example:

    >>> clf = SentimentPipeline(units=16, max_tokens=1000).fit(train_df, epochs=3)
    >>> clf.predict(["What a film!"])
    [{'label': 'positive', 'score': 0.91}]
    """

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
    ):
        super().__init__(seed=seed)
        from seqkit.text import WordVectorizer

        self.cell = _choice("cell", cell, _CELLS)
        self.units = _int_arg("units", units)
        self.layers = _int_arg("layers", layers)
        if not isinstance(bidirectional, bool):
            raise PipelineError(
                f"Received `bidirectional={bidirectional!r}`; expected True or False."
            )
        self.bidirectional = bidirectional
        self.dropout = _rate_arg("dropout", dropout)
        self.embedding_dim = _int_arg("embedding_dim", embedding_dim)
        self.pooling = _choice("pooling", pooling, _POOLING)
        self.ngram_buckets = _int_arg("ngram_buckets", ngram_buckets, minimum=0)
        self.ngram_order = _int_arg("ngram_order", ngram_order, minimum=2, maximum=3)
        if not isinstance(ngram_nb, bool):
            raise PipelineError(f"Received `ngram_nb={ngram_nb!r}`; expected True or False.")
        self.ngram_nb = ngram_nb
        self._ngram_prior = None  # (rows, classes) log-count ratios, set by fit
        self.encoders = _int_arg("encoders", encoders)
        self.combine = _choice("combine", combine, ("fit", "mean"))
        self._head_weights = None  # (weights (heads,), bias (classes,)) fitted on validation
        try:
            self.vectorizer = WordVectorizer(
                max_tokens=max_tokens,
                max_length=max_length,
                lowercase=lowercase,
                strip_html=strip_html,
                punctuation=punctuation,
                truncating=truncating,
            )
        except ValueError as error:
            raise PipelineError(str(error)) from None
        self.labels: list | None = None

    def get_config(self) -> dict:
        v = self.vectorizer.get_config()
        return {
            "cell": self.cell,
            "units": self.units,
            "layers": self.layers,
            "bidirectional": self.bidirectional,
            "dropout": self.dropout,
            "embedding_dim": self.embedding_dim,
            "max_tokens": v["max_tokens"],
            "max_length": v["max_length"],
            "truncating": v["truncating"],
            "lowercase": v["lowercase"],
            "strip_html": v["strip_html"],
            "punctuation": v["punctuation"],
            "pooling": self.pooling,
            "ngram_buckets": self.ngram_buckets,
            "ngram_order": self.ngram_order,
            "ngram_nb": self.ngram_nb,
            "encoders": self.encoders,
            "combine": self.combine,
            "seed": self.seed,
        }

    # ----------------------------------------------------------------- data
    def _read(
        self,
        data,
        need_labels,
        text_column="text",
        label_column="label",
        require_two_classes=True,
    ):
        if isinstance(data, TextLabelData | TextStream):
            return data
        return read_text_classification(
            data, text_column, label_column, require_two_classes=require_two_classes
        )

    def _subset(self, data, index):
        return TextLabelData(
            [data.texts[i] for i in index], [data.labels[i] for i in index], data.source
        )

    def _fit_preprocessor(self, train) -> None:
        self._head_weights = None  # a new fit starts from the plain mean again
        if isinstance(train, TextStream):  # one streamed pass; the file is never whole
            self.vectorizer.build_vocabulary(chunk.texts for chunk in train.chunks())
            self.labels = train.labels
            if len(self.labels) < 2:
                raise DataError(
                    f"{train.source}: every row has the same label ({self.labels[0]!r}); "
                    "training needs at least two classes."
                )
            if self.ngram_buckets and self.ngram_nb:  # a second streamed pass
                self._ngram_prior = self._count_ngram_prior(train.chunks())
            return
        self.vectorizer.build_vocabulary(train.texts)
        self.labels = sorted(set(train.labels))
        if self.ngram_buckets and self.ngram_nb:
            self._ngram_prior = self._count_ngram_prior([train])

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

    def _count_ngram_prior(self, chunks, smoothing: float = 1.0) -> np.ndarray:
        """One-vs-rest naive-Bayes log-count ratios of every n-gram row.

        ``r[g, c] = log(p_c[g] / |p_c|) - log(q_c[g] / |q_c|)``, where ``p_c`` counts
        the training texts of class c that contain gram g (each text once), ``q_c``
        those of the other classes, both plus ``smoothing``.
        """
        bag = self._ngram_bag()
        rows = self.vectorizer.vocabulary_size + self.ngram_buckets
        counts = np.zeros((len(self.labels), rows), dtype=np.float64)
        for chunk in chunks:
            ids, y = self._encode(chunk), self._label_ids(chunk.labels)
            for start in range(0, len(ids), 256):
                index = np.arange(start, min(start + 256, len(ids)))
                grams, weight = (np.asarray(t) for t in bag.gram_ids(self._pad(ids, index)))
                for row, label in zip(range(len(index)), y[index]):
                    counts[label, np.unique(grams[row][weight[row] > 0])] += 1.0
        present = counts + smoothing  # (classes, rows)
        rest = counts.sum(axis=0, keepdims=True) - counts + smoothing  # other classes
        ratios = np.log(present / present.sum(axis=1, keepdims=True)) - np.log(
            rest / rest.sum(axis=1, keepdims=True)
        )
        return ratios.T.astype(np.float32)  # (rows, classes)

    def _check_fine_tune_data(self, data, name) -> None:
        if data is None:
            return
        unknown = sorted({str(x) for x in data.labels} - {str(x) for x in self.labels})
        if unknown:
            raise DataError(
                f"{name}: labels {unknown} are not among the pipeline's labels "
                f"{self.labels}. fine_tune keeps the classes; train a new pipeline with "
                "fit() to add classes."
            )
        kinds = {type(x) for x in data.labels} | {type(x) for x in self.labels}
        if len(kinds) > 1:
            raise DataError(
                f"{name}: labels are {sorted(k.__name__ for k in kinds)} but the pipeline's "
                f"labels are {self.labels}; use the same kind."
            )

    def _label_ids(self, labels) -> np.ndarray:
        index = {label: i for i, label in enumerate(self.labels)}
        return np.array([index[label] for label in labels], dtype=np.int32)

    def _encode(self, data: TextLabelData) -> list[np.ndarray]:
        cached = getattr(data, "_ids", None)
        if cached is None:
            cached = self.vectorizer.encode(data.texts)
            data._ids = cached
        return cached

    @staticmethod
    def _batches(ids, batch_size, order):
        """Yields index arrays: chunks of 50 batches sorted by length (less padding)."""
        lengths = np.array([len(x) for x in ids])
        chunk = batch_size * _SORT_SPAN
        batches = []
        for start in range(0, len(order), chunk):
            part = order[start : start + chunk]
            part = part[np.argsort(lengths[part], kind="stable")]
            batches.extend(part[b : b + batch_size] for b in range(0, len(part), batch_size))
        return batches

    def _pad(self, ids, index) -> np.ndarray:
        longest = max((len(ids[i]) for i in index), default=0)
        width = max(_BUCKET, -(-longest // _BUCKET) * _BUCKET)
        out = np.zeros((len(index), width), dtype=np.int32)
        for row, i in enumerate(index):
            out[row, : len(ids[i])] = ids[i]
        return out

    def _dataset(self, data, batch_size, shuffle_seed):
        if isinstance(data, TextStream):
            return self._stream_dataset(data, batch_size, shuffle_seed)
        ids = self._encode(data)
        y = self._label_ids(data.labels)
        if shuffle_seed is None:
            batches = self._batches(ids, batch_size, np.arange(len(ids)))
        else:
            rng = np.random.RandomState(shuffle_seed % 2**32)
            batches = self._batches(ids, batch_size, rng.permutation(len(ids)))
            rng.shuffle(batches)

        def generate():
            for index in batches:
                yield self._pad(ids, index), y[index]

        signature = (
            tf.TensorSpec((None, None), tf.int32),
            tf.TensorSpec((None,), tf.int32),
        )
        dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
        # A known length lets Keras draw the progress bar and end the epoch cleanly.
        return dataset.apply(tf.data.experimental.assert_cardinality(len(batches))).prefetch(2)

    def _stream_dataset(self, stream, batch_size, shuffle_seed):
        """Batches read chunk by chunk from a file; shuffled within each chunk."""

        def generate():
            rng = np.random.RandomState(shuffle_seed % 2**32) if shuffle_seed is not None else None
            for chunk in stream.chunks():
                ids, y = self.vectorizer.encode(chunk.texts), self._label_ids(chunk.labels)
                order = rng.permutation(len(ids)) if rng is not None else np.arange(len(ids))
                batches = self._batches(ids, batch_size, order)
                if rng is not None:
                    rng.shuffle(batches)
                for index in batches:
                    yield self._pad(ids, index), y[index]

        signature = (tf.TensorSpec((None, None), tf.int32), tf.TensorSpec((None,), tf.int32))
        dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
        span = batch_size * _SORT_SPAN  # _batches splits each chunk the same way
        n_batches = sum(
            (size // span) * _SORT_SPAN + -(-(size % span) // batch_size)
            for size in stream.chunk_sizes()
        )
        return dataset.apply(tf.data.experimental.assert_cardinality(n_batches)).prefetch(2)

    # ----------------------------------------------------------------- model
    def _build_model(self):
        if self.labels is None or self.vectorizer.vocabulary is None:
            raise PipelineError("The preprocessor is not fitted; call fit() first.")
        recurrent = {"lstm": sk.LSTM, "gru": sk.GRU, "rnn": sk.SimpleRNN}[self.cell]
        ids = keras.Input((None,), dtype="int32", name="token_ids")
        x = keras.layers.Embedding(
            self.vectorizer.vocabulary_size, self.embedding_dim, mask_zero=True, name="embedding"
        )(ids)  # (batch, time, embedding_dim)
        embedded = x
        heads = []
        for e in range(self.encoders):
            # Encoders after the first share the embedding but nothing else; each has
            # its own classifier and loss, so they act as an ensemble in one model.
            tag = "" if e == 0 else f"_{e + 1}"
            x = embedded
            if self.dropout:
                x = keras.layers.SpatialDropout1D(self.dropout, name=f"word_dropout{tag}")(x)
            for i in range(self.layers):
                last = i == self.layers - 1 and self.pooling == "last"
                name = f"{self.cell}_{i}{tag}"
                layer = recurrent(self.units, return_sequences=not last, name=name)
                if self.bidirectional:
                    layer = sk.Bidirectional(layer, name=f"bi{name}")
                x = layer(x)  # (batch, time, units * directions) or (batch, units * directions)
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

    def _loss(self):
        return HeadsCrossentropy()

    def _metrics(self):
        return [keras.metrics.MeanMetricWrapper(_heads_accuracy, name="accuracy")]

    def _get_assets(self) -> dict:
        assets = {"vocabulary": list(self.vectorizer.vocabulary or []), "labels": self.labels}
        if self._head_weights is not None:
            weights, bias = self._head_weights
            assets["head_weights"] = {"weights": weights.tolist(), "bias": bias.tolist()}
        return assets

    def _set_assets(self, assets: dict) -> None:
        try:
            self.vectorizer.set_vocabulary(assets["vocabulary"])
            labels = assets["labels"]
        except (KeyError, TypeError, ValueError) as error:
            raise PipelineError(f"The saved assets are damaged ({error}).") from None
        if not isinstance(labels, list) or len(labels) < 2:
            raise PipelineError("The saved assets are damaged (labels must list >= 2 classes).")
        self.labels = labels
        self._head_weights = None
        if "head_weights" in assets:  # (absent from pipelines saved before `combine`)
            try:
                weights = np.asarray(assets["head_weights"]["weights"], dtype=np.float32)
                bias = np.asarray(assets["head_weights"]["bias"], dtype=np.float32)
            except (KeyError, TypeError, ValueError) as error:
                raise PipelineError(
                    f"The saved assets are damaged (head_weights: {error})."
                ) from None
            heads = self._n_heads
            if (
                weights.shape != (heads,)
                or bias.shape != (len(labels),)
                or not (np.isfinite(weights).all() and np.isfinite(bias).all())
            ):
                raise PipelineError(
                    f"The saved assets are damaged (head_weights must hold {heads} weights "
                    f"and {len(labels)} biases, all finite)."
                )
            self._head_weights = (weights, bias)

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
        if isinstance(data, TextStream):
            parts = [
                (
                    self._label_ids(c.labels),
                    self._logits(self.vectorizer.encode(c.texts), batch_size, heads),
                )
                for c in data.chunks()
            ]
            return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        return self._label_ids(data.labels), self._logits(self._encode(data), batch_size, heads)

    def _after_training(self, val) -> None:
        if self.combine != "fit" or val is None:
            return  # keep what there is (fine_tune without validation data keeps the fit)
        y, logits = self._labels_and_logits(val, heads=True)
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
        for index in self._batches(ids, batch_size, np.arange(len(ids))):
            out[index] = fn(tf.constant(self._pad(ids, index))).numpy()
        return out if heads else self._combine_heads(out)

    def head_accuracy(self, data, **read_kwargs) -> dict:
        """Accuracy of each head alone ("recurrent", "ngrams") and combined as predictions are."""
        self._require_fitted("head_accuracy")
        data = read_text_classification(data, require_two_classes=False, **read_kwargs)
        y, logits = self._labels_and_logits(data, heads=True)  # logits (n, heads, classes)
        names = ["recurrent"] + [f"recurrent_{e + 1}" for e in range(1, self.encoders)]
        names += ["ngrams"] if self.ngram_buckets else []
        out = {name: float((logits[:, h].argmax(-1) == y).mean()) for h, name in enumerate(names)}
        out["combined"] = float((self._combine_heads(logits).argmax(-1) == y).mean())
        return out

    @staticmethod
    def _softmax(logits):
        z = logits - logits.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=-1, keepdims=True)

    def predict_proba(self, inputs, batch_size: int = 256) -> np.ndarray:
        """Class probabilities, shape (n_texts, n_classes), columns in ``self.labels`` order."""
        texts = self._texts(inputs, "predict_proba")
        return self._softmax(self._logits(self.vectorizer.encode(texts), batch_size))

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

        Returns:
            ``{"accuracy", "f1", "loss", "confusion_matrix", "labels", "n"}``; rows of
            the confusion matrix are true labels, columns predictions, both in
            ``labels`` order.
        """
        from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

        self._require_fitted("evaluate")
        if isinstance(data, TextStream):
            self._check_fine_tune_data(data, "data")
        else:
            data = read_text_classification(data, require_two_classes=False, **read_kwargs)
            self._check_fine_tune_data(data, "data")
        y, logits = self._labels_and_logits(data, batch_size)
        z = logits - logits.max(axis=-1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
        pred = logits.argmax(axis=-1)
        classes = list(range(len(self.labels)))
        return {
            "accuracy": float(accuracy_score(y, pred)),
            "f1": float(f1_score(y, pred, average="macro", labels=classes, zero_division=0)),
            "loss": float(-log_p[np.arange(len(y)), y].mean()),
            "confusion_matrix": confusion_matrix(y, pred, labels=classes).tolist(),
            "labels": list(self.labels),
            "n": len(y),
        }

    def explain(self, text: str, label=None) -> list[tuple[str, float]]:
        """Per-word attributions by occlusion: how much each word raises the label's probability.

        Each word is deleted in turn; its weight is p(label | text) minus
        p(label | text without that word). Positive weights push towards
        ``label`` (default: the predicted label), negative ones away from it.

        Returns:
            ``[(word, weight), ...]`` for the words the model reads (after
            normalisation and truncation), in text order.
        """
        if not isinstance(text, str):
            raise PipelineError(f"explain() takes one string; received {type(text).__name__}.")
        text = repair_surrogates(text)
        self._require_fitted("explain")
        ids = self.vectorizer.encode([text])[0]
        words = self.vectorizer.tokens(text)
        if self.vectorizer.truncating == "pre":
            words = words[len(words) - len(ids) :]
        else:
            words = words[: len(ids)]
        if len(ids) == 0:
            return []
        variants = [ids] + [np.delete(ids, i) for i in range(len(ids))]
        proba = self._softmax(self._logits(variants))
        if label is None:
            k = int(proba[0].argmax())
        elif label in self.labels:
            k = self.labels.index(label)
        else:
            raise PipelineError(f"Received `label={label!r}`; expected one of {self.labels}.")
        weights = proba[0, k] - proba[1:, k]
        return [(w, float(v)) for w, v in zip(words, weights)]

    # ----------------------------------------------------------------- export
    def export(self, path: str) -> str:
        """Writes a SavedModel serving raw strings: ``serve(text: tf.string[None])``.

        The signature returns ``probabilities`` (float32, (n, classes)),
        ``label`` (the predicted label as a string) and ``score``. It needs only
        TensorFlow to run: tokenization is in the graph.

        Returns:
            ``path``.
        """
        from tasks.base import atomic_folder

        self._require_fitted("export")
        from seqkit.layers._tf_fast import exporting

        # A bare copy: nothing of training (optimizer, compiled metrics) goes into the graph.
        model = self._bare_model()
        module = _SentimentServing(
            self.vectorizer, model, [str(x) for x in self.labels], *self._head_combination()
        )
        with atomic_folder(path) as tmp, exporting():
            tf.saved_model.save(module, tmp, signatures={"serving_default": module.serve})
        return path


@keras.saving.register_keras_serializable(package="seqkit")
class NgramBag(keras.layers.Layer):
    """A linear term over the words and hashed word n-grams of a text.

    ``logits = scale * sum(table[gram] for gram in words + bigrams [+ trigrams])
    / sqrt(number of grams)``; bigrams (and, with ``order=3``, trigrams) are hashed
    into ``buckets`` rows after the vocabulary rows. ``scale``
    multiplies this table's effective learning rate under Adam (a linear model over
    sparse features needs far larger steps than the recurrent weights); ``dropout``
    drops whole grams in training.

    Call arguments:
        ids: (batch, time) int token ids, 0 = padding.

    Returns:
        (batch, classes).
    """

    def __init__(
        self,
        vocabulary_size,
        buckets,
        classes,
        scale=10.0,
        dropout=0.5,
        order=2,
        prior=False,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if order not in (2, 3):
            raise ValueError(f"Received `order={order!r}`; expected 2 or 3.")
        self.vocabulary_size = int(vocabulary_size)
        self.buckets = int(buckets)
        self.order = int(order)
        self.use_prior = bool(prior)
        self.classes = int(classes)
        self.scale = float(scale)
        self.dropout = float(dropout)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        self.table = self.add_weight(
            shape=(self.vocabulary_size + self.buckets, self.classes),
            initializer="zeros",
            name="table",
        )
        # Fixed per-gram scales of the table (naive-Bayes log-count ratios), set
        # by the pipeline from its training data.
        self.prior = None
        if self.use_prior:
            self.prior = self.add_weight(
                shape=(self.vocabulary_size + self.buckets, self.classes),
                initializer="ones",
                trainable=False,
                name="prior",
            )

    def gram_ids(self, ids):
        """Table rows of every gram and whether it is present (not padding).

        Args:
            ids: (batch, time) int token ids, 0 = padding.

        Returns:
            (grams, weight): (batch, grams) int32 rows and float32 0/1.
        """
        ids = ops.cast(ids, "int32")  # (batch, time)
        present = ops.cast(ids > 0, "float32")
        # int32 products wrap around; floor-mod keeps the hash in [0, buckets).
        pair = (ids[:, :-1] * 7919 + ids[:, 1:] * 104729) % self.buckets  # (batch, time - 1)
        both = present[:, :-1] * present[:, 1:]
        grams = [ids, pair + self.vocabulary_size]
        weights = [present, both]
        if self.order == 3:
            # A trigram extends its first two words' bigram hash with the third word.
            triple = (pair[:, :-1] * 1000003 + ids[:, 2:] * 8191 + 12289) % self.buckets
            grams.append(triple + self.vocabulary_size)
            weights.append(both[:, :-1] * present[:, 2:])
        grams = ops.concatenate(grams, axis=1)  # (batch, grams)
        weight = ops.concatenate(weights, axis=1)  # (batch, grams)
        return grams, weight

    def call(self, ids, training=False):
        grams, weight = self.gram_ids(ids)
        if training and self.dropout:
            keep = keras.random.uniform(ops.shape(weight), seed=self.seed_generator)
            weight = weight * ops.cast(keep >= self.dropout, weight.dtype)
        rows = ops.take(self.table, grams, axis=0) * self.scale  # (batch, grams, classes)
        if self.prior is not None:
            rows = rows * ops.take(self.prior, grams, axis=0)
        total = ops.sum(rows * weight[..., None], axis=1)  # (batch, classes)
        return total / ops.sqrt(ops.maximum(ops.sum(weight, axis=1, keepdims=True), 1.0))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.classes)

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "buckets": self.buckets,
            "classes": self.classes,
            "scale": self.scale,
            "dropout": self.dropout,
            "order": self.order,
            "prior": self.use_prior,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="seqkit")
class StackHeads(keras.layers.Layer):
    """Stacks per-head logits: [(batch, classes)] * heads -> (batch, heads, classes)."""

    def call(self, heads):
        return ops.stack(heads, axis=1)

    def compute_output_shape(self, input_shapes):
        return (input_shapes[0][0], len(input_shapes), input_shapes[0][1])


@keras.saving.register_keras_serializable(package="seqkit")
class HeadsCrossentropy(keras.losses.Loss):
    """Mean over heads of each head's own cross-entropy: the heads learn side by side
    (an ensemble in one model) and predictions average their logits."""

    def __init__(self, name="heads_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        # y_true (batch,) class ids; y_pred (batch, heads, classes) logits
        log_p = ops.log_softmax(y_pred, axis=-1)
        y = ops.cast(ops.reshape(y_true, (-1, 1, 1)), "int32")
        y = ops.broadcast_to(y, (ops.shape(y_pred)[0], ops.shape(y_pred)[1], 1))
        return -ops.mean(ops.take_along_axis(log_p, y, axis=-1)[..., 0], axis=1)


def _heads_accuracy(y_true, y_pred):
    mean_logits = ops.mean(y_pred, axis=1)  # (batch, classes)
    predicted = ops.cast(ops.argmax(mean_logits, axis=-1), "int32")
    return ops.cast(ops.equal(predicted, ops.cast(ops.reshape(y_true, (-1,)), "int32")), "float32")


class _SentimentServing(tf.Module):
    """What ``export`` saves: vectorizer + model + labels behind one string signature."""

    def __init__(self, vectorizer, model, labels, head_weights, class_bias):
        super().__init__()
        self.vectorizer = vectorizer
        self.model = model
        self.labels = tf.constant(labels)
        self.head_weights = tf.constant(head_weights, tf.float32)
        self.class_bias = tf.constant(class_bias, tf.float32)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text):
        ids = self.vectorizer(text).to_tensor()  # (batch, longest)
        ids = tf.pad(ids, [[0, 0], [0, 1]])  # one padding step: empty texts still have a step
        heads = tf.cast(self.model(ids, training=False), tf.float32)  # (batch, heads, classes)
        logits = tf.einsum("bhc,h->bc", heads, self.head_weights) + self.class_bias
        probabilities = tf.nn.softmax(logits, axis=-1)
        best = tf.argmax(probabilities, axis=-1)
        return {
            "probabilities": probabilities,
            "label": tf.gather(self.labels, best),
            "score": tf.reduce_max(probabilities, axis=-1),
        }


def fit_head_weights(logits: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A weight per head and a bias per class minimising the cross-entropy of
    ``sum_h w_h * logits[:, h] + b`` on held-out data (stacking).

    Convex in (w, b); solved with L-BFGS from the plain mean (w = 1/heads, b = 0),
    with an L2 pull towards that start worth one example, so a tiny or one-class
    validation set cannot push the weights far. The fitted objective is never
    above the mean's.

    Args:
        logits: (n, heads, classes) float.
        y: (n,) int class ids.

    Returns:
        (weights (heads,), bias (classes,)), float32.
    """
    from scipy.optimize import minimize

    logits = np.asarray(logits, dtype=np.float64)
    n, heads, classes = logits.shape
    w0 = np.full(heads, 1.0 / heads)
    lam = 1.0 / n
    rows = np.arange(n)

    def objective(theta):
        w, b = theta[:heads], theta[heads:]
        z = np.einsum("nhc,h->nc", logits, w) + b
        z = z - z.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(z).sum(axis=1))
        p = np.exp(z - log_norm[:, None])
        loss = (log_norm - z[rows, y]).mean()
        loss += 0.5 * lam * (((w - w0) ** 2).sum() + (b**2).sum())
        g = p
        g[rows, y] -= 1.0
        g /= n
        grad_w = np.einsum("nc,nhc->h", g, logits) + lam * (w - w0)
        grad_b = g.sum(axis=0) + lam * b
        return loss, np.concatenate([grad_w, grad_b])

    start = np.concatenate([w0, np.zeros(classes)])
    result = minimize(objective, start, jac=True, method="L-BFGS-B")
    theta = result.x if np.isfinite(result.fun) and result.fun <= objective(start)[0] else start
    return theta[:heads].astype(np.float32), theta[heads:].astype(np.float32)
