"""Decoding for translation: raw strings → greedy or beam search → ids or strings, in one graph.

- :class:`Decoder`: a batch of source strings → target ids, scores and
  attention maps (greedy, or beam search that keeps greedy's answer as a
  candidate), what ``TranslationPipeline.translate`` runs;
- :class:`Serving`: the same search with detokenization in the graph, what
  ``TranslationPipeline.export`` saves (strings in, strings out);
- :func:`detokenize_python` and its graph twin :func:`detokenize_graph`.
"""

from __future__ import annotations

import warnings

import tensorflow as tf

from seqkit.samplers import beam_search, greedy_search, length_normalize
from tasks.base import PipelineError, atomic_file
from tasks.translation_model import END, END_ID, START_ID
from tasks.translation_names import guarded_graph

__all__ = [
    "Decoder",
    "Serving",
    "banned_logits",
    "detokenize_python",
    "detokenize_graph",
    "plot_attention",
    "postprocess",
    "warn_long_or_empty",
]

_NO_SPACE_BEFORE = ".,;:!?)]}»%"
_NO_SPACE_AFTER = "¿¡([{«"


def detokenize_python(tokens: list[str]) -> str:
    """Joins word tokens with spaces, none before closing or after opening punctuation.

    Example:

    >>> detokenize_python(["¿", "Dónde", "está", "?"])
    '¿Dónde está?'
    """
    out = ""
    for tok in tokens:
        if out and tok[0] not in _NO_SPACE_BEFORE and out[-1] not in _NO_SPACE_AFTER:
            out += " "
        out += tok
    return out


def detokenize_graph(words):
    """Graph twin of :func:`detokenize_python`: ``words`` ragged (batch, None) strings."""
    text = tf.strings.reduce_join(words, axis=-1, separator=" ")
    text = tf.strings.regex_replace(text, r" ([.,;:!?)\]}»%])", r"\1")
    return tf.strings.regex_replace(text, r"([¿¡(\[{«]) ", r"\1")


def banned_logits(vocabulary_size: int):
    """Subtracted from logits: [PAD], [UNK] and [START] are never generated. (vocabulary,)"""
    return tf.reduce_sum(tf.one_hot([0, 1, START_ID], vocabulary_size), 0) * 1e9


def _pad_time(x, width):
    """``x`` (batch, T, ...) zero-padded on axis 1 to ``width`` steps."""
    pad = [[0, 0], [0, width - tf.shape(x)[1]]] + [[0, 0]] * (len(x.shape) - 2)
    return tf.pad(x, pad)


class Decoder(tf.Module):
    """Encoding + greedy or beam search for a batch of raw strings, in one graph.

    Args:
        preprocessor: a fitted ``TranslationPreprocessor`` (its source
            vectorizer runs in the graph; its target vocabulary sizes the logits).
        model: the ``Seq2Seq`` model.
        beam_width: 1 is greedy.
    """

    def __init__(self, preprocessor, model, beam_width: int):
        super().__init__()
        self.source_vectorizer = preprocessor.source_vectorizer
        self.model = model
        self.beam_width = beam_width
        self.target_text = preprocessor.graph_text  # ids -> strings, in the graph
        self.vocabulary_size = len(preprocessor.target_vocabulary)

    def _search(self, text, max_length, length_penalty):
        ids = self.source_vectorizer(text).to_tensor()  # (batch, S)
        source_length = tf.reduce_sum(tf.cast(ids > 0, tf.int32), axis=-1)  # (batch,)
        ids = tf.pad(ids, [[0, 0], [0, 1]])  # at least one (padding) step: empty texts work
        memory, mask, states = self.model.encode(ids, training=False)
        keys = self.model.attention.project_keys(memory)
        batch = tf.shape(ids)[0]
        banned = banned_logits(self.vocabulary_size)

        def step(tokens, state):
            dec_states, memory, mask, keys = state
            logits, new_states, weights = self.model.step(tokens, dec_states, memory, mask, keys)
            logits = tf.cast(logits, tf.float32) - banned  # (batch, V)
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
        )  # (batch,)
        width = tf.maximum(tf.shape(b_ids)[1], tf.shape(g_ids)[1])
        ids = tf.where(better[:, None], _pad_time(b_ids, width), _pad_time(g_ids, width))
        att = tf.where(better[:, None, None], _pad_time(b_att, width), _pad_time(g_att, width))
        return ids, tf.where(better, b_score, g_score), att, source_length

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string),
            tf.TensorSpec([], tf.int32),
            tf.TensorSpec([], tf.float32),
        ]
    )
    def run(self, text, max_length, length_penalty):
        """-> ``{"ids" (batch, T), "score" (batch,), "attention" (batch, T, S), "source_length"}``."""
        ids, score, att, source_length = self._search(text, max_length, length_penalty)
        return {"ids": ids, "score": score, "attention": att, "source_length": source_length}


