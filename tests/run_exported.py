"""Runs exported ONNX / LiteRT files the way an app would: a fresh process,
onnxruntime or the LiteRT interpreter, and no seqkit (nor Keras) imported.

Usage: python tests/run_exported.py JOBS.json

JOBS.json holds a list of jobs, each
``{"path": "model.onnx" | "model.tflite", "inputs": "in.npz", "output": "out.npz"}``.
The arrays of ``in.npz`` are fed by name where the model's input names match
them, else in the order they were saved; ``out.npz`` receives the outputs in
the model's order as ``out_0``, ``out_1``, ..., and by name as ``name:<output
name>``, with ``names`` listing them in that order; for a ``.tflite`` file also
``operators``: every operator of every subgraph, as "BUILTIN_NAME" or
"custom:NAME" (Flex ops are custom ops named Flex...); and ``error``, the
message, where a job failed (the others still run).
"""

from __future__ import annotations

import json
import re
import sys

import numpy as np


def _ordered(names, arrays):
    """Feeds: by name when every model input name is in `arrays`, else by order."""
    keys = list(arrays)
    if all(n in arrays for n in names):
        return {n: arrays[n] for n in names}
    if len(keys) != len(names):
        raise SystemExit(f"model inputs {names}, but {len(keys)} arrays were given ({keys})")
    return dict(zip(names, (arrays[k] for k in keys)))


def run_onnx(path, arrays):
    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    feeds = _ordered(names, arrays)
    return session.run(None, feeds), [o.name for o in session.get_outputs()], {}


def tflite_operators(path):
    """Every operator of every subgraph of a .tflite file."""
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:  # older setups: TensorFlow's copy of the schema
        from tensorflow.lite.python import schema_py_generated as schema
    with open(path, "rb") as f:
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(f.read(), 0))
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    codes = []
    for code in model.operatorCodes:
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        if code.customCode:
            codes.append("custom:" + code.customCode.decode())
        else:
            codes.append(names.get(builtin, str(builtin)))
    used = set()
    for graph in model.subgraphs:
        for op in graph.operators or []:
            used.add(codes[op.opcodeIndex])
    return sorted(used)


def run_litert(path, arrays):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        from tensorflow.lite.python.interpreter import Interpreter
    interpreter = Interpreter(model_path=path)
    runner = interpreter.get_signature_runner()
    names = list(runner.get_input_details())
    result = runner(**_ordered(names, arrays))

    def index(name):  # output_0, output_1, ... in order; other names as given
        m = re.search(r"(\d+)$", name)
        return (int(m.group(1)) if m else 0, name)

    order = sorted(result, key=index)
    return [result[k] for k in order], order, {"operators": np.array(tflite_operators(path))}


def main(jobs_path):
    with open(jobs_path) as f:
        jobs = json.load(f)
    for job in jobs:
        with np.load(job["inputs"]) as data:
            arrays = {k: data[k] for k in data.files}
        run = run_litert if job["path"].endswith(".tflite") else run_onnx
        try:
            outputs, names, extra = run(job["path"], arrays)
        except Exception as error:  # the caller reports it for this job alone
            extra = {"error": np.array(f"{type(error).__name__}: {error}")}
            if job["path"].endswith(".tflite"):
                extra["operators"] = np.array(tflite_operators(job["path"]))
            outputs, names = [], []
        by_index = {f"out_{i}": o for i, o in enumerate(outputs)}
        by_name = {f"name:{n}": o for n, o in zip(names, outputs)}
        np.savez(job["output"], **by_index, **by_name, names=np.array(names), **extra)
    leaked = sorted(m for m in ("seqkit", "tasks", "keras") if m in sys.modules)
    if leaked:
        raise SystemExit(f"the runner imported {leaked}: it must run without them")


if __name__ == "__main__":
    main(sys.argv[1])
