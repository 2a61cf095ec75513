"""Every pipeline fits under MirroredStrategy over two logical CPUs and matches one device."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from .conftest import TASKS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOLERANCE = 1e-4  # max |weight difference| after 2 epochs; only summation order differs

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
print("RESULT", json.dumps({"replicas": strategy.num_replicas_in_sync, "max_diff": max(diffs),
      "weights": len(diffs), "max_weight": max(moved)}))
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
    assert result["max_diff"] <= TOLERANCE, result
