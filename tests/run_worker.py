"""Runs one process of a (multi-worker) fit through the Python API, for tests/test_distributed.py.

Usage: python tests/run_worker.py JOB.json

JOB.json: ``{"task": "sentiment" | "forecasting", "config": {...}, "data": CSV,
"out": FOLDER, "fit": {...}, "stream": CHUNK_ROWS (optional: read
``data`` as a ``seqkit.data.TextStream``)}``. With ``TF_CONFIG`` set the fit runs under
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
    if job.get("stream"):
        from seqkit.data import TextStream

        data = TextStream(data, chunk_rows=job["stream"])
    pipeline = cls(**job["config"]).fit(data, strategy=strategy, verbose=0, **job["fit"])
    pipeline.save(job["out"])
    print("epochs trained:", len(pipeline.history.get("loss", [])), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
