"""Sentiment trains and evaluates from a file streamed in chunks, never read whole."""

import gzip

import numpy as np
import pandas as pd
import pytest

import seqkit.data.tables
from seqkit.data import DataError, TextStream
from tasks.sentiment import SentimentPipeline
from tests.tasks.conftest import SMALL, make_reviews


@pytest.fixture(scope="module")
def review_file(tmp_path_factory):
    texts, labels = make_reviews(1200, seed=3)
    path = tmp_path_factory.mktemp("stream") / "reviews.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        pd.DataFrame({"label": labels, "review": texts}).to_csv(f, index=False)
    return str(path), texts, labels


def test_fit_and_evaluate_from_a_stream_never_read_whole(review_file, monkeypatch):
    path, texts, labels = review_file

    def refuse(*a, **k):
        raise AssertionError("the stream was read whole")

    monkeypatch.setattr(seqkit.data.tables, "_read_table", refuse)
    seen = []
    real_chunks = TextStream.chunks

    def spy(self):
        for chunk in real_chunks(self):
            seen.append(len(chunk))
            yield chunk

    monkeypatch.setattr(TextStream, "chunks", spy)
    stream = TextStream(path, text_column="review", chunk_rows=250)
    clf = SentimentPipeline(**SMALL, seed=0).fit(
        stream, epochs=4, verbose=0, checkpoint_dir=None, learning_rate=1e-2
    )
    assert max(seen) <= 250
    assert clf.labels == ["negative", "positive"]
    test_texts, test_labels = make_reviews(200, seed=9)
    assert clf.evaluate((test_texts, test_labels))["accuracy"] >= 0.9
    # evaluate(stream) is the same as evaluate on the same rows in memory
    monkeypatch.undo()
    streamed = clf.evaluate(TextStream(path, text_column="review", chunk_rows=100))
    in_memory = clf.evaluate((texts, labels))
    assert streamed["n"] == in_memory["n"] == 1200
    assert streamed["confusion_matrix"] == in_memory["confusion_matrix"]
    np.testing.assert_allclose(streamed["loss"], in_memory["loss"], rtol=1e-5)


def test_validation_holds_out_every_kth_row(review_file):
    path, texts, _ = review_file
    train, val = TextStream(path, text_column="review").split(0.1)
    val_texts = [t for chunk in val.chunks() for t in chunk.texts]
    train_texts = [t for chunk in train.chunks() for t in chunk.texts]
    assert val_texts == texts[::10] and len(train_texts) == len(texts) - len(val_texts)
    assert len(val) == 120 and len(train) == 1080


def test_stream_errors_are_clear(tmp_path, review_file):
    path, _, _ = review_file
    with pytest.raises(
        DataError, match=r"no column\(s\) \['text'\]; the columns are \['label', 'review'\]"
    ):
        TextStream(path)
    with pytest.raises(DataError, match=r"is not a file"):
        TextStream(str(tmp_path / "nope.csv"))
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\ngood film,positive\n,negative\n")
    with pytest.raises(DataError, match=r"rows 2-3: text #3 is missing"):
        list(TextStream(str(bad)).chunks())
    with pytest.raises(DataError, match=r"chunk_rows=0"):
        TextStream(path, text_column="review", chunk_rows=0)


# ---------------------------------------------------------------- text generation
from tasks.textgen import TextFileStream, TextGenPipeline  # noqa: E402
from tests.tasks.test_textgen import make_text  # noqa: E402

LM_SMALL = dict(units=16, layers=1, embedding_dim=8, seq_length=24, dropout=0.0)


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    text = make_text(400, seed=2)
    path = tmp_path_factory.mktemp("lm") / "corpus.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8", newline="") as f:
        f.write(text)
    return str(path), text


@pytest.mark.parametrize("level", ["char", "word"])
def test_textgen_stream_in_one_chunk_trains_exactly_like_memory(corpus_file, level):
    path, text = corpus_file
    fit = dict(epochs=2, batch_size=16, verbose=0, checkpoint_dir=None)
    small = {**LM_SMALL, "seq_length": 24 if level == "char" else 6}
    memory = TextGenPipeline(**small, level=level, seed=1).fit(text, **fit)
    stream = TextGenPipeline(**small, level=level, seed=1).fit(
        TextFileStream(path, chunk_chars=10**7), **fit
    )
    assert stream.tokenizer.vocabulary == memory.tokenizer.vocabulary
    for a, b in zip(stream.model.get_weights(), memory.model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_textgen_stream_in_small_chunks_reads_the_same_tokens(corpus_file, monkeypatch):
    path, text = corpus_file
    lm = TextGenPipeline(**LM_SMALL, level="word", seed=0)
    small = TextFileStream(path, chunk_chars=97)
    assert "".join(small.chunks(whole_words=True)) == text  # no character lost or doubled
    train, val = small.split(0.1, whole_words=True)
    assert "".join(train.chunks()) + "".join(val.chunks()) == text
    assert "".join(train.chunks()).endswith((" ", "\n"))  # never inside a word

    def refuse(*a, **k):
        raise AssertionError("the file was read whole")

    monkeypatch.setattr("seqkit.data.corpus._read_file", refuse)
    lm.fit(small, epochs=2, batch_size=16, verbose=0, checkpoint_dir=None, learning_rate=1e-2)
    assert lm.history["val_loss"][-1] < lm.history["val_loss"][0]
    with pytest.raises(DataError, match=r"TextFileStream: received `path='nope.txt'`"):
        TextFileStream("nope.txt")
