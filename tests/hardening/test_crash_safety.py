"""SIGKILL in the middle of a save or of fit: nothing is lost, and resuming is exact."""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tasks

from .conftest import build, infer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def child(code: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": ROOT, "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


def wait_for(proc: subprocess.Popen, marker: str, timeout: float = 300) -> str:
    """Reads the child's output until a line equal to ``marker``; returns what it read."""
    import select
    import time

    seen, end = [], time.time() + timeout
    while time.time() < end:
        ready, _, _ = select.select([proc.stdout], [], [], 1.0)
        if not ready:
            if proc.poll() is not None:
                break
            continue
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    proc.kill()
    raise AssertionError(f"the child never printed {marker!r}:\n{''.join(seen)[-3000:]}")


@pytest.mark.slow
def test_sigkill_during_a_save_leaves_the_previous_save_loadable(fitted, tmp_path):
    path = tmp_path / "clf"
    fitted["sentiment"].save(str(path))
    expected = infer(fitted["sentiment"], "sentiment")
    proc = child(
        f"""
        import time, keras, tasks
        clf = tasks.load({str(path)!r})
        real = keras.Model.save_weights
        def slow(self, filepath, *a, **k):
            real(self, filepath, *a, **k)       # half the new folder is written ...
            print("MID-SAVE", flush=True)
            time.sleep(600)                     # ... when the kill comes
        keras.Model.save_weights = slow
        clf.save({str(path)!r})
        """
    )
    wait_for(proc, "MID-SAVE")
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(60) == -signal.SIGKILL
    leftovers = [name for name in os.listdir(tmp_path) if name != "clf"]
    assert leftovers and all(".tmp-" in name for name in leftovers)  # the killed save's work
    np.testing.assert_array_equal(infer(tasks.load(str(path)), "sentiment"), expected)


FIT_SCRIPT = """
import os, signal, sys, keras, numpy as np
from tests.hardening.conftest import build
from tasks.base import Pipeline

kill_at = {kill_at!r}  # (epoch, batch) or None
if kill_at is not None:
    class Kill(keras.callbacks.Callback):
        epoch = 0
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
        def on_train_batch_end(self, batch, logs=None):
            if (self.epoch, batch) == kill_at:
                print("KILLING", flush=True)
                os.kill(os.getpid(), signal.SIGKILL)
    real = Pipeline._callbacks
    Pipeline._callbacks = lambda self, val: real(self, val) + [Kill()]
pipeline = build({task!r}, seed=5, epochs=3, checkpoint_dir={ckpt!r}, patience=10, verbose=2)
np.savez({out!r}, *pipeline.model.get_weights())
print("DONE", flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("task", ["sentiment", "forecasting"])
def test_sigkill_during_fit_resumes_to_the_same_final_weights(tmp_path, task):
    ckpt, out = str(tmp_path / "ckpt"), str(tmp_path / "resumed.npz")
    killed = child(FIT_SCRIPT.format(kill_at=(1, 1), task=task, ckpt=ckpt, out=out))
    wait_for(killed, "KILLING")
    assert killed.wait(60) == -signal.SIGKILL
    assert os.listdir(ckpt)  # the checkpoint of epoch 0 is on disk

    resumed = child(FIT_SCRIPT.format(kill_at=None, task=task, ckpt=ckpt, out=out))
    log = wait_for(resumed, "DONE")
    assert resumed.wait(60) == 0
    assert "Resuming from the checkpoint after epoch 1" in log

    reference = build(task, seed=5, epochs=3, patience=10)  # never interrupted
    got = np.load(out)
    weights = [got[f"arr_{i}"] for i in range(len(got.files))]
    for a, b in zip(weights, reference.model.get_weights()):
        np.testing.assert_array_equal(a, b)
