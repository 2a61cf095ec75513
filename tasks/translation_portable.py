"""The ONNX / LiteRT export of a translation pipeline: the encoder and one decoder step.

``parts(pipeline, fmt)`` gives :func:`tasks.portable.export_portable` two parts:

- ``encoder``: source ids ``(batch, source_time)`` (0 = padding) -> the encoder
  outputs, their attention keys, the source mask and the decoder's initial states;
- ``decoder_step``: the previous target token ``(batch,)``, the decoder states
  and the encoder's outputs -> next-token logits, the new states and the
  attention weights of this step.

The app runs the search (greedy, or its own beam search) around
``decoder_step``; the word vocabularies and the tokenizer's settings are
written beside the parts, since TFLite and ONNX have no string ops. With the
name guard (``keep_names``), ``names.json`` and ``names_guard.py``
(:mod:`tasks.names_guard`, standard library only) let the app protect unseen
names and numbers as ``translate`` does.

Example:

>>> from tasks.portable import export_portable
>>> export_portable(mt, "mt_onnx", "onnx")  # encoder.onnx, decoder_step.onnx, vocabularies, ...
"""

from __future__ import annotations

import json

import tensorflow as tf

from tasks.arguments import PipelineError
from tasks.portable import Part, Portable, Tensor, vocabulary_text
from tasks.translation_model import END_ID, START_ID

__all__ = ["parts", "NEVER_GENERATE"]

NEVER_GENERATE = (0, 1, START_ID)  # [PAD], [UNK], [START]: what the pipeline's search bans

_USAGE = """\
Greedy decoding, for a batch of N sentences:

1. **Source text to ids.** As `tokenizer.json` says: NFC-normalise, replace control
   and format characters with spaces, lowercase if `lowercase`, put spaces around
   every character matching `punctuation_regex`, split on whitespace, look each
   word up in `source_vocabulary.txt` (line *i* is the word with id *i*, written
   as the body of a JSON string; an unknown word is id 1) and keep the first
   `source_max_length` ({max_length}) ids. Pad the rows with 0 on the right to
   one length T >= 1 (an empty sentence translates to "").
2. **Encode.** `encoder(source_ids)` gives `memory`, `keys`, `source_mask` and
   the decoder's initial states (`{states}`).
3. **Step.** Start with `token_ids` = `start_id` ({start_id}) in every row and
   `finished` false. Call `decoder_step(token_ids, {state_args}, memory, keys,
   source_mask)`; in its `logits` (N, target vocabulary) set the ids of
   `never_generate` ({never}) to -inf and take the argmax of each row: the next
   token (rows already finished get 0 instead). A row is finished once it
   produced `end_id` ({end_id}).
4. **Repeat** step 3 with the chosen tokens as `token_ids` and the `new_*`
   states as the states (`memory`, `keys` and `source_mask` stay the same),
   until every row is finished or after `target_max_length` ({target_max_length})
   tokens.
5. **Ids to text.** The target words (`target_vocabulary.txt`) up to the first
   `end_id`, joined with spaces, without a space before `{no_space_before}` or
   after `{no_space_after}`.

{names}`attention` (N, T) holds the weights of each step over the source words (0 at
padding); stacked over the steps it is the pipeline's attention map. Beam search
runs the same step on N * beams rows.
"""

_SUBWORD_TEXT = """\
1. **Source text to ids.** NFC-normalise{lower}, then tokenize with the SentencePiece
   model `sentencepiece.model` (with any SentencePiece library: Python's
   `sentencepiece`, or the C++ library inside an app; no start or end ids)
   and keep the first `source_max_length` ({max_length}) ids. Source and target share
   this one vocabulary (`vocabulary.txt`: line *i* is piece *i*). Pad the rows with 0
   on the right to one length T >= 1 (an empty sentence translates to "").
"""
_SUBWORD_DETOKENIZE = """\
5. **Ids to text.** The ids up to the first `end_id`, decoded by the same
   SentencePiece model (`DecodeIds`; "▁" marks a space, byte pieces form UTF-8).
"""
_NAMES = """\
6. **Names and numbers** (`names.json`, `names_guard.py`: Python's standard library
   only). The pipeline's `translate` swaps the names and numbers its training pairs
   never showed for surrogates the model copies ("Xiomara" -> "Tom"), and back after
   decoding; without that, an unseen name comes out garbled. Do the same around
   steps 1-5: `protected, originals = names_guard.protect(sentences, lexicon)`
   before step 1, `names_guard.restore(translations, originals, lexicon)` after
   step 5, or all of it with `names_guard.guarded(translate, sentences, lexicon)`
   (with `lexicon = names_guard.load("names.json")`), which also retries a sentence
   that lost a name with the next surrogates. The rules are in `names_guard.py`'s
   docstring, for a port to the app's language.

"""
_NO_SPACE_BEFORE = ".,;:!?)]}»%"
_NO_SPACE_AFTER = "¿¡([{«"


