"""SentimentPipeline: train → predict → save → load → fine-tune → explain → export, on tiny data."""

import json
import os
import re
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest

import tasks
from seqkit.data import DataError
from tasks.base import PipelineError
from tasks.sentiment import SentimentPipeline
from tests.tasks.conftest import SMALL, make_reviews


def test_learns_and_predicts_label_names(trained):
    out = trained.predict(["the film was great", "the film was awful"])
    assert [r["label"] for r in out] == ["positive", "negative"]
    assert all(0.5 < r["score"] <= 1.0 for r in out)
    # A single string is one text, and predict_proba's rows sum to one.
    assert trained.predict("a superb scene")[0]["label"] == "positive"
    proba = trained.predict_proba(["a", "", "boring"])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)


def test_evaluate_reports_sklearn_metrics(trained):
    from sklearn.metrics import confusion_matrix, f1_score

    texts, labels = make_reviews(200, seed=9)
    metrics = trained.evaluate((texts, labels))
    assert set(metrics) == {"accuracy", "f1", "loss", "confusion_matrix", "labels", "n"}
    assert metrics["accuracy"] > 0.9 and metrics["n"] == 200
    pred = [r["label"] for r in trained.predict(texts)]
    assert (
        metrics["confusion_matrix"]
        == confusion_matrix(labels, pred, labels=["negative", "positive"]).tolist()
    )
    assert metrics["f1"] == pytest.approx(f1_score(labels, pred, average="macro"))


def test_save_load_round_trip_is_identical(trained, tmp_path):
    texts, _ = make_reviews(50, seed=5)
    trained.save(tmp_path / "clf")
    loaded = tasks.load(str(tmp_path / "clf"))
    assert isinstance(loaded, SentimentPipeline)
    assert loaded.get_config() == trained.get_config()
    np.testing.assert_array_equal(loaded.predict_proba(texts), trained.predict_proba(texts))
    assert json.load(open(tmp_path / "clf" / "pipeline.json"))["task"] == "sentiment"


def test_preprocessor_holds_the_vocabulary_and_labels(trained):
    from seqkit.text import WordVectorizer
    from tasks.sentiment import SentimentPreprocessor

    pre = trained.preprocessor
    assert isinstance(pre, SentimentPreprocessor) and pre.fitted
    assert trained.labels is pre.labels and trained.vectorizer is pre.vectorizer
    assert pre.get_config()["vectorizer"]["max_tokens"] == 64
    # Raw texts -> padded ids (a multiple of 32 steps), the ids the model reads.
    ids = pre(["the film was great", "dull"])
    assert ids.shape == (2, 32) and ids.dtype == np.int32
    assert ids[0, :4].tolist() == pre.encode(["the film was great"])[0].tolist()
    # Rebuilt from its config and assets, it is the same preprocessor.
    twin = SentimentPreprocessor(**pre.get_config())
    assert not twin.fitted
    twin.set_assets(pre.get_assets())
    np.testing.assert_array_equal(twin(["the film was great", "dull"]), ids)
    assert twin.labels == ["negative", "positive"]
    assert SentimentPreprocessor(WordVectorizer(max_length=5)).get_config()["vectorizer"] == (
        WordVectorizer(max_length=5).get_config()
    )
    with pytest.raises(PipelineError, match=r"The saved assets are damaged \(labels must list"):
        twin.set_assets({"vocabulary": pre.get_assets()["vocabulary"], "labels": ["one"]})


@pytest.mark.parametrize(
    "config, kernels",
    [
        # The recurrent kernels (cell/vars/0) of seqkit 0.1.0 models, saved by its code with
        # units=6, embedding_dim=4: Keras numbered the layers across encoders, layer by layer
        # (a first layer's kernel has 4 rows, a second one's 6, or 12 when bidirectional).
        (
            dict(cell="lstm", bidirectional=False, layers=2, encoders=2),
            {"lstm": 4, "lstm_1": 4, "lstm_2": 6, "lstm_3": 6},
        ),
        (
            dict(cell="gru", bidirectional=True, layers=2, encoders=2),
            {
                "bidirectional": 4,
                "bidirectional_1": 4,
                "bidirectional_2": 12,
                "bidirectional_3": 12,
            },
        ),
        (
            dict(cell="rnn", bidirectional=False, layers=1, encoders=3, pooling="last"),
            {"simple_rnn": 4, "simple_rnn_1": 4, "simple_rnn_2": 4},
        ),
    ],
)
def test_legacy_weight_paths_of_stacks_are_the_0_1_0_paths(config, kernels, tmp_path):
    import h5py

    clf = SentimentPipeline(units=6, embedding_dim=4, ngram_buckets=5, **config)
    clf.preprocessor.set_assets({"vocabulary": ["[PAD]", "[UNK]", "film"], "labels": [0, 1]})
    clf._build_model().save_weights(tmp_path / "m.weights.h5")
    with h5py.File(tmp_path / "m.weights.h5") as f:
        shapes = {}
        f.visititems(lambda n, d: shapes.update({n: d.shape}) if hasattr(d, "shape") else None)
    old = {clf._legacy_weight_path(path): shape for path, shape in shapes.items()}
    assert len(old) == len(shapes)  # one old place per weight
    directions = ("forward_layer/", "backward_layer/") if config["bidirectional"] else ("",)
    expected = {
        f"layers/{name}/{d}cell/vars/0": rows for name, rows in kernels.items() for d in directions
    }
    assert {p: s[0] for p, s in old.items() if p.endswith("cell/vars/0")} == expected
    heads = {"layers/embedding/vars/0", "layers/ngram_bag/vars/0", "layers/dense/vars/0"}
    assert heads <= set(old) and all(p in shapes for p in old if "cell/" not in p)


