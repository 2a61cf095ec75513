"""Property-based fuzzing of every public entry point with malformed input.

The contract: an entry point either works or raises one of the toolkit's own
errors (``PipelineError``, ``DataError``, ``SeriesError``: all ``ValueError``s
whose message says what was wrong); the layers raise ``ValueError`` like
Keras's own. Nothing else escapes: no TypeError from deep inside, no
TensorFlow error, no crash. Valid but odd input (any Unicode) just works.
"""

import os

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import seqkit.layers as sk
import tasks
from seqkit.data import DataError
from seqkit.series import SeriesError
from tasks.base import PipelineError

from .conftest import sample_input

OURS = (PipelineError, DataError, SeriesError)
FUZZ = settings(
    max_examples=int(os.environ.get("SEQKIT_FUZZ_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,  # the same inputs on every run: a failure here always reproduces
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # no shrinking: report as found
)

# Unicode edge cases: combining marks, RTL, zero-width, emoji, NUL, lone surrogates.
odd_text = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        [
            "",
            " ",
            "\x00",
            "\ud800",
            "e\u0301\u0301\u0301",
            "\u202eabc",
            "\u200b\u200b",
            "👍🏽👨‍👩‍👧",
            "ﬁ",
            "İ",
            "\r\n\t",
            "a" * 20000,
            "¿Dónde está la biblioteca?",
        ]
    ),
)
arrays = hnp.arrays(
    dtype=st.sampled_from([np.float32, np.float64, np.int32, np.bool_, np.complex64]),
    shape=hnp.array_shapes(min_dims=0, max_dims=4, max_side=5),
)
garbage = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    odd_text,
    st.binary(max_size=16),
    st.lists(st.one_of(st.none(), st.integers(), st.floats(), odd_text), max_size=4),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=3),
    st.tuples(st.integers(), st.text(max_size=5)),
    arrays,
    st.just(object()),
    st.just(pd.DataFrame()),
    st.just(pd.DataFrame({"text": [None, np.nan], "label": [1, 2]})),
)


def must_work_or_be_ours(fn, *args, **kwargs):
    """Calls fn; a failure must be one of the toolkit's errors with a useful message."""
    try:
        return fn(*args, **kwargs)
    except OURS as error:
        message = str(error)
        assert len(message) >= 15, message  # says what was wrong, not just "invalid"
        return error


# ---------------------------------------------------------------- layers
@pytest.mark.parametrize("cls", [sk.SimpleRNN, sk.LSTM, sk.GRU])
@FUZZ
@given(units=garbage, dropout=garbage, return_sequences=garbage)
def test_layer_constructors(cls, units, dropout, return_sequences):
    try:
        cls(units, dropout=dropout, return_sequences=return_sequences)
    except ValueError as error:
        assert "Received" in str(error) or "expected" in str(error), str(error)


@pytest.mark.parametrize("cls", [sk.SimpleRNN, sk.LSTM, sk.GRU])
@FUZZ
@given(x=st.one_of(arrays, garbage))
def test_layer_calls(cls, x):
    layer = cls(4, return_sequences=True)
    try:
        out = layer(x)
    except ValueError as error:
        assert str(error)
        return
    x = np.asarray(x)
    assert x.ndim == 3 and tuple(out.shape) == (x.shape[0], x.shape[1], 4)
    assert np.isfinite(np.asarray(out)).all() or not np.isfinite(x.astype("complex128")).all()


# ---------------------------------------------------------------- pipelines: odd but valid text
@FUZZ
@given(texts=st.lists(odd_text, min_size=1, max_size=4))
def test_sentiment_reads_any_unicode(fitted, texts):
    probs = fitted["sentiment"].predict_proba(texts)
    assert probs.shape == (len(texts), 2) and np.allclose(probs.sum(1), 1, atol=1e-5)


@FUZZ
@given(texts=st.lists(odd_text, min_size=1, max_size=3), beam=st.sampled_from([1, 2]))
def test_translation_reads_any_unicode(fitted, texts, beam):
    with _any_warnings():
        out = fitted["translation"].translate(texts, beam_width=beam)
    assert len(out) == len(texts) and all(isinstance(s, str) for s in out)


@FUZZ
@given(prompt=odd_text, max_length=st.integers(0, 20))
def test_textgen_reads_any_unicode_prompt(fitted, prompt, max_length):
    out = must_work_or_be_ours(fitted["textgen"].generate, prompt, max_length=max_length, seed=1)
    assert isinstance(out, str | PipelineError | DataError)


# ---------------------------------------------------------------- pipelines: malformed input
@FUZZ
@given(data=garbage)
def test_sentiment_entry_points(fitted, data):
    clf = fitted["sentiment"]
    for fn in (clf.predict, clf.predict_proba, clf.evaluate, clf.explain):
        must_work_or_be_ours(fn, data)


