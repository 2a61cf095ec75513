"""ONNX / LiteRT export of the sentiment pipeline (written by :mod:`tasks.portable`).

One part, ``model``: word ids (the pipeline's vocabulary, 0 = padding) in,
class probabilities out, the heads combined as ``predict`` combines them.
The folder holds the vocabulary and the tokenizer's settings, so an app can
map text to ids without TensorFlow. With ``tokenizer="subword"`` the ids are
SentencePiece pieces: the folder also holds the model, ``sentencepiece.model``
(for any SentencePiece library), and ``vocabulary.txt`` lists its pieces.
"""

from __future__ import annotations

import json

from tasks.arguments import PipelineError
from tasks.portable import Part, Portable, Tensor, vocabulary_text

_USAGE = """\
1. Map each text to ids as the pipeline does (settings in `tokenizer.json`):
   replace control characters with spaces, remove HTML tags such as `<br />`
   (`strip_html`), lowercase (`lowercase`), put spaces around every character
   that is not a letter, digit, mark, space or apostrophe (`punctuation:
   "split"`; `"strip"` removes them), {lookup} Keep the {side} `max_length`
   ({max_length}) {unit}s.
2. Pad the batch with 0 on the right to one length, plus one more 0 (an empty
   text still needs one step) and feed `token_ids`.
3. `probabilities[i, c]` is the probability of class `labels[c]` (in
   `tokenizer.json`); the predicted label is the argmax.
"""
_WORD_LOOKUP = """\
split on whitespace, and look each word up in
   `vocabulary.txt` (line i, from 0, is id i, written as the body of a JSON
   string; a word not there is 1, `[UNK]`)."""
_SUBWORD_LOOKUP = """\
then (`"tokenizer": "subword"`) tokenize the result
   with the SentencePiece model `sentencepiece.model` (any SentencePiece library:
   Python's `sentencepiece`, or the C++ library in an app; no start or end ids;
   nothing is `[UNK]`: unseen characters are spelled in byte pieces);
   `vocabulary.txt` lists the pieces by id."""


def parts(pipeline, fmt: str, **kwargs) -> Portable:
    if kwargs:
        raise PipelineError(
            f"Unknown argument(s) {sorted(kwargs)} for exporting a sentiment pipeline to "
            f"{fmt}; it takes none."
        )
    import tensorflow as tf

    model = pipeline._bare_model()
    unit = "piece" if pipeline.tokenizer == "subword" else "word"
    weights, bias = pipeline._head_combination()

    def probabilities(ids):  # constants made in the trace: ONNX would take eager ones as inputs
        heads = tf.cast(model(ids, training=False), tf.float32)  # (batch, heads, classes)
        logits = tf.einsum("bhc,h->bc", heads, tf.constant(weights, tf.float32))
        logits = logits + tf.constant(bias, tf.float32)
        return (tf.nn.softmax(logits, axis=-1),)

    vectorizer = pipeline.vectorizer
    labels = [str(x) for x in pipeline.labels]
    settings = {**vectorizer.get_config(), "labels": labels, "padding_id": 0, "oov_id": 1}
    settings["tokenizer"] = pipeline.tokenizer
    files = {"vocabulary.txt": vocabulary_text(vectorizer.vocabulary)}
    if pipeline.tokenizer == "subword":
        settings.update(
            model_file="sentencepiece.model", vocabulary_size=len(vectorizer.vocabulary)
        )
        files["sentencepiece.model"] = vectorizer.model_proto
    files["tokenizer.json"] = json.dumps(settings, indent=1, default=str)
    part = Part(
        name="model",
        function=probabilities,
        inputs=[Tensor("token_ids", "int32", ("batch", "time"), f"{unit} ids, 0 = padding")],
        outputs=[
            Tensor(
                "probabilities",
                "float32",
                ("batch", len(labels)),
                f"class probabilities, in the order {labels}",
            )
        ],
    )
    side = "last" if vectorizer.truncating == "pre" else "first"
    lookup = _SUBWORD_LOOKUP if pipeline.tokenizer == "subword" else _WORD_LOOKUP
    usage = _USAGE.format(lookup=lookup, side=side, max_length=vectorizer.max_length, unit=unit)
    return Portable(parts=[part], files=files, usage=usage)
