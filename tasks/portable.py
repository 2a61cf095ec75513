"""ONNX and LiteRT exports of a pipeline: token ids (or numbers) in, the
task's numbers out, for runtimes without TensorFlow's string ops.

One writer for every task. A task's module ``tasks/<task>_portable.py``
defines ``parts(pipeline) -> Portable``: the graphs to export (each a
function over tensors with named input specs), the files an app needs
beside them (vocabulary, scaler) and what README.md should say about using
them. :func:`export_portable` converts each part (tf2onnx for ONNX, TFLite's
converter for LiteRT, built-in operators only), checks the result, and writes
the folder atomically:

    <path>/<part>.onnx | <part>.tflite   one per part
    <path>/<file>                         the task's files (vocabulary.txt, ...)
    <path>/signature.json                 inputs and outputs of every part
    <path>/README.md                      the same, for people, and how to use them
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import tempfile

from seqkit.export import atomic_folder, exporting
from tasks.arguments import PipelineError, bool_arg, choice

__all__ = [
    "Tensor",
    "Part",
    "Portable",
    "check_export",
    "export_portable",
    "FORMATS",
    "QUANTIZE",
    "tflite_operators",
    "vocabulary_text",
]

FORMATS = ("saved_model", "onnx", "litert")

QUANTIZE = ("float16", "dynamic_int8")
# Characters that end a line for some reader (Python's str.splitlines among them):
# written as \uXXXX escapes so that line i of vocabulary.txt is always token i.
_LINE_BREAKS = "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_EXTENSION = {"onnx": "onnx", "litert": "tflite"}
_ONNX_OPSET = 17


@dataclasses.dataclass
class Tensor:
    """One input or output of a part: its name, dtype, shape and meaning. A
    dimension is a number, or a name ("batch", "time") for any size."""

    name: str
    dtype: str
    shape: tuple
    meaning: str


@dataclasses.dataclass
class Part:
    """One exported graph. ``function`` takes the inputs as tensors, in order,
    and returns the outputs as a tuple, in order; the exported file names them
    (ONNX lists its outputs by name, alphabetically)."""

    name: str
    function: object
    inputs: list
    outputs: list


@dataclasses.dataclass
class Portable:
    """What a task exports: its parts, extra files ({name: text, or bytes}), README notes."""

    parts: list
    files: dict
    usage: str


def _specs(part):
    import tensorflow as tf

    def dims(shape):  # named dimensions ("batch", "time") are free
        return [d if isinstance(d, int) else None for d in shape]

    return [tf.TensorSpec(dims(t.shape), getattr(tf, t.dtype), name=t.name) for t in part.inputs]


def _concrete(part):
    """The part as a traced tf.function returning {output name: tensor}."""
    import tensorflow as tf

    names = [t.name for t in part.outputs]

    def named(*args):
        outputs = tuple(part.function(*args))
        if len(outputs) != len(names):
            raise RuntimeError(f"part {part.name!r} returned {len(outputs)} outputs for {names}")
        return dict(zip(names, outputs))

    fn = tf.function(named, input_signature=_specs(part))
    return fn, fn.get_concrete_function()


def _to_onnx(part, path):
    import tf2onnx

    fn, _ = _concrete(part)
    specs = _specs(part)
    tf2onnx.convert.from_function(
        fn,
        input_signature=specs,
        opset=_ONNX_OPSET,
        output_path=path,
    )
    import onnx

    names = [i.name for i in onnx.load(path, load_external_data=False).graph.input]
    if names != [t.name for t in part.inputs]:  # e.g. an eager constant captured by the trace
        raise RuntimeError(f"part {part.name!r} exported with inputs {names}")


def _to_litert(part, path, quantize):
    import tensorflow as tf

    fn, concrete = _concrete(part)
    # Through a SavedModel, as Keras's own LiteRT export does: the .tflite then
    # keeps a signature, so the interpreter's signature runner takes the inputs
    # and gives the outputs by name.
    module = tf.Module()
    module.serve = fn
    module.served_variables = list(concrete.variables)  # Keras variables are saved as copies
    with tempfile.TemporaryDirectory(prefix="seqkit-litert-") as saved:
        tf.saved_model.save(module, saved, signatures={"serving_default": concrete})
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantize is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            if quantize == "float16":
                converter.target_spec.supported_types = [tf.float16]
        try:
            flat = converter.convert()
        except Exception as error:  # the converter's own error names the op
            first = str(error).strip().splitlines()[0][:300]
            raise PipelineError(
                f"Part {part.name!r} cannot be expressed in TFLite built-in operators "
                f"({type(error).__name__}: {first}); export it with format='onnx' or "
                "'saved_model' instead."
            ) from None
    with open(path, "wb") as f:
        f.write(flat)
    custom = [op for op in tflite_operators(path) if op.startswith("custom:")]
    if custom:
        raise PipelineError(
            f"Part {part.name!r} needs operators outside TFLite's built-ins ({custom}); "
            "export it with format='onnx' or 'saved_model' instead."
        )


def tflite_operators(path: str) -> list[str]:
    """Every operator of every subgraph of a .tflite file: "NAME" for a
    built-in, "custom:NAME" otherwise (Flex ops are custom ops "Flex...")."""
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        from tensorflow.lite.python import schema_py_generated as schema
    with open(path, "rb") as f:
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(f.read(), 0))
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    codes = []
    for code in model.operatorCodes:
        if code.customCode:
            codes.append("custom:" + code.customCode.decode())
        else:
            codes.append(names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "?"))
    return sorted({codes[op.opcodeIndex] for g in model.subgraphs for op in g.operators or []})


def vocabulary_text(tokens) -> str:
    """One token per line, line i = id i, each as the body of a JSON string.

    Quotes, backslashes, control characters and every other character that a
    reader could take for a line break are escaped, so any token fits on its line.

    Example:

    >>> vocabulary_text(["[PAD]", "[UNK]", "\\n", "a"])
    '[PAD]\\n[UNK]\\n\\\\n\\na\\n'
    """
    lines = []
    for token in tokens:
        body = json.dumps(token, ensure_ascii=False)[1:-1]
        for ch in _LINE_BREAKS:
            body = body.replace(ch, f"\\u{ord(ch):04x}")
        lines.append(body + "\n")
    return "".join(lines)


def _describe(t: Tensor) -> str:
    shape = ", ".join(str(d) for d in t.shape)
    return f"| `{t.name}` | {t.dtype} | ({shape}) | {t.meaning} |"


def _readme(pipeline, fmt, quantize, portable, files):
    runtime = (
        "onnxruntime: `onnxruntime.InferenceSession(path).run(None, {name: array})`"
        if fmt == "onnx"
        else "the LiteRT interpreter (`pip install ai-edge-litert`): "
        "`Interpreter(model_path=path).get_signature_runner()(**{name: array})`; "
        "built-in operators only (no Flex delegate needed)"
    )
    lines = [
        f"# {pipeline.task} pipeline, exported as {fmt.upper()}"
        + (f" ({quantize} quantized)" if quantize else ""),
        "",
        f"Written by seqkit's `export(path, format={fmt!r})`. Run it with {runtime}.",
        "Dimensions given by name (batch, time, ...) take any size. Inputs and outputs "
        "are addressed by name.",
        "",
    ]
    for part in portable.parts:
        lines += [f"## {part.name}.{_EXTENSION[fmt]}", "", "Inputs:", ""]
        lines += ["| name | dtype | shape | meaning |", "|---|---|---|---|"]
        lines += [_describe(t) for t in part.inputs]
        lines += ["", "Outputs:", "", "| name | dtype | shape | meaning |"]
        lines += ["|---|---|---|---|"] + [_describe(t) for t in part.outputs] + [""]
    if files:
        lines += ["## Files", ""] + [f"- `{name}`" for name in sorted(files)] + [""]
    lines += ["## Use", "", portable.usage.strip(), ""]
    return "\n".join(lines)


def check_export(path, format: str, overwrite: bool) -> None:
    """What every ``export`` checks first: the format, the path, ``overwrite``."""
    choice("format", format, list(FORMATS))
    if not isinstance(path, str | os.PathLike) or not os.fspath(path):
        raise PipelineError(f"Received `path={path!r}`; expected a folder path.")
    if os.path.exists(path) and not bool_arg("overwrite", overwrite):
        raise PipelineError(
            f"{os.fspath(path)} already exists; export to a new folder, or pass "
            "overwrite=True (--overwrite) to replace it once the new copy is complete."
        )


def export_portable(pipeline, path: str, format: str, quantize: str | None = None, **kwargs):
    """Writes the pipeline's ONNX or LiteRT folder (see the module docstring)."""
    fmt = choice("format", format, list(_EXTENSION))
    if quantize is not None:
        if fmt != "litert":
            raise PipelineError(
                f"Received `quantize={quantize!r}` with format={fmt!r}; quantization is a "
                "LiteRT option: pass format='litert'."
            )
        choice("quantize", quantize, list(QUANTIZE))
    try:
        module = importlib.import_module(f"tasks.{pipeline.task}_portable")
    except ModuleNotFoundError:
        raise PipelineError(
            f"The {pipeline.task} pipeline has no {fmt} export; use format='saved_model'."
        ) from None
    portable = module.parts(pipeline, fmt, **kwargs)
    with atomic_folder(os.fspath(path)) as tmp, exporting(fmt):
        for part in portable.parts:
            target = os.path.join(tmp, f"{part.name}.{_EXTENSION[fmt]}")
            if fmt == "onnx":
                _to_onnx(part, target)
            else:
                _to_litert(part, target, quantize)
        for name, text in portable.files.items():
            if isinstance(text, bytes):  # e.g. a SentencePiece model
                with open(os.path.join(tmp, name), "wb") as f:
                    f.write(text)
                continue
            with open(os.path.join(tmp, name), "w", encoding="utf-8") as f:
                f.write(text)
        signature = {
            "task": pipeline.task,
            "format": fmt,
            "quantize": quantize,
            "parts": {
                p.name: {
                    "file": f"{p.name}.{_EXTENSION[fmt]}",
                    "inputs": [dataclasses.asdict(t) for t in p.inputs],
                    "outputs": [dataclasses.asdict(t) for t in p.outputs],
                }
                for p in portable.parts
            },
            "files": sorted(portable.files),
        }
        with open(os.path.join(tmp, "signature.json"), "w", encoding="utf-8") as f:
            json.dump(signature, f, indent=1)
        with open(os.path.join(tmp, "README.md"), "w", encoding="utf-8") as f:
            f.write(_readme(pipeline, fmt, quantize, portable, portable.files))
    return os.fspath(path)