def test_fine_tune_moves_predictions_and_keeps_vocabulary(trained, tmp_path):
    trained.save(tmp_path / "base")
    clf = tasks.load(str(tmp_path / "base"))
    vocabulary = list(clf.vectorizer.vocabulary)
    probe = ["the plot", "plot it was", "the actor and the plot"]
    before = clf.predict_proba(probe)[:, 1]
    # New data: the neutral word "plot" (and an unseen word) now means positive.
    rng = np.random.RandomState(0)
    filler = [
        " ".join(rng.choice(["the", "a", "film", "was", "it", "actor"], 4)) for _ in range(40)
    ]
    new = ([f + " plot zorblax" for f in filler] + filler, ["positive"] * 40 + ["negative"] * 40)
    clf.fine_tune(new, epochs=3, learning_rate=1e-2, verbose=0, checkpoint_dir=None)
    after = clf.predict_proba(probe)[:, 1]
    assert (after > before + 0.05).all(), (before, after)
    assert list(clf.vectorizer.vocabulary) == vocabulary
    assert clf.vectorizer.encode(["zorblax"])[0].tolist() == [1]  # out of vocabulary


def test_fine_tune_refuses_new_labels(trained):
    with pytest.raises(
        DataError, match=r"labels \['neutral'\] are not among the pipeline's labels"
    ):
        trained.fine_tune((["meh"] * 4, ["neutral"] * 4), verbose=0)


def test_multiclass_integer_labels_come_back_as_integers():
    texts, labels = make_reviews(300, labels=(0, 2))
    extra = [f"the film {w} {w}" for w in ["meh", "okay"] * 75]
    clf = SentimentPipeline(**SMALL, seed=1).fit(
        (texts + extra, labels + [1] * 150),
        epochs=4,
        verbose=0,
        checkpoint_dir=None,
        learning_rate=1e-2,
    )
    assert clf.labels == [0, 1, 2]
    assert clf.predict_proba(["great"]).shape == (1, 3)
    assert isinstance(clf.predict("the film was wonderful")[0]["label"], int)


def test_explain_gives_the_sentiment_word_the_largest_weight(trained):
    weights = trained.explain("the film was great and the actor")
    assert [w for w, _ in weights] == "the film was great and the actor".split()
    assert max(weights, key=lambda tw: tw[1])[0] == "great"
    assert trained.explain("") == []
    with pytest.raises(PipelineError, match="expected one of"):
        trained.explain("great", label="neutral")


@pytest.mark.parametrize("cell", ["lstm", "rnn"])
def test_other_cells_and_options_train(cell):
    texts, labels = make_reviews(200)
    clf = SentimentPipeline(
        cell=cell,
        layers=2,
        bidirectional=False,
        pooling="last",
        ngram_buckets=97,
        encoders=2,
        **SMALL,
    ).fit((texts, labels), epochs=1, verbose=0, checkpoint_dir=None)
    assert len(clf.predict(texts[:3])) == 3
    assert set(clf.head_accuracy((texts, labels))) == {
        "recurrent",
        "recurrent_2",
        "ngrams",
        "combined",
    }


