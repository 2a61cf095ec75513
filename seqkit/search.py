"""Search for encoder-decoder models: batched greedy and beam search, in one graph.

``BeamSampler(num_beams, length_penalty)`` names a search as an object (as
keras-hub's ``BeamSampler`` does), so that a pipeline takes
``translate(texts, sampler=BeamSampler(4))`` beside its keyword shortcuts
(``seqkit.samplers.search_settings`` reads either form).

Example:

>>> BeamSampler(4, length_penalty=0.6)
BeamSampler(num_beams=4, length_penalty=0.6)
"""

from __future__ import annotations

import numbers

import tensorflow as tf

from seqkit.errors import UsageError

__all__ = [
    "BeamSampler",
    "check_beams",
    "check_length_penalty",
    "greedy_search",
    "beam_search",
    "length_normalize",
]


def check_beams(num_beams, name="num_beams") -> int:
    if isinstance(num_beams, bool) or not isinstance(num_beams, numbers.Integral) or num_beams < 1:
        raise UsageError(f"Received `{name}={num_beams!r}`; expected an integer >= 1.")
    return int(num_beams)


def check_length_penalty(value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
        raise UsageError(f"Received `length_penalty={value!r}`; expected a number >= 0.")
    return float(value)


class BeamSampler:
    """Beam search with ``num_beams`` beams (1 is greedy), ranked GNMT-style.

    Args:
        num_beams: prefixes kept per input; 1 decodes greedily.
        length_penalty: finished hypotheses are ranked by
            ``score / ((5 + length) / 6) ** length_penalty``; 0 ranks by raw
            log-probability, higher favours longer ones.

    Calling it runs the search: ``sampler(step_fn, state, batch_size,
    max_length, start_id, end_id)`` -> ``(ids, scores, lengths, aux)`` (see
    :func:`beam_search` and :func:`greedy_search`).
    """

    def __init__(self, num_beams: int = 4, length_penalty: float = 0.6):
        self.num_beams = check_beams(num_beams)
        self.length_penalty = check_length_penalty(length_penalty)

    def __call__(self, step_fn, state, batch_size, max_length, start_id, end_id):
        if self.num_beams == 1:
            return greedy_search(step_fn, state, batch_size, max_length, start_id, end_id)
        return beam_search(
            step_fn,
            state,
            batch_size,
            self.num_beams,
            max_length,
            start_id,
            end_id,
            self.length_penalty,
        )

    def get_config(self) -> dict:
        return {"num_beams": self.num_beams, "length_penalty": self.length_penalty}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _gather_beams(tree, index):
    """Gathers rows ``index`` (flat, (batch * beam,)) of every tensor in a nested state."""
    return tf.nest.map_structure(lambda x: tf.gather(x, index), tree)


def _running(t, max_length, finished):
    """A search goes on while steps are left and some row is unfinished."""
    return tf.logical_and(t < max_length, tf.logical_not(tf.reduce_all(finished)))


def _log_probs(step_fn, tokens, structure, flat):
    """One decoding step on the flattened state: -> (log-probs (n, V), new state, aux)."""
    logits, new_state, aux = step_fn(tokens, tf.nest.pack_sequence_as(structure, list(flat)))
    return tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1), new_state, aux


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
        return _running(t, max_length, finished)

    def body(t, tokens, finished, scores, lengths, ids_ta, aux_ta, *flat):
        log_p, new_state, aux = _log_probs(step_fn, tokens, state_structure, flat)
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
        return _running(t, max_length, finished)

    def body(t, tokens, scores, finished, lengths, history, aux_history, *flat):
        log_p, new_state, aux = _log_probs(step_fn, tokens, state_structure, flat)
        log_p = tf.reshape(log_p, [B, K, V])
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
