"""Exported seqkit layers: ONNX and LiteRT against the SavedModel, same process.

Each row builds `keras.Input((None, F)) -> layer -> Dense(2)` with the seqkit
layer, exports it with Keras's own `model.export` to a SavedModel
(`format="tf_saved_model"`), ONNX and LiteRT, and loads each back:

* SavedModel: `tf.saved_model.load(path).serve` (the reference),
* ONNX: `onnxruntime.InferenceSession` (CPU provider),
* LiteRT: the `ai_edge_litert` interpreter's signature runner (XNNPACK on).

It prints the largest absolute difference from `model.predict`, the file
size, whether the .tflite holds built-in operators only, and the median
milliseconds per call at batch 1 and batch 64 (T timesteps), with the ratio
to the SavedModel (< 1: faster than the SavedModel). The Keras built-in layer
of each row is exported the same way, for comparison (its LiteRT file needs
Flex ops, which the interpreter refuses).

Usage:
    python benchmarks/export_layers.py              # all rows
    python benchmarks/export_layers.py --only lstm-128 --runs 10
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import _machine  # benchmarks/_machine.py, beside this script

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from seqkit import layers as sk  # noqa: E402
from tasks.portable import tflite_operators  # noqa: E402

ROWS = {
    "simplernn-128": ("SimpleRNN", 128, {}),
    "lstm-128": ("LSTM", 128, {}),
    "gru-128": ("GRU", 128, {}),
    "gru-128-reset-before": ("GRU", 128, {"reset_after": False}),
    "bilstm-64": ("LSTM", 64, {"bidirectional": True}),
    "lstm-128-sequences": ("LSTM", 128, {"return_sequences": True}),
}
FEATURES = 32


def build(lib, cls_name, units, options):
    options = dict(options)
    bidirectional = options.pop("bidirectional", False)
    layer = getattr(lib, cls_name)(units, **options)
    if bidirectional:
        layer = lib.Bidirectional(layer)
    x = keras.Input((None, FEATURES), name="x")
    return keras.Model(x, keras.layers.Dense(2)(layer(x)))


def median_ms(fn, x, runs):
    fn(x)
    fn(x)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(x)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def runners(model, folder):
    """{format: (callable(x) -> output, file size in MB, built-in only or None)}."""
    import onnxruntime as ort
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    out = {}
    sm = os.path.join(folder, "saved_model")
    model.export(sm, format="tf_saved_model", verbose=False)
    loaded = tf.saved_model.load(sm)
    serve = loaded.serve
    size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(sm) for f in fs)
    out["saved_model"] = (
        lambda x, _keep=loaded: serve(tf.constant(x)).numpy(),  # _keep: the variables' owner
        size / 1e6,
        None,
    )

    onnx_path = os.path.join(folder, "m.onnx")
    model.export(onnx_path, format="onnx", verbose=False)
    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    out["onnx"] = (
        lambda x: session.run(None, {name: x})[0],
        os.path.getsize(onnx_path) / 1e6,
        None,
    )

    lite_path = os.path.join(folder, "m.tflite")
    model.export(lite_path, format="litert", verbose=False)
    builtin = not [op for op in tflite_operators(lite_path) if op.startswith("custom:")]
    try:
        runner = Interpreter(model_path=lite_path).get_signature_runner()
        key = list(runner.get_input_details())[0]

        def lite(x):
            return list(runner(**{key: x}).values())[0]

        lite(np.zeros((1, 2, FEATURES), "float32"))
        out["litert"] = (lite, os.path.getsize(lite_path) / 1e6, builtin)
    except Exception as error:  # Keras's own layers: Flex ops
        out["litert"] = (None, os.path.getsize(lite_path) / 1e6, f"{builtin}: {str(error)[:60]}")
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=list(ROWS))
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"# machine: {_machine.describe()}; keras {keras.__version__}, T={args.steps}")
    print(
        "| row | layers | format | works | max abs error | size MB | batch 1 ms | ratio | "
        "batch 64 ms | ratio |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in args.only or list(ROWS):
        cls_name, units, options = ROWS[row]
        for lib_name, lib in (("seqkit", sk), ("keras", keras.layers)):
            keras.utils.set_random_seed(0)
            model = build(lib, cls_name, units, options)
            xs = {b: rng.normal(size=(b, args.steps, FEATURES)).astype("float32") for b in (1, 64)}
            want = {b: model.predict(x, verbose=0) for b, x in xs.items()}
            with tempfile.TemporaryDirectory() as folder:
                found = runners(model, folder)
                base = {b: median_ms(found["saved_model"][0], xs[b], args.runs) for b in xs}
                for fmt, (fn, size, builtin) in found.items():
                    if fn is None:
                        print(
                            f"| {row} | {lib_name} | {fmt} | no ({builtin}) | | {size:.2f} | | | | |"
                        )
                        continue
                    err = max(float(np.abs(fn(xs[b]) - want[b]).max()) for b in xs)
                    ms = {b: median_ms(fn, xs[b], args.runs) for b in xs}
                    works = "yes" if builtin in (None, True) else "flex ops"
                    print(
                        f"| {row} | {lib_name} | {fmt} | {works} | {err:.1e} | {size:.2f} | "
                        f"{ms[1]:.2f} | {ms[1] / base[1]:.2f} | {ms[64]:.1f} | "
                        f"{ms[64] / base[64]:.2f} |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
