"""Peak memory of sentiment training when the data grows 8x: streamed vs in memory.

    python benchmarks/streaming.py            # 3,000 IMDB reviews x1 and x8, both ways

Each run is a fresh process that trains one epoch of a small model and reports
its peak resident memory (ru_maxrss). "stream" reads the file through
``seqkit.data.TextStream`` (chunks of 2,000 rows); "memory" passes the same
file path, which is read whole. The files are written to a temporary folder
from ../shared/data/sentiment/imdb_train.csv.gz and deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = os.environ.get("SEQKIT_DATA", os.path.join(ROOT, "..", "shared", "data"))

CHILD = """
import json, resource, sys, time
from seqkit.data import TextStream
from tasks.sentiment import SentimentPipeline

path, mode = sys.argv[1], sys.argv[2]
data = TextStream(path, chunk_rows=2000) if mode == "stream" else path
clf = SentimentPipeline(units=8, embedding_dim=16, max_tokens=5000, max_length=128, seed=0)
start = time.time()
clf.fit(data, epochs=1, verbose=0, checkpoint_dir=None)
seconds = time.time() - start
peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("RESULT", json.dumps({"peak_rss_mib": round(peak_mib, 1), "fit_seconds": round(seconds, 1)}))
"""


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=3000, help="reviews in the 1x file")
    p.add_argument("--json", default=os.path.join(HERE, "results", "streaming.json"))
    args = p.parse_args()

    import pandas as pd

    reviews = pd.read_csv(os.path.join(DATA, "sentiment", "imdb_train.csv.gz"))
    reviews = reviews.sample(n=args.rows, random_state=0)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for copies in (1, 8):
            path = os.path.join(tmp, f"reviews_x{copies}.csv")
            pd.concat([reviews] * copies).to_csv(path, index=False)
            size_mib = os.path.getsize(path) / 2**20
            for mode in ("stream", "memory"):
                out = subprocess.run(
                    [sys.executable, "-c", textwrap.dedent(CHILD), path, mode],
                    capture_output=True,
                    text=True,
                    cwd=ROOT,
                    env={**os.environ, "PYTHONPATH": ROOT, "CUDA_VISIBLE_DEVICES": ""},
                )
                line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
                if not line:
                    sys.exit(out.stderr[-3000:])
                row = {"mode": mode, "copies": copies, "rows": args.rows * copies}
                row.update(file_mib=round(size_mib, 1), **json.loads(line[0][7:]))
                print(row, flush=True)
                results.append(row)
    peak = {(r["mode"], r["copies"]): r["peak_rss_mib"] for r in results}
    summary = {mode: round(peak[(mode, 8)] / peak[(mode, 1)], 3) for mode in ("stream", "memory")}
    report = {
        "command": "python benchmarks/streaming.py"
        + (f" --rows {args.rows}" if args.rows != 3000 else ""),
        "runs": results,
        "peak_rss_ratio_8x_over_1x": summary,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
    }
    print(json.dumps(report, indent=1))
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
