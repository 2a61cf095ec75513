"""seqkit.data: every reader, its error messages, and the containers' fingerprints.

The sources test_sentiment.py already reads through ``read_text_classification``
(lists, pairs, DataFrame, csv.gz, tf.data, folders) are not repeated here.
"""

import gzip
import hashlib
import os
import warnings

import numpy as np
import pandas as pd
import pytest

import seqkit.data
import seqkit.series
from seqkit.data import (
    DOCUMENT_SEPARATOR,
    DataError,
    PairData,
    SeriesData,
    SeriesError,
    TextCorpus,
    TextFileStream,
    TextLabelData,
    TextStream,
    read_corpus,
    read_pairs,
    read_series,
    read_text_classification,
    read_texts,
    repair_surrogates,
)
from seqkit.errors import SeqkitError


def data_error(fn, *args, error=DataError, **kwargs) -> str:
    """The message of the ``error`` (a DataError) that ``fn(*args, **kwargs)`` raises."""
    with pytest.raises(error) as info:
        fn(*args, **kwargs)
    return str(info.value)


# --------------------------------------------------------------------------- error classes
def test_one_family_of_errors_importable_from_the_old_places():
    assert seqkit.data.DataError is DataError and seqkit.series.SeriesError is SeriesError
    assert issubclass(SeriesError, DataError) and issubclass(DataError, SeqkitError)
    assert issubclass(SeqkitError, ValueError)
    assert seqkit.series.read_series is read_series


# --------------------------------------------------------------------------- tables
def test_tsv_gz_with_named_columns(tmp_path):
    path = tmp_path / "d.tsv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("review\ty\ngood film\t1\nbad film\t0\n")
    read = read_text_classification(str(path), text_column="review", label_column="y")
    assert read.texts == ["good film", "bad film"]
    assert read.labels == [1, 0]  # whole numbers become ints, as in a DataFrame
    assert read.source == str(path)


def test_read_texts_has_no_labels_and_a_string_is_one_text():
    assert read_texts("reviews.csv") == TextLabelData(["reviews.csv"], None, "text")
    frame = pd.DataFrame({"text": ["a", "b"], "other": [1, 2]})
    assert read_texts(frame).labels is None  # no label column: fine for prediction
    assert read_texts(pd.Series(["x", "y"])).texts == ["x", "y"]
    assert read_texts(np.array(["x", "y"])).texts == ["x", "y"]


def test_folder_skips_hidden_folders_and_other_files_and_replaces_bad_bytes(tmp_path):
    for label in ("neg", "pos", ".cache"):
        (tmp_path / label).mkdir()
    (tmp_path / "pos" / "1.txt").write_text("great")
    (tmp_path / "pos" / "notes.md").write_text("ignored")
    (tmp_path / "neg" / "1.txt").write_bytes(b"bad \xff")
    (tmp_path / ".cache" / "1.txt").write_text("ignored")
    (tmp_path / "README.txt").write_text("ignored: not in a label folder")
    read = read_text_classification(str(tmp_path))
    assert (read.texts, read.labels) == (["bad \ufffd", "great"], ["neg", "pos"])


def test_labels_are_normalised():
    read = read_text_classification((["a", "b", "c"], [np.int64(1), 0.0, True]))
    assert read.labels == [1, 0, 1] and all(type(v) is int for v in read.labels)
    assert read_text_classification((["a", "b"], [b"x", "y"])).labels == ["x", "y"]


def test_surrogates_are_repaired():
    assert repair_surrogates("a\ud83d\ude00b\ud800") == "a\U0001f600b\ufffd"
    assert repair_surrogates("plain") == "plain"
    assert read_texts(["x\udcff"]).texts == ["x\ufffd"]


