"""Sentiment trains and evaluates from a file streamed in chunks, never read whole."""

import gzip

import numpy as np
import pandas as pd
import pytest

import seqkit.data
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

    monkeypatch.setattr(seqkit.data, "_read_table", refuse)
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
