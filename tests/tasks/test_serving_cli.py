"""Every pipeline's SavedModel serves through the TF1 session loader, the path TF Serving
takes: ``saved_model_cli run`` gives ``predict``'s outputs and ``saved_model_cli show --all``
lists the signatures with their dtypes and shapes. The CLI runs in a fresh process that
never imports seqkit."""

import ast
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from tasks.forecasting import ForecastPipeline
from tasks.sentiment import SentimentPipeline
from tasks.textgen import TextGenPipeline
from tasks.translation import TranslationPipeline
from tests.tasks.conftest import SMALL as SENTIMENT_SMALL
from tests.tasks.conftest import make_reviews
from tests.tasks.test_forecasting import SMALL as FORECAST_SMALL
from tests.tasks.test_forecasting import random_walks
from tests.tasks.test_textgen import SMALL as TEXTGEN_SMALL
from tests.tasks.test_textgen import make_text
from tests.tasks.test_translation import SMALL as TRANSLATION_SMALL
from tests.tasks.test_translation import make_pairs

pytestmark = pytest.mark.slow  # each test starts TensorFlow twice (~7 s each)

FIT = dict(epochs=1, verbose=0, checkpoint_dir=None, learning_rate=1e-2)
CLI = [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]


def saved_model_cli(folder, signature, inputs="", input_exprs=""):
    """(``show --all`` parsed, ``run`` of ``signature`` parsed), the two run side by side.

    ``show``: {signature: {"inputs" | "outputs": {key: (dtype, shape)}}}, shapes as
    printed ("(-1, 2)"); ``run``: {output key: the printed value, parsed}.
    """
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ""}
    run = ["run", "--dir", folder, "--tag_set", "serve", "--signature_def", signature]
    run += ["--inputs", inputs] if inputs else []
    run += ["--input_exprs", input_exprs] if input_exprs else []
    cwd = os.path.dirname(folder)  # not the repository: seqkit cannot be imported
    procs = [
        subprocess.Popen(
            CLI + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd
        )
        for args in (["show", "--all", "--dir", folder], run)
    ]
    outs = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr.decode("utf-8", "replace")[-3000:]
        outs.append(stdout.decode("utf-8"))
    return parse_show(outs[0]), parse_run(outs[1])


def xla_compiled(folder):
    """The functions of a SavedModel marked for XLA: TF Serving would compile one per shape."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(folder, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    library = [f for meta in proto.meta_graphs for f in meta.graph_def.library.function]
    return [f.signature.name for f in library if f.attr["_XlaMustCompile"].b]


def parse_show(text):
    signatures, current, where = {}, None, None
    for line in text.split("Concrete Functions:")[0].splitlines():
        if m := re.match(r"signature_def\['(.+)'\]:", line):
            current = signatures.setdefault(m[1], {"inputs": {}, "outputs": {}})
        elif m := re.match(r"\s+(inputs|outputs)\['(.+)'\] tensor_info:", line):
            where = current[m[1]].setdefault(m[2], [None, None])
        elif m := re.match(r"\s+(dtype|shape): (.+)", line):
            where[m[1] == "shape"] = m[2].strip()
    signatures.pop("__saved_model_init_op", None)
    return {
        s: {k: {n: tuple(v) for n, v in d.items()} for k, d in io.items()}
        for s, io in signatures.items()
    }


def parse_run(text):
    """Output key -> a list of str (string outputs) or a flat float array."""
    parts = re.split(r"^Result for output key (\S+):\n", text, flags=re.M)
    out = {}
    for key, value in zip(parts[1::2], parts[2::2]):
        strings = re.findall(r"""b'(?:[^'\\]|\\.)*'|b"(?:[^"\\]|\\.)*\"""", value)
        if strings:
            out[key] = [ast.literal_eval(s).decode("utf-8") for s in strings]
        else:
            number = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf"
            out[key] = np.array([float(x) for x in re.findall(number, value)])
    return out


