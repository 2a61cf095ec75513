"""SentimentPipeline(tokenizer="subword"): SentencePiece pieces from fit to export."""

import json
import os
import re
import warnings

import numpy as np
import pandas as pd
import pytest

import tasks
from seqkit.subword import SPECIALS
from tasks.base import PipelineError
from tasks.sentiment import SentimentPipeline
from tests.helpers import run_python
from tests.tasks.conftest import SMALL, make_reviews

SUBWORD = {**SMALL, "max_tokens": 300, "tokenizer": "subword"}
FIT = dict(epochs=4, verbose=0, checkpoint_dir=None, learning_rate=1e-2)
ODD = ["Zyx 2015 ☃ 中文 <br />", "the film was GREAT!!", ""]


@pytest.fixture(scope="module")
def clf():
    texts, labels = make_reviews(400, seed=1)
    return SentimentPipeline(**SUBWORD, seed=4).fit((texts, labels), **FIT)


def test_word_stays_the_default_and_subword_learns(clf):
    assert SentimentPipeline().get_config()["tokenizer"] == "word"
    assert clf.get_config()["tokenizer"] == "subword"
    assert clf.vectorizer.vocabulary[:4] == SPECIALS
    assert clf.vectorizer.vocabulary_size <= 300
    assert clf.model.get_layer("embedding").input_dim == clf.vectorizer.vocabulary_size
    assert clf.evaluate(make_reviews(100, seed=9))["accuracy"] > 0.85
    out = clf.predict(["the film was great", "the film was awful"])
    assert [r["label"] for r in out] == ["positive", "negative"]


def test_no_text_is_unknown_and_standardized_as_words_are(clf):
    ids = clf.preprocessor(ODD)
    assert ids.dtype == np.int32 and (ids != 1).all()  # byte fallback: no [UNK]
    assert clf.vectorizer.tokens("GREAT<br />film") == clf.vectorizer.tokens("great film")
    assert clf.vectorizer.tokens("") == []
    proba = clf.predict_proba(ODD)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)


def test_max_length_counts_pieces_and_keeps_the_same_end(clf):
    text = "great " + "the film was dull " * 20
    pieces = clf.vectorizer.tokens(text)
    m = clf.vectorizer.max_length
    assert len(pieces) > m
    vocabulary = clf.vectorizer.vocabulary
    ids = clf.preprocessor.encode([text])[0]
    assert [vocabulary[i] for i in ids] == pieces[-m:]  # "pre": the end is read
    with pytest.warns(UserWarning) as caught:
        clf.predict([text, "a good film"])
    assert [str(w.message) for w in caught] == [
        f"1 text(s) (e.g. number 0, {len(pieces)} pieces) are longer than max_length={m}; "
        f"only their last {m} pieces are read (truncating='pre')."
    ]
    with pytest.warns(UserWarning, match=rf"The text has {len(pieces)} pieces; the model reads"):
        weights = clf.explain(text)
    assert [w for w, _ in weights] == pieces[-m:]
    post = SentimentPipeline(**{**SUBWORD, "truncating": "post"})
    post.preprocessor.vectorizer.from_text(clf.vectorizer.to_text())
    assert [vocabulary[i] for i in post.preprocessor.encode([text])[0]] == pieces[:m]


def test_explain_names_pieces(clf):
    weights = clf.explain("the film was great")
    pieces = [w for w, _ in weights]
    assert pieces == clf.vectorizer.tokens("the film was great")
    assert "".join(pieces).replace("▁", " ").strip() == "the film was great"
    best = max(weights, key=lambda w: w[1])[0]
    assert best in clf.vectorizer.tokens("great"), weights


