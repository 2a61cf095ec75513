"""Samplers: small objects that choose the next token from a batch of logits,
and batched greedy and beam search for encoder-decoder models.

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


# --------------------------------------------------------------------------- search
def _gather_beams(tree, index):
    """Gathers rows ``index`` (flat, (batch * beam,)) of every tensor in a nested state."""
    return tf.nest.map_structure(lambda x: tf.gather(x, index), tree)


def length_normalize(scores, lengths, length_penalty):
    """GNMT length normalisation: ``score / ((5 + length) / 6) ** length_penalty``."""
    lp = tf.pow((5.0 + tf.cast(lengths, tf.float32)) / 6.0, tf.cast(length_penalty, tf.float32))
    return scores / lp


def greedy_search(step_fn, state, batch_size, max_length, start_id, end_id):
    """Greedy decoding, batched: the most likely token at every step.

    Args:
        step_fn: ``step_fn(tokens (n,), state) -> (logits (n, vocab), state, aux (n, a))``;
            ``aux`` is recorded per step (attention weights, or a (n, 0) tensor).
        state: nested tensors with leading dimension ``batch_size``.
        batch_size, max_length: ints or scalar int tensors.
        start_id, end_id: the start and end token ids.

    Returns:
        ``(ids (batch, steps), scores (batch,), lengths (batch,), aux (batch, steps, a))``:
        ``ids`` hold the tokens up to and including ``end_id`` (0 after it);
        ``scores`` are the summed log-probabilities; ``lengths`` count tokens
        including the end token.
    """
    tokens = tf.fill([batch_size], tf.cast(start_id, tf.int32))
    logits0, _, aux0 = step_fn(tokens, state)
    a_dim = tf.shape(aux0)[-1]
    ids_ta = tf.TensorArray(tf.int32, size=0, dynamic_size=True)
    aux_ta = tf.TensorArray(tf.float32, size=0, dynamic_size=True)
    flat = tf.nest.flatten(state)

    def cond(t, tokens, finished, scores, lengths, ids_ta, aux_ta, *flat):
        return tf.logical_and(t < max_length, tf.logical_not(tf.reduce_all(finished)))

    def body(t, tokens, finished, scores, lengths, ids_ta, aux_ta, *flat):
        state = tf.nest.pack_sequence_as(state_structure, list(flat))
        logits, new_state, aux = step_fn(tokens, state)
        log_p = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
        token = tf.cast(tf.argmax(log_p, axis=-1), tf.int32)
        token = tf.where(finished, 0, token)
        gain = tf.gather(log_p, token, batch_dims=1)
        scores = scores + tf.where(finished, 0.0, gain)
        lengths = lengths + tf.cast(tf.logical_not(finished), tf.int32)
        aux = tf.where(finished[:, None], tf.zeros_like(aux), tf.cast(aux, tf.float32))
        finished = tf.logical_or(finished, tf.equal(token, end_id))
        return (
            t + 1,
            token,
            finished,
            scores,
            lengths,
            ids_ta.write(t, token),
            aux_ta.write(t, aux),
        ) + tuple(tf.nest.flatten(new_state))

    state_structure = state
    zeros = tf.zeros([batch_size], tf.float32)
    result = tf.while_loop(
        cond,
        body,
        (
            tf.constant(0),
            tokens,
            tf.zeros([batch_size], tf.bool),
            zeros,
            tf.zeros([batch_size], tf.int32),
            ids_ta,
            aux_ta,
        )
        + tuple(flat),
        maximum_iterations=max_length,
    )
    _, _, _, scores, lengths, ids_ta, aux_ta = result[:7]
    steps = ids_ta.size()
    ids = tf.cond(
        steps > 0,
        lambda: tf.transpose(ids_ta.stack()),
        lambda: tf.zeros([batch_size, 0], tf.int32),
    )
    aux = tf.cond(
        steps > 0,
        lambda: tf.transpose(aux_ta.stack(), [1, 0, 2]),
        lambda: tf.zeros([batch_size, 0, a_dim], tf.float32),
    )
    return ids, scores, lengths, aux


def beam_search(
    step_fn, state, batch_size, beam_width, max_length, start_id, end_id, length_penalty=0.6
):
    """Beam search, batched over inputs and beams (one graph, no Python loop).

    Keeps the ``beam_width`` best prefixes of every input by summed
    log-probability; a finished prefix (one that emitted ``end_id``) keeps its
    score. The answer for each input is its best finished (or, at
    ``max_length``, unfinished) hypothesis by length-normalised score
    (:func:`length_normalize`; ``length_penalty=0`` ranks by raw score).

    Args:
        step_fn: as in :func:`greedy_search`, called on ``batch * beam_width`` rows.
        state: nested tensors with leading dimension ``batch_size`` (tiled here).

    Returns:
        ``(ids (batch, steps), scores (batch,), lengths (batch,), aux (batch, steps, a))``
        of the chosen hypotheses; ``scores`` are raw summed log-probabilities.
    """
    B, K = batch_size, beam_width
    N = B * K
    state = tf.nest.map_structure(lambda x: tf.repeat(x, K, axis=0), state)  # (B*K, ...)
    tokens = tf.fill([N], tf.cast(start_id, tf.int32))
    logits0, _, aux0 = step_fn(tokens, state)
    V = tf.shape(logits0)[-1]
    a_dim = tf.shape(aux0)[-1]
    # Only the first beam of each input is live at the start (the others are copies).
    scores = tf.tile(tf.concat([[0.0], tf.fill([K - 1], -1e9)], 0)[None], [B, 1])  # (B, K)
    finished = tf.zeros([B, K], tf.bool)
    lengths = tf.zeros([B, K], tf.int32)
    history = tf.zeros([B, K, 0], tf.int32)
    aux_history = tf.zeros([B, K, 0, a_dim], tf.float32)
    # A finished beam may only "continue" with padding (id 0), at no cost.
    pad_row = tf.concat([[0.0], tf.fill([V - 1], -1e9)], 0)  # (V,)
    base = tf.range(B)[:, None] * K  # (B, 1): row offset of each input's beams
    flat = tf.nest.flatten(state)

    def cond(t, tokens, scores, finished, lengths, history, aux_history, *flat):
        return tf.logical_and(t < max_length, tf.logical_not(tf.reduce_all(finished)))

    def body(t, tokens, scores, finished, lengths, history, aux_history, *flat):
        state = tf.nest.pack_sequence_as(state_structure, list(flat))
        logits, new_state, aux = step_fn(tokens, state)
        log_p = tf.reshape(tf.nn.log_softmax(tf.cast(logits, tf.float32), -1), [B, K, V])
        log_p = tf.where(finished[..., None], pad_row, log_p)
        candidates = tf.reshape(scores[..., None] + log_p, [B, K * V])
        top_scores, top_index = tf.math.top_k(candidates, k=K)  # (B, K)
        parent = top_index // V  # (B, K) beam each candidate extends
        token = top_index % V
        was_finished = tf.gather(finished, parent, batch_dims=1)
        lengths = tf.gather(lengths, parent, batch_dims=1) + tf.cast(
            tf.logical_not(was_finished), tf.int32
        )
        finished = tf.logical_or(was_finished, tf.equal(token, end_id))
        history = tf.concat([tf.gather(history, parent, batch_dims=1), token[..., None]], -1)
        aux = tf.reshape(tf.cast(aux, tf.float32), [B, K, a_dim])
        aux = tf.gather(aux, parent, batch_dims=1)
        aux = tf.where(was_finished[..., None], tf.zeros_like(aux), aux)
        aux_history = tf.concat([tf.gather(aux_history, parent, batch_dims=1), aux[:, :, None]], 2)
        rows = tf.reshape(base + parent, [N])
        new_state = _gather_beams(new_state, rows)
        return (
            t + 1,
            tf.reshape(token, [N]),
            top_scores,
            finished,
            lengths,
            history,
            aux_history,
        ) + tuple(tf.nest.flatten(new_state))

    state_structure = state
    result = tf.while_loop(
        cond,
        body,
        (tf.constant(0), tokens, scores, finished, lengths, history, aux_history) + tuple(flat),
        shape_invariants=(
            tf.TensorShape([]),
            tf.TensorShape([None]),
            tf.TensorShape([None, None]),
            tf.TensorShape([None, None]),
            tf.TensorShape([None, None]),
            tf.TensorShape([None, None, None]),
            tf.TensorShape([None, None, None, None]),
        )
        + tuple(tf.TensorShape([None] + x.shape[1:].as_list()) for x in flat),
        maximum_iterations=max_length,
    )
    _, _, scores, finished, lengths, history, aux_history = result[:7]
    # Prefer finished hypotheses; among them the best length-normalised score.
    normalized = length_normalize(scores, lengths, length_penalty)
    any_finished = tf.reduce_any(finished, axis=-1, keepdims=True)
    rank = tf.where(tf.logical_or(finished, tf.logical_not(any_finished)), normalized, -1e18)
    best = tf.cast(tf.argmax(rank, axis=-1), tf.int32)  # (B,)
    ids = tf.gather(history, best, batch_dims=1)  # (B, steps)
    aux = tf.gather(aux_history, best, batch_dims=1)
    return (
        ids,
        tf.gather(scores, best, batch_dims=1),
        tf.gather(lengths, best, batch_dims=1),
        aux,
    )