def test_sentiment_serves_through_saved_model_cli(tmp_path):
    clf = SentimentPipeline(**SENTIMENT_SMALL, seed=3).fit(make_reviews(120), **FIT)
    folder = clf.export(str(tmp_path / "sentiment"))
    assert xla_compiled(folder) == []
    texts = ["the film was great", "dull plot", ""]
    show, run = saved_model_cli(folder, "serving_default", input_exprs=f"text={texts!r}")
    assert show == {
        "serving_default": {
            "inputs": {"text": ("DT_STRING", "(-1)")},
            "outputs": {
                "label": ("DT_STRING", "(-1)"),
                "probabilities": ("DT_FLOAT", "(-1, 2)"),
                "score": ("DT_FLOAT", "(-1)"),
            },
        }
    }
    expected = clf.predict(texts)
    assert run["label"] == [r["label"] for r in expected]
    np.testing.assert_allclose(run["score"], [r["score"] for r in expected], atol=1e-5)
    np.testing.assert_allclose(run["probabilities"], clf.predict_proba(texts).ravel(), atol=1e-5)


def test_textgen_serves_through_saved_model_cli(tmp_path):
    lm = TextGenPipeline(**TEXTGEN_SMALL, seed=1).fit(make_text(60), batch_size=16, **FIT)
    folder = lm.export(str(tmp_path / "textgen"))
    assert xla_compiled(folder) == []
    show, run = saved_model_cli(
        folder, "generate", input_exprs="prompt='my lord';max_length=25;temperature=0.8;seed=4"
    )
    scalar = lambda dtype: (dtype, "()")  # noqa: E731
    inputs = {
        "prompt": scalar("DT_STRING"),
        "max_length": scalar("DT_INT32"),
        "temperature": scalar("DT_FLOAT"),
        "seed": scalar("DT_INT32"),
    }
    sampled = {**inputs, "top_k": scalar("DT_INT32"), "top_p": scalar("DT_FLOAT")}
    text = {"text": scalar("DT_STRING")}
    assert show == {
        "generate": {"inputs": inputs, "outputs": text},
        "generate_sampled": {"inputs": sampled, "outputs": text},
    }
    # Sampled, with a seed: the same text (token t is drawn with the stateless seed (seed, t)).
    assert run == {"text": [lm.generate("my lord", max_length=25, temperature=0.8, seed=4)]}


def test_translation_serves_through_saved_model_cli(tmp_path):
    mt = TranslationPipeline(**TRANSLATION_SMALL, seed=2).fit(
        make_pairs(320), batch_size=32, **{**FIT, "epochs": 3}
    )  # (a model that translates some sentences, so the comparison says something)
    folder = mt.export(str(tmp_path / "translation"), beam_width=3)
    assert xla_compiled(folder) == []
    sources = ["el gato come el pan.", "¿Dónde está el niño?", "el perro rojo ve el agua.", ""]
    show, run = saved_model_cli(folder, "serving_default", input_exprs=f"text={sources!r}")
    signature = {
        "inputs": {"text": ("DT_STRING", "(-1)")},
        "outputs": {"translation": ("DT_STRING", "(-1)")},
    }
    assert show == {"serving_default": signature, "translate": signature}
    assert run == {"translation": mt.translate(sources, beam_width=3, warn=False)}


def test_forecasting_serves_through_saved_model_cli(tmp_path):
    df = random_walks(n_series=2, n=200)
    fc = ForecastPipeline(**FORECAST_SMALL, seed=1).fit(df, **FIT)
    folder = fc.export(str(tmp_path / "forecasting"))
    assert xla_compiled(folder) == []
    windows = np.stack(
        [df[df.ticker == k][fc.columns].to_numpy()[-20:].astype("float32") for k in ("S0", "S1")]
    )  # (2, lookback, columns)
    np.save(tmp_path / "window.npy", windows)
    show, run = saved_model_cli(
        folder, "serving_default", inputs=f"window={tmp_path / 'window.npy'}"
    )
    assert show == {
        "serving_default": {
            "inputs": {"window": ("DT_FLOAT", "(-1, 20, 2)")},
            "outputs": {
                "forecast": ("DT_FLOAT", "(-1, 3)"),
                "quantiles": ("DT_FLOAT", "(-1, 3, 3)"),
            },
        }
    }
    expected = fc.predict(df).sort_values(["id", "step"])
    np.testing.assert_allclose(
        run["quantiles"], expected[["q10", "q50", "q90"]].to_numpy().ravel(), rtol=1e-5
    )
    np.testing.assert_allclose(run["forecast"], expected["forecast"].to_numpy(), rtol=1e-5)