def test_save_load_round_trip_and_damaged_assets(clf, tmp_path):
    texts, _ = make_reviews(30, seed=5)
    clf.save(str(tmp_path / "clf"))
    assets = json.load(open(tmp_path / "clf" / "assets.json"))
    assert "subword_model" in assets and "vocabulary" not in assets
    loaded = tasks.load(str(tmp_path / "clf"))
    assert loaded.get_config() == clf.get_config()
    assert loaded.vectorizer.vocabulary == clf.vectorizer.vocabulary
    np.testing.assert_array_equal(loaded.predict_proba(texts + ODD), clf.predict_proba(texts + ODD))
    pre = loaded.preprocessor
    for damaged in ({"subword_model": "not base64!"}, {"subword_model": "AAAA"}, {}):
        with pytest.raises(PipelineError, match=r"The saved assets are damaged \("):
            pre.set_assets({"labels": ["negative", "positive"], **damaged})
    with pytest.raises(PipelineError, match=r"The saved assets are damaged \("):
        pre.set_assets({"labels": ["negative", "positive"], "subword_model": None})


def test_folders_saved_before_subwords_load_as_words(trained, tmp_path):
    folder = tmp_path / "old"
    trained.save(str(folder))
    meta = json.load(open(folder / "pipeline.json"))
    del meta["config"]["tokenizer"]  # as seqkit 0.2.0 wrote it (format 2)
    meta["format_version"], meta["seqkit_version"] = 2, "0.2.0"
    json.dump(meta, open(folder / "pipeline.json", "w"))
    os.remove(folder / "CHECKSUMS.sha256")  # (0.2.0 wrote none)
    loaded = tasks.load(str(folder))
    assert loaded.tokenizer == "word" and loaded.get_config() == trained.get_config()
    texts = ["the film was great", "dull"]
    np.testing.assert_array_equal(loaded.predict_proba(texts), trained.predict_proba(texts))


def test_fine_tune_keeps_the_pieces_and_learns_new_words(clf, trained, tmp_path):
    """Words fit never saw: as pieces they can be told apart; as words both are [UNK]."""
    rng = np.random.RandomState(0)
    filler = [
        " ".join(rng.choice(["the", "a", "film", "was", "it", "actor"], 4)) for _ in range(60)
    ]
    new = ([f"{f} zorblax" for f in filler] + [f"{f} quimbly" for f in filler[::-1]],)
    new += (["positive"] * 60 + ["negative"] * 60,)
    probe = ["the film zorblax", "the film quimbly"]
    words = trained.vectorizer.encode(probe)
    assert words[0].tolist() == words[1].tolist()  # the word tokenizer cannot see a difference
    clf.save(str(tmp_path / "base"))
    tuned = tasks.load(str(tmp_path / "base"))
    model = tuned.vectorizer.to_text()
    before = tuned.predict_proba(probe)[:, 1]
    tuned.fine_tune(new, epochs=4, learning_rate=1e-2, verbose=0, checkpoint_dir=None)
    assert tuned.vectorizer.to_text() == model  # the subword model is kept
    after = tuned.predict_proba(probe)[:, 1]
    assert after[0] - after[1] > 0.3 and after[0] - after[1] > before[0] - before[1] + 0.2, (
        before,
        after,
    )


def test_ngram_head_reads_piece_ngrams_and_streams_train(tmp_path):
    from seqkit.data import TextLabelData, TextStream

    texts, labels = make_reviews(200, seed=2)
    path = tmp_path / "train.csv"
    pd.DataFrame({"text": texts, "label": labels}).to_csv(path, index=False)
    both = SentimentPipeline(**SUBWORD, ngram_buckets=64, ngram_nb=True, seed=1)
    both.fit(TextStream(str(path), chunk_rows=70), **{**FIT, "epochs": 2})
    assert both.vectorizer.vocabulary_size <= 300
    accuracy = both.head_accuracy(make_reviews(60, seed=3))
    assert set(accuracy) == {"recurrent", "ngrams", "combined"}
    assert accuracy["ngrams"] > 0.75, accuracy
    # The model learnt from the streamed training rows (all but every 10th) is the one
    # the same rows in memory give.
    rows = [i for i in range(len(texts)) if i % 10]
    kept = TextLabelData([texts[i] for i in rows], [labels[i] for i in rows], "lists")
    memory = SentimentPipeline(**SUBWORD).preprocessor.fit(kept)
    assert memory.vectorizer.vocabulary == both.vectorizer.vocabulary


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            dict(tokenizer="subword", max_tokens=299),
            "Received `max_tokens=299` with tokenizer='subword'; expected an integer >= 300 "
            "(the SentencePiece model holds 4 special and 256 byte pieces besides the "
            "characters and subwords).",
        ),
        (dict(tokenizer="bpe"), "Received `tokenizer='bpe'`; expected one of ('word', 'subword')."),
        (
            dict(tokenizer="subword", truncating="middle"),
            "Received `truncating='middle'`; expected one of ('pre', 'post').",
        ),
    ],
)
def test_bad_tokenizer_arguments(kwargs, message):
    with pytest.raises(PipelineError, match=re.escape(message)):
        SentimentPipeline(**kwargs)