class Serving(Decoder):
    """What ``export`` saves: ``translate(text: tf.string[None]) -> {"translation": tf.string[None]}``.

    Args:
        preprocessor, model, beam_width: as :class:`Decoder`.
        length_penalty: GNMT length penalty of the beam search.
        max_length: most target tokens per sentence.
        guard: a ``NameGuard`` (names and numbers protected, as ``translate``
            does), or None.
    """

    def __init__(self, preprocessor, model, beam_width, length_penalty, max_length, guard=None):
        super().__init__(preprocessor, model, beam_width)
        self.max_length = max_length
        self.length_penalty = length_penalty
        self.guard = guard

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def translate(self, text):
        if self.guard is None:
            return {"translation": self._strings(text)}
        return {"translation": guarded_graph(self._strings, self.guard, text)}

    def _strings(self, text):
        ids, _, _, source_length = self._search(
            text, tf.constant(self.max_length), tf.constant(self.length_penalty)
        )
        # Words up to the first [END] (or padding).
        stop = tf.cumsum(tf.cast(tf.logical_or(ids == END_ID, ids == 0), tf.int32), axis=-1)
        keep = tf.equal(stop, 0)
        text_out = self.target_text(ids, keep)
        return tf.where(source_length > 0, text_out, "")


def warn_long_or_empty(pipeline, texts) -> None:
    """Warns about sources longer than ``max_length`` and empty ones."""
    words = pipeline.source_vectorizer.split(tf.constant(texts))
    lengths = words.row_lengths().numpy()
    long = [i for i, n in enumerate(lengths) if n > pipeline.preprocessor.max_length]
    if long:
        warnings.warn(
            f"{len(long)} source text(s) (e.g. number {long[0]}, {lengths[long[0]]} tokens) "
            f"are longer than max_length={pipeline.preprocessor.max_length}; only their first "
            f"{pipeline.preprocessor.max_length} tokens are translated.",
            stacklevel=3,
        )
    empty = [i for i, n in enumerate(lengths) if n == 0]
    if empty:
        warnings.warn(
            f"{len(empty)} source text(s) (e.g. number {empty[0]}) are empty; they "
            "translate to ''.",
            stacklevel=3,
        )


def postprocess(pipeline, batch, out, return_attention) -> list:
    """``Decoder.run``'s output for ``batch`` -> translations, or dicts with attention maps."""
    ids = out["ids"].numpy()
    att = out["attention"].numpy() if return_attention else None
    source_len = out["source_length"].numpy()
    vocab = pipeline.target_vocabulary
    results = []
    for row in range(len(batch)):
        kept = []
        for token in ids[row]:
            if token in (0, END_ID):
                break
            kept.append(int(token))
        tokens = [vocab[token] for token in kept]
        text = pipeline.preprocessor.text_of_ids(kept) if source_len[row] > 0 else ""
        if not return_attention:
            results.append(text)
            continue
        src_tokens = pipeline.source_vectorizer.tokens(batch[row])[
            : pipeline.preprocessor.max_length
        ]
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


def plot_attention(pipeline, text: str, path: str, beam_width: int = 1) -> str:
    """Draws the attention map of one translation to an image file (matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not isinstance(text, str):
        raise PipelineError("plot_attention() takes one string.")
    r = pipeline.translate([text], beam_width=beam_width, return_attention=True)[0]
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
