"""Samplers: small objects that choose the next token from a batch of logits.

Batched greedy and beam search for encoder-decoder models, and the
``BeamSampler`` object that names a search, are in :mod:`seqkit.search`
(re-exported here).

A sampler only chooses; the generation loop (a pipeline's compiled step)
reads the prompt, carries the recurrent state and calls the sampler once per
new token. Every sampler is ``sampler(logits, seed) -> ids`` on TensorFlow
tensors, so the same object runs eagerly, inside a ``tf.function`` and inside
an exported SavedModel's graph:

- ``logits``: float tensor ``(batch, vocabulary)``;
- ``seed``: an int32 tensor of shape ``(2,)`` for TensorFlow's stateless
  random ops (the same logits and seed always give the same ids);
- returns int32 ids ``(batch,)``.

Parameters (temperature, k, p) may be Python numbers or scalar tensors, so an
exported graph can take them as inputs.

Pipelines take sampler objects as keras-hub's do:
``lm.generate(prompt, sampler=TopPSampler(0.9))``. A sampler of these classes
is read by its parameters (one compiled generation graph serves them all); a
subclass that overrides ``__call__`` is traced into the generation loop as it is.

Example:

>>> logits = tf.constant([[2.0, 1.0, 0.1, -1.0]])
>>> GreedySampler()(logits).numpy()
array([0], dtype=int32)
>>> TopKSampler(k=2, temperature=0.8)(logits, seed=tf.constant([0, 7])).numpy()  # 0 or 1
array([0], dtype=int32)
"""

from __future__ import annotations

import numbers

import tensorflow as tf

from seqkit.errors import UsageError
from seqkit.search import (
    BeamSampler,
    beam_search,
    check_beams,
    check_length_penalty,
    greedy_search,
    length_normalize,
)

__all__ = [
    "Sampler",
    "GreedySampler",
    "TemperatureSampler",
    "TopKSampler",
    "TopPSampler",
    "get_sampler",
    "check_temperature",
    "check_top_k",
    "check_top_p",
    "top_k_filter",
    "top_p_filter",
    "sample_logits",
    "BeamSampler",
    "search_settings",
    "greedy_search",
    "beam_search",
    "length_normalize",
]

_NEG_INF = -1e9  # large negative instead of -inf: softmax of an all-masked row stays finite


def check_temperature(temperature):
    """``temperature`` as a float if it is a Python number >= 0; a tensor passes unchanged.

    Raises:
        ValueError: naming the value, e.g. "Received `temperature=-1`; expected a
            number >= 0 (0 means greedy)."

    Example:

    >>> check_temperature(1)
    1.0
    """
    if isinstance(temperature, numbers.Number):
        if isinstance(temperature, bool) or not temperature >= 0:
            raise ValueError(
                f"Received `temperature={temperature!r}`; expected a number >= 0 (0 means greedy)."
            )
        return float(temperature)
    return temperature


def check_top_k(k):
    """``k`` as an int (None -> 0: every token) if it is a positive integer; a tensor passes.

    Raises:
        ValueError: "Received `top_k=0`; expected a positive integer or None."

    Example:

    >>> check_top_k(None), check_top_k(5)
    (0, 5)
    """
    if k is None:
        return 0
    if isinstance(k, numbers.Number):
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
            raise ValueError(f"Received `top_k={k!r}`; expected a positive integer or None.")
        return int(k)
    return k


def check_top_p(p):
    """``p`` as a float (None -> 1.0: every token) if it is in (0, 1]; a tensor passes.

    Raises:
        ValueError: "Received `top_p=0.0`; expected a number in (0, 1] or None."

    Example:

    >>> check_top_p(None), check_top_p(0.9)
    (1.0, 0.9)
    """
    if p is None:
        return 1.0
    if isinstance(p, numbers.Number):
        if isinstance(p, bool) or not 0 < p <= 1:
            raise ValueError(f"Received `top_p={p!r}`; expected a number in (0, 1] or None.")
        return float(p)
    return p


