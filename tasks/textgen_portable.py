"""The ONNX / LiteRT export of a text-generation pipeline: one step of the language model.

``parts(pipeline, fmt)`` gives :func:`tasks.portable.export_portable` one part,
``step``: a token id per row and the recurrent states in, the next-token
logits and the new states out. The app runs the loop (reading the prompt,
sampling, appending) itself; the tokenizer is written beside it as files
(``vocabulary.txt``, ``tokenizer.json``; at subword level also the
SentencePiece model ``sentencepiece.model``), since TFLite and ONNX have no
string ops.

Example:

>>> from tasks.portable import export_portable
>>> export_portable(lm, "lm_litert", "litert")  # step.tflite, vocabulary.txt, tokenizer.json, ...
"""

from __future__ import annotations

import json

import tensorflow as tf

from seqkit.subword import NEWLINE
from tasks.arguments import PipelineError
from tasks.portable import Part, Portable, Tensor, vocabulary_text

__all__ = ["parts", "state_names"]

_USAGE = """\
Generation is a loop the app runs, one `step` call per token; the N rows of
the `batch` dimension are N independent texts (samples) advanced together.

1. **Text to ids.** Split the text as `tokenizer.json` says, then look each token
   up in `vocabulary.txt`: line *i* holds the token with id *i*, written as the
   body of a JSON string (decode it with a JSON parser, e.g.
   `json.loads('"' + line + '"')`: a line break token is the line `\\n`). A token not
   in the vocabulary is id 1 (`[UNK]`).
2. **Initial states.** Zeros: every state input (`{states}`), float32 (N, {units}).
   The model has no learned initial state.
3. **Read the prompt.** Call `step` with each prompt id in turn (the same id in
   every row, or one prompt per row), feeding back the states it returns. The
   logits of the last call predict the first new token. An empty prompt starts
   from the one token `primer_id` of `tokenizer.json` (a line break when the
   vocabulary has one).
4. **Choose the next id** from the logits (N, vocabulary): never ids 0 (`[PAD]`)
   and 1 (`[UNK]`) (set their logits to -inf); temperature 0 is the argmax;
   otherwise divide the logits by the temperature, optionally keep the top_k
   largest (or the top_p nucleus), softmax, draw.
5. **Advance.** Call `step` with the chosen ids and the states of the last call;
   repeat from 4 until enough tokens (or a stop string).
6. **Ids to text.** Level "char": concatenate the tokens. Level "word": join them
   with single spaces, then drop the spaces around a line break, before
   `{no_space_before}` and after `{no_space_after}`; a continuation of a prompt that
   does not end in whitespace starts with a space unless its first character is
   whitespace or one of `{no_space_before}`.

Greedy decoding (temperature 0) this way gives the text of the pipeline's
`generate(prompt, temperature=0)`.
"""

_SUBWORD_TEXT = """\
1. **Text to ids.** {lower}Replace every line break (\\r\\n, \\r or \\n), with the
   spaces and tabs before it, by the piece `{newline}` (U+2424), and put one space
   after each run of `{newline}` (regex `[ \\t]*(\\r\\n?|\\n)` -> `{newline}`, then
   `{newline}+` -> itself + " "), then tokenize with the SentencePiece model
   `sentencepiece.model` (any SentencePiece library: Python's `sentencepiece`, or
   the C++ library inside an app; no start or end ids). `vocabulary.txt` lists the
   pieces (line *i* is piece *i*); no text is unknown (byte fallback).
"""
_SUBWORD_DETOKENIZE = """\
6. **Ids to text.** Decode the new ids with the same SentencePiece model
   (`DecodeIds`: "▁" marks a space, byte pieces form UTF-8 characters), then
   replace `{newline}` and one space after it by a line break (regex `{newline} ?`).
   After a non-empty prompt, decode the ids behind the byte piece `<0x41>` ("A",
   id {sentinel}) and drop that "A", so that a first "▁" stays a space; if the
   prompt ends with a space, a tab or a line break, drop one leading space.
"""

_NO_SPACE_BEFORE = ".,;:!?)]}»"
_NO_SPACE_AFTER = "([{«"


def state_names(stack, prefix: str = "") -> list[str]:
    """The flat state list's names: ``h_0, c_0, h_1, c_1`` (LSTM) or ``h_0, h_1`` per layer."""
    names = []
    for layer, count in enumerate(stack.states_per_layer):
        names += [f"{prefix}{name}_{layer}" for name in ("h", "c")[:count]]
    return names


def _subword_settings(pipeline) -> dict:
    tokenizer = pipeline.tokenizer
    return {
        "level": "subword",
        "tokenizer": "subword",
        "model_file": "sentencepiece.model",
        "lowercase": tokenizer.lowercase,
        "newline_piece": NEWLINE,
        "vocabulary_size": tokenizer.vocabulary_size,
        "padding_id": 0,
        "unknown_id": 1,
        "start_id": 2,
        "end_id": 3,
        "never_generate": list(tokenizer.never_generate),
        "primer_id": pipeline.preprocessor.primer_id,
        "invalid_utf8": "each invalid byte sequence reads as U+FFFD",
        "split": "lowercase first if `lowercase`; a line break (\\r\\n, \\r, \\n) and the "
        "spaces and tabs before it become `newline_piece`, and a space follows each run of "
        "them; then SentencePiece EncodeAsIds with `model_file`",
        "detokenize": "SentencePiece DecodeIds, then `newline_piece` and one space after it "
        "become \\n",
    }


