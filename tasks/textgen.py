"""Text generation: a character-, word- or subword-level recurrent language model.

The pipeline is a :class:`TextGenPreprocessor` (the tokenizer and its
vocabulary; text -> ids -> training windows), a :class:`RecurrentLM` (tokens
-> embedding -> ``seqkit.layers.RecurrentStack`` -> logits over the
vocabulary) and generation. Generation reads the prompt once, then carries the
recurrent state from token to token: each new token costs one step of the
stack (never a re-run of a window), and the whole loop runs inside one
TensorFlow graph, the same graph that ``export`` saves. A sampler
(``seqkit.samplers``) chooses each token.

Example:

>>> from tasks.textgen import TextGenPipeline
>>> from seqkit.samplers import TopPSampler
>>> lm = TextGenPipeline(level="char", units=128).fit("shakespeare.txt", epochs=5)
>>> lm.generate("ROMEO:", max_length=100, temperature=0.8, seed=1)
'ROMEO:\\nWhat say you ...'
>>> lm.generate("ROMEO:", max_length=100, sampler=TopPSampler(0.9), seed=1)
'ROMEO:\\nI will ...'
>>> lm.evaluate(held_out_text)
{'loss': 1.52, 'perplexity': 4.57, 'bits_per_char': 2.19, 'tokens': 111540, ...}
"""

from __future__ import annotations

import functools
import math
import re
import warnings

import keras
import numpy as np
import tensorflow as tf

from seqkit.data import DataError, TextCorpus, TextFileStream, read_corpus, repair_surrogates
from seqkit.export import exporting
from seqkit.samplers import Sampler
from tasks.base import Pipeline, PipelineError, cell_arg, choice, int_arg, rate_arg
from tasks.textgen_model import Generator, RecurrentLM, score_function
from tasks.textgen_preprocessor import LEVELS, TextGenPreprocessor
from tasks.textgen_sampling import (
    check_stop,
    cut,
    needs_space,
    sampling_parameters,
    stream_text,
    uses_parameters,
)

__all__ = ["TextGenPipeline", "TextGenPreprocessor", "RecurrentLM", "TextCorpus", "TextFileStream"]

_ON_UNKNOWN = ("replace", "error")
MAX_GENERATED = 1_000_000  # tokens per generate() call
# Tokens per call that returns the text at once (about 30 s on a CPU, with nothing shown
# meanwhile); stream=True shows the text as it comes and goes up to MAX_GENERATED.
MAX_AT_ONCE = 20_000
# A recurrent weight today: layers/recurrent_stack/rnns/<class>[_i]/cell/vars/<k>; seqkit
# 0.1.0 kept the recurrent layers in the model's own list: layers/<class>[_i]/cell/vars/<k>.
_STACK_PATH = re.compile(r"layers/recurrent_stack/rnns/(.+)")


