"""TextGenPipeline: exact O(1) generation, samplers, evaluate, save/load, 0.1.0 folders,
export, bad input."""

import json
import os
import re
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import tasks
from seqkit.samplers import (
    GreedySampler,
    Sampler,
    TemperatureSampler,
    TopKSampler,
    TopPSampler,
)
from tasks.base import PipelineError
from tasks.textgen import RecurrentLM, TextGenPipeline, TextGenPreprocessor


def make_text(n_lines=300, seed=0):
    """A tiny self-made corpus: short lines from a small grammar."""
    rng = np.random.RandomState(seed)
    who = ["the cat", "a dog", "my king", "the queen", "our fool"]
    verb = ["sat on", "looked at", "sang to", "ran from", "spoke of"]
    what = ["the mat", "a crown", "the moon", "my lord", "a rose"]
    lines = [
        f"{rng.choice(who)} {rng.choice(verb)} {rng.choice(what)}{rng.choice(['.', '!', ','])}"
        for _ in range(n_lines)
    ]
    return "\n".join(lines) + "\n"


SMALL = dict(units=24, layers=1, embedding_dim=8, seq_length=32, dropout=0.0)
FIT = dict(epochs=6, batch_size=16, verbose=0, checkpoint_dir=None, learning_rate=1e-2)


@pytest.fixture(scope="module")
def lm():
    return TextGenPipeline(**SMALL, seed=1).fit(make_text(), **FIT)


# ----------------------------------------------------------------- O(1) generation is exact
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_carried_state_equals_rerunning_the_prefix(cell):
    """The next-token distribution after reading a prompt once and stepping token by token
    equals the one from re-running the whole prefix, at every position."""
    keras.utils.set_random_seed(0)
    model = RecurrentLM(13, embedding_dim=6, cell=cell, units=16, layers=2, dropout=0.0)
    ids = np.random.RandomState(1).randint(2, 13, size=(3, 40)).astype("int32")
    full = tf.nn.softmax(model(ids)).numpy()  # (batch, time, vocab): from the full prefix
    logits, states = model.run(ids[:, :7])  # read a 7-token prompt once
    carried = [tf.nn.softmax(logits[:, -1]).numpy()]
    for t in range(7, 40):
        step_logits, states = model.step(tf.constant(ids[:, t]), states)  # one step per token
        carried.append(tf.nn.softmax(step_logits).numpy())
    np.testing.assert_allclose(np.stack(carried, 1), full[:, 6:], atol=1e-5)


def test_greedy_generation_equals_a_loop_that_reruns_the_prefix(lm):
    prompt = "the queen"
    out = lm.generate(prompt, max_length=25, temperature=0)
    # The slow, obviously right way: re-run the whole text for every new token.
    ids = list(lm.tokenizer.encode(prompt))
    for _ in range(25):
        logits = lm.model(np.array([ids], "int32")).numpy()[0, -1]
        logits[:2] = -np.inf  # [PAD] and [UNK] are never generated
        ids.append(int(logits.argmax()))
    assert out == prompt + lm.tokenizer.decode(ids[len(prompt) :])
    assert out == lm.generate(prompt, max_length=25, temperature=0)  # deterministic


def test_seeded_sampling_repeats_and_stream_matches(lm):
    a = lm.generate("a dog", max_length=60, temperature=1.0, seed=7)
    assert a == lm.generate("a dog", max_length=60, temperature=1.0, seed=7)
    assert a != lm.generate("a dog", max_length=60, temperature=1.0, seed=8)
    pieces = list(lm.generate("a dog", max_length=60, temperature=1.0, seed=7, stream=True))
    assert len(pieces) > 10 and "".join(pieces) == a
    assert len(a) == len("a dog") + 60  # char level: one character per token


