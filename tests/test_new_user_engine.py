"""A new user's steps (issue 18): Ctrl-C during fit, non-UTF-8 files, damaged saves, the CLI."""

import os
import subprocess
import sys

import keras
import pytest

from tests.tasks.conftest import SMALL, make_reviews

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class InterruptInEpoch(keras.callbacks.Callback):
    """Ctrl-C pressed during epoch ``epoch`` (1-based), as Keras sees it."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            raise KeyboardInterrupt


def _tiny_clf():
    from tasks.sentiment import SentimentPipeline

    return SentimentPipeline(**SMALL, seed=1)


def test_ctrl_c_in_fit_says_where_the_checkpoint_is_and_the_rerun_resumes(
    tmp_path, monkeypatch, capsys
):
    data = make_reviews(80)
    clf = _tiny_clf()
    monkeypatch.setattr(type(clf), "_callbacks", lambda self, val: [InterruptInEpoch(2)])
    options = dict(epochs=3, verbose=0, checkpoint_dir=str(tmp_path), learning_rate=1e-2)
    with pytest.raises(KeyboardInterrupt) as info:
        clf.fit(data, **options)
    message = str(info.value)
    assert message.startswith(
        "Interrupted in epoch 2/3; the last checkpoint (after epoch 1) is in "
    )
    assert message.endswith("; rerun the same call to resume.")
    assert str(tmp_path) in message
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert message in capsys.readouterr().err  # the one line, on stderr
    monkeypatch.undo()
    clf = _tiny_clf()
    clf.fit(data, **{**options, "verbose": 1})
    assert "Resuming from the checkpoint after epoch 1" in capsys.readouterr().out
    assert len(clf.history["loss"]) == 3


def test_ctrl_c_without_checkpoints_says_a_rerun_starts_over(monkeypatch):
    clf = _tiny_clf()
    monkeypatch.setattr(type(clf), "_callbacks", lambda self, val: [InterruptInEpoch(1)])
    with pytest.raises(KeyboardInterrupt, match=r"^Interrupted in epoch 1/2; no checkpoints were"):
        clf.fit(make_reviews(40), epochs=2, verbose=0, checkpoint_dir=None)


def test_seqkit_train_interrupted_exits_130_with_one_line_and_no_traceback(tmp_path):
    import pandas as pd

    texts, labels = make_reviews(60)
    pd.DataFrame({"text": texts, "label": labels}).to_csv(tmp_path / "train.csv", index=False)
    script = (
        "import sys, keras, tasks.base, tasks.cli\n"
        "class Stop(keras.callbacks.Callback):\n"
        "    def on_epoch_begin(self, epoch, logs=None):\n"
        "        if epoch == 1: raise KeyboardInterrupt\n"
        "tasks.base.Task._callbacks = lambda self, val: [Stop()]\n"
        "sys.exit(tasks.cli.main(sys.argv[1:]))\n"
    )
    argv = ["train", "sentiment", "--data", str(tmp_path / "train.csv"), "--out"]
    argv += [str(tmp_path / "clf"), "--epochs", "3", "--verbose", "0"]
    argv += ["--checkpoint-dir", str(tmp_path / "ckpt"), "--set", "units=8"]
    argv += ["--set", "embedding_dim=8", "--set", "max_tokens=64"]
    done = subprocess.run(
        [sys.executable, "-c", script, *argv], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("Interrupted in epoch 2/3; the last checkpoint (after epoch 1)")
    assert not os.path.exists(tmp_path / "clf")


# ------------------------------------------------------------------ encoding= (item 3)
def _latin_reviews(path):
    texts, labels = make_reviews(40)
    texts = [t + " très" for t in texts]
    lines = ["text,label"] + [f"{t},{label}" for t, label in zip(texts, labels)]
    path.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    return path


def test_sentiment_fit_and_evaluate_take_encoding_and_the_error_suggests_it(tmp_path):
    from seqkit.errors import SeqkitError

    latin = _latin_reviews(tmp_path / "reviews.csv")
    clf = _tiny_clf()
    with pytest.raises(SeqkitError) as info:
        clf.fit(str(latin), epochs=1, verbose=0, checkpoint_dir=None)
    assert str(info.value).startswith(f"{latin} is not UTF-8 (byte 0xe8 at position ")
    assert str(info.value).endswith("; pass encoding='latin-1' (or the file's encoding).")
    clf.fit(str(latin), epochs=1, verbose=0, checkpoint_dir=None, encoding="latin-1")
    assert "très" in clf.preprocessor.vectorizer.vocabulary
    assert clf.evaluate(str(latin), encoding="latin-1")["n"] == 40
    clf.fine_tune(str(latin), epochs=1, verbose=0, checkpoint_dir=None, encoding="latin-1")


def test_translation_reads_a_latin_1_tsv_with_encoding(tmp_path):
    from tasks import PipelineError
    from tasks.translation import TranslationPipeline

    latin = tmp_path / "spa.txt"
    latin.write_bytes("Go.\tVe.\nCoffee.\tCafé.\n".encode("latin-1"))
    mt = TranslationPipeline()
    with pytest.raises(PipelineError, match=r"is not UTF-8 \(byte 0xe9 at position 19\); pass"):
        mt.fit(str(latin), epochs=1)
    assert mt._read(str(latin), encoding="latin-1").texts == ["Ve.", "Café."]


# ------------------------------------------------------------------ a quiet, fast CLI (item 6)
LOG_STARTS = ("W0000", "I0000", "E0000", "WARNING: All log messages")


def _seqkit(*argv):
    code = "import sys, tasks.cli; sys.exit(tasks.cli.main(sys.argv[1:]))"
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL",)}
    return subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=ROOT, env=env
    )


def test_help_and_argument_errors_answer_fast_without_importing_tensorflow():
    import time

    for argv, code in ((["--help"], 0), (["sentiment", "--bogus"], 2)):
        start = time.monotonic()
        done = _seqkit(*argv)
        assert time.monotonic() - start < 2.0, argv
        assert done.returncode == code
        assert not [line for line in done.stderr.splitlines() if line.startswith(LOG_STARTS)]
    assert "more to come" not in _seqkit("--help").stdout
    code = "import sys, tasks.cli; tasks.cli.build_parser(); print('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout == (
        "False\n"
    )


def test_a_real_call_prints_no_tensorflow_log_lines_unless_verbose():
    done = _seqkit("sentiment", "good")
    assert done.returncode == 0 and done.stdout.startswith("positive\t")
    assert not [line for line in done.stderr.splitlines() if line.startswith(LOG_STARTS)], (
        done.stderr
    )
    assert done.stderr == ""


def test_set_with_a_wrong_key_lists_the_settings_and_suggests_the_nearest(capsys):
    from tasks.cli import main

    argv = ["train", "sentiment", "--data", "x.csv", "--out", "y", "--set", "unit=32"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "seqkit train: error: --set unit=...: sentiment has no setting 'unit'. Did you mean "
        "'units'? The settings are: bidirectional, cell, "
    )
    assert err.count("\n") == 1


# ------------------------------------------------------------------ damaged saves (item 5)
@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    clf = _tiny_clf()
    clf.fit(make_reviews(40), epochs=1, verbose=0, checkpoint_dir=None)
    return clf, clf.save(str(tmp_path_factory.mktemp("save") / "clf"))


def _truncate(path):
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])


def _copy(folder, tmp_path):
    import shutil

    return shutil.copytree(folder, tmp_path / "copy")


def test_a_truncated_weights_file_is_reported_as_damaged(saved, tmp_path):
    import tasks

    folder = _copy(saved[1], tmp_path)
    lines = (folder / "CHECKSUMS.sha256").read_text().splitlines()
    assert sorted(line.split("  ")[1] for line in lines) == [
        "assets.json",
        "model.weights.h5",
        "pipeline.json",
    ]
    assert tasks.load(str(folder)).predict("good")  # intact: loads
    _truncate(folder / "model.weights.h5")
    with pytest.raises(tasks.PipelineError) as info:
        tasks.load(str(folder))
    assert str(info.value) == (
        f"{folder / 'model.weights.h5'} is damaged (truncated or altered); re-save or "
        "re-download it."
    )


def test_an_altered_assets_file_is_damaged_and_an_old_folder_without_checksums_loads(
    saved, tmp_path
):
    import tasks

    folder = _copy(saved[1], tmp_path)
    with open(folder / "assets.json", "a") as f:
        f.write(" ")
    with pytest.raises(tasks.PipelineError, match=r"assets.json is damaged \(truncated or alt"):
        tasks.load(str(folder))
    (folder / "CHECKSUMS.sha256").unlink()  # as saved before checksums existed
    assert tasks.load(str(folder)).predict("good")
    _truncate(folder / "model.weights.h5")  # old folder, truncated: still named as damaged
    with pytest.raises(tasks.PipelineError, match=r"model.weights.h5 is damaged \(truncated"):
        tasks.load(str(folder))


def test_a_savedmodel_export_has_checksums_that_name_a_truncated_variables_file(saved, tmp_path):
    from tasks.integrity import verify_folder

    out = tmp_path / "serving"
    saved[0].export(str(out))
    listed = [line.split("  ")[1] for line in (out / "CHECKSUMS.sha256").read_text().splitlines()]
    assert "saved_model.pb" in listed and "variables/variables.index" in listed
    verify_folder(str(out), weights_file=None)
    data = out / "variables" / "variables.data-00000-of-00001"
    _truncate(data)
    with pytest.raises(ValueError, match=r"variables.data-00000-of-00001 is damaged \(truncated"):
        verify_folder(str(out), weights_file=None)


# ------------------------------------------------------------------ smaller ones (item 8)
def test_forecast_plots_label_the_y_axis_with_the_target_and_its_units(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    import tasks
    from tasks.cli import demo_prices

    labels = []
    close = plt.close
    monkeypatch.setattr(
        plt, "close", lambda fig: (labels.append(fig.axes[0].get_ylabel()), close(fig))
    )
    path = tasks.load("forecasting").plot(demo_prices(), str(tmp_path / "fc.png"))
    assert os.path.getsize(path) > 1000
    assert labels == ["close (price, in the data's currency)"]


def test_generate_caps_a_long_text_at_once_and_says_to_stream_it():
    import tasks

    lm = tasks.load("textgen")
    with pytest.raises(tasks.PipelineError) as info:
        lm.generate("ROMEO:", max_length=100000)
    assert str(info.value) == (
        "Received `max_length=100000`; generate() returns at most 20,000 new tokens at once "
        "(about 30 s on a CPU, with nothing shown meanwhile). Pass stream=True to get the text "
        "piece by piece as it is made (up to 1,000,000), or generate in parts, each continuing "
        "the last."
    )
    pieces = lm.generate("ROMEO:", max_length=100000, stream=True, seed=1)
    assert isinstance(next(iter(pieces)), str)  # streamed: the text shows as it comes


def test_forecasting_reads_a_latin_1_csv_with_encoding_and_the_cli_takes_it(tmp_path, capsys):
    import tasks
    from tasks.cli import demo_prices, main

    latin = tmp_path / "prices.csv"
    prices = demo_prices().assign(ticker="SOCIÉTÉ")
    latin.write_bytes(prices.to_csv(index=False).encode("latin-1"))
    fc = tasks.load("forecasting")
    with pytest.raises(ValueError, match=r"prices.csv is not UTF-8 \(byte 0xc9 at position \d+\)"):
        fc.predict(str(latin))
    assert set(fc.predict(str(latin), encoding="latin-1").id) == {"SOCIÉTÉ"}
    assert main(["forecast", str(latin), "--encoding", "latin-1", "--horizon", "1"]) == 0
    assert "SOCIÉTÉ" in capsys.readouterr().out