def test_ngram_bag_reads_words_bigrams_and_trigrams():
    from tasks.sentiment import NgramBag

    ids = np.array([[5, 6, 7, 5, 6, 7, 0, 0]], dtype="int32")  # 6 words, 2 padding
    for order, expected in ((2, 6 + 5), (3, 6 + 5 + 4)):
        bag = NgramBag(10, 10007, 2, order=order, dropout=0.0)
        grams, weight = (np.asarray(t) for t in bag.gram_ids(ids))
        present = grams[0][weight[0] > 0]
        assert len(present) == expected
        assert present.min() >= 1 and present.max() < 10 + 10007
        # "5 6" and "5 6 7" occur twice: equal n-grams share a row, others do not.
        assert len(set(present.tolist())) == (6 if order == 2 else 9)
        # The output is the documented sum over present grams / sqrt(count).
        bag.build(ids.shape)
        table = np.random.default_rng(0).normal(size=(10017, 2)).astype("float32")
        bag.table.assign(table)
        out = np.asarray(bag(ids))
        np.testing.assert_allclose(
            out[0], 10.0 * table[present].sum(axis=0) / np.sqrt(expected), rtol=1e-5
        )


def test_ngram_nb_prior_is_the_log_count_ratio(tmp_path):
    texts = ["good film", "good plot", "good good", "bad film", "dull plot"]
    labels = ["pos", "pos", "pos", "neg", "neg"] * 1
    clf = SentimentPipeline(
        units=4, embedding_dim=4, max_tokens=50, ngram_buckets=31, ngram_nb=True, seed=1
    ).fit(
        (texts * 4, labels * 4),
        validation_data=(texts, labels),
        epochs=1,
        verbose=0,
        checkpoint_dir=None,
    )
    prior = clf.model.get_layer("ngrams").prior.numpy()  # (rows, classes ["neg", "pos"])
    # Binary one-vs-rest ratios are antisymmetric.
    np.testing.assert_allclose(prior[:, 0], -prior[:, 1], rtol=1e-6)
    # Each text counts a gram once ("good good" too): "good" is in 12 of the 12
    # positive texts and 0 of the 8 negative ones; +1 smoothing, normalised by
    # each class's total gram count (words + bigrams, once per text, plus one per row).
    bag = clf.model.get_layer("ngrams")
    rows = bag.vocabulary_size + bag.buckets
    pos_total = 4 * (2 + 1) * 3 - 4 + rows  # "good good": one distinct word and one bigram
    neg_total = 4 * (2 + 1) * 2 + rows
    good = clf.vectorizer.vocabulary.index("good")
    expected = np.log((12 + 1) / pos_total) - np.log((0 + 1) / neg_total)
    np.testing.assert_allclose(prior[good, 1], expected, rtol=1e-5)
    # fine_tune keeps the prior; save/load carries it.
    clf.fine_tune((["bad good"] * 8, ["neg"] * 8), epochs=1, verbose=0, checkpoint_dir=None)
    np.testing.assert_array_equal(clf.model.get_layer("ngrams").prior.numpy(), prior)
    clf.save(str(tmp_path / "m"))
    loaded = tasks.load(str(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.model.get_layer("ngrams").prior.numpy(), prior)
    np.testing.assert_array_equal(loaded.predict_proba(texts), clf.predict_proba(texts))
    with pytest.raises(PipelineError, match=r"Received `ngram_nb='yes'`; expected True or False"):
        SentimentPipeline(ngram_nb="yes")
    with pytest.raises(PipelineError, match=r"Received `ngram_order=4`; expected an integer <= 3"):
        SentimentPipeline(ngram_order=4)


def test_fit_head_weights_trusts_the_better_head_and_removes_a_bias():
    from tasks.sentiment import fit_head_weights

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 4000)
    margin = np.where(y == 1, 1.0, -1.0)
    good = margin * 2.0 + rng.normal(0, 1.0, len(y))  # informative head
    noise = rng.normal(0, 3.0, len(y)) - 1.0  # over-confident, uninformative, skewed
    logits = np.zeros((len(y), 2, 2))
    logits[:, 0, 1], logits[:, 1, 1] = good, noise

    def loss(w, b):
        z = np.einsum("nhc,h->nc", logits, w) + b
        z = z - z.max(axis=1, keepdims=True)
        return float((np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y]).mean())

    w, b = fit_head_weights(logits, y)
    assert w.shape == (2,) and b.shape == (2,)
    assert w[0] > 0.8 and abs(w[1]) < 0.05  # the noise head is all but switched off
    assert loss(w, b) < loss(np.array([0.5, 0.5]), np.zeros(2)) - 0.1
    # With one head this is temperature + bias calibration: a shifted head gets
    # the shift taken back.
    w1, b1 = fit_head_weights(logits[:, :1] + np.array([0.0, 1.5]), y)
    assert (b1[1] - b1[0]) / w1[0] == pytest.approx(-1.5, abs=0.15)


