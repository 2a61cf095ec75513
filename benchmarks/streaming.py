"""Peak memory of training when the data grows 8x: streamed vs read whole.

    python benchmarks/streaming.py

Sentiment: 3,000 IMDB reviews, then the same reviews 8 times over (a CSV).
Text generation: the first 300,000 characters of Tiny Shakespeare, then
8 times over (a .txt). Each run is a fresh process that trains one epoch of a
small model and reports its peak resident memory (ru_maxrss). "stream" reads
the file through ``seqkit.data.TextStream`` / ``tasks.textgen.TextFileStream``
(chunks of 2,000 rows / 200,000 characters); "memory" passes the same file
path, which is read whole. The files are written to a temporary folder from
../shared/data and deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap

import _machine  # benchmarks/_machine.py, beside this script

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = os.environ.get("SEQKIT_DATA", os.path.join(ROOT, "..", "shared", "data"))

CHILD = """
import json, resource, sys, time

path, task, mode = sys.argv[1], sys.argv[2], sys.argv[3]
if task == "sentiment":
    from seqkit.data import TextStream
    from tasks.sentiment import SentimentPipeline

    data = TextStream(path, chunk_rows=2000) if mode == "stream" else path
    model = SentimentPipeline(units=8, embedding_dim=16, max_tokens=5000, max_length=128, seed=0)
else:
    from tasks.textgen import TextFileStream, TextGenPipeline

    data = TextFileStream(path, chunk_chars=200_000) if mode == "stream" else path
    model = TextGenPipeline(units=64, embedding_dim=16, seq_length=100, seed=0)
start = time.time()
model.fit(data, epochs=1, verbose=0, checkpoint_dir=None)
seconds = time.time() - start
peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("RESULT", json.dumps({"peak_rss_mib": round(peak_mib, 1), "fit_seconds": round(seconds, 1)}))
"""


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=3000, help="reviews in the 1x file")
    p.add_argument("--chars", type=int, default=300_000, help="characters in the 1x text")
    p.add_argument("--json", default=os.path.join(HERE, "results", "streaming.json"))
    args = p.parse_args()

    import gzip

    import pandas as pd

    reviews = pd.read_csv(os.path.join(DATA, "sentiment", "imdb_train.csv.gz"))
    reviews = reviews.sample(n=args.rows, random_state=0)
    with gzip.open(os.path.join(DATA, "textgen", "tiny_shakespeare.txt.gz"), "rt") as f:
        shakespeare = f.read()[: args.chars]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for task in ("sentiment", "textgen"):
            for copies in (1, 8):
                if task == "sentiment":
                    path = os.path.join(tmp, f"reviews_x{copies}.csv")
                    pd.concat([reviews] * copies).to_csv(path, index=False)
                    size = {"rows": args.rows * copies}
                else:
                    path = os.path.join(tmp, f"shakespeare_x{copies}.txt")
                    with open(path, "w") as f:
                        f.write(shakespeare * copies)
                    size = {"chars": len(shakespeare) * copies}
                size_mib = os.path.getsize(path) / 2**20
                for mode in ("stream", "memory"):
                    out = subprocess.run(
                        [sys.executable, "-c", textwrap.dedent(CHILD), path, task, mode],
                        capture_output=True,
                        text=True,
                        cwd=ROOT,
                        env={**os.environ, "PYTHONPATH": ROOT, "CUDA_VISIBLE_DEVICES": ""},
                    )
                    line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
                    if not line:
                        sys.exit(out.stderr[-3000:])
                    row = {"task": task, "mode": mode, "copies": copies, **size}
                    row.update(file_mib=round(size_mib, 1), **json.loads(line[0][7:]))
                    print(row, flush=True)
                    results.append(row)
    peak = {(r["task"], r["mode"], r["copies"]): r["peak_rss_mib"] for r in results}
    summary = {
        f"{task} {mode}": round(peak[(task, mode, 8)] / peak[(task, mode, 1)], 3)
        for task in ("sentiment", "textgen")
        for mode in ("stream", "memory")
    }
    report = {
        "command": "python benchmarks/streaming.py"
        + (f" --rows {args.rows}" if args.rows != 3000 else ""),
        "runs": results,
        "peak_rss_ratio_8x_over_1x": summary,
        "machine": _machine.describe(),
    }
    print(json.dumps(report, indent=1))
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