def test_savedmodel_serves_raw_strings_with_tensorflow_text_imported(clf, tmp_path):
    texts = ["the film was great", "dull !", " ".join(["great"] + ["the film"] * 300)] + ODD
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (the long text is truncated)
        want = clf.predict_proba(texts)
        labels = [r["label"] for r in clf.predict(texts)]
    clf.export(str(tmp_path / "served"))
    script = f"""
        import json, sys
        import tensorflow as tf, tensorflow_text
        served = tf.saved_model.load({str(tmp_path / "served")!r})
        out = served.signatures["serving_default"](text=tf.constant({texts!r}))
        print(json.dumps({{
            "p": out["probabilities"].numpy().tolist(),
            "label": [x.decode() for x in out["label"].numpy()],
            "seqkit_imported": any(n.startswith(("seqkit", "tasks")) for n in sys.modules),
        }}))
        """
    proc = run_python(script, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    served = json.loads(proc.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(served["p"], want, atol=1e-5)
    assert served["label"] == labels and not served["seqkit_imported"]


def test_onnx_and_litert_folders_ship_the_sentencepiece_model_an_app_can_use(clf, tmp_path):
    import sentencepiece as spm

    from tests.tasks.test_portable import check_builtin
    from tests.tasks.test_portable_generation import run_fresh

    texts = ["the film was great", "awful, dull film", "Zyx 2015 ☃", ""]
    jobs = []
    for fmt, ext in (("onnx", "onnx"), ("litert", "tflite")):
        folder = tmp_path / fmt
        clf.export(str(folder), format=fmt)
        files = {"sentencepiece.model", "vocabulary.txt", "tokenizer.json", f"model.{ext}"}
        assert files <= set(os.listdir(folder))
        settings = json.load(open(folder / "tokenizer.json"))
        assert settings["tokenizer"] == "subword"
        assert settings["model_file"] == "sentencepiece.model"
        assert settings["vocabulary_size"] == clf.vectorizer.vocabulary_size
        assert "sentencepiece.model" in (folder / "README.md").read_text()
        # The app's side, as the README says: standardize, SentencePiece, the last ids, pad.
        sp = spm.SentencePieceProcessor(model_file=str(folder / "sentencepiece.model"))
        standardized = clf.vectorizer.standardize_python(texts)
        rows = [sp.encode(t)[-settings["max_length"] :] for t in standardized]
        ids = np.zeros((len(rows), max(map(len, rows)) + 1), np.int32)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
        assert (ids[:, :-1] == clf.preprocessor(texts)[:, : ids.shape[1] - 1]).all()
        np.savez(tmp_path / f"{fmt}-in.npz", token_ids=ids)
        jobs.append(
            {
                "path": str(folder / f"model.{ext}"),
                "inputs": str(tmp_path / f"{fmt}-in.npz"),
                "output": str(tmp_path / f"{fmt}-out.npz"),
            }
        )
    runner = os.path.join(os.path.dirname(os.path.dirname(__file__)), "run_exported.py")
    results = run_fresh(runner, jobs, str(tmp_path))
    want = clf.predict_proba(texts)
    for job in jobs:
        out = results[job["output"]]
        assert "error" not in out, out.get("error")
        np.testing.assert_allclose(out["name:probabilities"], want, atol=1e-5)
    check_builtin(results[jobs[1]["output"]])  # LiteRT: built-in operators only