def _state_names(model) -> list[str]:
    return ["h", "c"][: model.n_states]


def _subword_settings(pre) -> dict:
    return {
        "tokenizer": "subword",
        "model_file": "sentencepiece.model",
        "lowercase": pre.lowercase,
        "unicode_normalize": "NFC",
        "shared_vocabulary": True,
        "source_max_length": pre.max_length,
        "truncating": "post",
        "target_max_length": pre.target_max_length,
        "vocabulary_size": pre.subword.size,
        "padding_id": 0,
        "unknown_id": 1,
        "start_id": START_ID,
        "end_id": END_ID,
        "never_generate": list(NEVER_GENERATE),
        "detokenize": "SentencePiece DecodeIds of the ids before end_id",
    }


def _subword_usage(usage: str, pre) -> str:
    """The word-level recipe with its tokenizing and detokenizing steps for subwords."""
    head, rest = usage.split("2. **Encode.**", 1)
    body, _ = rest.split("5. **Ids to text.**", 1)
    tail = rest.split("\n\n", 1)[1] if "\n\n" in rest else ""
    first = head.split("1. **Source text to ids.**")[0]
    lower = ", lowercase" if pre.lowercase else ""
    return (
        first
        + _SUBWORD_TEXT.format(lower=lower, max_length=pre.max_length)
        + "2. **Encode.**"
        + body
        + _SUBWORD_DETOKENIZE
        + "\n"
        + tail
    )


def _settings(pipeline) -> dict:
    pre = pipeline.preprocessor
    if pre.subword is not None:
        return _subword_settings(pre)
    vectorizer = pre.source_vectorizer
    return {
        "lowercase": pre.lowercase,
        "unicode_normalize": "NFC",
        "control_characters": "every character of Unicode categories Cc and Cf becomes a space",
        "punctuation": "split",
        "punctuation_regex": r"[^\p{L}\p{N}\p{M}\p{Z}\s']",
        "split": "on whitespace",
        "source_max_length": vectorizer.max_length,
        "truncating": "post",
        "target_max_length": pre.target_max_length,
        "source_vocabulary_size": vectorizer.vocabulary_size,
        "target_vocabulary_size": len(pre.target_vocabulary),
        "padding_id": 0,
        "unknown_id": 1,
        "start_id": START_ID,
        "end_id": END_ID,
        "never_generate": list(NEVER_GENERATE),
        "detokenize": {
            "join": " ",
            "no_space_before": _NO_SPACE_BEFORE,
            "no_space_after": _NO_SPACE_AFTER,
        },
    }


def _encoder(model, names, dec_units):
    def encoder(source_ids):
        memory, mask, states = model.encode(source_ids, training=False)  # (batch, S, D), ...
        keys = model.attention.project_keys(memory)  # (batch, S, D)
        return tuple(tf.cast(x, tf.float32) for x in (memory, keys, mask, *states))

    return Part(
        "encoder",
        encoder,
        inputs=[
            Tensor("source_ids", "int32", ("batch", "source_time"), "source word ids, 0 = padding")
        ],
        outputs=[
            Tensor("memory", "float32", ("batch", "source_time", dec_units), "encoder outputs"),
            Tensor(
                "keys",
                "float32",
                ("batch", "source_time", dec_units),  # luong: query width; bahdanau: its units
                "the encoder outputs projected for the attention scores",
            ),
            Tensor("source_mask", "float32", ("batch", "source_time"), "1 at words, 0 at padding"),
        ]
        + [
            Tensor(name, "float32", ("batch", dec_units), f"the decoder's initial state {name}")
            for name in names
        ],
    )