def test_combine_fit_weights_the_heads_on_the_validation_data(tmp_path):
    texts, labels = make_reviews(400, seed=4)
    val_texts, val_labels = make_reviews(120, seed=8)
    args = dict(**SMALL, ngram_buckets=101, seed=2)
    fit_args = dict(epochs=2, verbose=0, checkpoint_dir=None, learning_rate=1e-2)
    clf = SentimentPipeline(**args).fit((texts, labels), (val_texts, val_labels), **fit_args)
    mean = SentimentPipeline(**args, combine="mean").fit(
        (texts, labels), (val_texts, val_labels), **fit_args
    )
    # Same training (combine only acts after it), different combination.
    heads = clf._logits(clf.vectorizer.encode(val_texts), heads=True)
    np.testing.assert_array_equal(
        heads, mean._logits(mean.vectorizer.encode(val_texts), heads=True)
    )
    assert mean._head_weights is None
    np.testing.assert_allclose(mean._logits(mean.vectorizer.encode(val_texts)), heads.mean(axis=1))
    weights, bias = clf._head_weights
    assert weights.shape == (2,) and bias.shape == (2,)
    np.testing.assert_allclose(
        clf._logits(clf.vectorizer.encode(val_texts)),
        np.einsum("nhc,h->nc", heads, weights) + bias,
        rtol=1e-5,
    )
    # The fitted combination is no worse than the mean on the data it was fitted on.
    assert (
        clf.evaluate((val_texts, val_labels))["loss"]
        <= mean.evaluate((val_texts, val_labels))["loss"] + 1e-6
    )
    # Saved and loaded with the pipeline.
    clf.save(str(tmp_path / "m"))
    loaded = tasks.load(str(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.predict_proba(val_texts), clf.predict_proba(val_texts))
    with pytest.raises(PipelineError, match=r"Received `combine='max'`; expected one of"):
        SentimentPipeline(combine="max")


def test_export_serves_raw_strings_in_a_fresh_process(trained, tmp_path):
    long_text = " ".join(["great"] + ["the film"] * 5000)  # 10,001 words
    texts = ["the film was great", "", "dull !", long_text]
    expected = trained.predict_proba(texts)
    trained.export(str(tmp_path / "serving"))
    script = textwrap.dedent(
        f"""
        import json, sys
        import tensorflow as tf
        served = tf.saved_model.load({str(tmp_path / "serving")!r})
        out = served.signatures["serving_default"](text=tf.constant({texts!r}))
        assert not any(m.split(".")[0] in ("seqkit", "tasks") for m in sys.modules), \\
            [m for m in sys.modules if m.startswith(("seqkit", "tasks"))]
        fn = served.signatures["serving_default"]
        assert sorted(fn.structured_outputs) == ["label", "probabilities", "score"]
        assert list(fn.structured_input_signature[1]) == ["text"]
        print(json.dumps({{"p": out["probabilities"].numpy().tolist(),
                          "label": [x.decode() for x in out["label"].numpy()]}}))
        """
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ""}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    served = json.loads(result.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(served["p"], expected, atol=1e-5)
    assert served["label"] == [r["label"] for r in trained.predict(texts)]


def test_strategy_argument_trains_in_its_scope():
    import tensorflow as tf

    texts, labels = make_reviews(120)
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    clf = SentimentPipeline(**SMALL).fit(
        (texts, labels), epochs=1, verbose=0, checkpoint_dir=None, strategy=strategy
    )
    assert clf.model.optimizer.iterations.numpy() > 0


def test_same_seed_repeats_exactly():
    texts, labels = make_reviews(200)
    runs = [
        SentimentPipeline(**SMALL, seed=7)
        .fit((texts, labels), epochs=2, verbose=0, checkpoint_dir=None)
        .predict_proba(texts[:20])
        for _ in range(2)
    ]
    np.testing.assert_array_equal(runs[0], runs[1])


def test_killed_fit_resumes_from_its_checkpoint(tmp_path, monkeypatch, capsys):
    texts, labels = make_reviews(200)
    data = (texts, labels)
    args = dict(epochs=3, verbose=0, checkpoint_dir=str(tmp_path / "ckpt"), patience=5)
    reference = SentimentPipeline(**SMALL, seed=4).fit(data, **{**args, "checkpoint_dir": None})

    import keras

    real_fit = keras.Model.fit
    calls = []

    def crash_in_second_epoch(self, *a, **k):
        calls.append(k["initial_epoch"])
        if k["initial_epoch"] == 1:
            raise KeyboardInterrupt("killed")
        return real_fit(self, *a, **k)

    monkeypatch.setattr(keras.Model, "fit", crash_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        SentimentPipeline(**SMALL, seed=4).fit(data, **args)
    monkeypatch.setattr(keras.Model, "fit", real_fit)

    calls.clear()
    monkeypatch.setattr(
        keras.Model,
        "fit",
        lambda self, *a, **k: calls.append(k["initial_epoch"]) or real_fit(self, *a, **k),
    )
    resumed = SentimentPipeline(**SMALL, seed=4).fit(data, **{**args, "verbose": 1})
    assert calls == [1, 2]  # epoch 0 came from the checkpoint
    assert "Resuming from the checkpoint after epoch 1" in capsys.readouterr().out
    assert len(resumed.history["loss"]) == 3
    for a, b in zip(resumed.model.get_weights(), reference.model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_interrupted_save_leaves_the_previous_save_loadable(trained, tmp_path, monkeypatch):
    import keras

    path = str(tmp_path / "clf")
    trained.save(path)
    expected = trained.predict_proba(["great"])

    def die(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(keras.Model, "save_weights", die)
    with pytest.raises(RuntimeError, match="disk full"):
        trained.save(path)
    np.testing.assert_array_equal(tasks.load(path).predict_proba(["great"]), expected)
    assert sorted(os.listdir(tmp_path)) == ["clf"]  # no temporary folder left behind


def test_crash_between_renames_falls_back_to_the_old_copy(trained, tmp_path):
    path = tmp_path / "clf"
    trained.save(str(path))
    os.rename(path, str(path) + ".old-1234abcd")  # as if killed after the first rename
    with pytest.warns(UserWarning, match="survived an interrupted save"):
        loaded = tasks.load(str(path))
    assert loaded.predict("great")[0]["label"] == "positive"


# --------------------------------------------------------------------------- errors
def test_unknown_name_lists_the_shipped_ones():
    with pytest.raises(
        PipelineError,
        match=r"the shipped ones are 'forecasting', 'sentiment', 'textgen', 'translation'",
    ):
        tasks.load("no-such-model")


def test_unfitted_pipeline_says_to_fit_first():
    with pytest.raises(
        PipelineError, match=r"predict_proba\(\) needs a trained pipeline; call fit\(\)"
    ):
        SentimentPipeline().predict("hello")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"cell": "transformer"},
            "Received `cell='transformer'`; expected one of ('lstm', 'gru', 'rnn').",
        ),
        ({"units": 0}, "Received `units=0`; expected an integer >= 1."),
        ({"dropout": 1.5}, "Received `dropout=1.5`; expected a number in [0, 1)."),
        ({"max_length": -3}, "Received `max_length=-3`; expected an integer >= 1."),
        (
            {"punctuation": "drop"},
            "Received `punctuation='drop'`; expected one of ('split', 'strip', 'keep').",
        ),
    ],
)
def test_bad_hyperparameters(kwargs, message):
    with pytest.raises(PipelineError) as info:
        SentimentPipeline(**kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "data, message",
    [
        (
            pd.DataFrame({"review": ["a", "b"], "label": [0, 1]}),
            "no text column 'text'; the columns are ['review', 'label']",
        ),
        (
            pd.DataFrame({"text": ["a", "b"], "y": [0, 1]}),
            "no label column 'label'; the columns are ['text', 'y']",
        ),
        (([], []), "the data is empty (0 rows)"),
        ((["a", "b", "c"], [1, 1, 1]), "every row has the same label (1)"),
        ((["a", "b"], [0, float("nan")]), "a label is missing (NaN or None)"),
        (([1.5, "b"], [0, 1]), "text #0 is a float, not a string"),
        (([None, "b"], [0, 1]), "text #0 is missing (NaN or None), not a string"),
        ((["a", "b"], [0]), "2 texts but 1 labels"),
        ((["a", "b"], [0, "x"]), "labels mix integers and strings"),
        (["just", "texts"], "the data has no labels"),
        ("/no/such/file.csv", "/no/such/file.csv: no such file or folder."),
        (42, "Cannot read data of type int"),
    ],
)
def test_bad_training_data_is_named(data, message):
    with pytest.raises(DataError, match=re.escape(message)):
        SentimentPipeline(**SMALL).fit(data, verbose=0, checkpoint_dir=None)


def test_bad_fit_arguments():
    texts, labels = make_reviews(20)
    with pytest.raises(PipelineError, match=r"Received `epochs=0`; expected a positive integer."):
        SentimentPipeline(**SMALL).fit((texts, labels), epochs=0)
    with pytest.raises(PipelineError, match="validation_split=1.5"):
        SentimentPipeline(**SMALL).fit((texts, labels), validation_split=1.5)


# --------------------------------------------------------------------------- readers
def test_readers_accept_every_documented_source(tmp_path):
    import tensorflow as tf

    from seqkit.data import read_text_classification

    texts, labels = make_reviews(10)
    frame = pd.DataFrame({"text": texts, "label": labels})
    frame.to_csv(tmp_path / "d.csv.gz", index=False)
    frame.rename(columns={"text": "review"}).to_csv(tmp_path / "d.tsv", sep="\t", index=False)
    for label in set(labels):
        os.makedirs(tmp_path / "folder" / label)
    for i, (text, label) in enumerate(zip(texts, labels)):
        (tmp_path / "folder" / label / f"{i}.txt").write_text(text)
    sources = {
        "pairs": (texts, labels),
        "list of pairs": list(zip(texts, labels)),
        "frame": frame,
        "csv.gz": str(tmp_path / "d.csv.gz"),
        "tf.data": tf.data.Dataset.from_tensor_slices((texts, labels)),
        "tf.data dict": tf.data.Dataset.from_tensor_slices({"text": texts, "label": labels}),
    }
    for name, source in sources.items():
        read = read_text_classification(source)
        assert (read.texts, read.labels) == (texts, labels), name
    tsv = read_text_classification(str(tmp_path / "d.tsv"), text_column="review")
    assert tsv.texts == texts
    folder = read_text_classification(str(tmp_path / "folder"))
    assert sorted(zip(folder.texts, folder.labels)) == sorted(zip(texts, labels))


def test_shipped_model_gets_obvious_sentences_right():
    clf = tasks.load("sentiment")
    out = clf.predict(
        [
            "This movie was wonderful, I loved it. A masterpiece.",
            "Terrible film. Boring, stupid and a complete waste of time.",
            "One of the best films I have ever seen.",
            "The worst movie I have seen in years.",
        ]
    )
    assert [r["label"] for r in out] == ["positive", "negative", "positive", "negative"]


def test_seqkit_command_demo_and_errors(tmp_path):
    from tasks.cli import main

    assert main(["demo"]) == 0
    assert main(["sentiment", "An excellent film."]) == 0
    assert main(["evaluate", "sentiment", "--data", str(tmp_path / "missing.csv")]) == 2


def test_seqkit_train_evaluate_export_commands(tmp_path, capsys):
    from tasks.cli import main

    texts, labels = make_reviews(200)
    pd.DataFrame({"review": texts, "y": labels}).to_csv(tmp_path / "train.csv", index=False)
    small = [f"--set={k}={v}" for k, v in SMALL.items()]
    args = ["train", "sentiment", "--data", str(tmp_path / "train.csv"), "--out"]
    args += [str(tmp_path / "clf"), "--epochs", "2", "--verbose", "0", "--checkpoint-dir", ""]
    columns = ["--text-column", "review", "--label-column", "y"]
    assert main(args + small + columns) == 0
    assert tasks.load(str(tmp_path / "clf")).units == SMALL["units"]
    capsys.readouterr()
    assert (
        main(["evaluate", str(tmp_path / "clf"), "--data", str(tmp_path / "train.csv")] + columns)
        == 0
    )
    assert "accuracy" in json.loads(capsys.readouterr().out)
    assert main(["export", str(tmp_path / "clf"), str(tmp_path / "served")]) == 0
    assert os.path.isfile(tmp_path / "served" / "saved_model.pb")
    # A wrong column is reported in one line, exit status 2.
    assert main(["evaluate", str(tmp_path / "clf"), "--data", str(tmp_path / "train.csv")]) == 2
    assert "no text column 'text'; the columns are ['review', 'y']" in capsys.readouterr().err


# ---------------------------------------------------------------- a new user's long texts and labels (issue 18)
def test_predict_warns_once_per_call_on_texts_longer_than_max_length(trained):
    words = "the film was great and the actor".split()
    texts = ["a good film", " ".join(words * 5), " ".join(words * 8)[: -len(" actor")]]
    exact = " ".join((words * 4)[:24])  # exactly max_length = 24 words: nothing is cut
    for call in (trained.predict, trained.predict_proba):
        with pytest.warns(UserWarning) as caught:
            call(texts + [exact])
        assert [str(w.message) for w in caught] == [
            "2 text(s) (e.g. number 1, 35 words) are longer than max_length=24; only their "
            "last 24 words are read (truncating='pre')."
        ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trained.predict([exact, "a good film"])


def test_explain_covers_the_words_the_model_reads_and_says_which(trained, monkeypatch):
    text = "great " + " ".join(["the film was dull and the actor"] * 4)  # 29 words
    words = trained.vectorizer.tokens(text)
    with pytest.warns(UserWarning) as caught:
        weights = trained.explain(text)
    assert [str(w.message) for w in caught] == [
        "The text has 29 words; the model reads only words 6 to 29 (max_length=24, "
        "truncating='pre'), and those are the ones explained."
    ]
    assert [w for w, _ in weights] == words[5:]  # the start ("great ...") is not read
    monkeypatch.setattr(trained.vectorizer, "truncating", "post")
    with pytest.warns(UserWarning, match=r"reads only words 1 to 24 \(max_length=24, trunc"):
        weights = trained.explain(text)
    assert [w for w, _ in weights] == words[:24]


def test_explain_ranks_the_words_of_a_near_certain_prediction(trained, monkeypatch):
    # p(positive) rounds to 1.0 in float32: weights used to be all zero.
    def saturated(variants, batch_size=256, heads=False):
        margin = np.array([45.0 + 0.1 * len(v) for v in variants])  # each word adds to it
        return np.stack([-margin / 2, margin / 2], axis=1).astype(np.float32)

    monkeypatch.setattr(trained, "_logits", saturated)
    weights = [v for _, v in trained.explain("the film was great and the actor")]
    assert len(weights) == 7 and all(v > 0 for v in weights)
    assert all(v < 0 for _, v in trained.explain("the film was great", label="negative"))


def test_whole_number_labels_from_a_csv_stay_integers(tmp_path):
    texts, labels = make_reviews(80, labels=(0.0, 1.0))
    path = tmp_path / "reviews.csv"
    pd.DataFrame({"text": texts, "label": labels}).to_csv(path, index=False)
    assert "1.0" in path.read_text()
    clf = SentimentPipeline(**SMALL).fit(str(path), epochs=1, verbose=0, checkpoint_dir=None)
    assert clf.labels == [0, 1] and clf.predict("a great film")[0]["label"] in (0, 1)
    assert clf.evaluate(str(path))["labels"] == [0, 1]
    old = SentimentPipeline(**SMALL)  # saved before: CSV labels were the strings '0', '1'
    old.preprocessor.labels = ["0", "1"]
    old.preprocessor.check_labels([1, 0], "data")
    assert old.preprocessor.label_ids([1, 0]).tolist() == [1, 0]


# ---------------------------------------------------------------- labels of other files (issue 17)
def _csv(tmp_path, texts, labels, name="reviews.csv"):
    path = tmp_path / name
    pd.DataFrame({"text": texts, "label": labels}).to_csv(path, index=False)
    return str(path)


def test_evaluate_reads_0_1_labels_as_negative_positive(trained, tmp_path, capsys):
    from seqkit.data import TextStream

    texts, labels = make_reviews(100, seed=9)
    want = trained.evaluate((texts, labels))
    path = _csv(tmp_path, texts, [int(x == "positive") for x in labels])
    assert trained.evaluate(path) == want  # (0/1 were "not among the pipeline's labels")
    assert trained.evaluate(TextStream(path, chunk_rows=30)) == want
    for label_map in ({0: "negative", 1: "positive"}, {"0": "negative", "1": "positive"}):
        assert trained.evaluate(path, label_map=label_map) == want
    flipped = trained.evaluate(path, label_map={0: "positive", 1: "negative"})
    assert flipped["accuracy"] == pytest.approx(1 - want["accuracy"])
    assert flipped["confusion_matrix"] == want["confusion_matrix"][::-1]  # true labels swap
    head = trained.head_accuracy(path)
    assert head["combined"] == pytest.approx(want["accuracy"])
    from tasks.cli import main  # `seqkit evaluate` too (it has no --label-map flag)

    trained.save(str(tmp_path / "clf"))
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "clf"), "--data", path]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == pytest.approx(want["accuracy"])
    # 0/1 mean nothing to a pipeline with other labels: it still says they are unknown.
    three = SentimentPipeline(**SMALL)
    three.preprocessor.labels, three._fitted = ["a", "b"], True
    with pytest.raises(DataError, match=r"labels \['0', '1'\] are not among the pipeline's"):
        three._check_fine_tune_data(three._read_fine_tune(path), "data")


