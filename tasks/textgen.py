"""Text generation: a character- or word-level recurrent language model.

tokens → embedding → stacked seqkit recurrent layers → logits over the vocabulary.
Generation reads the prompt once, then carries the recurrent state from token
to token: each new token costs one step of each layer (never a re-run of a
window), and the whole loop runs inside one TensorFlow graph, the same graph
that ``export`` saves.

Example:

>>> from tasks.textgen import TextGenPipeline
>>> lm = TextGenPipeline(level="char", units=128).fit("shakespeare.txt", epochs=5)
>>> lm.generate("ROMEO:", max_length=100, temperature=0.8, seed=1)
'ROMEO:\\nWhat say you ...'
>>> lm.evaluate(held_out_text)
{'loss': 1.52, 'perplexity': 4.57, 'bits_per_char': 2.19, 'tokens': 111540, ...}
"""

from __future__ import annotations

import math
import numbers
import warnings

import keras
import numpy as np
import tensorflow as tf

import seqkit.layers as sk
from seqkit.data import DataError, TextCorpus, TextFileStream, read_corpus, repair_surrogates
from seqkit.samplers import _check_temperature, _check_top_k, _check_top_p, sample_logits
from seqkit.text import LMTokenizer
from tasks.base import Pipeline, PipelineError, atomic_folder, register
from tasks.base import choice as _choice
from tasks.base import int_arg as _int_arg
from tasks.base import rate_arg as _rate_arg

__all__ = ["TextGenPipeline", "TextCorpus", "RecurrentLM"]

_CELLS = {"lstm": sk.LSTM, "gru": sk.GRU, "rnn": sk.SimpleRNN}
_LEVELS = ("char", "word")
_ON_UNKNOWN = ("replace", "error")
MAX_GENERATED = 1_000_000  # tokens per generate() call
STREAM_CHUNK = 8  # tokens generated per compiled call when streaming


# --------------------------------------------------------------------------- model
@keras.saving.register_keras_serializable(package="seqkit")
class RecurrentLM(keras.Model):
    """Embedding → stacked seqkit recurrent layers (dropout between) → vocabulary logits.

    Call arguments:
        ids: int tensor ``(batch, time)``.

    Returns:
        logits ``(batch, time, vocabulary_size)``.

    ``run(ids, states)`` also takes and returns the recurrent states (a list,
    one list of tensors per layer); ``step(token_ids, states)`` advances one
    token ``(batch,)`` with the layers' cells.
    """

    def __init__(
        self,
        vocabulary_size: int,
        embedding_dim: int = 64,
        cell: str = "lstm",
        units: int = 256,
        layers: int = 2,
        dropout: float = 0.2,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocabulary_size = vocabulary_size
        self.embedding_dim = embedding_dim
        self.cell_name = cell
        self.units = units
        self.n_layers = layers
        self.dropout_rate = dropout
        self.embedding = keras.layers.Embedding(vocabulary_size, embedding_dim, name="embedding")
        layer_class = _CELLS[cell]
        self.rnns = [
            layer_class(units, return_sequences=True, return_state=True, name=f"{cell}_{i}")
            for i in range(layers)
        ]
        self.drops = [keras.layers.Dropout(dropout, name=f"dropout_{i}") for i in range(layers)]
        self.head = keras.layers.Dense(vocabulary_size, name="logits")

    def run(self, ids, states=None, training=False):
        x = self.embedding(ids)  # (batch, time, embedding_dim)
        new_states = []
        for i, (rnn, drop) in enumerate(zip(self.rnns, self.drops)):
            initial = None if states is None else states[i]
            out = rnn(x, initial_state=initial, training=training)
            x, layer_states = out[0], list(out[1:])  # (batch, time, units)
            new_states.append(layer_states)
            x = drop(x, training=training)
        return self.head(x), new_states  # (batch, time, vocabulary_size)

    def step(self, token_ids, states):
        x = self.embedding(token_ids)  # (batch, embedding_dim)
        new_states = []
        for rnn, layer_states in zip(self.rnns, states):
            x, s = rnn.cell(x, list(layer_states), training=False)  # (batch, units)
            new_states.append(list(s))
        return self.head(x), new_states  # (batch, vocabulary_size)

    def call(self, ids, training=False):
        return self.run(ids, None, training)[0]

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "embedding_dim": self.embedding_dim,
            "cell": self.cell_name,
            "units": self.units,
            "layers": self.n_layers,
            "dropout": self.dropout_rate,
        }


