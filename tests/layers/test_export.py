"""A model of seqkit layers exported with model.export serves in a fresh process
that never imports seqkit."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import seqkit.layers as sk
from tests.helpers import BACKEND, assert_close

pytestmark = pytest.mark.skipif(
    BACKEND != "tensorflow", reason="SavedModel export needs TensorFlow"
)

SERVE = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf
    loaded = tf.saved_model.load(sys.argv[1])
    x = np.load(sys.argv[2])
    out = loaded.serve(tf.constant(x))
    np.save(sys.argv[3], out.numpy())
    bad = [m for m in sys.modules if m.split(".")[0] in ("seqkit", "tasks")]
    assert not bad, bad
    print("served", out.shape)
    """
)


def _serve_in_fresh_process(export_dir, x, tmp_path):
    np.save(tmp_path / "x.npy", x)
    script = tmp_path / "serve.py"
    script.write_text(SERVE)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    proc = subprocess.run(
        [
            sys.executable,
            str(script),
            str(export_dir),
            str(tmp_path / "x.npy"),
            str(tmp_path / "y.npy"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return np.load(tmp_path / "y.npy")


def test_export_serves_without_seqkit(tmp_path):
    tokens = keras.Input((12,), dtype="int32")
    h = keras.layers.Embedding(50, 8, mask_zero=True)(tokens)  # masked (right-padded) ids
    h = sk.Bidirectional(sk.LSTM(6, return_sequences=True))(h)
    h = sk.GRU(5, return_sequences=True, trainable_initial_state=True)(h)
    h = sk.SimpleRNN(4)(h)
    model = keras.Model(tokens, keras.layers.Dense(3)(h))
    rng = np.random.default_rng(0)
    x = rng.integers(1, 50, size=(5, 12)).astype("int32")
    x[1, 7:] = 0
    x[3, 2:] = 0
    expected = np.asarray(model(x))
    model.export(str(tmp_path / "exported"))
    served = _serve_in_fresh_process(tmp_path / "exported", x, tmp_path)
    assert_close(served, expected)


def test_exported_graph_has_no_cudnn_op(tmp_path):
    import tensorflow as tf

    model = keras.Sequential([keras.Input((7, 3)), sk.LSTM(4, return_sequences=True), sk.GRU(4)])
    model.export(str(tmp_path / "exported"))
    loaded = tf.saved_model.load(str(tmp_path / "exported"))
    fn = loaded.signatures["serving_default"]
    names = set()
    graph_def = fn.graph.as_graph_def()
    for node in graph_def.node:
        names.add(node.op)
    for f in graph_def.library.function:
        for node in f.node_def:
            names.add(node.op)
    assert not [n for n in names if "Cudnn" in n], names