@pytest.mark.parametrize(
    "data, expected",
    [
        (
            pd.DataFrame({"review": ["a"], "label": [1]}),
            "DataFrame: no text column 'text'; the columns are ['review', 'label']. "
            "Pass text_column=... to name the right one.",
        ),
        (
            pd.DataFrame({"text": ["a"], "y": [1]}),
            "DataFrame: no label column 'label'; the columns are ['text', 'y']. "
            "Pass label_column=... to name the right one.",
        ),
        ([], "list of data: the data is empty (0 rows)."),
        (
            ["a", "b"],
            "list of data: the data has no labels. Training and evaluation need (text, label) "
            "pairs: pass (texts, labels), a DataFrame or file with a label column, or a "
            "folder of <label>/*.txt files.",
        ),
        (
            (["a", "b"], [1, 1]),
            "tuple of data: every row has the same label (1); training a classifier needs at "
            "least two classes.",
        ),
        (
            (["a", "b"], [1, "x"]),
            "tuple of data: labels mix integers and strings; use one kind for all labels.",
        ),
        (
            (["a", "b"], [1.5, 0]),
            "tuple of data: label 1.5 is a fractional number; class labels must be integers "
            "or strings.",
        ),
        (
            (["a", "b"], [np.nan, 0]),
            "tuple of data: a label is missing (NaN or None). Drop those rows or fill them in "
            "before training.",
        ),
        (
            (["a", None], [1, 0]),
            "tuple of data: text #1 is missing (NaN or None), not a string. Every text must "
            "be a str; drop or fill empty rows first.",
        ),
        ((["a", b"\xff"], [1, 0]), "tuple of data: text #1 is not valid UTF-8 ("),
        ((["a", "b"], [1]), "tuple of data: 2 texts but 1 labels; they must pair up."),
        (None, "No data given (got None)."),
        (3.5, "Cannot read data of type float. Pass a list of texts, (texts, labels), "),
    ],
)
def test_table_errors_say_what_and_how_to_fix(data, expected):
    assert data_error(read_text_classification, data).startswith(expected)


def test_file_errors(tmp_path):
    latin = tmp_path / "latin.csv"
    latin.write_bytes("text,label\ncaf\xe9,1\nthé,0\n".encode("latin-1"))
    message = data_error(read_text_classification, str(latin))
    assert message == (
        f"{latin} is not UTF-8 (byte 0xe9 at position 14); pass encoding='latin-1' (or the "
        "file's encoding)."
    )
    assert read_text_classification(str(latin), encoding="latin-1").texts == ["café", "thé"]
    (tmp_path / "empty.csv").write_text("")
    message = data_error(read_text_classification, str(tmp_path / "empty.csv"))
    assert message == f"{tmp_path / 'empty.csv'}: the file is empty."
    message = data_error(read_text_classification, str(tmp_path / "nope.csv"))
    assert message == f"{tmp_path / 'nope.csv'}: no such file or folder."
    (tmp_path / "folder").mkdir()
    with pytest.raises(DataError, match=r"found no <label>/\*\.txt files"):
        read_text_classification(str(tmp_path / "folder"))


# --------------------------------------------------------------------------- streams
@pytest.fixture
def table_file(tmp_path):
    path = tmp_path / "rows.csv"
    frame = pd.DataFrame({"text": [f"text {i}" for i in range(10)], "label": ["a", "b"] * 5})
    frame.to_csv(path, index=False)
    return str(path)


def test_text_stream_chunks_summary_and_labels(table_file):
    stream = TextStream(table_file, chunk_rows=4)
    chunks = list(stream.chunks())
    assert [len(c) for c in chunks] == stream.chunk_sizes() == [4, 4, 2]
    assert [t for c in chunks for t in c.texts] == [f"text {i}" for i in range(10)]
    assert chunks[1].source == f"{table_file} rows 6-9"  # file lines, the header is line 1
    assert (
        len(stream) == 10 and stream.labels == ["a", "b"] and stream.summary() == (10, ["a", "b"])
    )


def test_text_stream_errors(tmp_path, table_file):
    (tmp_path / "t.txt").write_text("x")
    assert data_error(TextStream, str(tmp_path / "t.txt")) == (
        f"TextStream: {tmp_path / 't.txt'} is not a .csv or .tsv file (optionally .gz)."
    )
    with pytest.raises(DataError, match=r"^TextStream: received `path=3`; expected a file path\.$"):
        TextStream(3)
    with pytest.raises(DataError, match=r"received `chunk_rows=True`; expected a positive integer"):
        TextStream(table_file, chunk_rows=True)
    with pytest.raises(DataError, match=r"^TextStream: received `label_column=None`; expected a"):
        TextStream(table_file, label_column=None)
    header_only = tmp_path / "header.csv"
    header_only.write_text("text,label\n")
    assert data_error(lambda: len(TextStream(str(header_only)))) == f"{header_only}: no rows."


