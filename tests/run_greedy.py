"""Greedy decoding with exported step models, the way an app would: a fresh
process, onnxruntime or the LiteRT interpreter, and no seqkit (nor Keras).

Usage: python tests/run_greedy.py JOBS.json

Reads an export folder's ``signature.json`` and ``tokenizer.json`` and runs
its parts by name, as their README says. A step part's input ``X`` that has
an output ``new_X`` is a carried state: the output of one call is the input
of the next. The ids in ``never_generate`` are never chosen. Each job is one of

- ``{"kind": "lm", "folder": ..., "prompt": [ids], "rows": N, "steps": n,
  "output": "out.npz"}``: the ``step`` part from zero states, fed the prompt
  (empty: ``primer_id``) token by token, then ``n`` greedy tokens;
- ``{"kind": "seq2seq", "folder": ..., "inputs": "in.npz" (``source_ids``),
  "steps": n, "output": ...}``: ``encoder`` once, then greedy
  ``decoder_step`` calls from ``start_id`` until every row has produced
  ``end_id`` (0 after it) or ``n`` tokens.

``out.npz`` receives ``tokens`` (rows, steps) int32 (and for seq2seq
``attention`` (rows, steps, source_time)), or ``error``, the message.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np


class Part:
    """One exported file, called with {input name: array} -> {output name: array}."""

    def __init__(self, path):
        self.path = path
        if path.endswith(".onnx"):
            import onnxruntime as ort

            self.session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            self.outputs = [o.name for o in self.session.get_outputs()]
        else:
            try:
                from ai_edge_litert.interpreter import Interpreter
            except ImportError:
                from tensorflow.lite.python.interpreter import Interpreter
            self.runner = Interpreter(model_path=path).get_signature_runner()

    def __call__(self, feeds):
        if self.path.endswith(".onnx"):
            return dict(zip(self.outputs, self.session.run(None, feeds)))
        return dict(self.runner(**feeds))


def _load(folder):
    """({part name: (Part, its signature)}, the tokenizer's settings)."""
    with open(os.path.join(folder, "signature.json")) as f:
        signature = json.load(f)
    with open(os.path.join(folder, "tokenizer.json"), encoding="utf-8") as f:
        settings = json.load(f)
    parts = {}
    for name, spec in signature["parts"].items():
        parts[name] = (Part(os.path.join(folder, spec["file"])), spec)
    return parts, settings


def _carried(spec):
    """The state inputs of a step part: those with a ``new_<name>`` output."""
    outputs = {t["name"] for t in spec["outputs"]}
    return [t for t in spec["inputs"] if "new_" + t["name"] in outputs]


def _choose(logits, never):
    logits = np.array(logits, np.float32)
    logits[:, never] = -np.inf
    return logits.argmax(-1).astype(np.int32)


def run_lm(job):
    parts, settings = _load(job["folder"])
    step, spec = parts["step"]
    never, rows = settings["never_generate"], job["rows"]
    states = {
        t["name"]: np.zeros((rows, t["shape"][1]), np.float32) for t in _carried(spec)
    }  # zeros: the model's initial state
    out = None
    for token in job["prompt"] or [settings["primer_id"]]:
        out = step({"token_ids": np.full((rows,), token, np.int32), **states})
        states = {name: out["new_" + name] for name in states}
    tokens = []
    for _ in range(job["steps"]):
        token = _choose(out["logits"], never)
        tokens.append(token)
        out = step({"token_ids": token, **states})
        states = {name: out["new_" + name] for name in states}
    return {"tokens": np.stack(tokens, 1)}


def run_seq2seq(job):
    parts, settings = _load(job["folder"])
    encoder, _ = parts["encoder"]
    step, spec = parts["decoder_step"]
    with np.load(job["inputs"]) as data:
        source = data["source_ids"]
    encoded = encoder({"source_ids": source})
    carried = [t["name"] for t in _carried(spec)]
    states = {name: encoded[name] for name in carried}
    fixed = {  # the encoder outputs every step reads unchanged
        t["name"]: encoded[t["name"]]
        for t in spec["inputs"]
        if t["name"] not in carried and t["name"] != "token_ids"
    }
    rows = source.shape[0]
    token = np.full((rows,), settings["start_id"], np.int32)
    finished = np.zeros(rows, bool)
    tokens, attention = [], []
    while len(tokens) < job["steps"] and not finished.all():
        out = step({"token_ids": token, **states, **fixed})
        token = np.where(finished, 0, _choose(out["logits"], settings["never_generate"])).astype(
            np.int32
        )
        attention.append(np.where(finished[:, None], 0.0, out["attention"]))
        tokens.append(token)
        finished |= token == settings["end_id"]
        states = {name: out["new_" + name] for name in carried}
    return {"tokens": np.stack(tokens, 1), "attention": np.stack(attention, 1)}


def main(jobs_path):
    with open(jobs_path) as f:
        jobs = json.load(f)
    for job in jobs:
        try:
            result = (run_lm if job["kind"] == "lm" else run_seq2seq)(job)
        except Exception as error:  # the caller reports it for this job alone
            result = {"error": np.array(f"{type(error).__name__}: {error}")}
        np.savez(job["output"], **result)
    leaked = sorted(m for m in ("seqkit", "tasks", "keras") if m in sys.modules)
    if leaked:
        raise SystemExit(f"the runner imported {leaked}: it must run without them")


if __name__ == "__main__":
    main(sys.argv[1])