def test_label_map_renames_labels_for_fit_and_fine_tune(tmp_path):
    from seqkit.data import TextStream

    texts, labels = make_reviews(120, labels=(1, 4))  # star ratings
    stars = [s if i % 4 else s + 1 for i, s in enumerate(labels)]  # 1, 2, 4 and 5 stars
    label_map = {1: "bad", 2: "bad", 4: "good", 5: "good"}
    fit = dict(epochs=1, verbose=0, checkpoint_dir=None)
    clf = SentimentPipeline(**SMALL).fit((texts, stars), label_map=label_map, **fit)
    assert clf.labels == ["bad", "good"]
    path = _csv(tmp_path, texts, stars)
    assert clf.evaluate(path, label_map=label_map) == clf.evaluate(
        (texts, [label_map[s] for s in stars])
    )
    clf.fine_tune(path, label_map={str(k): v for k, v in label_map.items()}, **fit)
    stream = TextStream(path, chunk_rows=50)
    clf.fine_tune(stream, label_map=label_map, **fit)
    mapped = clf._read_fine_tune(stream, label_map=label_map)
    assert mapped.labels == ["bad", "good"] and len(mapped) == 120
    assert mapped.fingerprint() != stream.fingerprint()  # a checkpoint knows its mapping
    held_out = mapped.split(1 / 3)[1]  # every third row: both labels, mapped
    assert {x for chunk in held_out.chunks() for x in chunk.labels} == {"bad", "good"}