# --------------------------------------------------------------------------- pairs
def test_pairs_from_every_source(tmp_path):
    import tensorflow as tf

    english, spanish = ["Go.", "Hi.", "Run!"], ["Ve.", "Hola.", "Corre."]
    tsv = tmp_path / "spa.txt.gz"
    with gzip.open(tsv, "wt", encoding="utf-8") as f:  # Anki: english, other, credit
        f.write("Go.\tVe.\tCC-BY 2.0\n\nHi.\tHola.\tCC-BY 2.0\nRun!\tCorre.\tCC-BY 2.0\n")
    sources = {
        "pairs": list(zip(spanish, english)),
        "lists": (spanish, english),
        "frame": pd.DataFrame({"source": spanish, "target": english}),
        "tf.data": tf.data.Dataset.from_tensor_slices((spanish, english)),
        "tsv": str(tsv),
    }
    for name, source in sources.items():
        pairs = read_pairs(source)
        assert isinstance(pairs, PairData), name
        assert (pairs.texts, pairs.labels) == (spanish, english), name
    english_first = read_pairs(tsv, tsv_source_column=0, tsv_target_column=1)
    assert (english_first.texts, english_first.labels) == (english, spanish)


@pytest.mark.parametrize(
    "data, expected",
    [
        ([], "No sentence pairs in the pairs; give at least one."),
        ([("a", "")], "Pair 0 of the pairs: the target is empty; remove the pair or fill it in."),
        ([("a", 3)], "Pair 0 of the pairs: the target is a int (3); expected a string."),
        (
            [("a", "b", "c")],
            "Pair 0 is ('a', 'b', 'c'); expected a (source, target) pair of strings.",
        ),
        (
            (["a", "b", "c"], ["x", "y"]),
            "Received 3 sources and 2 targets; expected as many of each.",
        ),
        (
            pd.DataFrame({"source": ["a"]}),
            "The DataFrame has no column 'target'; its columns are ['source']. "
            "Pass source_column=/target_column=.",
        ),
        (5, "Cannot read sentence pairs from a int; pass (source, target) pairs, a DataFrame, "),
    ],
)
def test_pair_errors(data, expected):
    assert data_error(read_pairs, data).startswith(expected)


def test_pair_file_errors(tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("Go.\tVe.\nHi.\n")
    assert data_error(read_pairs, str(short)) == (
        f"{short}, line 2: expected 2 tab-separated columns (Anki format: english<TAB>other), "
        "found 1: 'Hi.'."
    )
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"Go.\tV\xe9.\n")
    with pytest.raises(DataError, match=rf"^{latin} is not UTF-8 \(byte 0xe9 at position 5\)"):
        read_pairs(str(latin))
    assert read_pairs(str(latin), encoding="latin-1").labels == ["Go."]
    with pytest.raises(DataError, match=r"^No such file: .*nope.txt\.$"):
        read_pairs(str(tmp_path / "nope.txt"))
    (tmp_path / "blank.txt").write_text("\n\n")
    with pytest.raises(DataError, match=r"^No sentence pairs in .*blank.txt; give at least one\.$"):
        read_pairs(str(tmp_path / "blank.txt"))


# --------------------------------------------------------------------------- corpora
def test_corpus_from_every_source(tmp_path):
    import tensorflow as tf

    docs = ["first document", "", "second\n"]
    joined = "first document" + DOCUMENT_SEPARATOR + "second\n"  # empty documents are dropped
    (tmp_path / "c.txt").write_text(joined, newline="")
    with gzip.open(tmp_path / "c.txt.gz", "wt", encoding="utf-8", newline="") as f:
        f.write(joined)
    sources = {
        "text": joined,
        "path": str(tmp_path / "c.txt"),
        "gz": str(tmp_path / "c.txt.gz"),
        "PathLike": tmp_path / "c.txt",
        "documents": docs,
        "tuple": tuple(docs),
        "Series": pd.Series(docs),
        "DataFrame": pd.DataFrame({"body": docs}),
        "tf.data": tf.data.Dataset.from_tensor_slices(docs),
        "tf.data dict": tf.data.Dataset.from_tensor_slices({"body": docs}),
    }
    for name, source in sources.items():
        corpus = read_corpus(source, text_column="body")
        assert isinstance(corpus, TextCorpus) and corpus.text == joined, name
    assert corpus.texts == [joined] and corpus.labels is None and len(corpus) == len(joined)


