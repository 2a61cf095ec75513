"""Every pipeline fits under MirroredStrategy over two logical CPUs and matches one device."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from .conftest import TASKS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Max |weight difference| after 2 epochs, and relative difference of the last validation
# loss. Sentiment's batches split evenly and its loss is a mean over examples, so only
# summation order differs. The others average each replica's own mean loss: a ragged
# last batch (text generation, forecasting) or a different count of non-padding target
# tokens per replica (translation) weighs examples a little differently than one device.
TOLERANCE = {
    "sentiment": (1e-6, 1e-5),
    "textgen": (2e-3, 1e-3),
    "forecasting": (2e-3, 1e-2),
    "translation": (5e-2, 2e-2),
}

SCRIPT = """
import json, sys
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)
from tests.hardening.conftest import build

task = sys.argv[1]
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
# No dropout: each replica would draw its own masks, which one device cannot repeat.
one = build(task, config={"dropout": 0.0})
two = build(task, config={"dropout": 0.0}, strategy=strategy)
diffs = [float(np.abs(a - b).max()) for a, b in zip(one.model.get_weights(), two.model.get_weights())]
moved = [float(np.abs(a).max()) for a in one.model.get_weights()]
loss_one, loss_two = one.history["val_loss"][-1], two.history["val_loss"][-1]
print("RESULT", json.dumps({"replicas": strategy.num_replicas_in_sync, "max_diff": max(diffs),
      "weights": len(diffs), "max_weight": max(moved), "val_loss": [loss_one, loss_two],
      "val_loss_rel_diff": abs(loss_two - loss_one) / abs(loss_one)}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_mirrored_strategy_over_two_cpus_matches_one_device(task):
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SCRIPT), task],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT, "CUDA_VISIBLE_DEVICES": ""},
        capture_output=True,
        text=True,
        timeout=900,
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, out.stdout[-2000:] + out.stderr[-4000:]
    result = json.loads(lines[-1][len("RESULT ") :])
    print(task, result)
    assert result["replicas"] == 2
    weights, loss = TOLERANCE[task]
    assert result["max_diff"] <= weights, result
    assert result["val_loss_rel_diff"] <= loss, result
