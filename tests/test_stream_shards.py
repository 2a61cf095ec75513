"""Streams sharded by chunk for multi-worker training (``shard``, ``worker_part``).

The cluster run itself is in tests/test_distributed.py; these check, in one
process, what each worker reads and the errors a user gets.
"""

from __future__ import annotations

import types

import numpy as np
import pandas as pd
import pytest

from seqkit.data import DataError, TextFileStream, TextStream
from seqkit.distributed import worker_part
from seqkit.errors import UsageError


def _strategy(index: int, n: int):
    """A stand-in for MultiWorkerMirroredStrategy: only its cluster resolver."""
    spec = {"worker": [f"localhost:{10000 + i}" for i in range(n)]}
    resolver = types.SimpleNamespace(
        cluster_spec=lambda: types.SimpleNamespace(as_dict=lambda: spec),
        task_type="worker",
        task_id=index,
    )
    return types.SimpleNamespace(cluster_resolver=resolver)


@pytest.fixture
def reviews(tmp_path):
    path = tmp_path / "reviews.csv"
    texts = [f"review number {i} " + "word " * (i % 7) for i in range(95)]
    pd.DataFrame({"text": texts, "label": ["neg", "pos"] * 47 + ["neg"]}).to_csv(path, index=False)
    return str(path)


@pytest.fixture
def corpus(tmp_path):
    rng = np.random.RandomState(0)
    words = ["".join(rng.choice(list("abcdefg"), rng.randint(1, 10))) for _ in range(3000)]
    text = " ".join(words[:1500]) + "\n" + " ".join(words[1500:]) + "\n"
    path = tmp_path / "corpus.txt"
    path.write_text(text)
    return str(path), text


def test_text_stream_shards_are_disjoint_whole_chunks_that_cover_it(reviews):
    train, _ = TextStream(reviews, chunk_rows=10).split(0.2)
    parts = [train.shard(i, 3) for i in range(3)]
    sizes = train.chunk_sizes()  # 10 chunks: 8 rows each, the last 4
    assert [p.chunk_sizes() for p in parts] == [sizes[i::3] for i in range(3)]
    rows = [[t for c in p.chunks() for t in c.texts] for p in parts]
    whole = [t for c in train.chunks() for t in c.texts]
    assert sorted(sum(rows, [])) == sorted(whole)
    assert rows[1][:8] == whole[8:16]  # worker 1's first chunk is the view's second
    assert len({train.fingerprint(), *(p.fingerprint() for p in parts)}) == 4


def test_text_file_stream_shards_cover_the_text_without_cutting_words(corpus):
    path, text = corpus
    stream = TextFileStream(path, chunk_chars=997)
    for level_words in (True, False):
        parts = [list(stream.shard(i, 3).chunks(whole_words=level_words)) for i in range(3)]
        assert sum(len(piece) for part in parts for piece in part) == len(text)
        if level_words:  # every word whole in exactly one worker's pieces
            found = sorted(w for part in parts for piece in part for w in piece.split())
            assert found == sorted(text.split())
            assert all(piece.endswith((" ", "\n")) for part in parts for piece in part)


def test_a_stream_with_fewer_chunks_than_workers_cannot_be_sharded(reviews, corpus):
    with pytest.raises(DataError) as info:
        worker_part(TextStream(reviews), 16, _strategy(1, 2))
    assert str(info.value) == (
        f"{reviews} cannot be sharded over 2 workers: it reads as 1 chunk(s) of up to "
        "20000 rows, and each worker needs whole chunks of its own. Pass chunk_rows=47 "
        "or fewer to TextStream."
    )
    with pytest.raises(DataError, match=f"Pass chunk_chars={len(corpus[1]) // 2} or fewer to"):
        TextFileStream(corpus[0]).shard(0, 2)


def test_worker_part_of_a_stream_and_of_memory_data(reviews):
    stream = TextStream(reviews, chunk_rows=10)
    part, batch, own = worker_part(stream, 16, _strategy(1, 2))
    assert (part.part, batch, own) == ((1, 2), 8, True)
    assert worker_part(stream, 16, None) == (stream, 16, False)  # one process
    memory = object()
    assert worker_part(memory, 16, _strategy(0, 2)) == (memory, 16, False)  # sharded by data
    with pytest.raises(UsageError) as info:
        worker_part(stream, 15, _strategy(0, 2))
    assert str(info.value) == (
        "batch_size=15 is not a multiple of the 2 workers: a stream is sharded by chunk, "
        "and each worker gives batch_size / 2 examples to every step. Pass batch_size=14."
    )


def test_a_sentiment_shard_gives_full_batches_only_and_says_how_many(reviews):
    from tasks.sentiment import SentimentPipeline

    stream = TextStream(reviews, chunk_rows=10)
    pipeline = SentimentPipeline(max_tokens=64, max_length=16)
    pipeline.preprocessor.fit(stream)
    part = stream.shard(0, 2)  # chunks 0, 2, 4, 6, 8: 10 rows each
    dataset = pipeline._dataset(part, 4, shuffle_seed=3)
    batches = list(dataset)
    assert [len(y) for _, y in batches] == [4] * 10  # 2 per chunk; 2 rows per chunk left out
    assert int(dataset.cardinality()) == 10
    whole = pipeline._dataset(stream, 4, shuffle_seed=3)  # one process keeps partial ones
    assert int(whole.cardinality()) == len(list(whole)) == 29  # 9 chunks of 10 rows, one of 5


def test_a_textgen_shard_gives_full_batches_only_and_says_how_many(corpus):
    from tasks.textgen import TextGenPipeline

    path, _ = corpus
    stream = TextFileStream(path, chunk_chars=2000)
    pipeline = TextGenPipeline(level="char", seq_length=20)
    pipeline.preprocessor.fit(stream)
    part = stream.shard(1, 2)
    windows = (pipeline.preprocessor.count_tokens(part) - 1) // 20
    dataset = pipeline.preprocessor.dataset(part, 16, shuffle_seed=None)
    batches = [x.shape[0] for x, _ in dataset]
    assert batches == [16] * (windows // 16) and windows % 16  # the partial one left out
    assert int(dataset.cardinality()) == windows // 16