@pytest.mark.parametrize(
    "label_map, message",
    [
        (
            [0, 1],
            "Received `label_map=[0, 1]` (a list); expected a dict from the data's labels to "
            "the pipeline's, e.g. label_map={0: 'negative', 1: 'positive'}.",
        ),
        (
            {0: "neg", 1: "pos"},
            "label_map maps to ['neg', 'pos'], which are not among the pipeline's labels "
            "['negative', 'positive']; map each of the data's labels to one of those",
        ),
        (
            {0: "negative"},
            "tuple of data: label_map has no entry for the label(s) [1] found in the data; "
            "add one for each (e.g. 1: <one of the pipeline's labels>).",
        ),
        (
            {0: "negative", "0": "positive"},
            "label_map maps '0' twice (to 'negative' and 'positive'; the keys 0 and '0' are "
            "the same label); keep one entry.",
        ),
        (
            {0: 0.5, 1: "positive"},
            "label_map: the value 0.5 is a float; labels are integers or strings",
        ),
        (
            {0: 0, 1: "positive"},
            "label_map's values mix integers and strings (0, 'positive'); use one kind",
        ),
    ],
)
def test_bad_label_map_says_what_is_wrong(trained, label_map, message):
    texts, labels = make_reviews(10)
    data = (texts, [int(x == "positive") for x in labels])
    with pytest.raises(PipelineError, match=re.escape(message)):
        trained.evaluate(data, label_map=label_map)
    with pytest.raises(PipelineError, match=re.escape(message.split(";")[0][:40])):
        trained.fine_tune(data, label_map=label_map, verbose=0, checkpoint_dir=None)