@FUZZ
@given(data=garbage, extra=garbage)
def test_sentiment_fit(data, extra):
    from tasks.sentiment import SentimentPipeline

    must_work_or_be_ours(SentimentPipeline, units=extra)
    must_work_or_be_ours(
        SentimentPipeline(units=4, max_tokens=32).fit,
        data,
        epochs=1,
        verbose=0,
        checkpoint_dir=None,
    )


@FUZZ
@given(
    prompt=garbage,
    max_length=garbage,
    temperature=garbage,
    top_k=garbage,
    top_p=garbage,
    seed=garbage,
)
def test_textgen_entry_points(fitted, prompt, max_length, temperature, top_k, top_p, seed):
    if isinstance(max_length, int) and 200 < max_length <= 10**6:
        max_length = 200  # valid but slow: long generation is not what this test is about
    lm = fitted["textgen"]
    must_work_or_be_ours(lm.generate, prompt, max_length=5)
    for name, value in dict(
        max_length=max_length, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed
    ).items():
        must_work_or_be_ours(lm.generate, "the", **{name: value})
    must_work_or_be_ours(lm.evaluate, prompt)


@FUZZ
@given(texts=garbage, beam=garbage, penalty=garbage, max_length=garbage)
def test_translation_entry_points(fitted, texts, beam, penalty, max_length):
    mt = fitted["translation"]
    with _any_warnings():
        must_work_or_be_ours(mt.translate, texts)
        must_work_or_be_ours(mt.translate, ["el gato"], beam_width=beam)
        must_work_or_be_ours(mt.translate, ["el gato"], length_penalty=penalty)
        must_work_or_be_ours(mt.translate, ["el gato"], max_length=max_length)
        must_work_or_be_ours(mt.evaluate, texts)
        must_work_or_be_ours(mt.score, texts, texts)


def frames():
    """Price frames with NaN, inf, negative, duplicated, unsorted or missing values."""
    base = sample_input("forecasting").iloc[:40].reset_index(drop=True)

    def damage(what, where):
        frame = base.copy()
        rows = [i % len(frame) for i in where]
        if what == "nan":
            frame.loc[rows, "close"] = np.nan
        elif what == "inf":
            frame.loc[rows, "close"] = np.inf
        elif what == "negative":
            frame.loc[rows, "close"] = -1.0
        elif what == "duplicate dates":
            frame.loc[rows, "date"] = frame["date"].iloc[0]
        elif what == "shuffled":
            frame = frame.sample(frac=1.0, random_state=len(rows))
        elif what == "text prices":
            frame["close"] = frame["close"].astype(object)
            frame.loc[rows, "close"] = "n/a"
        elif what == "no close":
            frame = frame.drop(columns=["close"])
        elif what == "short":
            frame = frame.iloc[: len(rows)]
        return frame

    whats = ["nan", "inf", "negative", "duplicate dates", "shuffled", "text prices", "no close"]
    return st.builds(
        damage, st.sampled_from([*whats, "short"]), st.lists(st.integers(0, 39), max_size=5)
    )


@FUZZ
@given(history=st.one_of(frames(), garbage))
def test_forecasting_entry_points(fitted, history):
    fc = fitted["forecasting"]
    out = must_work_or_be_ours(fc.predict, history)
    if isinstance(out, pd.DataFrame):
        assert np.isfinite(out.select_dtypes("number").to_numpy()).all()
    must_work_or_be_ours(fc.evaluate, history)
    must_work_or_be_ours(fc.backtest, history)


@FUZZ
@given(path=garbage)
def test_load(path):
    must_work_or_be_ours(tasks.load, path)


# ---------------------------------------------------------------- the command line
@pytest.fixture(scope="module")
def tiny_models(fitted, tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    return {task: fitted[task].save(str(root / task)) for task in fitted}


MODEL_OF = {"sentiment": "sentiment", "generate": "textgen", "translate": "translation"}
MODEL_OF["forecast"] = "forecasting"
flags = st.sampled_from(
    ["--max-length", "--beam-width", "--horizon", "--top-k", "--top-p", "-5", "nan", "1e309"]
)


@FUZZ
@given(
    command=st.sampled_from([*MODEL_OF, "train", "evaluate", "export", "nonsense"]),
    argv=st.lists(st.one_of(odd_text.filter(lambda s: "\x00" not in s), flags), max_size=4),
)
def test_command_line(tiny_models, tmp_path, monkeypatch, capsys, command, argv):
    import io

    from tasks.cli import main

    monkeypatch.chdir(tmp_path)  # whatever a command writes lands here
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # commands without texts read stdin
    if command in MODEL_OF:
        argv = [*argv, "--model", tiny_models[MODEL_OF[command]]]
    try:
        code = main([command, *argv])
    except SystemExit as stop:  # argparse: a usage error
        code = stop.code
    err = capsys.readouterr().err
    assert code in (0, 2), (code, err)
    if code == 2:
        assert "error" in err and "Traceback" not in err, err


class _any_warnings:
    """Truncation warnings are part of the contract; keep them out of the output."""

    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)