def test_top_k_and_top_p_generation_stay_in_their_sets(lm):
    prompt = "my king sang to"
    probs = tf.nn.softmax(lm.model(lm.tokenizer.encode(prompt)[None])[0, -1]).numpy()
    probs[:2] = 0
    order = np.argsort(-probs)
    first_k = {lm.tokenizer.vocabulary[i] for i in order[:2]}
    firsts = {lm.generate(prompt, max_length=1, top_k=2, seed=s)[len(prompt) :] for s in range(30)}
    assert firsts <= first_k
    assert {
        lm.generate(prompt, max_length=1, top_p=1e-6, seed=s)[len(prompt) :] for s in range(5)
    } == {lm.tokenizer.vocabulary[order[0]]}


@pytest.mark.parametrize(
    "sampler, shortcuts",
    [
        (GreedySampler(), dict(temperature=0)),
        (TemperatureSampler(0.7), dict(temperature=0.7)),
        (TopKSampler(3), dict(top_k=3)),
        (TopPSampler(0.8, temperature=1.3), dict(top_p=0.8, temperature=1.3)),
        (Sampler(0.9, top_k=5, top_p=0.9), dict(temperature=0.9, top_k=5, top_p=0.9)),
    ],
)
def test_a_sampler_object_gives_the_text_of_its_shortcuts(lm, sampler, shortcuts):
    by_object = lm.generate("a dog", max_length=40, sampler=sampler, seed=5)
    assert by_object == lm.generate("a dog", max_length=40, seed=5, **shortcuts)
    streamed = lm.generate("a dog", max_length=40, sampler=sampler, seed=5, stream=True)
    assert "".join(streamed) == by_object
    assert lm.generate("a", max_length=9, sampler=sampler, num_samples=2, seed=1) == lm.generate(
        "a", max_length=9, num_samples=2, seed=1, **shortcuts
    )


def test_a_custom_sampler_runs_in_the_generation_loop(lm):
    class Argmax(Sampler):
        """Greedy, written as a custom __call__ (traced into the loop, not read by parameters)."""

        calls = 0

        def __call__(self, logits, seed=None):
            Argmax.calls += 1  # counts traces: the loop is compiled, not run in Python
            return tf.argmax(logits, axis=-1, output_type=tf.int32)

    custom = Argmax()
    greedy = lm.generate("the queen", max_length=30, temperature=0)
    assert lm.generate("the queen", max_length=30, sampler=custom) == greedy
    assert "".join(lm.generate("the queen", max_length=30, sampler=custom, stream=True)) == greedy
    assert lm.generate("my king", max_length=30, sampler=custom) == lm.generate(
        "my king", max_length=30, temperature=0
    )
    assert 1 <= Argmax.calls <= 4  # traced once per compiled loop, not once per token


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            dict(sampler=TopPSampler(0.9), temperature=0.5),
            "Received `sampler=TopPSampler(p=0.9, temperature=1.0)` and `temperature=0.5`; "
            "pass either a sampler or the shortcuts temperature / top_k / top_p, not both",
        ),
        (
            dict(sampler=GreedySampler(), top_k=3),
            "Received `sampler=GreedySampler()` and `top_k=3`; pass either a sampler",
        ),
        (
            dict(sampler="greedy"),
            "Received `sampler='greedy'`; expected a seqkit.samplers.Sampler "
            "(e.g. TopPSampler(0.9)) or None.",
        ),
    ],
)
def test_a_sampler_and_a_shortcut_together_are_refused(lm, kwargs, message):
    with pytest.raises(PipelineError, match=re.escape(message)):
        lm.generate("the", max_length=5, **kwargs)


def test_the_preprocessor_holds_the_tokenizer_and_cuts_windows(lm):
    pre = lm.preprocessor
    assert isinstance(pre, TextGenPreprocessor) and pre.fitted
    assert pre.tokenizer is lm.tokenizer and lm.seq_length == pre.seq_length == 32
    assert pre.get_config() == {
        "level": "char",
        "max_tokens": None,
        "lowercase": False,
        "seq_length": 32,
    }
    np.testing.assert_array_equal(pre("the cat"), lm.tokenizer.encode("the cat"))
    ids = pre(make_text(10))
    x, y = pre.windows(ids, 3)
    assert x.shape == y.shape == ((len(ids) - 4) // 32, 32)
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])  # y is x shifted by one token
    twin = TextGenPreprocessor(**pre.get_config())
    assert not twin.fitted
    twin.set_assets(pre.get_assets())
    assert twin.tokenizer.vocabulary == pre.tokenizer.vocabulary and twin.primer_id == pre.primer_id
    with pytest.raises(PipelineError, match="The saved assets are damaged"):
        twin.set_assets({"vocabulary": ["x"]})