def top_k_filter(logits, k):
    """Keeps the ``k`` largest logits of each row; the rest become very negative.

    ``k`` <= 0 (or >= the vocabulary size) keeps every logit.
    """
    logits = tf.convert_to_tensor(logits)
    vocab = tf.shape(logits)[-1]
    k = tf.cast(k, tf.int32)
    k_eff = tf.where(k <= 0, vocab, tf.minimum(k, vocab))
    kth = tf.math.top_k(logits, k=k_eff, sorted=True).values[:, -1:]  # (batch, 1)
    return tf.where(logits < kth, tf.cast(_NEG_INF, logits.dtype), logits)


def top_p_filter(logits, p):
    """Nucleus filter: keeps the smallest set of most likely tokens whose probability
    reaches ``p`` (always at least the most likely one); the rest become very negative.
    """
    logits = tf.convert_to_tensor(logits)
    p = tf.cast(p, logits.dtype)
    sorted_logits = tf.sort(logits, axis=-1, direction="DESCENDING")  # (batch, vocab)
    probs = tf.nn.softmax(sorted_logits, axis=-1)
    before = tf.cumsum(probs, axis=-1, exclusive=True)  # mass of strictly more likely tokens
    keep = before < p  # the first token always has before == 0 < p
    # The smallest logit kept in each row is the threshold.
    kept = tf.where(keep, sorted_logits, tf.cast(float("inf"), logits.dtype))
    threshold = tf.reduce_min(kept, axis=-1, keepdims=True)  # (batch, 1)
    return tf.where(logits < threshold, tf.cast(_NEG_INF, logits.dtype), logits)


def sample_logits(logits, seed, temperature=1.0, top_k=0, top_p=1.0):
    """Chooses one id per row: greedy when ``temperature == 0``, else a seeded draw
    from ``softmax(logits / temperature)`` restricted by top-k and top-p.

    Args:
        logits: ``(batch, vocabulary)`` float tensor.
        seed: int tensor ``(2,)`` for the stateless draw (ignored when greedy).
        temperature: scalar >= 0 (Python number or tensor).
        top_k: keep the k most likely tokens (0: all).
        top_p: nucleus mass in (0, 1] (1: all).

    Returns:
        int32 tensor ``(batch,)``.
    """
    logits = tf.cast(tf.convert_to_tensor(logits), tf.float32)
    temperature = tf.cast(temperature, tf.float32)
    greedy = tf.cast(tf.argmax(logits, axis=-1), tf.int32)

    def draw():
        scaled = logits / tf.maximum(temperature, 1e-6)
        scaled = top_k_filter(scaled, top_k)
        scaled = top_p_filter(scaled, top_p)
        seed32 = tf.cast(seed, tf.int32)
        ids = tf.random.stateless_categorical(scaled, 1, seed=seed32, dtype=tf.int32)
        return ids[:, 0]

    if isinstance(temperature, tf.Tensor) and not tf.executing_eagerly():
        return tf.cond(temperature <= 0.0, lambda: greedy, draw)
    return greedy if float(temperature) <= 0.0 else draw()


class Sampler:
    """Base class: ``sampler(logits, seed) -> ids``. Subclasses set the parameters.

    Args:
        temperature: divides the logits before drawing; 0 picks the argmax.
        top_k: keep only the k most likely tokens (None: all).
        top_p: keep only the nucleus of probability mass p (None: all).

    Attributes:
        temperature, top_k, top_p: the checked parameters (``top_k`` 0 and
            ``top_p`` 1.0 mean "off"), as the generation graphs take them.

    A custom sampler subclasses ``Sampler`` and overrides ``__call__(logits, seed)``
    with TensorFlow ops (``logits (batch, vocabulary)``, ``seed (2,)`` int32 ->
    int32 ids ``(batch,)``).

    Example:

    >>> sampler = Sampler(temperature=0.8, top_k=40, top_p=0.95)
    >>> sampler(tf.zeros([2, 100]), seed=tf.constant([0, 1])).shape
    TensorShape([2])
    """

    def __init__(self, temperature: float = 1.0, top_k: int | None = None, top_p=None):
        self.temperature = check_temperature(temperature)
        self.top_k = check_top_k(top_k)
        self.top_p = check_top_p(top_p)

    def __call__(self, logits, seed=None):
        if seed is None:
            seed = tf.random.uniform([2], 0, 2**31 - 1, dtype=tf.int32)
        return sample_logits(logits, seed, self.temperature, self.top_k, self.top_p)

    def get_config(self) -> dict:
        return {"temperature": self.temperature, "top_k": self.top_k or None, "top_p": self.top_p}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class GreedySampler(Sampler):
    """Always the most likely token (deterministic)."""

    def __init__(self):
        super().__init__(temperature=0.0)

    def get_config(self) -> dict:
        return {}