class TextGenPipeline(Pipeline):
    """A recurrent language model that trains on plain text and generates more of it.

    Args:
        level: "char" (one token per character), "word" (words, punctuation
            marks and line breaks) or "subword" (SentencePiece pieces learnt from
            the training text, see :mod:`tasks.textgen_subword`: words are
            written piece by piece, so the model can write words it never saw
            whole; no text is unknown).
        cell: "lstm", "gru" or "rnn".
        units: state size of each recurrent layer.
        layers: stacked recurrent layers.
        dropout: dropout after each recurrent layer (training only).
        embedding_dim: size of the token vectors.
        seq_length: tokens per training window (truncated backpropagation length).
        max_tokens: vocabulary size including the special ids (None: every token
            for char level, 20,000 for word level, 8,000 pieces for subword level).
        lowercase: lowercase the text first (word level mostly).
        seed: seeds weights, data order and dropout.

    Training text may be a string, a .txt/.txt.gz path, a list of documents,
    a pandas Series/DataFrame, a ``tf.data.Dataset`` of strings or a
    ``TextFileStream``. The validation text is the **end** of the training
    text (``validation_split``), never shuffled into training.

    Attributes:
        preprocessor: the :class:`TextGenPreprocessor` (``tokenizer``, ``level``,
            ``max_tokens``, ``lowercase`` and ``seq_length`` read through it).
        model: the :class:`RecurrentLM` once fitted or loaded.

    Example:

    >>> lm = TextGenPipeline(units=64, seq_length=50).fit(text, epochs=3, verbose=0)
    >>> lm.generate("To be", max_length=20, temperature=0)
    'To be the the the the'
    """

    task = "textgen"
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
        choice("level", level, LEVELS)
        self.cell = cell_arg(cell)
        self.units = int_arg("units", units)
        self.layers = int_arg("layers", layers)
        self.dropout = rate_arg("dropout", dropout)
        self.embedding_dim = int_arg("embedding_dim", embedding_dim)
        self.preprocessor = TextGenPreprocessor(level, max_tokens, lowercase, seq_length)
        self._generator = None
        self._custom_loops = None  # (sampler, its compiled loops) of the last custom sampler

    # The preprocessor's settings, read through the pipeline as before.
    tokenizer = property(
        lambda self: self.preprocessor.tokenizer, doc="LMTokenizer / SubwordLMTokenizer."
    )
    level = property(lambda self: self.preprocessor.level, doc='"char", "word" or "subword".')
    max_tokens = property(lambda self: self.preprocessor.max_tokens, doc="Vocabulary cap.")
    lowercase = property(lambda self: self.preprocessor.lowercase, doc="Lowercases text.")
    seq_length = property(lambda self: self.preprocessor.seq_length, doc="Window length.")

    def get_config(self) -> dict:
        pre = self.preprocessor.get_config()
        return {
            "level": pre["level"],
            "cell": self.cell,
            "units": self.units,
            "layers": self.layers,
            "dropout": self.dropout,
            "embedding_dim": self.embedding_dim,
            "seq_length": pre["seq_length"],
            "max_tokens": pre["max_tokens"],
            "lowercase": pre["lowercase"],
            "seed": self.seed,
        }

    # ----------------------------------------------------------------- hooks
    def _read(
        self,
        data,
        need_labels=True,
        text_column="text",
        encoding="utf-8",
        _purpose="training",
        **kwargs,
    ):
        if isinstance(data, TextFileStream) and not kwargs:
            return data
        if kwargs:
            raise PipelineError(
                f"Unknown argument(s) {sorted(kwargs)} for reading text; expected "
                "text_column or encoding."
            )
        try:
            return read_corpus(data, text_column, encoding, purpose=_purpose)
        except DataError as error:
            raise PipelineError(str(error)) from None

    def _split(self, data, fraction):
        """Holds out the **end** of the text (never shuffled into training)."""
        train, val = self.preprocessor.split(data, fraction)
        n_val = self.preprocessor.count_tokens(val)
        if n_val >= self.seq_length + 1:
            return train, val
        window = f"one window (seq_length + 1 = {self.seq_length + 1})"
        if isinstance(data, TextFileStream):
            message = f"The held-out end of the text is shorter than {window}; training "
            message += "without validation."
        else:
            message = (
                f"The held-out end of the text ({n_val} tokens) is shorter than {window}; "
                "training without validation. Give more text, a larger validation_split, "
                "or validation_data=..."
            )
        warnings.warn(message, stacklevel=3)
        return data, None

    def _fit_preprocessor(self, train) -> None:
        self.preprocessor.fit(train)
        self._generator = None
        self._check_length(train, "The training text")

    def _check_length(self, data, what):
        n = self.preprocessor.count_tokens(data)
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
        unknown = self.preprocessor.unknown(data)
        if unknown:
            warnings.warn(
                f"{what} has {len(unknown)} token(s) not in the vocabulary "
                f"(e.g. {unknown[:5]}); they are read as [UNK].",
                stacklevel=4,
            )

    def _subset(self, data, index):
        raise NotImplementedError  # text is split by position, see _split

    def _dataset(self, data, batch_size, shuffle_seed):
        return self.preprocessor.dataset(data, batch_size, shuffle_seed)

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

    def _set_assets(self, assets: dict) -> None:
        self._generator = None

    def _legacy_weight_path(self, path: str) -> str:
        """``layers/recurrent_stack/rnns/lstm_1/cell/vars/0`` -> 0.1.0's
        ``layers/lstm_1/cell/vars/0``;
        the embedding's and the head's paths did not change."""
        match = _STACK_PATH.fullmatch(path)
        return f"layers/{match.group(1)}" if match else path

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
        batch_size = int_arg("batch_size", batch_size)
        corpus = self._read(data, _purpose="evaluate", **read_kwargs)
        if isinstance(corpus, TextFileStream):
            corpus = TextCorpus("".join(self.preprocessor.chunks(corpus)))  # (read whole)
        ids = self.preprocessor(corpus)
        n_targets = len(ids) - 1
        if n_targets < 1:
            raise PipelineError("The text has fewer than two tokens; nothing to score.")
        streams = max(1, min(batch_size, n_targets // self.seq_length))
        chunk = n_targets // streams
        x = ids[: streams * chunk].reshape(streams, chunk)
        y = ids[1 : streams * chunk + 1].reshape(streams, chunk)
        score = self._score_fn()
        states = self.model.zero_states(streams)
        total = 0.0
        for start in range(0, chunk, self.seq_length):
            xs = tf.constant(x[:, start : start + self.seq_length])
            ys = tf.constant(y[:, start : start + self.seq_length])
            nll, states = score(xs, ys, states)
            total += float(nll)
        n = streams * chunk
        loss = total / n
        scored = ids[1 : n + 1]
        characters = len(self.tokenizer.decode(scored)) if self.level != "char" else n
        return {
            "loss": loss,
            "perplexity": float(math.exp(min(loss, 700))),
            "bits_per_char": total / math.log(2) / max(characters, 1),
            "tokens": n,
            "characters": characters,
            "unknown_tokens": int((scored == 1).sum()),
        }

    def _score_fn(self):
        fn = getattr(self, "_score", None)
        if fn is None or fn.model is not self.model:
            fn = self._score = score_function(self.model)
        return fn

    # ----------------------------------------------------------------- generation
    def _generator_module(self):
        if self._generator is None or self._generator.model is not self.model:
            self._generator = Generator(self.tokenizer, self.model, self.preprocessor.primer_id)
            self._custom_loops = None
        return self._generator

    def _prompt_ids(self, prompt: str, on_unknown: str) -> np.ndarray:
        if not isinstance(prompt, str):
            raise PipelineError(
                f"Received a prompt of type {type(prompt).__name__}; expected a string."
            )
        choice("on_unknown", on_unknown, _ON_UNKNOWN)
        prompt = repair_surrogates(prompt)
        if on_unknown == "error":
            unknown = self.tokenizer.unknown(prompt)
            if unknown:
                raise PipelineError(
                    f"The prompt has token(s) not in the vocabulary: {unknown[:10]}; remove them "
                    "or pass on_unknown='replace' to read them as [UNK]."
                )
        return self.preprocessor(prompt)

    def generate(
        self,
        prompt: str = "",
        max_length: int = 200,
        temperature: float | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        stop=None,
        num_samples: int = 1,
        stream: bool = False,
        on_unknown: str = "replace",
        include_prompt: bool = True,
        sampler: Sampler | None = None,
    ):
        """Continues ``prompt`` with up to ``max_length`` new tokens.

        The prompt is read once; then each new token is one step of each
        recurrent layer with the state carried over (O(1) work per token).
        A sampler chooses each token: ``sampler=`` a ``seqkit.samplers``
        object, or the shortcuts ``temperature`` / ``top_k`` / ``top_p``
        (``sampler=TopPSampler(0.9)`` and ``top_p=0.9`` give the same text for a
        seed); not both.

        Args:
            prompt: text to continue ("" starts a fresh text, after a line break).
            max_length: number of new tokens (characters, words or pieces), at most
                20,000 (1,000,000 with ``stream=True``, which shows the text as it comes).
            temperature: 0 is greedy (deterministic); higher is more random (default 1.0).
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
            sampler: a ``seqkit.samplers.Sampler`` (``GreedySampler()``,
                ``TopKSampler(10)``, ``TopPSampler(0.9)``, or a subclass with its
                own ``__call__``), instead of the shortcuts.

        Returns:
            A string (``num_samples=1``), a list of strings, or with
            ``stream=True`` a generator of text pieces.

        Example:

        >>> lm.generate("ROMEO:", max_length=50, sampler=TopKSampler(10), seed=2)
        """
        self._require_fitted("generate")
        max_length = int_arg("max_length", max_length, maximum=MAX_GENERATED)
        if max_length > MAX_AT_ONCE and not stream:
            raise PipelineError(
                f"Received `max_length={max_length}`; generate() returns at most {MAX_AT_ONCE:,} "
                "new tokens at once (about 30 s on a CPU, with nothing shown meanwhile). Pass "
                "stream=True to get the text piece by piece as it is made (up to "
                f"{MAX_GENERATED:,}), or generate in parts, each continuing the last."
            )
        num_samples = int_arg("num_samples", num_samples)
        params = sampling_parameters(sampler, temperature, top_k, top_p)
        if seed is None:
            seed = int(np.random.randint(0, 2**31 - 1))
        seed = int_arg("seed", seed, minimum=0, maximum=2**63 - 1) % (2**31 - 1)
        stops = check_stop(stop)
        ids = self._prompt_ids(prompt, on_unknown)
        generate_ids, continue_ids, params = self._loops(sampler, params)
        head = prompt if include_prompt else ""
        if stream:
            if num_samples != 1:
                raise PipelineError("stream=True generates one sample; use num_samples=1.")
            return self._stream(continue_ids, params, ids, max_length, seed, stops, prompt, head)
        with exporting():  # plain while loops: one trace serves every prompt length
            out = generate_ids(
                tf.constant(ids),
                tf.constant(num_samples, tf.int32),
                tf.constant(max_length, tf.int32),
                *params,
                tf.constant(seed, tf.int32),
            )  # (num_samples, max_length)
        texts = [head + cut(self._continuation(prompt, row), stops) for row in out.numpy().tolist()]
        return texts[0] if num_samples == 1 else texts

    def _loops(self, sampler, params):
        """(generate_ids, continue_ids, their sampling inputs) for ``sampler``.

        The samplers of ``seqkit.samplers`` are read by their parameters: one
        compiled graph serves all of them. A sampler with its own ``__call__``
        is traced into loops of its own (kept for the last such sampler).
        """
        gen = self._generator_module()
        if uses_parameters(sampler):
            temperature, top_k, top_p = params
            tensors = (
                tf.constant(temperature, tf.float32),
                tf.constant(top_k, tf.int32),
                tf.constant(top_p, tf.float32),
            )
            return gen.generate_ids, gen.continue_ids, tensors
        if self._custom_loops is None or self._custom_loops[0] is not sampler:
            self._custom_loops = (sampler, gen.with_sampler(sampler))
        return (*self._custom_loops[1], ())

    def _continuation(self, prompt: str, ids) -> str:
        if self.level == "subword":  # a first "▁" is a space after the prompt
            return self.tokenizer.continuation(prompt, ids)
        text = self.tokenizer.decode_python(ids)
        if self.level == "word" and prompt and text and needs_space(prompt, text):
            text = " " + text
        return text

    def _stream(self, continue_ids, params, ids, max_length, seed, stops, prompt, head):
        with exporting():
            logits, states = self._generator.read_prompt(tf.constant(ids), tf.constant(1))
        if self.level == "subword":
            decode = self.tokenizer.stream_decoder(prompt)
        else:
            decode = functools.partial(self._continuation, prompt)
        return stream_text(
            continue_ids, params, logits, states, max_length, seed, decode, stops, head
        )

    def predict(self, inputs, **generate_kwargs):
        """``generate`` for one prompt or a list of prompts (a list of strings back)."""
        prompts = [inputs] if isinstance(inputs, str) else list(inputs)
        generate_kwargs.pop("stream", None)
        return [self.generate(p, **generate_kwargs) for p in prompts]

    # ----------------------------------------------------------------- serving
    def _serving(self, **kwargs):
        """The SavedModel's module and signatures: the whole generation loop in the graph.

        Signatures (string in, string out; only TensorFlow is needed to serve):

        - ``generate(prompt: tf.string[], max_length: int32[], temperature: float32[],
          seed: int32[]) -> {"text": tf.string[]}``: prompt + continuation;
          temperature 0 is greedy.
        - ``generate_sampled(...)``: the same plus ``top_k: int32[]`` (0: off) and
          ``top_p: float32[]`` (1: off).
        """
        if kwargs:
            raise PipelineError(
                f"Unknown argument(s) {sorted(kwargs)} for exporting a text-generation "
                "pipeline; it takes none (the signatures take the sampling settings)."
            )
        module = Generator(self.tokenizer, self._bare_model(), self.preprocessor.primer_id)
        return module, {"generate": module.generate, "generate_sampled": module.generate_sampled}