def test_num_samples_stop_and_include_prompt(lm):
    outs = lm.generate("the cat", max_length=40, num_samples=3, seed=3, stop="\n")
    assert len(outs) == 3 and all(o.startswith("the cat") and "\n" not in o for o in outs)
    cont = lm.generate("the cat", max_length=40, seed=3, include_prompt=False)
    assert lm.generate("the cat", max_length=40, seed=3) == "the cat" + cont
    streamed = "".join(lm.generate("the cat", max_length=80, seed=3, stop=" a", stream=True))
    assert streamed == lm.generate("the cat", max_length=80, seed=3, stop=" a")
    assert lm.predict(["a", "the"], max_length=5, temperature=0) == [
        lm.generate("a", max_length=5, temperature=0),
        lm.generate("the", max_length=5, temperature=0),
    ]


def test_empty_prompt_and_unknown_characters(lm):
    assert len(lm.generate("", max_length=20, seed=1)) == 20
    # "Z" and "é" never occur in training: read as [UNK], or refused on request
    assert lm.generate("Zé the", max_length=5, seed=1).startswith("Zé the")
    with pytest.raises(PipelineError, match=r"not in the vocabulary: \['Z', 'é'\]"):
        lm.generate("Zé the", on_unknown="error")


# ----------------------------------------------------------------- learning and metrics
def test_learns_the_corpus_and_evaluate_reads_with_carried_state(lm):
    text = make_text(60, seed=5)
    m = lm.evaluate(text)
    assert set(m) >= {"loss", "perplexity", "bits_per_char", "tokens", "characters"}
    assert m["loss"] < 2.0  # uniform over the ~30 characters would be ~3.4
    assert m["perplexity"] == pytest.approx(np.exp(m["loss"]))
    assert m["bits_per_char"] == pytest.approx(m["loss"] / np.log(2))
    shuffled = "".join(np.random.RandomState(0).permutation(list(text)))
    assert lm.evaluate(shuffled)["loss"] > m["loss"] + 1.0
    # One stream read in windows with the state carried = one pass over the whole text.
    ids = lm.tokenizer.encode(text)
    logits = lm.model(ids[None, :-1]).numpy()[0]
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    full = -log_p[np.arange(len(ids) - 1), ids[1:]].mean()
    assert lm.evaluate(text, batch_size=1)["loss"] == pytest.approx(full, rel=1e-5)


def test_validation_is_the_end_of_the_text():
    lm = TextGenPipeline(**SMALL)
    corpus = lm._read("abc" * 540 + "xyz" * 60)
    train, val = lm._split(corpus, 0.1)
    assert train.text == corpus.text[:1620] and val.text == corpus.text[1620:]
    assert set(val.text) == {"x", "y", "z"}
    assert "xyz" not in train.text


def test_save_load_round_trip_and_fine_tune(lm, tmp_path):
    lm.save(tmp_path / "lm")
    loaded = tasks.load(str(tmp_path / "lm"))
    assert isinstance(loaded, TextGenPipeline) and loaded.get_config() == lm.get_config()
    assert loaded.generate("the", max_length=30, seed=2) == lm.generate(
        "the", max_length=30, seed=2
    )
    assert json.load(open(tmp_path / "lm" / "pipeline.json"))["task"] == "textgen"
    # fine-tuning on a new style moves the model towards it; the vocabulary is kept
    new = "the moon sang to the moon.\n" * 80
    before = loaded.evaluate(new)["loss"]
    loaded.fine_tune(new, epochs=2, learning_rate=5e-3, verbose=0, checkpoint_dir=None)
    assert loaded.evaluate(new)["loss"] < before - 0.2
    assert loaded.tokenizer.vocabulary == lm.tokenizer.vocabulary


