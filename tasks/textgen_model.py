"""The text generation model and its generation graph.

``RecurrentLM``: embedding -> ``seqkit.layers.RecurrentStack`` -> vocabulary
logits. ``Generator``: the prompt reading, the sampling loop (one step of the
stack per new token, the state carried) and the decoding, as one
``tf.Module``: the same graph runs in process and in the exported SavedModel.
"""

from __future__ import annotations

import keras
import tensorflow as tf

import seqkit.layers as sk
from seqkit.samplers import sample_logits

__all__ = ["RecurrentLM", "Generator", "score_function"]


@keras.saving.register_keras_serializable(package="seqkit")
class RecurrentLM(keras.Model):
    """Embedding -> ``RecurrentStack`` (dropout after each layer) -> vocabulary logits.

    Args:
        vocabulary_size: tokens, padding and unknown included.
        embedding_dim: size of the token vectors.
        cell: "lstm", "gru" or "rnn".
        units: state size of each recurrent layer.
        layers: stacked recurrent layers.
        dropout: dropout after each recurrent layer (training only).

    Call arguments:
        ids: int tensor ``(batch, time)``.

    Returns:
        logits ``(batch, time, vocabulary_size)``.

    ``run(ids, states)`` also takes and returns the recurrent states (the
    stack's flat list: layer by layer, ``cell.num_states`` tensors
    ``(batch, units)`` each); ``step(token_ids, states)`` advances one token
    ``(batch,)`` through the stack's cells.

    Example:

    >>> lm = RecurrentLM(30, cell="gru", units=16, layers=2)
    >>> logits, states = lm.run(tf.zeros((4, 7), tf.int32))  # (4, 7, 30), 2 x (4, 16)
    >>> next_logits, states = lm.step(tf.zeros((4,), tf.int32), states)  # (4, 30)
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
        self.n_layers = layers  # (`layers` is the Keras model's list of layers)
        self.dropout_rate = dropout
        self.embedding = keras.layers.Embedding(vocabulary_size, embedding_dim, name="embedding")
        self.stack = sk.RecurrentStack(
            cell,
            units,
            layers,
            dropout=dropout,
            return_sequences=True,
            return_state=True,
        )
        self.head = keras.layers.Dense(vocabulary_size, name="logits")

    @property
    def num_states(self) -> int:
        """The length of the flat state list (from the stack's cells)."""
        return self.stack.num_states

    def zero_states(self, batch) -> list:
        """The flat list of zero states for ``batch`` rows."""
        return [tf.zeros((batch, self.units)) for _ in range(self.num_states)]

    def run(self, ids, states=None, training=False):
        x = self.embedding(ids)  # (batch, time, embedding_dim)
        out = self.stack(x, initial_state=states, training=training)
        return self.head(out[0]), list(out[1:])  # (batch, time, vocabulary_size), states

    def step(self, token_ids, states):
        x = self.embedding(token_ids)  # (batch, embedding_dim)
        y, new_states = self.stack.step(x, states)  # (batch, units)
        return self.head(y), new_states  # (batch, vocabulary_size)

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


def score_function(model):
    """A compiled ``(x, y, states) -> (summed nll of y, new states)`` over ``model``
    (``x``, ``y``: ids ``(batch, time)``); ``.model`` is ``model``."""

    @tf.function
    def score(x, y, states):
        logits, new_states = model.run(x, states, training=False)  # (batch, time, vocab)
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=y, logits=tf.cast(logits, tf.float32)
        )
        return tf.reduce_sum(nll), new_states

    score.model = model
    return score


def _int_spec(name=None):
    return tf.TensorSpec([], tf.int32, name=name)


def _float_spec(name=None):
    return tf.TensorSpec([], tf.float32, name=name)


# The inputs of the exported ``generate`` signature (``generate_sampled`` adds top_k, top_p).
_TEXT_INPUTS = [
    tf.TensorSpec([], tf.string, name="prompt"),
    _int_spec("max_length"),
    _float_spec("temperature"),
    _int_spec("seed"),
]