# --------------------------------------------------------------------------- pipeline
@register("textgen")
class TextGenPipeline(Pipeline):
    """A recurrent language model that trains on plain text and generates more of it.

    Args:
        level: "char" (one token per character) or "word" (words, punctuation
            marks and line breaks).
        cell: "lstm", "gru" or "rnn".
        units: state size of each recurrent layer.
        layers: stacked recurrent layers.
        dropout: dropout after each recurrent layer (training only).
        embedding_dim: size of the token vectors.
        seq_length: tokens per training window (truncated backpropagation length).
        max_tokens: vocabulary size including padding and unknown (None: every
            token for char level, 20,000 for word level).
        lowercase: lowercase the text first (word level mostly).
        seed: seeds weights, data order and dropout.

    Training text may be a string, a .txt/.txt.gz path, a list of documents,
    a pandas Series/DataFrame or a ``tf.data.Dataset`` of strings. The
    validation text is the **end** of the training text (``validation_split``),
    never shuffled into training.

    Example:

    >>> lm = TextGenPipeline(units=64, seq_length=50).fit(text, epochs=3, verbose=0)
    >>> lm.generate("To be", max_length=20, temperature=0)
    'To be the the the the'
    """

    default_learning_rate = 2e-3

    def __init__(
        self,
        level: str = "char",
        cell: str = "lstm",
        units: int = 256,
        layers: int = 2,
        dropout: float = 0.2,
        embedding_dim: int = 64,
        seq_length: int = 100,
        max_tokens: int | None = None,
        lowercase: bool = False,
        seed: int = 0,
    ):
        super().__init__(seed=seed)
        self.level = _choice("level", level, _LEVELS)
        self.cell = _choice("cell", cell, tuple(_CELLS))
        self.units = _int_arg("units", units)
        self.layers = _int_arg("layers", layers)
        self.dropout = _rate_arg("dropout", dropout)
        self.embedding_dim = _int_arg("embedding_dim", embedding_dim)
        self.seq_length = _int_arg("seq_length", seq_length, minimum=2)
        if max_tokens is not None:
            max_tokens = _int_arg("max_tokens", max_tokens, minimum=3)
        self.max_tokens = max_tokens
        if not isinstance(lowercase, bool):
            raise PipelineError(f"Received `lowercase={lowercase!r}`; expected True or False.")
        self.lowercase = lowercase
        cap = max_tokens if max_tokens is not None else (None if level == "char" else 20000)
        self.tokenizer = LMTokenizer(level, max_tokens=cap, lowercase=lowercase)
        self._generator = None
        self._stream_token_counts: dict[str, int] = {}  # TextFileStream fingerprint -> tokens

    def get_config(self) -> dict:
        return {
            "level": self.level,
            "cell": self.cell,
            "units": self.units,
            "layers": self.layers,
            "dropout": self.dropout,
            "embedding_dim": self.embedding_dim,
            "seq_length": self.seq_length,
            "max_tokens": self.max_tokens,
            "lowercase": self.lowercase,
            "seed": self.seed,
        }

    # ----------------------------------------------------------------- hooks
    def _read(self, data, need_labels=True, text_column="text", encoding="utf-8", **kwargs):
        kwargs.pop("require_two_classes", None)
        if isinstance(data, TextFileStream) and not kwargs:
            return data
        if kwargs:
            raise PipelineError(
                f"Unknown argument(s) {sorted(kwargs)} for reading text; expected "
                "text_column or encoding."
            )
        try:
            return read_corpus(data, text_column=text_column, encoding=encoding)
        except DataError as error:
            raise PipelineError(str(error)) from None

    def _split(self, data, fraction):
        """Holds out the **end** of the text (never shuffled into training)."""
        if isinstance(data, TextFileStream):
            train, val = data.split(fraction, whole_words=self.level == "word")
            if self._count_tokens(val) < self.seq_length + 1:
                warnings.warn(
                    f"The held-out end of the text is shorter than one window (seq_length + 1 "
                    f"= {self.seq_length + 1}); training without validation.",
                    stacklevel=3,
                )
                return data, None
            return train, val
        cut = int(len(data.text) * (1 - fraction))
        if self.level == "word":  # do not cut a word in two
            space = max(data.text.rfind(" ", 0, cut), data.text.rfind("\n", 0, cut))
            cut = space + 1 if space > 0 else cut
        train, val = TextCorpus(data.text[:cut]), TextCorpus(data.text[cut:])
        n_val = int(self.tokenizer.split(tf.constant([val.text])).row_lengths()[0])
        if n_val < self.seq_length + 1:
            warnings.warn(
                f"The held-out end of the text ({n_val} tokens) is shorter than one window "
                f"(seq_length + 1 = {self.seq_length + 1}); training without validation. "
                "Give more text, a larger validation_split, or validation_data=...",
                stacklevel=3,
            )
            return data, None
        return train, val

    def _fit_preprocessor(self, train) -> None:
        if isinstance(train, TextFileStream):
            self.tokenizer.build_vocabulary(train.chunks(whole_words=self.level == "word"))
        else:
            self.tokenizer.build_vocabulary(train.text)
        self._generator = None
        self._check_length(train, "The training text")

    def _count_tokens(self, data) -> int:
        if isinstance(data, TextFileStream):  # one streamed pass per file view, then cached
            counts, key = self._stream_token_counts, data.fingerprint()
            if key not in counts:
                counts[key] = sum(
                    int(self.tokenizer.split(tf.constant([t])).row_lengths()[0])
                    for t in data.chunks(whole_words=self.level == "word")
                )
            return counts[key]
        return len(self._encode(data))

    def _check_length(self, data, what):
        n = self._count_tokens(data)
        if n < self.seq_length + 1:
            raise PipelineError(
                f"{what} has {n} tokens, shorter than one training window "
                f"(seq_length + 1 = {self.seq_length + 1}); give more text or a smaller "
                "seq_length."
            )

    def _check_fine_tune_data(self, data, name) -> None:
        if data is None:
            return
        what = "The training text" if name == "data" else "The validation text"
        self._check_length(data, what)
        if isinstance(data, TextFileStream):
            seen: dict[str, None] = {}
            for text in data.chunks(whole_words=self.level == "word"):
                seen.update(dict.fromkeys(self.tokenizer.unknown(text)))
            unknown = list(seen)
        else:
            unknown = self.tokenizer.unknown(data.text)
        if unknown:
            warnings.warn(
                f"{what} has {len(unknown)} token(s) not in the vocabulary "
                f"(e.g. {unknown[:5]}); they are read as [UNK].",
                stacklevel=4,
            )

    def _subset(self, data, index):
        raise NotImplementedError  # text is split by position, see _split

    def _encode(self, data: TextCorpus) -> np.ndarray:
        if data._ids is None or data._ids_vocab is not self.tokenizer.vocabulary:
            data._ids = self.tokenizer.encode(data.text).astype(np.int32)
            data._ids_vocab = self.tokenizer.vocabulary
        return data._ids

    def _windows(self, ids: np.ndarray, offset: int) -> tuple[np.ndarray, np.ndarray]:
        L = self.seq_length
        n = (len(ids) - offset - 1) // L
        x = ids[offset : offset + n * L].reshape(n, L)  # (windows, L)
        y = ids[offset + 1 : offset + n * L + 1].reshape(n, L)  # next tokens
        return x, y

    def _dataset(self, data, batch_size, shuffle_seed):
        if isinstance(data, TextFileStream):
            return self._stream_dataset(data, batch_size, shuffle_seed)
        ids = self._encode(data)
        if shuffle_seed is None:
            x, y = self._windows(ids, 0)
        else:
            rng, offset = self._window_phase(shuffle_seed, len(ids))
            x, y = self._windows(ids, offset)
            if len(x) == 0:
                x, y = self._windows(ids, 0)
            order = rng.permutation(len(x))
            x, y = x[order], y[order]
        return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)

    def _window_phase(self, shuffle_seed, n_tokens):
        """(the epoch's RNG, window offset): a new phase every epoch, so the model sees
        every boundary; the offset is the RNG's first draw."""
        rng = np.random.RandomState(shuffle_seed % 2**32)
        L = self.seq_length
        return rng, int(rng.randint(min(L, max(1, n_tokens - L))))

    def _stream_dataset(self, stream, batch_size, shuffle_seed):
        """Windows cut from the file chunk by chunk, as ``_dataset`` cuts them from memory."""
        L, n_tokens = self.seq_length, self._count_tokens(stream)
        offset = 0
        if shuffle_seed is not None:
            _, offset = self._window_phase(shuffle_seed, n_tokens)
            if (n_tokens - offset - 1) // L == 0:
                offset = 0
        n_windows = (n_tokens - offset - 1) // L
        whole = self.level == "word"

        def generate():
            order = None
            if shuffle_seed is not None:  # the same draws as _dataset: one chunk = same batches
                order, _ = self._window_phase(shuffle_seed, n_tokens)
            buffer, skip = np.zeros(0, np.int32), offset
            pending_x, pending_y = np.zeros((0, L), np.int32), np.zeros((0, L), np.int32)
            for text in stream.chunks(whole_words=whole):
                ids = self.tokenizer.encode(text).astype(np.int32)
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
            if len(pending_x):
                yield pending_x, pending_y

        spec = tf.TensorSpec((None, L), tf.int32)
        dataset = tf.data.Dataset.from_generator(generate, output_signature=(spec, spec))
        n_batches = -(-n_windows // batch_size)
        return dataset.apply(tf.data.experimental.assert_cardinality(n_batches)).prefetch(2)

    def _build_model(self):
        model = RecurrentLM(
            self.tokenizer.vocabulary_size,
            embedding_dim=self.embedding_dim,
            cell=self.cell,
            units=self.units,
            layers=self.layers,
            dropout=self.dropout,
        )
        model(np.zeros((1, 2), np.int32))  # build the weights
        return model

    def _loss(self):
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def _get_assets(self) -> dict:
        return {"vocabulary": list(self.tokenizer.vocabulary or [])}

    def _set_assets(self, assets: dict) -> None:
        try:
            self.tokenizer.set_vocabulary(assets["vocabulary"])
        except (KeyError, TypeError, ValueError) as error:
            raise PipelineError(f"The saved assets are damaged ({error}).") from None
        self._generator = None

    def fit(self, data, validation_data=None, *, epochs: int = 20, batch_size: int = 64, **kwargs):
        """Builds the vocabulary on ``data`` and trains from scratch.

        The validation text is ``validation_data`` or, by default, the last
        ``validation_split`` (10 %) of ``data`` by position. Other arguments as
        :meth:`tasks.base.Pipeline.fit` (learning_rate, patience, clipnorm,
        checkpoint_dir, strategy, verbose; text_column and encoding for reading).

        Returns:
            self.
        """
        self._generator = None
        return super().fit(data, validation_data, epochs=epochs, batch_size=batch_size, **kwargs)

    def fine_tune(self, data, validation_data=None, **kwargs):
        """Continues training on new text; the vocabulary is kept (new tokens → [UNK])."""
        self._generator = None
        return super().fine_tune(data, validation_data, **kwargs)

    # ----------------------------------------------------------------- evaluation
    def evaluate(self, data, batch_size: int = 32, **read_kwargs) -> dict:
        """Loss of the model on a text, reading it with the state carried throughout.

        The text is cut into ``batch_size`` contiguous streams read in windows of
        ``seq_length`` tokens, each window starting from the state the previous
        one ended in (as ``generate`` reads), so every token is predicted from
        all the text before it in its stream.

        Returns:
            ``{"loss"`` (nats per token), ``"perplexity"``, ``"bits_per_char"``
            (total bits over the characters of the text scored),
            ``"tokens"``, ``"characters"``, ``"unknown_tokens"}``.
        """
        self._require_fitted("evaluate")
        batch_size = _int_arg("batch_size", batch_size)
        corpus = self._read(data, **read_kwargs)
        ids = self._encode(corpus)
        n_targets = len(ids) - 1
        if n_targets < 1:
            raise PipelineError("The text has fewer than two tokens; nothing to score.")
        streams = max(1, min(batch_size, n_targets // self.seq_length))
        chunk = n_targets // streams
        x = ids[: streams * chunk].reshape(streams, chunk)
        y = ids[1 : streams * chunk + 1].reshape(streams, chunk)
        score = self._score_fn()
        states = None
        total = 0.0
        for start in range(0, chunk, self.seq_length):
            xs = tf.constant(x[:, start : start + self.seq_length])
            ys = tf.constant(y[:, start : start + self.seq_length])
            if states is None:
                states = self._zero_states(streams)
            nll, states = score(xs, ys, states)
            total += float(nll)
        n = streams * chunk
        loss = total / n
        scored = ids[1 : n + 1]
        characters = len(self.tokenizer.decode(scored)) if self.level == "word" else n
        return {
            "loss": loss,
            "perplexity": float(math.exp(min(loss, 700))),
            "bits_per_char": total / math.log(2) / max(characters, 1),
            "tokens": n,
            "characters": characters,
            "unknown_tokens": int((scored == 1).sum()),
        }

    def _zero_states(self, batch):
        return [
            [tf.zeros((batch, self.units)) for _ in range(2 if self.cell == "lstm" else 1)]
            for _ in range(self.layers)
        ]

    def _score_fn(self):
        fn = getattr(self, "_score", None)
        if fn is None or fn.model is not self.model:
            model = self.model

            @tf.function
            def fn(x, y, states):
                logits, new_states = model.run(x, states, training=False)
                nll = tf.nn.sparse_softmax_cross_entropy_with_logits(
                    labels=y, logits=tf.cast(logits, tf.float32)
                )
                return tf.reduce_sum(nll), new_states

            fn.model = model
            self._score = fn
        return fn

    # ----------------------------------------------------------------- generation
    def _generator_module(self):
        if self._generator is None or self._generator.model is not self.model:
            self._generator = _Generator(self.tokenizer, self.model, self._primer_id())
        return self._generator

    def _primer_id(self) -> int:
        """The token an empty prompt starts from: a line break if known, else the commonest."""
        vocab = self.tokenizer.vocabulary
        return vocab.index("\n") if "\n" in vocab else 2

    def _prompt_ids(self, prompt: str, on_unknown: str) -> np.ndarray:
        if not isinstance(prompt, str):
            raise PipelineError(
                f"Received a prompt of type {type(prompt).__name__}; expected a string."
            )
        _choice("on_unknown", on_unknown, _ON_UNKNOWN)
        prompt = repair_surrogates(prompt)
        if on_unknown == "error":
            unknown = self.tokenizer.unknown(prompt)
            if unknown:
                raise PipelineError(
                    f"The prompt has token(s) not in the vocabulary: {unknown[:10]}; remove them "
                    "or pass on_unknown='replace' to read them as [UNK]."
                )
        return self.tokenizer.encode(prompt).astype(np.int32)

    def generate(
        self,
        prompt: str = "",
        max_length: int = 200,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        stop=None,
        num_samples: int = 1,
        stream: bool = False,
        on_unknown: str = "replace",
        include_prompt: bool = True,
    ):
        """Continues ``prompt`` with up to ``max_length`` new tokens.

        The prompt is read once; then each new token is one step of each
        recurrent layer with the state carried over (O(1) work per token).

        Args:
            prompt: text to continue ("" starts a fresh text, after a line break).
            max_length: number of new tokens (characters or words) to generate, at most
                1,000,000.
            temperature: 0 is greedy (deterministic); higher is more random.
            top_k: draw only among the k most likely tokens.
            top_p: draw only from the nucleus holding probability mass p.
            seed: makes a sampled call repeat exactly (None: a fresh draw).
            stop: a string or list of strings; the text ends before the first one.
            num_samples: independent continuations, generated as one batch.
            stream: yield the new text piece by piece as it is produced
                (a generator of strings; ``num_samples`` must be 1).
            on_unknown: "replace" reads unknown prompt tokens as [UNK];
                "error" raises instead.
            include_prompt: return prompt + continuation (default) or only the
                continuation.

        Returns:
            A string (``num_samples=1``), a list of strings, or with
            ``stream=True`` a generator of text pieces.
        """
        self._require_fitted("generate")
        max_length = _int_arg("max_length", max_length, maximum=MAX_GENERATED)
        num_samples = _int_arg("num_samples", num_samples)
        for name, value, optional in (
            ("temperature", temperature, False),
            ("top_k", top_k, True),
            ("top_p", top_p, True),
        ):  # Python numbers here (the exported graph takes tensors)
            if not (optional and value is None) and (
                isinstance(value, bool) or not isinstance(value, numbers.Real)
            ):
                raise PipelineError(
                    f"Received `{name}={value!r}`; expected a number"
                    + (" or None." if optional else ".")
                )
        try:
            temperature = _check_temperature(temperature)
            top_k = _check_top_k(top_k)
            top_p = _check_top_p(top_p)
        except ValueError as error:
            raise PipelineError(str(error)) from None
        if seed is None:
            seed = int(np.random.randint(0, 2**31 - 1))
        seed = _int_arg("seed", seed, minimum=0, maximum=2**63 - 1) % (2**31 - 1)
        stops = _check_stop(stop)
        ids = self._prompt_ids(prompt, on_unknown)
        gen = self._generator_module()
        head = prompt if include_prompt else ""
        if stream:
            if num_samples != 1:
                raise PipelineError("stream=True generates one sample; use num_samples=1.")
            return self._stream(gen, ids, max_length, temperature, top_k, top_p, seed, stops, head)
        from seqkit.layers._tf_fast import exporting

        with exporting():  # plain while loops: one trace serves every prompt length
            out = gen.generate_ids(
                tf.constant(ids),
                tf.constant(num_samples, tf.int32),
                tf.constant(max_length, tf.int32),
                tf.constant(temperature, tf.float32),
                tf.constant(top_k, tf.int32),
                tf.constant(top_p, tf.float32),
                tf.constant(seed, tf.int32),
            )  # (num_samples, max_length)
        texts = [
            head + _cut(self._continuation(prompt, row), stops) for row in out.numpy().tolist()
        ]
        return texts[0] if num_samples == 1 else texts

    def _continuation(self, prompt: str, ids) -> str:
        text = self.tokenizer.decode_python(ids)
        if self.level == "word" and prompt and text and _needs_space(prompt, text):
            text = " " + text
        return text

    def _stream(self, gen, ids, max_length, temperature, top_k, top_p, seed, stops, head):
        from seqkit.layers._tf_fast import exporting

        with exporting():
            logits, states = gen.read_prompt(tf.constant(ids), tf.constant(1, tf.int32))
        params = (
            tf.constant(temperature, tf.float32),
            tf.constant(top_k, tf.int32),
            tf.constant(top_p, tf.float32),
        )
        if head:
            yield head
        produced: list[int] = []
        emitted = text = ""
        hold = max((len(s) for s in stops), default=1) - 1  # keep back what may start a stop
        t = 0
        while t < max_length:
            # A few tokens per call: the per-call overhead (~1-2 ms) would dominate
            # a single step; the text comes out in small pieces all the same.
            n = min(STREAM_CHUNK, max_length - t)
            tokens, logits, states = gen.continue_ids(
                logits, states, tf.constant(t), tf.constant(n), *params, tf.constant(seed)
            )
            t += n
            for token in tokens.numpy()[0].tolist():
                produced.append(token)
                text = self._continuation(head, produced)
                cut = _cut(text, stops)
                if len(cut) < len(text):  # a stop string appeared
                    if len(cut) > len(emitted):
                        yield cut[len(emitted) :]
                    return
                ready = text[: len(text) - hold] if hold else text
                if len(ready) > len(emitted):
                    yield ready[len(emitted) :]
                    emitted = ready
        if len(text) > len(emitted):
            yield text[len(emitted) :]

    def predict(self, inputs, **generate_kwargs):
        """``generate`` for one prompt or a list of prompts (a list of strings back)."""
        prompts = [inputs] if isinstance(inputs, str) else list(inputs)
        generate_kwargs.pop("stream", None)
        return [self.generate(p, **generate_kwargs) for p in prompts]

    # ----------------------------------------------------------------- export
    def export(self, path: str) -> str:
        """Writes a SavedModel whose ``generate`` signature runs the whole loop in the graph.

        Signatures (string in, string out; only TensorFlow is needed to serve):

        - ``generate(prompt: tf.string[], max_length: int32[], temperature: float32[],
          seed: int32[]) -> {"text": tf.string[]}``: prompt + continuation;
          temperature 0 is greedy.
        - ``generate_sampled(...)``: the same plus ``top_k: int32[]`` (0: off) and
          ``top_p: float32[]`` (1: off).

        Returns:
            ``path``.
        """
        self._require_fitted("export")
        from seqkit.layers._tf_fast import exporting

        model = self._bare_model()
        module = _Generator(self.tokenizer, model, self._primer_id())
        with atomic_folder(path) as tmp, exporting():
            tf.saved_model.save(
                module,
                tmp,
                signatures={
                    "generate": module.generate.get_concrete_function(),
                    "generate_sampled": module.generate_sampled.get_concrete_function(),
                },
            )
        return path


def _check_stop(stop) -> list[str]:
    if stop is None:
        return []
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list | tuple) or not all(isinstance(s, str) and s for s in stops):
        raise PipelineError(
            f"Received `stop={stop!r}`; expected a non-empty string or a list of them."
        )
    return list(stops)


def _cut(text: str, stops: list[str]) -> str:
    ends = [text.find(s) for s in stops]
    ends = [e for e in ends if e >= 0]
    return text[: min(ends)] if ends else text


def _needs_space(prompt: str, text: str) -> bool:
    return not prompt[-1].isspace() and not text[0].isspace() and text[0] not in ".,;:!?)]}»"


class _Generator(tf.Module):
    """Prompt reading, the sampling loop and decoding: one graph, in process and exported."""

    def __init__(self, tokenizer, model, primer_id):
        super().__init__()
        self.tokenizer = tokenizer
        self.model = model
        self.primer = tf.constant([primer_id], tf.int32)
        self.vocabulary_size = tokenizer.vocabulary_size
        # Streaming continues the loop a few tokens per call; a full signature keeps
        # each call's dispatch cheap.
        state = tf.TensorSpec([None, model.units], tf.float32)
        n = 2 if model.cell_name == "lstm" else 1
        self.continue_ids = tf.function(
            self._loop,
            input_signature=[
                tf.TensorSpec([None, self.vocabulary_size], tf.float32),
                [[state] * n for _ in range(model.n_layers)],
                tf.TensorSpec([], tf.int32),  # t0: index of the first new token
                tf.TensorSpec([], tf.int32),  # how many tokens
                tf.TensorSpec([], tf.float32),
                tf.TensorSpec([], tf.int32),
                tf.TensorSpec([], tf.float32),
                tf.TensorSpec([], tf.int32),
            ],
        )

    def _mask_special(self, logits):
        # [PAD] and [UNK] are never generated.
        special = tf.one_hot([0, 1], self.vocabulary_size, dtype=tf.float32)
        return tf.cast(logits, tf.float32) - 1e9 * tf.reduce_sum(special, axis=0)

    @tf.function(
        input_signature=[tf.TensorSpec([None], tf.int32), tf.TensorSpec([], tf.int32)],
        autograph=False,
    )
    def read_prompt(self, prompt_ids, num_samples):
        ids = tf.cond(tf.size(prompt_ids) > 0, lambda: prompt_ids, lambda: self.primer)
        ids = tf.tile(ids[None], [num_samples, 1])  # (samples, prompt)
        logits, states = self.model.run(ids, None, training=False)
        return self._mask_special(logits[:, -1]), states  # (samples, vocabulary)

    def _loop(self, logits, states, t0, n, temperature, top_k, top_p, seed):
        """Tokens t0 .. t0+n-1: sample, then one step of each layer, state carried.

        Token t is drawn with the stateless seed (seed, t), so a text generated in
        one call or in several (streaming) is the same text.
        Returns (tokens (samples, n), next logits, states).
        """
        out = tf.TensorArray(tf.int32, size=n)
        structure = [[0] * len(layer) for layer in states]

        def body(i, logits, out, *flat):
            states = tf.nest.pack_sequence_as(structure, list(flat))
            token = sample_logits(logits, tf.stack([seed, t0 + i]), temperature, top_k, top_p)
            new_logits, new_states = self.model.step(token, states)  # (samples, vocabulary)
            return (i + 1, self._mask_special(new_logits), out.write(i, token)) + tuple(
                tf.nest.flatten(new_states)
            )

        result = tf.while_loop(
            lambda i, *_: i < n,
            body,
            (tf.constant(0), logits, out) + tuple(tf.nest.flatten(states)),
            maximum_iterations=n,
        )
        tokens = tf.transpose(result[2].stack())  # (samples, n)
        return tokens, result[1], tf.nest.pack_sequence_as(structure, list(result[3:]))

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.int32, name="prompt_ids"),
            tf.TensorSpec([], tf.int32, name="num_samples"),
            tf.TensorSpec([], tf.int32, name="max_length"),
            tf.TensorSpec([], tf.float32, name="temperature"),
            tf.TensorSpec([], tf.int32, name="top_k"),
            tf.TensorSpec([], tf.float32, name="top_p"),
            tf.TensorSpec([], tf.int32, name="seed"),
        ]
    )
    def generate_ids(self, prompt_ids, num_samples, max_length, temperature, top_k, top_p, seed):
        logits, states = self.read_prompt(prompt_ids, num_samples)
        return self._loop(logits, states, 0, max_length, temperature, top_k, top_p, seed)[0]

    def _generate_text(self, prompt, max_length, temperature, top_k, top_p, seed):
        prompt = tf.reshape(prompt, [])
        ids = self.tokenizer(prompt[None])[0]  # (prompt,)
        max_length = tf.maximum(max_length, 1)
        gen = self.generate_ids(ids, tf.constant(1), max_length, temperature, top_k, top_p, seed)
        text = self.tokenizer.ids_to_text(gen)[0]
        if self.tokenizer.level == "word":
            last = tf.strings.substr(prompt, -1, 1)
            first = tf.strings.substr(text, 0, 1)
            space = tf.logical_and(
                tf.strings.length(prompt) > 0,
                tf.logical_and(
                    tf.logical_not(tf.strings.regex_full_match(last, r"\s")),
                    tf.logical_not(tf.strings.regex_full_match(first, r"[\s.,;:!?)\]}»]")),
                ),
            )
            text = tf.where(space, " " + text, text)
        return {"text": prompt + text}

    @tf.function(
        input_signature=[
            tf.TensorSpec([], tf.string, name="prompt"),
            tf.TensorSpec([], tf.int32, name="max_length"),
            tf.TensorSpec([], tf.float32, name="temperature"),
            tf.TensorSpec([], tf.int32, name="seed"),
        ]
    )
    def generate(self, prompt, max_length, temperature, seed):
        return self._generate_text(prompt, max_length, temperature, 0, 1.0, seed)

    @tf.function(
        input_signature=[
            tf.TensorSpec([], tf.string, name="prompt"),
            tf.TensorSpec([], tf.int32, name="max_length"),
            tf.TensorSpec([], tf.float32, name="temperature"),
            tf.TensorSpec([], tf.int32, name="seed"),
            tf.TensorSpec([], tf.int32, name="top_k"),
            tf.TensorSpec([], tf.float32, name="top_p"),
        ]
    )
    def generate_sampled(self, prompt, max_length, temperature, seed, top_k, top_p):
        return self._generate_text(prompt, max_length, temperature, top_k, top_p, seed)
