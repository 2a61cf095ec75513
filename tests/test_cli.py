"""tasks.cli: the `seqkit` command (parsing, errors, upgrade). Task commands are tested per task."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from tasks.cli import _parse_sets, build_parser, main

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "saved_v0_1_0")


def test_help_names_every_task(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "more to come" not in out
    for word in ("sentiment", "text generation", "translation", "forecasting", "upgrade"):
        assert word in out


def test_set_values_are_json_or_strings():
    assert _parse_sets(["units=128", "cell=lstm", "bidirectional=true", "quantiles=[0.1,0.9]"]) == {
        "units": 128,
        "cell": "lstm",
        "bidirectional": True,
        "quantiles": [0.1, 0.9],
    }


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["train", "nope", "--data", "x.csv", "--out", "y"],
            "Unknown task 'nope'; expected one of",
        ),
        (
            ["train", "sentiment", "--data", "x.csv", "--out", "y", "--set", "units"],
            "--set expects",
        ),
        (["export", "no/such/folder", "out"], "is neither a saved pipeline folder nor a shipped"),
        (["upgrade", "no/such/folder", "out"], "is neither a saved pipeline folder nor a shipped"),
    ],
)
def test_bad_commands_print_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"seqkit {argv[0]}: error: ") and message in err
    assert err.count("\n") == 1


def test_every_subcommand_is_documented():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == {
        "demo",
        "sentiment",
        "generate",
        "translate",
        "forecast",
        "train",
        "evaluate",
        "export",
        "upgrade",
    }
    for name, action in sub.choices.items():
        assert action.description or sub._name_parser_map[name].format_help()


def test_upgrade_resaves_an_old_folder_in_the_current_layout(tmp_path, capsys):
    old = os.path.join(FIXTURES, "forecasting")
    if not os.path.isdir(old):
        pytest.skip("no 0.1.0 forecasting fixture")
    copy = tmp_path / "old"
    shutil.copytree(old, copy)
    assert main(["upgrade", str(copy), str(tmp_path / "new")]) == 0
    assert "seqkit 0.1.0" in capsys.readouterr().out
    meta = json.loads((tmp_path / "new" / "pipeline.json").read_text())
    import seqkit
    from tasks.base import FORMAT_VERSION

    assert meta["format_version"] == FORMAT_VERSION and meta["seqkit_version"] == seqkit.__version__
    import tasks

    a, b = tasks.load(str(copy)), tasks.load(str(tmp_path / "new"))
    for wa, wb in zip(a.model.get_weights(), b.model.get_weights()):
        assert (wa == wb).all()


def test_the_installed_seqkit_command_points_to_tasks_cli():
    from importlib.metadata import entry_points

    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "seqkit"]
    assert script.value == "tasks.cli:main"
    out = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "seqkit"), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0 and "usage: seqkit" in out.stdout


def test_upgrade_in_place_keeps_the_folder_s_other_files(tmp_path):
    old = os.path.join(FIXTURES, "forecasting")
    if not os.path.isdir(old):
        pytest.skip("no 0.1.0 forecasting fixture")
    folder = tmp_path / "fc"
    shutil.copytree(old, folder)
    (folder / "MODEL_CARD.md").write_text("# my model\n")
    assert main(["upgrade", str(folder), str(folder)]) == 0
    assert (folder / "MODEL_CARD.md").read_text() == "# my model\n"
    assert json.loads((folder / "pipeline.json").read_text())["format_version"] == 3
    assert sorted(os.listdir(tmp_path)) == ["fc"]


def test_forecast_columns_maps_a_users_column_names(tmp_path, capsys):
    """`--columns 'Adj Close=close'`: the mapping the forecasting errors suggest, from the shell."""
    import numpy as np
    import pandas as pd

    rng = np.random.RandomState(0)
    n = 120
    frame = pd.DataFrame(
        {
            "date": pd.bdate_range("2022-01-03", periods=n),
            "ticker": "AAA",
            "Adj Close": 50 * np.exp(np.cumsum(rng.normal(0, 0.01, n))),
        }
    )
    frame.to_csv(tmp_path / "prices.csv", index=False)
    with pytest.warns(UserWarning):  # close only: the shipped model's covariates are derived
        assert main(["forecast", str(tmp_path / "prices.csv"), "--columns", "Adj Close=close"]) == 0
    assert "AAA" in capsys.readouterr().out
    assert main(["forecast", str(tmp_path / "prices.csv"), "--columns", "close"]) == 2
    assert (
        "Received `--columns close`; expected YOURS=OURS pairs separated by commas, e.g. "
        "--columns 'Adj Close=close,Vol=volume'." in capsys.readouterr().err
    )


def test_label_map_maps_a_files_labels_in_train_and_evaluate(tmp_path, capsys):
    import pandas as pd

    from tests.tasks.conftest import make_reviews

    texts, labels = make_reviews(200, seed=2, labels=("neg", "pos"))
    pd.DataFrame({"text": texts, "label": labels}).to_csv(tmp_path / "train.csv", index=False)
    texts, labels = make_reviews(60, seed=9, labels=("bad", "good"))
    pd.DataFrame({"text": texts, "label": labels}).to_csv(tmp_path / "test.csv", index=False)
    small = ["--set", "units=8", "--set", "embedding_dim=8", "--set", "max_tokens=64"]
    out = str(tmp_path / "clf")
    train = ["train", "sentiment", "--data", str(tmp_path / "train.csv"), "--out", out]
    train += [*small, "--epochs", "2", "--learning-rate", "0.01", "--verbose", "0"]
    assert main([*train, "--checkpoint-dir", "", "--label-map", "neg=negative,pos=positive"]) == 0
    import tasks

    assert tasks.load(out).labels == ["negative", "positive"]
    capsys.readouterr()
    evaluate = ["evaluate", out, "--data", str(tmp_path / "test.csv")]
    assert main([*evaluate, "--label-map", "bad=negative,good=positive"]) == 0
    assert "accuracy" in json.loads(capsys.readouterr().out)
    assert main(evaluate) == 2
    assert "not among the pipeline's labels" in capsys.readouterr().err
    assert main([*evaluate, "--label-map", "bad"]) == 2
    assert "expected YOURS=OURS pairs separated by commas" in capsys.readouterr().err