class Generator(tf.Module):
    """Prompt reading, the sampling loop and decoding: one graph, in process and exported.

    Args:
        tokenizer: the pipeline's ``LMTokenizer`` (vocabulary set) or
            ``SubwordLMTokenizer`` (model trained).
        model: a built ``RecurrentLM``.
        primer_id: the token an empty prompt starts from.

    ``generate_ids`` / ``continue_ids`` draw with ``seqkit.samplers.sample_logits``
    and take temperature, top_k and top_p as tensors; :meth:`with_sampler` traces
    the same loop around a custom sampler's own ``__call__``.
    """

    def __init__(self, tokenizer, model, primer_id):
        super().__init__()
        self.tokenizer = tokenizer
        self.model = model
        self.primer = tf.constant([primer_id], tf.int32)
        self.vocabulary_size = tokenizer.vocabulary_size
        # Never generated: [PAD] and [UNK]; subwords also [START] and [END].
        never = list(getattr(tokenizer, "never_generate", (0, 1)))
        self.never = tf.reduce_sum(tf.one_hot(never, self.vocabulary_size), axis=0)  # (vocab,)
        # Streaming continues the loop a few tokens per call; a full signature keeps
        # each call's dispatch cheap.
        params = [_float_spec(), _int_spec(), _float_spec()]  # temperature, top_k, top_p
        self.continue_ids = tf.function(
            self._continue, input_signature=self._loop_specs() + params + [_int_spec()]
        )

    def _loop_specs(self) -> list:
        """The specs of the loop's first inputs: logits, flat states, t0, n."""
        state = tf.TensorSpec([None, self.model.units], tf.float32)
        return [
            tf.TensorSpec([None, self.vocabulary_size], tf.float32),
            [state] * self.model.num_states,
            _int_spec(),  # t0: index of the first new token
            _int_spec(),  # how many tokens
        ]

    def _mask_special(self, logits):
        return tf.cast(logits, tf.float32) - 1e9 * self.never  # (samples, vocabulary)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32), _int_spec()], autograph=False)
    def read_prompt(self, prompt_ids, num_samples):
        ids = tf.cond(tf.size(prompt_ids) > 0, lambda: prompt_ids, lambda: self.primer)
        ids = tf.tile(ids[None], [num_samples, 1])  # (samples, prompt)
        logits, states = self.model.run(ids, None, training=False)
        return self._mask_special(logits[:, -1]), states  # (samples, vocabulary)

    def _loop(self, logits, states, t0, n, seed, choose):
        """Tokens t0 .. t0+n-1: ``choose(logits, (seed, t))``, then one step of the stack.

        Token t is drawn with the stateless seed (seed, t), so a text generated in
        one call or in several (streaming) is the same text.
        Returns (tokens (samples, n), next logits, states).
        """
        out = tf.TensorArray(tf.int32, size=n)

        def body(i, logits, out, *states):
            token = tf.cast(choose(logits, tf.stack([seed, t0 + i])), tf.int32)  # (samples,)
            new_logits, new_states = self.model.step(token, list(states))  # (samples, vocab)
            return (i + 1, self._mask_special(new_logits), out.write(i, token)) + tuple(new_states)

        result = tf.while_loop(
            lambda i, *_: i < n,
            body,
            (tf.constant(0), logits, out) + tuple(states),
            maximum_iterations=n,
        )
        tokens = tf.transpose(result[2].stack())  # (samples, n)
        return tokens, result[1], list(result[3:])

    @staticmethod
    def _draw(temperature, top_k, top_p):
        return lambda logits, seed: sample_logits(logits, seed, temperature, top_k, top_p)

    def _continue(self, logits, states, t0, n, temperature, top_k, top_p, seed):
        return self._loop(logits, states, t0, n, seed, self._draw(temperature, top_k, top_p))

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.int32, name="prompt_ids"),
            _int_spec("num_samples"),
            _int_spec("max_length"),
            _float_spec("temperature"),
            _int_spec("top_k"),
            _float_spec("top_p"),
            _int_spec("seed"),
        ]
    )
    def generate_ids(self, prompt_ids, num_samples, max_length, temperature, top_k, top_p, seed):
        logits, states = self.read_prompt(prompt_ids, num_samples)
        draw = self._draw(temperature, top_k, top_p)
        return self._loop(logits, states, 0, max_length, seed, draw)[0]

    def with_sampler(self, sampler):
        """``(generate_ids, continue_ids)`` that choose each token with ``sampler(logits, seed)``.

        As ``generate_ids`` / ``continue_ids`` without the temperature, top_k
        and top_p inputs; compiled once per sampler object.
        """

        def generate_ids(prompt_ids, num_samples, max_length, seed):
            logits, states = self.read_prompt(prompt_ids, num_samples)
            return self._loop(logits, states, 0, max_length, seed, sampler)[0]

        def continue_ids(logits, states, t0, n, seed):
            return self._loop(logits, states, t0, n, seed, sampler)

        head = [tf.TensorSpec([None], tf.int32), _int_spec(), _int_spec()]
        return (
            tf.function(generate_ids, input_signature=head + [_int_spec()]),
            tf.function(continue_ids, input_signature=self._loop_specs() + [_int_spec()]),
        )

    def _generate_text(self, prompt, max_length, temperature, top_k, top_p, seed):
        prompt = tf.reshape(prompt, [])
        ids = self.tokenizer(prompt[None])[0]  # (prompt,)
        max_length = tf.maximum(max_length, 1)
        gen = self.generate_ids(ids, tf.constant(1), max_length, temperature, top_k, top_p, seed)
        if self.tokenizer.level == "subword":  # a first "▁" is a space after the prompt
            return {"text": prompt + self.tokenizer.continuation_text(prompt, gen)}
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

    @tf.function(input_signature=_TEXT_INPUTS)
    def generate(self, prompt, max_length, temperature, seed):
        return self._generate_text(prompt, max_length, temperature, 0, 1.0, seed)

    @tf.function(input_signature=_TEXT_INPUTS + [_int_spec("top_k"), _float_spec("top_p")])
    def generate_sampled(self, prompt, max_length, temperature, seed, top_k, top_p):
        return self._generate_text(prompt, max_length, temperature, top_k, top_p, seed)
