"""seqkit.export: atomic writes, float16 weight files, the exporting() context."""

import os

import h5py
import keras
import numpy as np
import pytest

from seqkit import export


def test_atomic_folder_replaces_the_old_copy_only_on_success(tmp_path):
    target = tmp_path / "model"
    with export.atomic_folder(str(target)) as tmp:
        (open(os.path.join(tmp, "a.txt"), "w")).write("first")
    assert (target / "a.txt").read_text() == "first"
    with pytest.raises(RuntimeError), export.atomic_folder(str(target)) as tmp:
        open(os.path.join(tmp, "a.txt"), "w").write("half-written")
        raise RuntimeError("crash")
    assert (target / "a.txt").read_text() == "first"
    assert sorted(os.listdir(tmp_path)) == ["model"]  # no temporary folder left behind


def test_atomic_file_leaves_the_old_file_on_failure(tmp_path):
    path = tmp_path / "f.json"
    path.write_text("old")
    with pytest.raises(OSError), export.atomic_file(str(path)) as tmp:
        open(tmp, "w").write("new")
        raise OSError("disk full")
    assert path.read_text() == "old"
    with export.atomic_file(str(path)) as tmp:
        open(tmp, "w").write("new")
    assert path.read_text() == "new" and os.listdir(tmp_path) == ["f.json"]


def test_halve_weights_stores_float16_that_loads_back_into_float32(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)])
    path = str(tmp_path / "m.weights.h5")
    model.save_weights(path)
    before = [w.copy() for w in model.get_weights()]
    export.halve_weights(path)
    with h5py.File(path) as f:
        dtypes = set()
        f.visititems(lambda n, o: dtypes.add(o.dtype) if isinstance(o, h5py.Dataset) else None)
    assert dtypes == {np.dtype("float16")}
    model.load_weights(path)
    for a, b in zip(before, model.get_weights()):
        assert b.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


def test_halve_weights_refuses_values_outside_the_float16_range(tmp_path):
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.set_weights([np.array([[1e6]], "float32"), np.zeros(1, "float32")])
    path = str(tmp_path / "m.weights.h5")
    model.save_weights(path)
    with pytest.raises(ValueError, match="exceeds the float16 range; save with weights_dtype"):
        export.halve_weights(path)
    with h5py.File(path) as f:  # the file is untouched
        assert f["layers/dense/vars/0"].dtype == np.float32


def test_exporting_nests_and_resets():
    assert not export.is_exporting()
    with export.exporting():
        assert export.is_exporting()
        with export.exporting():
            assert export.is_exporting()
        assert export.is_exporting()
    assert not export.is_exporting()
    with pytest.raises(KeyError), export.exporting():
        raise KeyError
    assert not export.is_exporting()