# Weight paths of seqkit 0.1.0's RecurrentLM (read from its save_weights with h5py): its
# recurrent layers sat in the model's own list, named by class, numbered from the second.
OLD_LAYER = {"lstm": "lstm", "gru": "gru", "rnn": "simple_rnn"}


@pytest.mark.parametrize("cell, layers", [("gru", 1), ("rnn", 2), ("lstm", 1)])
def test_a_0_1_0_folder_of_any_cell_loads(cell, layers, tmp_path):
    """A folder in 0.1.0's layout (format 1, 0.1.0 weight paths) loads with the same weights."""
    import h5py

    lm = TextGenPipeline(**{**SMALL, "layers": layers}, cell=cell, seed=4)
    lm.preprocessor.fit(lm._read(make_text(20)))
    lm.model, lm._fitted = lm._build_model(), True
    folder = lm.save(str(tmp_path / "new"))
    with h5py.File(os.path.join(folder, "model.weights.h5"), "r+") as f:
        for i in range(layers):
            old = f"layers/{OLD_LAYER[cell]}" + (f"_{i}" if i else "")
            new = f"layers/recurrent_stack/rnns/{OLD_LAYER[cell]}" + (f"_{i}" if i else "")
            f.move(new, old)
        del f["layers/recurrent_stack"]
    meta = json.load(open(os.path.join(folder, "pipeline.json")))
    meta.update(format_version=1, seqkit_version="0.1.0")
    json.dump(meta, open(os.path.join(folder, "pipeline.json"), "w"))
    os.remove(os.path.join(folder, "CHECKSUMS.sha256"))  # 0.1.0 wrote none
    loaded = tasks.load(folder)
    for a, b in zip(loaded.model.get_weights(), lm.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert loaded.generate("the", max_length=12, seed=3) == lm.generate(
        "the", max_length=12, seed=3
    )


def test_word_level_tokens_and_generation():
    text = make_text(200)
    lm = TextGenPipeline(level="word", **SMALL).fit(text, **FIT)
    tok = lm.tokenizer
    assert tok.decode(tok.encode("the cat sat on the mat.\na dog, my lord!")) == (
        "the cat sat on the mat.\na dog, my lord!"
    )
    out = lm.generate("the cat", max_length=6, temperature=0, include_prompt=False)
    words = out.replace("\n", " ").replace(".", " ").replace(",", " ").replace("!", " ").split()
    assert words and all(w in tok.vocabulary for w in words)
    m = lm.evaluate(make_text(40, seed=3))
    assert m["characters"] > m["tokens"] and m["bits_per_char"] < m["loss"] / np.log(2)


def test_other_cells_train_and_generate():
    for cell in ("gru", "rnn"):
        lm = TextGenPipeline(**{**SMALL, "layers": 2}, cell=cell).fit(
            make_text(100), **{**FIT, "epochs": 1}
        )
        assert len(lm.generate("a", max_length=10, seed=0)) == 11


def test_fit_accepts_files_lists_frames_and_datasets(tmp_path):
    import gzip

    import pandas as pd

    text = make_text(100)
    path = tmp_path / "corpus.txt.gz"
    with gzip.open(path, "wt") as f:
        f.write(text)
    lm = TextGenPipeline(**SMALL)
    assert lm._read(str(path)).text == text
    assert lm._read(path).text == text
    assert lm._read(["one doc", "two doc"]).text == "one doc\n\ntwo doc"
    assert lm._read(pd.DataFrame({"body": ["a b", "c"]}), text_column="body").text == "a b\n\nc"
    ds = tf.data.Dataset.from_tensor_slices(["x y", "z"])
    assert lm._read(ds).text == "x y\n\nz"


# ----------------------------------------------------------------- export
def test_export_generates_in_a_fresh_process_without_seqkit(lm, tmp_path):
    lm.export(str(tmp_path / "served"))
    expected = {
        "greedy": lm.generate("my lord", max_length=50, temperature=0),
        "empty": lm.generate("", max_length=20, temperature=0),
    }
    script = textwrap.dedent(
        f"""
        import json, sys
        import tensorflow as tf
        m = tf.saved_model.load({str(tmp_path / "served")!r})
        gen = m.signatures["generate"]
        out = {{}}
        for name, prompt, n in (("greedy", "my lord", 50), ("empty", "", 20)):
            r = gen(prompt=tf.constant(prompt), max_length=tf.constant(n),
                    temperature=tf.constant(0.0), seed=tf.constant(0))
            out[name] = r["text"].numpy().decode("utf-8")
        s = [gen(prompt=tf.constant("a"), max_length=tf.constant(30),
                 temperature=tf.constant(1.0), seed=tf.constant(4))["text"].numpy()
             for _ in range(2)]
        out["seeded_repeats"] = s[0] == s[1]
        k = m.signatures["generate_sampled"](prompt=tf.constant("a"), max_length=tf.constant(5),
            temperature=tf.constant(1.0), seed=tf.constant(1), top_k=tf.constant(1),
            top_p=tf.constant(1.0))
        out["top1"] = k["text"].numpy().decode("utf-8")
        out["seqkit_imported"] = any(n.startswith(("seqkit", "tasks")) for n in sys.modules)
        print(json.dumps(out))
        """
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["greedy"] == expected["greedy"]
    assert out["empty"] == expected["empty"]
    assert out["seeded_repeats"] and not out["seqkit_imported"]
    assert out["top1"] == lm.generate("a", max_length=5, temperature=0)


# ----------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(max_length=0), "Received `max_length=0`; expected an integer >= 1."),
        (
            dict(temperature=-1),
            "Received `temperature=-1`; expected a number >= 0 (0 means greedy).",
        ),
        (dict(top_p=0.0), "Received `top_p=0.0`; expected a number in (0, 1] or None."),
        (dict(top_p=1.2), "Received `top_p=1.2`; expected a number in (0, 1] or None."),
        (dict(top_k=0), "Received `top_k=0`; expected a positive integer or None."),
        (dict(num_samples=0), "Received `num_samples=0`; expected an integer >= 1."),
        (dict(stop=""), "Received `stop=''`; expected a non-empty string or a list of them."),
        (
            dict(on_unknown="skip"),
            "Received `on_unknown='skip'`; expected one of ('replace', 'error').",
        ),
        (dict(prompt=5), "Received a prompt of type int; expected a string."),
        (dict(num_samples=2, stream=True), "stream=True generates one sample; use num_samples=1."),
    ],
)
def test_bad_generate_arguments(lm, kwargs, message):
    with pytest.raises(PipelineError, match=re.escape(message)):
        lm.generate(**kwargs)