class TemperatureSampler(Sampler):
    """A draw from ``softmax(logits / temperature)`` over the whole vocabulary."""

    def __init__(self, temperature: float = 1.0):
        super().__init__(temperature=temperature)

    def get_config(self) -> dict:
        return {"temperature": self.temperature}


class TopKSampler(Sampler):
    """A draw among the ``k`` most likely tokens (Fan et al. 2018)."""

    def __init__(self, k: int, temperature: float = 1.0):
        if k is None:
            raise ValueError("Received `top_k=None`; TopKSampler needs a positive integer k.")
        super().__init__(temperature=temperature, top_k=k)

    def get_config(self) -> dict:
        return {"k": self.top_k, "temperature": self.temperature}


class TopPSampler(Sampler):
    """A draw from the nucleus: the fewest most likely tokens holding mass ``p``
    (Holtzman et al. 2020)."""

    def __init__(self, p: float, temperature: float = 1.0):
        if p is None:
            raise ValueError("Received `top_p=None`; TopPSampler needs p in (0, 1].")
        super().__init__(temperature=temperature, top_p=p)

    def get_config(self) -> dict:
        return {"p": self.top_p, "temperature": self.temperature}


def get_sampler(temperature: float = 1.0, top_k: int | None = None, top_p=None) -> Sampler:
    """The sampler for these settings (validated): greedy, temperature, top-k, top-p or both."""
    temperature = check_temperature(temperature)
    top_k = check_top_k(top_k)
    top_p = check_top_p(top_p)
    if temperature == 0:
        return GreedySampler()
    if top_k and top_p >= 1.0:
        return TopKSampler(top_k, temperature)
    if top_p < 1.0 and not top_k:
        return TopPSampler(top_p, temperature)
    if not top_k and top_p >= 1.0:
        return TemperatureSampler(temperature)
    return Sampler(temperature, top_k, top_p)


def search_settings(sampler, beam_width, length_penalty, default_width: int = 1):
    """``(beam_width, length_penalty)`` from a sampler object or the keyword shortcuts.

    Args:
        sampler: None, a ``BeamSampler``, or ``seqkit.samplers.GreedySampler()``
            (the same as one beam).
        beam_width, length_penalty: the shortcuts; None means "not given"
            (``default_width`` beams, length penalty 0.6).
        default_width: beams when neither form names them.

    Example:

    >>> search_settings(BeamSampler(4), None, None)
    (4, 0.6)

    Raises:
        UsageError: both forms given, or a sampler that draws at random
            (a search decodes deterministically).
    """
    if sampler is None:
        width = default_width if beam_width is None else check_beams(beam_width, "beam_width")
        penalty = 0.6 if length_penalty is None else check_length_penalty(length_penalty)
        return width, penalty
    given = [
        n
        for n, v in (("beam_width", beam_width), ("length_penalty", length_penalty))
        if v is not None
    ]
    if given:
        raise UsageError(
            f"Received both `sampler={sampler!r}` and `{given[0]}=`; pass one of them "
            "(BeamSampler(num_beams, length_penalty) holds both settings)."
        )
    if isinstance(sampler, BeamSampler):
        return sampler.num_beams, sampler.length_penalty
    if type(sampler) is GreedySampler:
        return 1, 0.6
    raise UsageError(
        f"Received `sampler={sampler!r}`; a search takes BeamSampler(num_beams, "
        "length_penalty) or GreedySampler() (sampling at random is for text generation)."
    )
