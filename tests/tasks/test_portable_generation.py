"""Text generation and translation exported to ONNX and LiteRT (plain and
quantized), run in a fresh process without seqkit: one step of each part
(tests/run_exported.py) against the Keras model's numbers, and the app's
greedy loop (tests/run_greedy.py) against the pipeline's own greedy output;
every .tflite built-in operators only; bad calls get a clear error."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import unicodedata

import numpy as np
import pytest
import tensorflow as tf

from tasks.base import PipelineError
from tasks.portable import export_portable, tflite_operators, vocabulary_text
from tasks.textgen import TextGenPipeline
from tasks.translation import END_ID, TranslationPipeline
from tests.tasks.test_textgen import make_text
from tests.tasks.test_translation import make_pairs

TESTS = os.path.dirname(os.path.dirname(__file__))
RUN_EXPORTED = os.path.join(TESTS, "run_exported.py")
RUN_GREEDY = os.path.join(TESTS, "run_greedy.py")
# (format, quantize, largest error allowed on logits and states, relative to their largest value)
VARIANTS = [
    ("onnx", None, 1e-5),
    ("litert", None, 1e-5),
    ("litert", "float16", 1e-2),
    ("litert", "dynamic_int8", 1e-1),
]
FLOAT32 = [(fmt, q) for fmt, q, _ in VARIANTS if q is None]


def run_fresh(script, jobs, root):
    """Runs `script` on the jobs in a fresh process; returns {output path: {name: array}}."""
    jobs_path = os.path.join(root, f"{os.path.basename(script)}.json")
    with open(jobs_path, "w") as f:
        json.dump(jobs, f)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, script, jobs_path], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = {}
    for job in jobs:
        with np.load(job["output"]) as data:
            out[job["output"]] = {k: data[k] for k in data.files}
    return out


def export_variants(pipeline, root):
    """Exports every variant; returns {(format, quantize): folder}."""
    folders = {}
    for fmt, quantize, _ in VARIANTS:
        folder = os.path.join(root, f"{fmt}-{quantize}")
        kwargs = {"quantize": quantize} if quantize else {}
        assert pipeline.export(folder, format=fmt, **kwargs) == folder
        folders[(fmt, quantize)] = folder
    return folders


def step_jobs(folders, part, feeds, root):
    """One run_exported job per (variant, feed): {(variant, part, k): job}."""
    jobs = {}
    for key, folder in folders.items():
        ext = "onnx" if key[0] == "onnx" else "tflite"
        for k, arrays in enumerate(feeds):
            stem = os.path.join(root, f"{part}-{key[0]}-{key[1]}-{k}")
            np.savez(stem + "-in.npz", **arrays)
            jobs[(key, part, k)] = {
                "path": os.path.join(folder, f"{part}.{ext}"),
                "inputs": stem + "-in.npz",
                "output": stem + "-out.npz",
            }
    return jobs


def relative_error(got, want):
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-6))


def check_outputs(got, want, tol, what):
    """`got` (run_exported's npz) holds every output of `want` ({name: array}) within tol."""
    assert "error" not in got, f"{what}: {got.get('error')}"
    if "operators" in got:
        operators = [str(op) for op in got["operators"]]
        assert operators and not [op for op in operators if op.startswith("custom:")], operators
    errors = {}
    for name, w in want.items():
        g = got[f"name:{name}"]
        assert g.shape == w.shape, (what, name, g.shape, w.shape)
        errors[name] = relative_error(g, w)
    assert max(errors.values()) <= tol, (what, errors)
    return max(errors.values())


def read_vocabulary(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads('"' + line + '"') for line in f.read().split("\n")[:-1]]


def check_folder(folder, parts, files):
    ext = "onnx" if "onnx" in os.path.basename(folder) else "tflite"
    names = [f"{p}.{ext}" for p in parts] + files + ["README.md", "signature.json"]
    assert sorted(os.listdir(folder)) == sorted(names)
    readme = open(os.path.join(folder, "README.md"), encoding="utf-8").read()
    signature = json.load(open(os.path.join(folder, "signature.json")))
    assert sorted(signature["parts"]) == sorted(parts)
    for part in signature["parts"].values():
        for tensor in part["inputs"] + part["outputs"]:
            assert f"`{tensor['name']}`" in readme
    return signature


# ----------------------------------------------------------------- text generation
@pytest.fixture(scope="module")
def textgen(tmp_path_factory):
    """A tiny 2-layer LSTM language model, exported four ways, each run fresh."""
    root = str(tmp_path_factory.mktemp("textgen_portable"))
    lm = TextGenPipeline(units=32, layers=2, embedding_dim=8, seq_length=32, dropout=0.0, seed=1)
    lm.fit(make_text(), epochs=8, batch_size=16, verbose=0, checkpoint_dir=None, learning_rate=1e-2)
    folders = export_variants(lm, root)
    model, rng = lm.model, np.random.RandomState(0)
    vocabulary = lm.tokenizer.vocabulary_size
    # Zero states (the start of a text), and the states after reading two real prompts.
    zeros = [np.zeros((3, 32), np.float32)] * 4
    prompts = np.stack([lm.preprocessor("the cat sat"), lm.preprocessor("a dog ran f")])
    _, read = model.run(tf.constant(prompts[:, :-1]))  # then a step with the last character
    feeds, wants = [], []
    for tokens, states in ((rng.randint(2, vocabulary, 3), zeros), (prompts[:, -1], read)):
        tokens = tokens.astype(np.int32)
        logits, new = model.step(tf.constant(tokens), [tf.constant(s) for s in states])
        names = ["h_0", "c_0", "h_1", "c_1"]
        feeds.append({"token_ids": tokens, **{n: np.asarray(s) for n, s in zip(names, states)}})
        want = {"logits": np.asarray(logits)}
        wants.append({**want, **{f"new_{n}": np.asarray(s) for n, s in zip(names, new)}})
    jobs = step_jobs(folders, "step", feeds, root)
    greedy = {}
    for key in FLOAT32:
        for prompt in ("the queen", ""):
            output = os.path.join(root, f"greedy-{key[0]}-{key[1]}-{len(prompt)}.npz")
            ids = lm.preprocessor(prompt).tolist()
            greedy[(key, prompt)] = {
                "kind": "lm",
                "folder": folders[key],
                "prompt": ids,
                "rows": 2,
                "steps": 20,
                "output": output,
            }
    stepped = run_fresh(RUN_EXPORTED, list(jobs.values()), root)
    generated = run_fresh(RUN_GREEDY, list(greedy.values()), root)
    return {
        "lm": lm,
        "folders": folders,
        "steps": {key: (stepped[job["output"]], wants[key[2]]) for key, job in jobs.items()},
        "greedy": {key: generated[job["output"]] for key, job in greedy.items()},
    }


@pytest.mark.slow
@pytest.mark.parametrize("fmt, quantize, tol", VARIANTS)
def test_textgen_step_matches_the_keras_model(textgen, fmt, quantize, tol):
    for k in (0, 1):
        got, want = textgen["steps"][((fmt, quantize), "step", k)]
        check_outputs(got, want, tol, f"{fmt}/{quantize} feed {k}")
        if quantize:  # a small logit error: the most likely token is kept
            assert (got["name:logits"].argmax(-1) == want["logits"].argmax(-1)).all()


@pytest.mark.slow
@pytest.mark.parametrize("fmt, quantize", FLOAT32)
def test_textgen_app_loop_generates_the_pipelines_greedy_text(textgen, fmt, quantize):
    lm = textgen["lm"]
    for prompt in ("the queen", ""):
        got = textgen["greedy"][((fmt, quantize), prompt)]
        assert "error" not in got, got.get("error")
        want = lm.generate(prompt, max_length=20, temperature=0, include_prompt=False)
        assert len(set(want)) >= 5, want  # a model that learned something: a real check
        for row in got["tokens"]:
            assert lm.tokenizer.decode_python(row.tolist()) == want


@pytest.mark.slow
def test_textgen_folder_holds_the_tokenizer_an_app_needs(textgen):
    lm = textgen["lm"]
    folder = textgen["folders"][("litert", None)]
    signature = check_folder(folder, ["step"], ["tokenizer.json", "vocabulary.txt"])
    step = signature["parts"]["step"]
    assert [t["name"] for t in step["inputs"]] == ["token_ids", "h_0", "c_0", "h_1", "c_1"]
    assert [t["name"] for t in step["outputs"]][:2] == ["logits", "new_h_0"]
    vocabulary = read_vocabulary(os.path.join(folder, "vocabulary.txt"))
    assert vocabulary == lm.tokenizer.vocabulary and "\n" in vocabulary
    settings = json.load(open(os.path.join(folder, "tokenizer.json"), encoding="utf-8"))
    assert settings["level"] == "char" and settings["lowercase"] is False
    assert settings["never_generate"] == [0, 1]
    assert vocabulary[settings["primer_id"]] == "\n"
    # Level "char": one id per character, as the settings say.
    text = "the queen sat. Zz"
    ids = [vocabulary.index(c) if c in vocabulary else 1 for c in text]
    assert ids == lm.preprocessor(text).tolist()
    readme = open(os.path.join(folder, "README.md"), encoding="utf-8").read()
    assert "Zeros" in readme and "primer_id" in readme


# ----------------------------------------------------------------- translation
SMALL_MT = dict(
    units=16, embedding_dim=16, max_tokens=64, target_max_tokens=64, dropout=0.0, tokenizer="word"
)
SENTENCES = [
    "el gato grande come el pan.",
    "¿Dónde está el perro?",
    "el niño bebe agua.",
    "el perro rojo ve el elefante.",  # an unknown word
]


@pytest.fixture(scope="module")
def translation(tmp_path_factory):
    """A tiny GRU translator (bidirectional encoder, Luong attention), exported four ways."""
    root = str(tmp_path_factory.mktemp("translation_portable"))
    mt = TranslationPipeline(**SMALL_MT, seed=2)
    mt.fit(
        make_pairs(300), epochs=6, batch_size=32, verbose=0, checkpoint_dir=None, learning_rate=1e-2
    )
    folders = export_variants(mt, root)
    model = mt.model
    source = mt.preprocessor(SENTENCES).astype(np.int32)  # (4, S), 0 = padding
    memory, mask, states = model.encode(tf.constant(source))
    keys = model.attention.project_keys(memory)
    encoded = {"memory": memory, "keys": keys, "source_mask": tf.cast(mask, tf.float32)}
    encoded = {k: np.asarray(v) for k, v in {**encoded, "h": states[0]}.items()}
    tokens = np.array([2, 5, 7, 3], np.int32)  # [START] and a few words
    logits, new, weights = model.step(tf.constant(tokens), states, memory, mask, keys)
    step_in = {
        "token_ids": tokens,
        **{k: encoded[k] for k in ("h", "memory", "keys", "source_mask")},
    }
    step_want = {"logits": logits, "new_h": new[0], "attention": weights}
    step_want = {k: np.asarray(v) for k, v in step_want.items()}
    jobs = step_jobs(folders, "encoder", [{"source_ids": source}], root)
    jobs.update(step_jobs(folders, "decoder_step", [step_in], root))
    np.savez(os.path.join(root, "source.npz"), source_ids=source)
    greedy = {
        key: {
            "kind": "seq2seq",
            "folder": folders[key],
            "inputs": os.path.join(root, "source.npz"),
            "steps": mt.preprocessor.target_max_length,
            "output": os.path.join(root, f"greedy-{key[0]}-{key[1]}.npz"),
        }
        for key in FLOAT32
    }
    stepped = run_fresh(RUN_EXPORTED, list(jobs.values()), root)
    decoded = run_fresh(RUN_GREEDY, list(greedy.values()), root)
    wants = {"encoder": encoded, "decoder_step": step_want}
    return {
        "mt": mt,
        "folders": folders,
        "steps": {key: (stepped[job["output"]], wants[key[1]]) for key, job in jobs.items()},
        "greedy": {key: decoded[job["output"]] for key, job in greedy.items()},
    }


@pytest.mark.slow
@pytest.mark.parametrize("fmt, quantize, tol", VARIANTS)
def test_translation_parts_match_the_keras_model(translation, fmt, quantize, tol):
    for part in ("encoder", "decoder_step"):
        got, want = translation["steps"][((fmt, quantize), part, 0)]
        check_outputs(got, want, tol, f"{fmt}/{quantize} {part}")
    if quantize:
        assert (got["name:logits"].argmax(-1) == want["logits"].argmax(-1)).all()


@pytest.mark.slow
@pytest.mark.parametrize("fmt, quantize", FLOAT32)
def test_translation_greedy_loop_gives_the_pipelines_translation(translation, fmt, quantize):
    mt = translation["mt"]
    got = translation["greedy"][(fmt, quantize)]
    assert "error" not in got, got.get("error")
    want = mt.translate(SENTENCES, beam_width=1, return_attention=True)
    assert len({w for row in want for w in row["target_tokens"]}) >= 8  # a real check
    vocabulary = read_vocabulary(
        os.path.join(translation["folders"][(fmt, None)], "target_vocabulary.txt")
    )
    for row, tokens, attention in zip(want, got["tokens"], got["attention"]):
        tokens = tokens.tolist()
        n = tokens.index(END_ID) + 1 if END_ID in tokens else len(tokens)
        assert [vocabulary[t] for t in tokens[:n]] == row["target_tokens"]
        assert not any(tokens[n:])  # 0 after the end token
        source_words = row["attention"].shape[1]
        np.testing.assert_allclose(attention[:n, :source_words], row["attention"], atol=1e-5)
        assert not attention[:n, source_words:].any()  # padding gets no weight


@pytest.mark.slow
def test_translation_folder_holds_vocabularies_and_token_ids(translation):
    mt = translation["mt"]
    folder = translation["folders"][("onnx", None)]
    files = ["source_vocabulary.txt", "target_vocabulary.txt", "tokenizer.json"]
    signature = check_folder(folder, ["encoder", "decoder_step"], files)
    encoder, step = signature["parts"]["encoder"], signature["parts"]["decoder_step"]
    assert [t["name"] for t in encoder["outputs"]] == ["memory", "keys", "source_mask", "h"]
    assert [t["name"] for t in step["inputs"]] == [
        "token_ids", "h", "memory", "keys", "source_mask"
    ]  # fmt: skip
    assert [t["name"] for t in step["outputs"]] == ["logits", "new_h", "attention"]
    source = read_vocabulary(os.path.join(folder, "source_vocabulary.txt"))
    target = read_vocabulary(os.path.join(folder, "target_vocabulary.txt"))
    assert source == mt.source_vectorizer.vocabulary and target == mt.target_vocabulary
    settings = json.load(open(os.path.join(folder, "tokenizer.json"), encoding="utf-8"))
    assert (settings["start_id"], settings["end_id"]) == (2, 3)
    assert target[2:4] == ["[START]", "[END]"] and settings["never_generate"] == [0, 1, 2]
    assert settings["source_max_length"] == mt.preprocessor.max_length
    # Split as the settings say (punctuation: not a letter, digit, mark, space or '), the ids
    # are the pipeline's.
    text = "¿Dónde está el gato? l'eau"
    kept = [c if unicodedata.category(c)[0] in "LNMZ" or c in " '" else f" {c} " for c in text]
    words = "".join(kept).split()
    ids = [source.index(w) if w in source else 1 for w in words]
    assert ids == mt.preprocessor([text])[0].tolist()


# ----------------------------------------------------------------- other configurations
def export_and_decode(pipeline, root, jobs):
    """Exports ONNX and LiteRT; runs `jobs(folder)` (run_greedy jobs) on each, fresh."""
    folders = {}
    for fmt in ("onnx", "litert"):
        folders[fmt] = pipeline.export(os.path.join(root, fmt), format=fmt)
    litert = folders["litert"]
    for name in os.listdir(litert):
        if name.endswith(".tflite"):
            operators = tflite_operators(os.path.join(litert, name))
            assert not [op for op in operators if op.startswith("custom:")], operators
    todo = {fmt: jobs(folder, fmt) for fmt, folder in folders.items()}
    done = run_fresh(RUN_GREEDY, [job for fmt in todo for job in todo[fmt]], root)
    return folders, {fmt: [done[job["output"]] for job in todo[fmt]] for fmt in todo}


def app_split_words(text, settings):
    """Word-level text -> tokens, following tokenizer.json's `split` as an app would."""
    if settings["lowercase"]:
        text = text.lower()
    text = re.sub(r"\r\n?", "\n", text)
    punctuation = [
        c not in "'\n" and not c.isspace() and unicodedata.category(c)[0] not in "LNM" for c in text
    ]
    text = "".join(f" {c} " if p else c for c, p in zip(text, punctuation))
    return re.findall(r"\n|\S+", text)


def app_join_words(prompt, words, settings):
    """Word tokens -> the continuation of `prompt`, following tokenizer.json's `detokenize`."""
    rules = settings["detokenize"]
    text = re.sub(r" ?\n ?", "\n", rules["join"].join(words))
    text = re.sub(f" ([{re.escape(rules['no_space_before'])}])", r"\1", text)
    text = re.sub(f"([{re.escape(rules['no_space_after'])}]) ", r"\1", text)
    if prompt and text and not prompt[-1].isspace() and not text[0].isspace():
        text = text if text[0] in rules["no_space_before"] else " " + text
    return text


@pytest.mark.slow
def test_word_level_gru_text_generation_exports_generate_the_same(tmp_path):
    lm = TextGenPipeline(level="word", cell="gru", units=32, layers=1, seq_length=16, dropout=0.0)
    lm.fit(make_text(), epochs=4, batch_size=16, verbose=0, checkpoint_dir=None, learning_rate=1e-2)
    prompt, vocabulary, settings = "the queen sat, on", lm.tokenizer.vocabulary, {}

    def jobs(folder, fmt):  # the prompt's ids as an app makes them, from the folder's files
        settings.update(json.load(open(os.path.join(folder, "tokenizer.json"), encoding="utf-8")))
        words = app_split_words(prompt, settings)
        ids = [vocabulary.index(w) if w in vocabulary else 1 for w in words]
        assert ids == lm.preprocessor(prompt).tolist() and settings["level"] == "word"
        out = str(tmp_path / f"{fmt}.npz")
        return [
            {"kind": "lm", "folder": folder, "prompt": ids, "rows": 1, "steps": 12, "output": out}
        ]

    folders, results = export_and_decode(lm, str(tmp_path), jobs)
    want = lm.generate(prompt, max_length=12, temperature=0, include_prompt=False)
    assert len(set(want.split())) >= 3, want
    for fmt, (got,) in results.items():
        assert "error" not in got, got.get("error")
        words = [vocabulary[i] for i in got["tokens"][0]]
        assert app_join_words(prompt, words, settings) == want, fmt
    step = json.load(open(os.path.join(folders["litert"], "signature.json")))["parts"]["step"]
    assert [t["name"] for t in step["inputs"]] == ["token_ids", "h_0"]


@pytest.mark.slow
def test_lstm_bahdanau_translation_exports_decode_the_same(tmp_path):
    """Two unidirectional LSTM encoder layers: the decoder carries h and c."""
    mt = TranslationPipeline(
        cell="lstm", attention="bahdanau", layers=2, bidirectional=False, **SMALL_MT, seed=3
    )
    mt.fit(
        make_pairs(300), epochs=6, batch_size=32, verbose=0, checkpoint_dir=None, learning_rate=1e-2
    )
    np.savez(str(tmp_path / "source.npz"), source_ids=mt.preprocessor(SENTENCES).astype(np.int32))

    def jobs(folder, fmt):
        out, source = str(tmp_path / f"{fmt}.npz"), str(tmp_path / "source.npz")
        return [{"kind": "seq2seq", "folder": folder, "inputs": source, "steps": 40, "output": out}]

    folders, results = export_and_decode(mt, str(tmp_path), jobs)
    want = mt.translate(SENTENCES, beam_width=1, return_attention=True)
    assert len({w for row in want for w in row["target_tokens"]}) >= 6
    for fmt, (got,) in results.items():
        assert "error" not in got, got.get("error")
        for row, tokens in zip(want, got["tokens"].tolist()):
            n = len(row["target_tokens"])
            assert [mt.target_vocabulary[t] for t in tokens[:n]] == row["target_tokens"], fmt
    step = json.load(open(os.path.join(folders["onnx"], "signature.json")))["parts"]
    assert [t["name"] for t in step["decoder_step"]["outputs"]] == [
        "logits", "new_h", "new_c", "attention"
    ]  # fmt: skip


# ----------------------------------------------------------------- errors and files
@pytest.mark.parametrize("pipeline", [TextGenPipeline, TranslationPipeline])
def test_an_unfitted_pipeline_is_refused(pipeline, tmp_path):
    with pytest.raises(PipelineError, match=re.escape("export() needs a trained pipeline")):
        export_portable(pipeline(), str(tmp_path / "out"), "onnx")
    assert not os.path.exists(tmp_path / "out")


@pytest.mark.parametrize(
    "pipeline, message",
    [
        (TextGenPipeline, "for a litert export of a text-generation pipeline; it takes none"),
        (TranslationPipeline, "for a litert export of a translation pipeline; it takes none"),
    ],
)
def test_unknown_arguments_are_refused(pipeline, message, tmp_path):
    with pytest.raises(
        PipelineError, match=re.escape(f"Unknown argument(s) ['beam_width'] {message}")
    ):
        export_portable(pipeline(), str(tmp_path / "out"), "litert", beam_width=4)


def test_vocabulary_lines_hold_any_token():
    tokens = ["[PAD]", "[UNK]", "\n", "\r", '"', "\\", "\u2028", "\x85", "\x0c", "é", "\t", "a b"]
    text = vocabulary_text(tokens)
    assert text.splitlines() == text.split("\n")[:-1]  # one line per token, for any reader
    assert [json.loads('"' + line + '"') for line in text.splitlines()] == tokens