@pytest.mark.parametrize(
    "data, message",
    [
        ("", "The training text is empty (the text); give some text to learn from."),
        (["", "  "], "The training text is empty (the documents)"),
        ("short text", "The training text has 10 tokens, shorter than one training window"),
        (["ok", 3], "Document 1 is a int (3); every document must be a string."),
        ("missing_file.txt", "No such file: missing_file.txt."),
        (42, "Cannot read training text from a int"),
    ],
)
def test_bad_training_text(data, message):
    with pytest.raises(PipelineError, match=re.escape(message)):
        TextGenPipeline(**SMALL).fit(data, **FIT)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            dict(level="byte"),
            "Received `level='byte'`; expected one of ('char', 'word', 'subword').",
        ),
        (dict(cell="tcn"), "Received `cell='tcn'`; expected one of ('lstm', 'gru', 'rnn')."),
        (dict(units=0), "Received `units=0`; expected an integer >= 1."),
        (dict(seq_length=1), "Received `seq_length=1`; expected an integer >= 2."),
        (dict(dropout=1.0), "Received `dropout=1.0`; expected a number in [0, 1)."),
        (dict(max_tokens=2), "Received `max_tokens=2`; expected an integer >= 3."),
    ],
)
def test_bad_hyperparameters(kwargs, message):
    with pytest.raises(PipelineError, match=re.escape(message)):
        TextGenPipeline(**kwargs)


