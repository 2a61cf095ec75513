"""Test helpers: backend-neutral outputs and gradients of a layer call."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

BACKEND = keras.backend.backend()


def as_list(out):
    if isinstance(out, (list, tuple)):
        flat = []
        for o in out:
            flat.extend(as_list(o))
        return flat
    return [out]


def _probe(shape, salt):
    """A fixed, non-trivial cotangent for an output of this shape."""
    n = int(np.prod(shape))
    return np.cos(np.arange(n, dtype="float64") * 0.7 + salt).reshape(shape).astype("float32")


def _loss(outs):
    total = 0.0
    for i, o in enumerate(outs):
        total = total + ops.sum(o * ops.cast(_probe(tuple(o.shape), i), o.dtype))
    return total


def outputs_and_grads(layer, x, **call_kwargs):
    """Call `layer(x, **call_kwargs)`; return (outputs, [d/dx, d/dw for each trainable weight]).

    The loss is a fixed random projection of every output, so every output
    (sequences, last output, each state) contributes to the gradients.
    """
    if not layer.built:
        layer(x, **call_kwargs)
    if BACKEND == "tensorflow":
        import tensorflow as tf

        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            outs = as_list(layer(xt, **call_kwargs))
            loss = _loss(outs)
        grads = tape.gradient(loss, [xt] + list(layer.trainable_weights))
        grads = [
            np.zeros(w.shape, "float32") if g is None else g
            for g, w in zip(grads, [xt] + list(layer.trainable_weights))
        ]
        return [np.asarray(o) for o in outs], [np.asarray(g) for g in grads]
    if BACKEND == "jax":
        import jax

        tv = [v.value for v in layer.trainable_variables]
        ntv = [v.value for v in layer.non_trainable_variables]

        def f(tv, x):
            out, _ = layer.stateless_call(tv, ntv, x, **call_kwargs)
            outs = as_list(out)
            return _loss(outs), outs

        (_, outs), (gw, gx) = jax.value_and_grad(f, argnums=(0, 1), has_aux=True)(tv, x)
        return [np.asarray(o) for o in outs], [np.asarray(gx)] + [np.asarray(g) for g in gw]
    if BACKEND == "torch":
        import torch

        xt = torch.tensor(x, requires_grad=True)
        params = [w.value for w in layer.trainable_weights]
        outs = as_list(layer(xt, **call_kwargs))
        grads = torch.autograd.grad(_loss(outs), [xt] + params, allow_unused=True)
        grads = [torch.zeros_like(p) if g is None else g for g, p in zip(grads, [xt] + params)]
        return [o.detach().cpu().numpy() for o in outs], [g.cpu().numpy() for g in grads]
    raise NotImplementedError(f"gradients under backend {BACKEND}")


def assert_close(actual, expected, tol=1e-5, what=""):
    """max |a - e| <= tol * max(1, max |e|): float32 agreement relative to scale."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    scale = max(1.0, float(np.max(np.abs(expected))) if expected.size else 1.0)
    err = float(np.max(np.abs(actual - expected))) if expected.size else 0.0
    assert err <= tol * scale, f"{what}: max abs diff {err:.3g} > {tol} x scale {scale:.3g}"


def select_loop_path(name, monkeypatch):
    """Force one loop implementation for the rest of a test.

    "native": the default (the C++ kernels where they cover the call, else
    the XLA loop); "xla": the fused TensorFlow loop compiled with XLA;
    "fused": the same loop without XLA; "generic": the keras.ops loop;
    "unroll": nothing to force here (the test builds layers with unroll=True).
    """
    from seqkit.layers import _tf_fast, rnn

    if name in ("xla", "fused"):
        monkeypatch.setattr(_tf_fast, "USE_NATIVE", False)
    if name == "fused":
        monkeypatch.setattr(_tf_fast, "USE_XLA", False)
    if name == "generic":

        def no_fast(*args, **kwargs):
            raise NotImplementedError

        monkeypatch.setattr(rnn, "_fast_sequence", no_fast)
    return name


def run_python(script: str, cwd, timeout: int = 300):
    """Runs ``script`` (dedented) in a new Python process, without seqkit on its path
    (PYTHONPATH cleared, TensorFlow's logs quiet); returns the CompletedProcess."""
    import os
    import subprocess
    import sys
    import textwrap

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ""}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )
