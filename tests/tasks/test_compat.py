"""Pipelines saved by seqkit 0.1.0 still load and give 0.1.0's outputs (issue 21, "Keep").

The fixtures under tests/fixtures/ were made once by tests/fixtures/make_legacy_fixtures.py,
run on seqkit 0.1.0 from a git worktree of that commit (its docstring says how):

- ``saved_v0_1_0/<name>/``: tiny pipeline folders saved by 0.1.0, one per task;
- ``saved_v0_1_0/expected.json``: each folder's fixed inputs and the outputs 0.1.0 gave;
- ``shipped_expected.json``: 0.1.0's outputs of the four shipped models on fixed inputs;
  ``shipped_retrained.json``: those of a model retrained since (translation, 0.3.0).

Probabilities, losses and forecasts must agree within 1e-6 (absolute); translation scores
(summed log-probabilities, up to ~15 in size) within 1e-6 absolute or relative; generated
and translated texts exactly. The outputs are computed by the fixture script's ``outputs``,
so both sides measure in one way.
"""

import importlib.util
import json
import os
from pathlib import Path

import pytest

import seqkit
import tasks

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SAVED = FIXTURES / "saved_v0_1_0"
# Output entries compared with a relative tolerance as well (large summed log-probabilities).
RELATIVE = {"score"}


def _json(path: Path) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _maker():
    spec = importlib.util.spec_from_file_location(
        "make_legacy_fixtures", FIXTURES / "make_legacy_fixtures.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MAKER = _maker()
EXPECTED = _json(SAVED / "expected.json")["pipelines"]
# A shipped model retrained since 0.1.0 is checked against the outputs recorded when it was
# shipped (shipped_retrained.json, tests/fixtures/record_retrained.py) instead of 0.1.0's.
RETRAINED = _json(FIXTURES / "shipped_retrained.json")["pipelines"]
SHIPPED_EXPECTED = {
    name: entry
    for name, entry in _json(FIXTURES / "shipped_expected.json")["pipelines"].items()
    if name not in RETRAINED
}


def assert_matches(actual, expected, where: str = "", rel: float = 0.0) -> None:
    """``actual`` equals ``expected``: floats within 1e-6 (and ``rel``), everything else exactly."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and sorted(actual) == sorted(expected), where
        for key in expected:
            key_rel = 1e-6 if key in RELATIVE else rel
            assert_matches(actual[key], expected[key], f"{where}.{key}", key_rel)
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), where
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_matches(a, e, f"{where}[{i}]", rel)
    elif isinstance(expected, float):
        assert actual == pytest.approx(expected, abs=1e-6, rel=rel), where
    else:
        assert actual == expected, where


def check(entry: dict, pipeline, where: str) -> None:
    got = MAKER.outputs(entry["task"], pipeline, entry["inputs"])
    assert_matches(got, entry["outputs"], where)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_folder_saved_by_0_1_0_loads_and_gives_its_outputs(name):
    folder = SAVED / name
    meta = _json(folder / "pipeline.json")
    assert meta["seqkit_version"] == "0.1.0" and meta["format_version"] == 1  # a 0.1.0 folder
    pipeline = tasks.load(os.fspath(folder))
    assert pipeline.task == EXPECTED[name]["task"]
    check(EXPECTED[name], pipeline, name)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_loaded_0_1_0_folder_saved_again_loads_and_gives_the_same_outputs(name, tmp_path):
    again = tmp_path / name
    tasks.load(os.fspath(SAVED / name)).save(os.fspath(again))
    meta = _json(again / "pipeline.json")
    assert meta["seqkit_version"] == seqkit.__version__  # every save records its version
    check(EXPECTED[name], tasks.load(os.fspath(again)), f"{name} (saved again)")


@pytest.mark.parametrize("name", sorted(SHIPPED_EXPECTED))
def test_the_shipped_models_give_the_0_1_0_outputs(name):
    check(SHIPPED_EXPECTED[name], tasks.load(name), f"shipped {name}")


@pytest.mark.parametrize("name", sorted(RETRAINED))
def test_the_retrained_shipped_models_give_their_recorded_outputs(name):
    check(RETRAINED[name], tasks.load(name), f"shipped {name} (retrained)")


def _old_copy(tmp_path) -> Path:
    import shutil

    folder = tmp_path / "old"
    shutil.copytree(FIXTURES / "saved_v0_1_0" / "forecasting", folder)
    return folder


def test_an_old_folder_whose_weights_do_not_fit_names_the_version_that_saved_it(tmp_path):
    import h5py

    folder = _old_copy(tmp_path)
    with h5py.File(folder / "model.weights.h5", "r+") as f:
        f.move("layers/dense/vars/0", "layers/dense/vars/9")  # a weight with no new place
    with pytest.raises(tasks.PipelineError, match=r"was saved by seqkit 0\.1\.0 and does not fit"):
        tasks.load(str(folder))
    with h5py.File(folder / "model.weights.h5", "r+") as f:
        f.move("layers/dense/vars/9", "layers/dense/vars/0")
        f["layers/extra/vars/0"] = [1.0]
    with pytest.raises(tasks.PipelineError, match=r"has no place for: \['layers/extra/vars/0'\]"):
        tasks.load(str(folder))


def test_a_folder_from_a_newer_seqkit_says_to_upgrade(tmp_path):
    folder = _old_copy(tmp_path)
    meta = _json(folder / "pipeline.json")
    (folder / "pipeline.json").write_text(
        json.dumps({**meta, "format_version": 99, "seqkit_version": "9.0.0"})
    )
    with pytest.raises(
        tasks.PipelineError, match=r"saved by a newer seqkit \(9\.0\.0, format 99\)"
    ):
        tasks.load(str(folder))