def test_unfitted_pipeline_says_to_fit_first():
    with pytest.raises(PipelineError, match=r"generate\(\) needs a trained pipeline"):
        TextGenPipeline().generate("x")


# ----------------------------------------------------------------- shipped model and command
def test_shipped_model_knows_shakespeare_from_noise():
    lm = tasks.load("textgen")
    assert isinstance(lm, TextGenPipeline) and lm.level == "char"
    verse = (
        "ROMEO:\nBut soft, what light through yonder window breaks?\n"
        "It is the east, and Juliet is the sun.\n"
    )
    noise = "".join(np.random.RandomState(0).permutation(list(verse)))
    good, bad = lm.evaluate(verse)["loss"], lm.evaluate(noise)["loss"]
    assert good < 2.0 and bad > good + 1.5
    text = lm.generate("ROMEO:", max_length=200, temperature=0.5, seed=1)
    assert text.startswith("ROMEO:") and len(text) == 206
    words = text.split()
    assert sum(w.strip(".,;:!?'").lower() in {"the", "and", "i", "to", "of"} for w in words) >= 3


def test_seqkit_generate_train_and_evaluate_commands(tmp_path, capsys):
    from tasks.cli import main

    (tmp_path / "corpus.txt").write_text(make_text(150))
    small = [f"--set={k}={v}" for k, v in SMALL.items()]
    args = ["train", "textgen", "--data", str(tmp_path / "corpus.txt"), "--out"]
    args += [str(tmp_path / "lm"), "--epochs", "1", "--verbose", "0", "--checkpoint-dir", ""]
    assert main(args + small) == 0
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "lm"), "--data", str(tmp_path / "corpus.txt")]) == 0
    assert "bits_per_char" in json.loads(capsys.readouterr().out)
    cmd = ["generate", "the cat", "--model", str(tmp_path / "lm"), "--max-length", "30"]
    assert main(cmd + ["--temperature", "0"]) == 0
    out = capsys.readouterr().out
    assert out == tasks.load(str(tmp_path / "lm")).generate("the cat", 30, temperature=0) + "\n"
    assert main(cmd + ["--temperature", "-1"]) == 2
    assert "Received `temperature=-1.0`" in capsys.readouterr().err
    assert main(["generate", "x", "--model", "sentiment"]) == 2
    assert "generate needs a textgen one" in capsys.readouterr().err


def test_time_limit_and_learning_rate_decay():
    lm = TextGenPipeline(**SMALL).fit(
        make_text(100), **{**FIT, "epochs": 5}, time_limit=1e-6, lr_decay=0.5
    )
    assert len(lm.history["loss"]) == 1  # the limit passed during the first epoch
    assert len(lm.history["epoch_seconds"]) == 1
    lm = TextGenPipeline(**SMALL).fit(make_text(100), **{**FIT, "epochs": 3}, lr_decay=0.5)
    assert float(lm.model.optimizer.learning_rate) == pytest.approx(1e-2 * 0.5**2)
    with pytest.raises(
        PipelineError, match=r"Received `lr_decay=0`; expected a number in \(0, 1\]"
    ):
        lm.fit(make_text(100), lr_decay=0)
    with pytest.raises(PipelineError, match="Received `time_limit=-1`; expected a positive number"):
        lm.fit(make_text(100), time_limit=-1)


@pytest.mark.parametrize(
    "data, message",
    [
        ("", "The text given to evaluate() is empty; give some text to score."),
        (
            ["", " "],
            "The text given to evaluate() is empty (the documents); give some text to score.",
        ),
        (42, "Cannot read text from a int; pass a string, a file path, a list of documents"),
    ],
)
def test_evaluate_names_itself_on_empty_or_unreadable_text(lm, data, message):
    with pytest.raises(PipelineError) as error:
        lm.evaluate(data)
    assert str(error.value).startswith(message)