def test_corpus_encoding(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("caf\xe9\n".encode("latin-1"))
    message = data_error(read_corpus, str(path))
    assert message == (
        f"{path} is not UTF-8 (byte 0xe9 at position 3); pass encoding='latin-1' (or the "
        "file's encoding)."
    )
    assert read_corpus(str(path), encoding="latin-1").text == "café\n"


@pytest.mark.parametrize(
    "data, expected",
    [
        ("", "The training text is empty (the text); give some text to learn from."),
        (["", "  "], "The training text is empty (the documents); give some text to learn from."),
        (["ok", 3], "Document 1 is a int (3); every document must be a string."),
        (
            "missing_file.txt",
            "No such file: missing_file.txt. (To train on a string that looks like a file "
            "name, pass it inside a list.)",
        ),
        (
            pd.DataFrame({"x": ["a"]}),
            "The DataFrame has no column 'text'; its columns are ['x']. Pass text_column=...",
        ),
        (
            42,
            "Cannot read training text from a int; pass a string, a file path, a list of "
            "documents, a pandas Series/DataFrame or a tf.data.Dataset.",
        ),
    ],
)
def test_corpus_errors(data, expected):
    assert data_error(read_corpus, data) == expected


def test_text_file_stream(tmp_path):
    text = "one two three\nfour five six\n" * 5
    path = tmp_path / "c.txt"
    path.write_text(text, newline="")
    stream = TextFileStream(path, chunk_chars=7)
    assert len(stream) == len(text) and "".join(stream.chunks()) == text
    train, val = stream.split(0.25)
    assert (len(train), len(val)) == (int(len(text) * 0.75), len(text) - int(len(text) * 0.75))
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9\n".encode("latin-1"))
    message = data_error(TextFileStream, latin)  # at construction, not mid-training
    assert message.endswith("); pass encoding='latin-1' (or the file's encoding).")
    assert "".join(TextFileStream(latin, encoding="latin-1").chunks()) == "café\n"
    message = data_error(TextFileStream, path, chunk_chars=0)
    assert message == "Received `chunk_chars=0`; expected an integer >= 1."


# --------------------------------------------------------------------------- series
def long_frame(n=6):
    dates = list(pd.date_range("2024-01-01", periods=n))
    return pd.DataFrame(
        {
            "date": dates * 2,
            "ticker": ["A"] * n + ["B"] * n,
            "close": np.arange(1.0, 2 * n + 1),
            "volume": np.arange(2.0 * n) * 10,
            "name": ["x"] * (2 * n),  # not numeric: never a feature
        }
    )


def test_series_from_every_source(tmp_path):
    frame = long_frame()
    series, features = read_series(frame, target="close")
    assert list(series) == ["A", "B"] and features == ["volume"]
    assert list(series["B"].columns) == ["close", "volume"]
    np.testing.assert_array_equal(series["B"]["close"], np.arange(7.0, 13.0))
    assert series["A"].index.name == "date" and isinstance(series["A"].index, pd.DatetimeIndex)
    frame.to_csv(tmp_path / "s.csv.gz", index=False)
    from_file, _ = read_series(str(tmp_path / "s.csv.gz"), target="close")
    for key in series:
        pd.testing.assert_frame_equal(from_file[key], series[key])
    one = pd.Series([1.0, 2.0, 3.0], index=pd.date_range("2024-01-01", periods=3))
    ((only, features),) = [read_series(one, target="close")]
    assert list(only) == ["series"] and features == []
    indexed = pd.DataFrame({"close": [1.0, 2.0]}, index=pd.date_range("2024-01-01", periods=2))
    assert len(read_series(indexed, target="close")[0]["series"]) == 2
    _, chosen = read_series(frame, target="close", features=[])
    assert chosen == []


def test_series_unsorted_gaps_and_ffill():
    frame = long_frame().iloc[::-1].reset_index(drop=True)
    frame.loc[frame.index[-2], "close"] = np.nan  # A on its second date
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        series, _ = read_series(frame, target="close", missing="ffill")
    assert "2 series (e.g. 'A') were not sorted by 'date'; sorted them." in str(caught[0].message)
    np.testing.assert_array_equal(series["A"]["close"], [1.0, 1.0, 3.0, 4.0, 5.0, 6.0])
    with pytest.raises(SeriesError, match=r"Series 'A' has a missing 'close' on 2024-01-02"):
        read_series(frame, target="close")


@pytest.mark.parametrize(
    "data, kwargs, expected",
    [
        (
            pd.Series([1.0, 2.0]),
            {},
            "A pandas Series needs a DatetimeIndex (its dates); got RangeIndex. Use a DataFrame "
            "with a time column instead.",
        ),
        (
            5,
            {},
            "Cannot read series from a int; pass a long-format DataFrame, a CSV path or a "
            "pandas Series with a DatetimeIndex.",
        ),
        (pd.DataFrame({"date": [], "close": []}), {}, "The data has no rows."),
        (
            long_frame(),
            {"missing": "drop"},
            "Received `missing='drop'`; expected 'error' or 'ffill'.",
        ),
        (
            long_frame(),
            {"features": ["vol"]},
            "The feature column 'vol' is missing; the columns are ['date', 'ticker', 'close', "
            "'volume', 'name']. Pass columns={'volume': 'vol'} to map yours to it.",
        ),
        (long_frame(), {"features": ["name"]}, "The feature column 'name' is not numeric."),
        (long_frame().assign(close=np.inf), {}, "Series 'A' has infinite values; remove them."),
        (
            long_frame(),
            {"time_column": "day"},
            "The data has no column 'day'; its columns are "
            "['date', 'ticker', 'close', 'volume', 'name']. Pass time_column=... to name it, "
            "or columns={'date': 'day'} to map yours.",
        ),
    ],
)
def test_series_errors(data, kwargs, expected):
    assert data_error(read_series, data, error=SeriesError, target="close", **kwargs) == expected


def test_series_file_errors(tmp_path):
    with pytest.raises(SeriesError, match=r"^No such file: .*none\.csv\.$"):
        read_series(str(tmp_path / "none.csv"), target="close")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(SeriesError, match=r"empty\.csv: the file is empty\.$"):
        read_series(str(tmp_path / "empty.csv"), target="close")
    bad_dates = pd.DataFrame({"date": ["2024-01-01", "soon"], "close": [1.0, 2.0]})
    with pytest.raises(SeriesError, match=r"^The column 'date' does not hold dates \("):
        read_series(bad_dates, target="close")


def test_series_data_origins():
    series, features = read_series(long_frame(10), target="close")
    data = SeriesData(series, features, stride=2)
    assert len(data) == 20
    np.testing.assert_array_equal(data.origins("A", lookback=3, horizon=2), [2, 4, 6])
    cut = pd.Timestamp("2024-01-07")  # index 6
    train = SeriesData(series, features, "train", cut)
    val = SeriesData(series, features, "val", cut)
    # train: the whole horizon (t + 2) ends on or before the cut; val: the origin is after it
    np.testing.assert_array_equal(train.origins("A", 3, 2), [2, 3, 4])
    np.testing.assert_array_equal(val.origins("A", 3, 2), [7])


# --------------------------------------------------------------------------- fingerprints
# Values computed by seqkit 0.1.0 (tasks.base.Pipeline._fingerprint and
# ForecastPipeline._fingerprint): checkpoints saved by it are keyed by them.
V010 = {
    "labels_int": "edc5bb0c67ab57c3cb32f796b9a0729cbfaf7b8fdcae395b5c5108aaa80cc0cd",
    "labels_str": "64b4410712f7c1035fc0ef2e16c11437f31296c166d8efc41bcc93ea8efa30cf",
    "no_labels": "5287c07ae97efc5af2b2581300d8a0e25cb1c2307aa87e006557d9d77a780c21",
    "pairs": "99d777a98645c44c2203bc5d6c4ed2fec73c10dac6bfe5ad9269e67c119db7d8",
    "corpus": "138cdce7a63bf5d9b5907c47b889b3ed785b0e8138915bb2f325be2dbc48a5c2",
    "series_all": "fdfa1328688ec48b973e65da11e75677867056043272106092b82721d23ce660",
    "series_train": "19a74a604fae011a9c53e28c4da21404bad1242896a8a3d20953b23174e582be",
}


def test_fingerprints_are_the_values_seqkit_0_1_0_computed():
    texts = ["good film", "bad film", "é\ud800x"]
    assert read_text_classification((texts, [1, 0, 1])).fingerprint() == V010["labels_int"]
    labels = (["good film", "bad film"], ["pos", "neg"])
    assert read_text_classification(labels).fingerprint() == V010["labels_str"]
    assert TextLabelData(["a", "b"], None, "x").fingerprint() == V010["no_labels"]
    pairs = read_pairs([("hello", "hola"), ("thanks", "gracias")])
    assert pairs.fingerprint() == V010["pairs"]
    assert read_corpus(["first document", "second"]).fingerprint() == V010["corpus"]
    series, features = read_series(long_frame().drop(columns="name"), target="close")
    assert SeriesData(series, features, stride=2).fingerprint() == V010["series_all"]
    train = SeriesData(series, features, "train", pd.Timestamp("2024-01-04"), 1)
    assert train.fingerprint() == V010["series_train"]


def test_fingerprints_follow_the_content_not_the_source():
    base = TextLabelData(["a", "b"], [0, 1], "one place")
    assert base.fingerprint() == TextLabelData(["a", "b"], [0, 1], "another").fingerprint()
    changed = [
        TextLabelData(["a", "c"], [0, 1], "x"),
        TextLabelData(["a", "b"], [1, 0], "x"),
        TextLabelData(["b", "a"], [0, 1], "x"),
        TextLabelData(["ab"], [0, 1], "x"),  # texts are delimited
        TextLabelData(["a", "b"], ["0", "1"], "x"),
        TextLabelData(["a", "b"], None, "x"),
    ]
    digests = {base.fingerprint()} | {d.fingerprint() for d in changed}
    assert len(digests) == len(changed) + 1
    assert all(len(d) == 64 and int(d, 16) >= 0 for d in digests)
    assert PairData(["a"], ["b"], "x").fingerprint() != PairData(["b"], ["a"], "x").fingerprint()
    assert TextCorpus("abc").fingerprint() != TextCorpus("abd").fingerprint()
    series, features = read_series(long_frame(10), target="close")
    a = SeriesData(series, features).fingerprint()
    assert a == SeriesData(dict(series), features).fingerprint()
    assert a != SeriesData(series, features, stride=2).fingerprint()
    other, _ = read_series(long_frame(10).assign(close=lambda f: f.close + 1), target="close")
    assert a != SeriesData(other, features).fingerprint()


def _file_key(path, *view):
    stat = os.stat(path)
    key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns, *view)
    return hashlib.sha256(repr(key).encode()).hexdigest()


