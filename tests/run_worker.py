"""Runs one process of a (multi-worker) fit through the Python API, for tests/test_distributed.py.

Usage: python tests/run_worker.py JOB.json

JOB.json: ``{"task": "sentiment" | "forecasting" | "textgen", "config": {...}, "data": CSV,
"out": FOLDER, "fit": {...}, "stream": CHUNK (optional: read
``data`` as a ``seqkit.data.TextStream`` of CHUNK rows, or for textgen a
``TextFileStream`` of CHUNK characters), "fine_tune": {...} (optional: then
``fine_tune`` on the same data), "reference": N (optional, one process: train on
the batches N workers would take from a stream's chunks, for comparison)}``.
With ``TF_CONFIG`` set the fit runs under
``seqkit.distributed.multi_worker_strategy()``; the pipeline is then saved to
``out`` (the chief's copy; the others write temporary ones).
"""

from __future__ import annotations

import json
import os
import sys

# tests/ is sys.path[0] when run as a script: its tests.tasks package must not shadow tasks.
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(job_path: str) -> int:
    with open(job_path, encoding="utf-8") as f:
        job = json.load(f)
    import tasks
    from seqkit.distributed import multi_worker_strategy

    cls = tasks.get_task(job["task"])
    strategy = multi_worker_strategy() if os.environ.get("TF_CONFIG") else None
    data = job["data"]
    if job.get("stream"):  # chunk_rows (a TextStream), or chunk_chars for text generation
        from seqkit.data import TextFileStream, TextStream

        if job["task"] == "textgen":
            data = TextFileStream(data, chunk_chars=job["stream"])
        else:
            data = TextStream(data, chunk_rows=job["stream"])
    pipeline = cls(**job["config"])
    if job.get("reference"):
        pipeline._dataset = _joined_parts(pipeline._dataset, job["reference"])
    pipeline.fit(data, strategy=strategy, verbose=0, **job["fit"])
    if job.get("fine_tune"):
        pipeline.fine_tune(data, strategy=strategy, verbose=0, **job["fine_tune"])
    pipeline.save(job["out"])
    print("epochs trained:", len(pipeline.history.get("loss", [])), flush=True)
    return 0


def _joined_parts(make, n: int):
    """``make(data, batch_size, shuffle_seed)`` whose training batches of a stream are
    the N workers' batches of batch_size / N, joined step by step (the fewest steps
    any worker has): what N workers train on together, in one process."""
    import tensorflow as tf

    def join(*batches):
        width = tf.reduce_max([tf.shape(x)[1] for x, _ in batches])
        xs = [tf.pad(x, [[0, 0], [0, width - tf.shape(x)[1]]]) for x, _ in batches]
        return tf.concat(xs, 0), tf.concat([y for _, y in batches], 0)

    def joined(data, batch_size, shuffle_seed):
        if shuffle_seed is None or not hasattr(data, "shard"):  # validation: as it is
            return make(data, batch_size, shuffle_seed)
        parts = [make(data.shard(i, n), batch_size // n, shuffle_seed) for i in range(n)]
        fewest = min(int(p.cardinality()) for p in parts)
        steps = tf.data.Dataset.zip(tuple(p.take(fewest) for p in parts)).map(join)
        return steps.apply(tf.data.experimental.assert_cardinality(fewest))

    return joined


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