def _decoder_step(model, names, dec_units, vocabulary, encoded):
    """``encoded``: the encoder part's memory, keys and source_mask (inputs of every step)."""
    n = len(names)

    def decoder_step(token_ids, *args):
        states, (memory, keys, mask) = list(args[:n]), args[n:]
        logits, new_states, weights = model.step(token_ids, states, memory, mask > 0.5, keys)
        return tuple(tf.cast(x, tf.float32) for x in (logits, *new_states, weights))

    return Part(
        "decoder_step",
        decoder_step,
        inputs=[Tensor("token_ids", "int32", ("batch",), "the previous target token of each row")]
        + [Tensor(name, "float32", ("batch", dec_units), f"decoder state {name}") for name in names]
        + list(encoded),
        outputs=[Tensor("logits", "float32", ("batch", vocabulary), "next-token scores")]
        + [
            Tensor(f"new_{name}", "float32", ("batch", dec_units), f"decoder state {name} after it")
            for name in names
        ]
        + [
            Tensor(
                "attention",
                "float32",
                ("batch", "source_time"),
                "this step's attention weights over the source (0 at padding)",
            )
        ],
    )


def parts(pipeline, fmt: str, keep_names=None, **kwargs) -> Portable:
    """The ``encoder`` and ``decoder_step`` parts of a fitted ``TranslationPipeline``.

    Args:
        pipeline: a fitted (or loaded) ``TranslationPipeline``.
        fmt: "onnx" or "litert" (the same graphs for both).
        keep_names: write the name guard's ``names.json`` and ``names_guard.py``
            (default: the pipeline's ``keep_names``; nothing without surrogates).

    Returns:
        A :class:`tasks.portable.Portable` with the two parts and the files
        ``source_vocabulary.txt``, ``target_vocabulary.txt`` and ``tokenizer.json``
        (subwords: ``sentencepiece.model``, ``vocabulary.txt``, ``tokenizer.json``).

    Raises:
        PipelineError: an unfitted pipeline, a bad ``keep_names``, or any other
        keyword argument.
    """
    if kwargs:
        raise PipelineError(
            f"Unknown argument(s) {sorted(kwargs)} for a {fmt} export of a translation "
            "pipeline; it takes none besides format, quantize and keep_names (the app runs "
            "the search, greedy or beam, around decoder_step)."
        )
    pipeline._require_fitted("export")
    guard = pipeline._name_guard(keep_names)
    model = pipeline._bare_model()  # as the SavedModel export: no optimizer or metrics
    names = _state_names(model)
    vocabulary = len(pipeline.target_vocabulary)
    settings = _settings(pipeline)
    usage = _USAGE.format(
        max_length=settings["source_max_length"],
        target_max_length=settings["target_max_length"],
        states="`, `".join(names),
        state_args=", ".join(names),
        start_id=START_ID,
        end_id=END_ID,
        never=", ".join(map(str, NEVER_GENERATE)),
        no_space_before=_NO_SPACE_BEFORE,
        no_space_after=_NO_SPACE_AFTER,
        names=_NAMES if guard is not None else "",
    )
    pre = pipeline.preprocessor
    if pre.subword is not None:
        usage = _subword_usage(usage, pre)
        files = {
            "sentencepiece.model": pre.subword.model_proto,
            "vocabulary.txt": vocabulary_text(pre.subword.vocabulary),
            "tokenizer.json": json.dumps(settings, indent=1, ensure_ascii=False),
        }
    else:
        files = _word_files(pipeline, settings)
    if guard is not None:
        files.update(_names_files(pipeline.preprocessor.names))
    encoder = _encoder(model, names, model.dec_units)
    step = _decoder_step(model, names, model.dec_units, vocabulary, encoder.outputs[:3])
    return Portable(parts=[encoder, step], files=files, usage=usage)


def _word_files(pipeline, settings) -> dict:
    return {
        "source_vocabulary.txt": vocabulary_text(pipeline.source_vectorizer.vocabulary),
        "target_vocabulary.txt": vocabulary_text(pipeline.target_vocabulary),
        "tokenizer.json": json.dumps(settings, indent=1, ensure_ascii=False),
    }


def _names_files(lexicon: dict) -> dict:
    """``names.json`` (what :mod:`tasks.names_guard` reads) and that module's source."""
    from tasks import names_guard

    keys = ("keep", "lower", "starts", *names_guard.KINDS)
    with open(names_guard.__file__, encoding="utf-8") as f:
        source = f.read()
    return {
        "names.json": json.dumps({k: lexicon[k] for k in keys}, ensure_ascii=False),
        "names_guard.py": source,
    }