def test_stream_fingerprints_identify_file_and_view_without_reading_it(tmp_path, table_file):
    stream = TextStream(table_file)
    # The 0.1.0 key (resumed runs depend on it): path, size, mtime and the view
    assert stream.fingerprint() == _file_key(table_file, "text", "label", None, None)
    train, val = stream.split(0.2)
    assert train.fingerprint() == _file_key(table_file, "text", "label", 5, False)
    assert len({stream.fingerprint(), train.fingerprint(), val.fingerprint()}) == 3
    assert TextStream(table_file).fingerprint() == stream.fingerprint()
    path = tmp_path / "c.txt"
    path.write_text("some words here\n" * 4)
    lm = TextFileStream(path)
    assert lm.fingerprint() == _file_key(str(path), 0, None)
    head, tail = lm.split(0.5)
    assert head.fingerprint() == _file_key(str(path), 0, 32)
    assert tail.fingerprint() == _file_key(str(path), 32, None)
    before = lm.fingerprint()
    path.write_text("other words here\n" * 4)  # rewritten: size (and mtime) change
    assert TextFileStream(path).fingerprint() != before


def test_a_latin_1_file_is_named_with_the_byte_and_reads_with_encoding(tmp_path):
    """Issue 18: a non-UTF-8 review file says so, where, and what to pass."""
    latin = tmp_path / "reviews.csv"
    latin.write_bytes("text,label\ntrès bien,pos\nnul,neg\n".encode("latin-1"))
    expected = (
        f"{latin} is not UTF-8 (byte 0xe8 at position 13); pass encoding='latin-1' (or the "
        "file's encoding)."
    )
    assert data_error(lambda: len(TextStream(latin))) == expected
    assert data_error(read_text_classification, str(latin)) == expected
    stream = TextStream(latin, encoding="latin-1")
    assert next(stream.chunks()).texts == ["très bien", "nul"]
    assert stream.fingerprint() != TextStream(latin, encoding="cp1252").fingerprint()
    assert data_error(read_text_classification, str(latin), encoding="latin-2000") == (
        "Received `encoding='latin-2000'`; expected a text encoding Python knows, e.g. "
        "'utf-8', 'latin-1' or 'cp1252'."
    )


@pytest.mark.parametrize("value", [np.array(1.5 + 2j, dtype=np.complex64), np.array("abc")])
def test_a_single_numpy_value_is_not_data(value):
    """A 0-d array (found by the fuzz test) gets the reader's own error, not a TypeError."""
    with pytest.raises(DataError, match=r"Received a single value \(array\(.*not a collection"):
        read_text_classification(value)
