"""A saved pipeline is data, never code: tampered folders are refused with a clear error."""

import json
import os
import pickle
import shutil

import pytest

import tasks
from tasks.base import PipelineError
from tasks.integrity import write_checksums

from .conftest import TASKS, infer


@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory):
    root = tmp_path_factory.mktemp("saved")
    return {task: fitted[task].save(str(root / task)) for task in TASKS}


def tampered(saved_path, tmp_path, edit):
    """A copy of a saved folder whose pipeline.json went through ``edit(meta)``,
    its checksums rewritten as an attacker would (so the checks below them run)."""
    path = tmp_path / "copy"
    shutil.copytree(saved_path, path)
    meta_path = path / "pipeline.json"
    meta = json.loads(meta_path.read_text())
    edit(meta)
    meta_path.write_text(json.dumps(meta))
    write_checksums(str(path))
    return str(path)


@pytest.mark.parametrize("task", TASKS)
def test_an_unknown_class_in_the_config_is_refused(saved, tmp_path, task):
    def add_lambda(meta):
        meta["config"]["class_name"] = "Lambda"
        meta["config"]["function"] = "__import__('os').system('echo pwned')"

    path = tampered(saved[task], tmp_path, add_lambda)
    with pytest.raises(PipelineError, match=r"the saved config does not fit .*class_name"):
        tasks.load(path)


@pytest.mark.parametrize("task", TASKS)
def test_a_serialized_layer_as_a_config_value_is_refused(saved, tmp_path, task):
    def lambda_cell(meta):
        meta["config"]["cell"] = {"class_name": "Lambda", "config": {"function": "print"}}

    path = tampered(saved[task], tmp_path, lambda_cell)
    with pytest.raises(PipelineError, match=r"cell"):
        tasks.load(path)


def test_a_task_naming_a_keras_class_is_refused(saved, tmp_path):
    path = tampered(saved["sentiment"], tmp_path, lambda m: m.update(task="keras.layers.Lambda"))
    with pytest.raises(PipelineError, match=r"names an unknown task 'keras.layers.Lambda'"):
        tasks.load(path)


@pytest.mark.parametrize("name", ["model.weights.h5", "assets.json", "pipeline.json"])
def test_a_file_that_escapes_the_folder_is_refused(saved, tmp_path, name):
    path = tmp_path / "copy"
    shutil.copytree(saved["sentiment"], path)
    outside = tmp_path / f"outside-{name}"
    shutil.move(str(path / name), outside)
    os.symlink(outside, path / name)
    with pytest.raises(PipelineError, match=r"is a link or resolves outside the pipeline folder"):
        tasks.load(str(path))


def test_damaged_assets_are_refused(saved, tmp_path):
    path = tmp_path / "copy"
    shutil.copytree(saved["translation"], path)
    (path / "assets.json").write_text("[1, 2, 3]")
    with pytest.raises(PipelineError, match=r"assets.json is damaged \(truncated or altered\)"):
        tasks.load(str(path))  # the checksum sees it first
    write_checksums(str(path))  # rewritten too: the content checks still hold
    with pytest.raises(PipelineError, match=r"assets.json must hold a JSON object"):
        tasks.load(str(path))
    (path / "assets.json").write_text("{not json")
    write_checksums(str(path))
    with pytest.raises(PipelineError, match=r"assets.json is not valid JSON"):
        tasks.load(str(path))


@pytest.mark.parametrize("task", TASKS)
def test_loading_never_unpickles(saved, fitted, monkeypatch, task):
    def refuse(*args, **kwargs):
        raise AssertionError("load() tried to unpickle")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    loaded = tasks.load(saved[task])
    first, second = infer(loaded, task), infer(fitted[task], task)
    if hasattr(first, "equals"):
        assert first.equals(second)
    else:
        assert repr(first) == repr(second)


def test_float16_save_halves_the_file_and_loads_back_close(fitted, tmp_path):
    import numpy as np

    mt = fitted["translation"]
    full = mt.save(str(tmp_path / "full"))
    half = mt.save(str(tmp_path / "half"), weights_dtype="float16")
    import h5py

    def floats(folder):  # (dtypes of the float arrays, their bytes)
        found = []
        with h5py.File(os.path.join(folder, "model.weights.h5"), "r") as f:
            f.visititems(
                lambda _, item: (
                    found.append((item.dtype, item.nbytes))
                    if isinstance(item, h5py.Dataset) and item.dtype.kind == "f"
                    else None
                )
            )
        return {str(d) for d, _ in found}, sum(n for _, n in found)

    (kinds32, bytes32), (kinds16, bytes16) = floats(full), floats(half)
    assert kinds32 == {"float32"} and kinds16 == {"float16"} and bytes16 * 2 == bytes32
    size = lambda p: os.path.getsize(os.path.join(p, "model.weights.h5"))  # noqa: E731
    assert size(full) - size(half) >= 0.9 * bytes32 / 2  # shrinks by about what was halved
    loaded = tasks.load(half)
    for a, b in zip(loaded.model.get_weights(), mt.model.get_weights()):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
    with pytest.raises(PipelineError, match=r"weights_dtype='bfloat16'"):
        mt.save(str(tmp_path / "x"), weights_dtype="bfloat16")