def test_fit_refuses_a_label_map_that_leaves_one_class():
    texts, labels = make_reviews(20)
    with pytest.raises(
        PipelineError,
        match=re.escape(
            "tuple of data: label_map maps every label to 'x'; training a classifier needs "
            "at least two classes."
        ),
    ):
        SentimentPipeline(**SMALL).fit(
            (texts, labels), label_map={"negative": "x", "positive": "x"}, verbose=0
        )


def _new_domain(n, seed):
    """Known but neutral words ("plot", "scene") carry the sentiment now."""
    rng = np.random.RandomState(seed)
    texts, labels = [], []
    for i in range(n):
        words = list(rng.choice(["the", "a", "film", "was", "it", "actor", "and"], 6))
        words.insert(rng.randint(7), "plot" if i % 2 else "scene")
        texts.append(" ".join(words))
        labels.append("positive" if i % 2 else "negative")
    return texts, labels


@pytest.mark.parametrize("n", [16, 80])  # 16: nothing held out; 80: a validation part
def test_fine_tune_refits_the_head_combination(n):
    from seqkit.data import TextLabelData
    from tasks.sentiment import fit_head_weights

    texts, labels = make_reviews(300)
    fit = dict(verbose=0, checkpoint_dir=None, learning_rate=1e-2)
    clf = SentimentPipeline(**SMALL, ngram_buckets=101, seed=2).fit(
        (texts, labels), epochs=2, **fit
    )
    before = [w.copy() for w in clf._head_weights]
    new = _new_domain(n, seed=1)
    clf.fine_tune(new, epochs=3, **fit)
    weights, bias = clf._head_weights
    assert not np.allclose(weights, before[0]), (weights, before)
    # ... fitted on the held-out part of the new data, or on all of it when none is held out
    data = TextLabelData(*new, "new")
    if n >= 20:
        data = clf._split(data, 0.1)[1]
    y, logits = clf._labels_and_logits(data, heads=True)
    for got, want in zip((weights, bias), fit_head_weights(logits, y)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    accuracy = clf.head_accuracy(_new_domain(200, seed=7))
    assert accuracy["combined"] >= accuracy["recurrent"] - 0.05, accuracy
