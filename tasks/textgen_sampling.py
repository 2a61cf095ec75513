"""Text generation's sampling settings and text pieces: what a sampler or the shortcuts
mean, stop strings, and the streamed text.

``sampling_parameters`` turns ``generate``'s ``sampler=`` or its shortcuts
(temperature, top_k, top_p) into the numbers the compiled loop takes;
``stream_text`` turns the tokens of the loop, a few per call, into text pieces.
"""

from __future__ import annotations

import numbers

import tensorflow as tf

from seqkit.samplers import Sampler, check_temperature, check_top_k, check_top_p
from tasks.base import PipelineError

__all__ = [
    "sampling_parameters",
    "uses_parameters",
    "check_stop",
    "cut",
    "needs_space",
    "stream_text",
]

STREAM_CHUNK = 8  # tokens generated per compiled call when streaming
INCOMPLETE = "\ufffd"  # what subword decoding shows for the first bytes of a character


def sampling_parameters(sampler, temperature, top_k, top_p) -> tuple:
    """(temperature, top_k, top_p) as Python numbers, from ``sampler`` or the shortcuts.

    Passing a sampler and a shortcut is refused; a shortcut left None takes its
    default (temperature 1.0, every token).
    """
    shortcuts = {"temperature": temperature, "top_k": top_k, "top_p": top_p}
    if sampler is not None:
        given = [name for name, value in shortcuts.items() if value is not None]
        if given:
            raise PipelineError(
                f"Received `sampler={sampler!r}` and `{given[0]}={shortcuts[given[0]]!r}`; "
                "pass either a sampler or the shortcuts temperature / top_k / top_p, "
                "not both (e.g. sampler=TopKSampler(10, temperature=0.8))."
            )
        if not isinstance(sampler, Sampler):
            raise PipelineError(
                f"Received `sampler={sampler!r}`; expected a seqkit.samplers.Sampler "
                "(e.g. TopPSampler(0.9)) or None."
            )
        return sampler.temperature, sampler.top_k, sampler.top_p
    if temperature is None:
        temperature = 1.0
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
        return check_temperature(temperature), check_top_k(top_k), check_top_p(top_p)
    except ValueError as error:
        raise PipelineError(str(error)) from None


def uses_parameters(sampler) -> bool:
    """Whether ``sampler`` (or the shortcuts, None) is read by its parameters: the
    ``seqkit.samplers`` classes are; a subclass with its own ``__call__`` is not."""
    return sampler is None or type(sampler).__call__ is Sampler.__call__


def check_stop(stop) -> list[str]:
    """``stop`` as a list of non-empty strings (None: none), or a PipelineError."""
    if stop is None:
        return []
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list | tuple) or not all(isinstance(s, str) and s for s in stops):
        raise PipelineError(
            f"Received `stop={stop!r}`; expected a non-empty string or a list of them."
        )
    return list(stops)


def cut(text: str, stops: list[str]) -> str:
    """``text`` up to the first of the ``stops`` (all of it if none occurs)."""
    ends = [text.find(s) for s in stops]
    ends = [e for e in ends if e >= 0]
    return text[: min(ends)] if ends else text


def needs_space(prompt: str, text: str) -> bool:
    """Whether a word-level continuation joins its prompt with a space."""
    return not prompt[-1].isspace() and not text[0].isspace() and text[0] not in ".,;:!?)]}»"


def stream_text(continue_ids, params, logits, states, max_length, seed, decode, stops, head):
    """Yields the new text piece by piece, ``STREAM_CHUNK`` tokens per compiled call.

    Only text that later tokens cannot change is yielded: the end that may
    start a stop string, and a trailing U+FFFD (a subword byte piece whose
    character is not complete yet), wait for the next tokens; the text is
    ``decode`` of all the tokens so far.

    Args:
        continue_ids: the compiled loop ``(logits, states, t0, n, *params, seed) ->
            (tokens (1, n), logits, states)``.
        params: its sampling inputs (tensors; empty for a custom sampler).
        logits, states: after reading the prompt.
        max_length: new tokens in all.
        seed: int, the stateless seed of the whole text.
        decode: ``decode(ids) -> text`` of the continuation so far.
        stops: stop strings; the text ends before the first.
        head: the prompt when it is part of the output, else "".
    """
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
        tokens, logits, states = continue_ids(
            logits, states, tf.constant(t), tf.constant(n), *params, tf.constant(seed)
        )
        t += n
        for token in tokens.numpy()[0].tolist():
            produced.append(token)
            text = decode(produced)
            shown = cut(text, stops)
            if len(shown) < len(text):  # a stop string appeared
                if len(shown) > len(emitted):
                    yield shown[len(emitted) :]
                return
            ready = text[: len(text) - hold] if hold else text
            # A piece of a character's UTF-8 bytes reads as U+FFFD until the rest come.
            ready = ready.rstrip(INCOMPLETE)
            if len(ready) > len(emitted):
                yield ready[len(emitted) :]
                emitted = ready
    if len(text) > len(emitted):
        yield text[len(emitted) :]