def _subword_usage(usage: str, pipeline) -> str:
    """The char/word recipe with its tokenizing and detokenizing steps for subwords."""
    head, rest = usage.split("1. **Text to ids.**", 1)
    body = rest.split("2. **Initial states.**", 1)[1].split("6. **Ids to text.**", 1)[0]
    tail = usage.split("\n\n")[-1]
    body = body.replace(
        "ids 0 (`[PAD]`)\n   and 1 (`[UNK]`)", "ids 0-3 (`[PAD]`,\n   `[UNK]`, `[START]`, `[END]`)"
    )
    lower = "Lowercase the text if `lowercase` (here: yes). " if pipeline.lowercase else ""
    tokenizer = pipeline.tokenizer
    return (
        head
        + _SUBWORD_TEXT.format(lower=lower, newline=NEWLINE)
        + "2. **Initial states.**"
        + body
        + _SUBWORD_DETOKENIZE.format(newline=NEWLINE, sentinel=tokenizer.vocabulary.index("<0x41>"))
        + "\n"
        + tail
    )


def _tokenizer_settings(pipeline) -> dict:
    tokenizer = pipeline.tokenizer
    if tokenizer.level == "subword":
        return _subword_settings(pipeline)
    settings = {
        "level": tokenizer.level,
        "lowercase": tokenizer.lowercase,
        "vocabulary_size": tokenizer.vocabulary_size,
        "padding_id": 0,
        "unknown_id": 1,
        "never_generate": [0, 1],
        "primer_id": pipeline.preprocessor.primer_id,
        "invalid_utf8": "each invalid byte sequence reads as U+FFFD",
    }
    if tokenizer.level == "char":
        settings["split"] = (
            "lowercase first if `lowercase` (Unicode lowercase); then one token per Unicode "
            "code point, nothing normalised (spaces and line breaks are tokens)"
        )
    else:
        settings["split"] = (
            "lowercase first if `lowercase` (Unicode lowercase); replace \\r\\n and \\r by \\n; "
            "every \\n is a token; every character matching `punctuation_regex` is a token "
            "of its own; the rest is split on whitespace"
        )
        settings["punctuation_regex"] = r"[^\p{L}\p{N}\p{M}\s']"
    settings["detokenize"] = {
        "join": "" if tokenizer.level == "char" else " ",
        "no_space_around": [] if tokenizer.level == "char" else ["\n"],
        "no_space_before": "" if tokenizer.level == "char" else _NO_SPACE_BEFORE,
        "no_space_after": "" if tokenizer.level == "char" else _NO_SPACE_AFTER,
    }
    return settings


def parts(pipeline, fmt: str, **kwargs) -> Portable:
    """The ``step`` part of a fitted ``TextGenPipeline``, its files and README notes.

    Args:
        pipeline: a fitted (or loaded) ``TextGenPipeline``.
        fmt: "onnx" or "litert" (the same graph for both).

    Returns:
        A :class:`tasks.portable.Portable`: the part ``step(token_ids (N,) int32,
        *states (N, units) float32) -> (logits (N, vocabulary) float32, *new_states)``
        and the files ``vocabulary.txt`` and ``tokenizer.json`` (subword level:
        also ``sentencepiece.model``, the SentencePiece model's bytes).

    Raises:
        PipelineError: an unfitted pipeline, or any keyword argument (there are none).
    """
    if kwargs:
        raise PipelineError(
            f"Unknown argument(s) {sorted(kwargs)} for a {fmt} export of a text-generation "
            "pipeline; it takes none besides format and quantize (the app chooses the "
            "sampling settings)."
        )
    pipeline._require_fitted("export")
    model = pipeline._bare_model()  # as the SavedModel export: no optimizer or metrics
    names = state_names(model.stack)
    vocabulary = pipeline.tokenizer.vocabulary_size

    def step(token_ids, *states):
        logits, new_states = model.step(token_ids, list(states))  # (N, vocabulary)
        return (tf.cast(logits, tf.float32), *(tf.cast(s, tf.float32) for s in new_states))

    state_in = [
        Tensor(name, "float32", ("batch", model.units), f"state {name} before this token")
        for name in names
    ]
    state_out = [
        Tensor(f"new_{name}", "float32", ("batch", model.units), f"state {name} after it")
        for name in names
    ]
    part = Part(
        "step",
        step,
        inputs=[Tensor("token_ids", "int32", ("batch",), "the current token of each row")]
        + state_in,
        outputs=[
            Tensor(
                "logits",
                "float32",
                ("batch", vocabulary),
                "next-token scores (softmax gives the probabilities)",
            )
        ]
        + state_out,
    )
    usage = _USAGE.format(
        states="`, `".join(names),
        units=model.units,
        no_space_before=_NO_SPACE_BEFORE,
        no_space_after=_NO_SPACE_AFTER,
    )
    files = {
        "vocabulary.txt": vocabulary_text(pipeline.tokenizer.vocabulary),
        "tokenizer.json": json.dumps(_tokenizer_settings(pipeline), indent=1, ensure_ascii=False),
    }
    if pipeline.level == "subword":
        usage = _subword_usage(usage, pipeline)
        files["sentencepiece.model"] = pipeline.tokenizer.subword.model_proto
    return Portable(parts=[part], files=files, usage=usage)
