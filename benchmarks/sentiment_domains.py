"""Sentiment across domains: a model trained on IMDB and SST-2 together, and domain
transfer from IMDB (long movie reviews) to SST-2 (short review sentences).

``mixed``: trains SentimentPipeline on IMDB train + SST-2 train (10 % of each
held out for early stopping; ``--sst2-weight N`` repeats SST-2 N times in the
mix), measures IMDB test and SST-2 dev; ``--save`` ships it.

``transfer``: trains on IMDB only (or loads ``--start``), then for each of 500
and 2,000 SST-2 training sentences (a seeded sample): ``fine_tune`` on them
and evaluate on SST-2 dev, against a pipeline fitted from scratch on the same
sentences. Also the IMDB model's SST-2 dev accuracy before fine-tuning.

    python benchmarks/sentiment_domains.py mixed --tokenizer word --save saved_models/sentiment-imdb
    python benchmarks/sentiment_domains.py transfer --tokenizer subword
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import _machine  # benchmarks/_machine.py, beside this script
import _report  # benchmarks/_report.py, beside this script
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

DATA = os.environ.get("SEQKIT_DATA", os.path.join(os.path.dirname(HERE), "..", "shared", "data"))
FILES = {
    "imdb_train": "sentiment/imdb_train.csv.gz",
    "imdb_test": "sentiment/imdb_test.csv.gz",
    "sst2_train": "sentiment/sst2_train.csv.gz",
    "sst2_dev": "sentiment/sst2_dev.csv.gz",
}
_MODEL = dict(cell="gru", units=64, embedding_dim=64, dropout=0.4, ngram_order=3, ngram_nb=True)
MODEL = dict(_MODEL, max_length=400, truncating="pre", ngram_buckets=1_000_000)
VOCABULARY = {"word": 20000, "subword": 16000}
FIT = dict(epochs=6, batch_size=64, learning_rate=2e-3, patience=2)
SIZES = (500, 2000)


def read(name: str) -> pd.DataFrame:
    frame = pd.read_csv(os.path.join(DATA, FILES[name]))
    return frame.assign(label=frame.label.map({0: "negative", 1: "positive"}))


def metrics(clf, frame) -> dict:
    m = clf.evaluate(frame)
    return {k: m[k] for k in ("accuracy", "f1", "loss")}


def config(tokenizer: str, units: int | None = None) -> dict:
    units = {"units": units} if units else {}
    return dict(MODEL, tokenizer=tokenizer, max_tokens=VOCABULARY[tokenizer], **units)


def cmd_mixed(args):
    import tasks
    from tasks.sentiment import SentimentPipeline

    imdb, sst2 = read("imdb_train"), read("sst2_train")
    # 10 % of each held out (seeded) before SST-2 is repeated (its weight in the mix), so
    # no validation text is also a training one.
    held = [frame.sample(frac=0.1, random_state=args.seed) for frame in (imdb, sst2)]
    imdb_fit, sst2_fit = (f.drop(h.index) for f, h in zip((imdb, sst2), held))
    parts = [imdb_fit] + [sst2_fit] * args.sst2_weight
    train = pd.concat(parts, ignore_index=True).sample(frac=1.0, random_state=args.seed)
    val = pd.concat(held, ignore_index=True)
    clf = SentimentPipeline(**config(args.tokenizer, args.units), seed=args.seed)
    start = time.time()
    clf.fit(train, validation_data=val, verbose=2, checkpoint_dir="auto", **FIT)
    result = {
        "command": "mixed",
        "config": clf.get_config(),
        "fit": FIT,
        "train_texts": {"imdb": len(imdb), "sst2": len(sst2)},
        "sst2_weight": args.sst2_weight,
        "validation": "10 % of IMDB train and of SST-2 train, held out before the mix",
        "train_seconds": round(time.time() - start, 1),
        "epochs_run": len(clf.history.get("loss", [])),
        "imdb_test": metrics(clf, read("imdb_test")),
        "sst2_dev": metrics(clf, read("sst2_dev")),
    }
    if args.save:
        clf.save(args.save, weights_dtype="float16")
        shipped = tasks.load(args.save)  # what users get: measured again
        result["float32"] = {k: result[k] for k in ("imdb_test", "sst2_dev")}
        result["imdb_test"] = metrics(shipped, read("imdb_test"))
        result["sst2_dev"] = metrics(shipped, read("sst2_dev"))
    result["machine"] = _machine.describe()
    _report.report(result, args.json)


def cmd_transfer(args):
    import tasks
    from tasks.sentiment import SentimentPipeline

    dev = read("sst2_dev")
    sst2 = read("sst2_train").sample(frac=1.0, random_state=args.seed).reset_index(drop=True)
    start = time.time()
    if args.start:
        base = tasks.load(args.start)
    else:
        base = SentimentPipeline(**config(args.tokenizer), seed=args.seed)
        base.fit(read("imdb_train"), verbose=2, checkpoint_dir="auto", **FIT)
    result = {
        "command": "transfer",
        "start": args.start or "trained on IMDB train here",
        "config": base.get_config(),
        "imdb_seconds": round(time.time() - start, 1),
        "sst2_dev_before": metrics(base, dev),
        "fine_tune": {"epochs": args.epochs, "learning_rate": args.learning_rate},
        "sizes": {},
    }
    folder = os.path.join(args.work, "imdb")
    base.save(folder)
    for n in SIZES:
        part = sst2.iloc[:n]
        tuned = tasks.load(folder)
        tuned.fine_tune(
            part,
            epochs=args.epochs,
            learning_rate=args.learning_rate,
            verbose=0,
            checkpoint_dir=None,
        )
        scratch = SentimentPipeline(
            **dict(
                config(args.tokenizer),
                max_length=64,
                max_tokens=min(VOCABULARY[args.tokenizer], 4000),
            ),
            seed=args.seed,
        )
        scratch.fit(part, verbose=0, checkpoint_dir=None, **FIT)
        result["sizes"][n] = {
            "fine_tuned": metrics(tuned, dev),
            "from_scratch": metrics(scratch, dev),
        }
        print(n, json.dumps(result["sizes"][n]), flush=True)
    result["machine"] = _machine.describe()
    _report.report(result, args.json)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("mixed")
    p.add_argument("--tokenizer", choices=sorted(VOCABULARY), default="word")
    p.add_argument("--sst2-weight", type=int, default=1, help="SST-2 train repeated N times")
    p.add_argument("--units", type=int, help=f"recurrent units (default {_MODEL['units']})")
    p.add_argument("--save")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json")
    p.set_defaults(func=cmd_mixed)
    p = sub.add_parser("transfer")
    p.add_argument("--tokenizer", choices=sorted(VOCABULARY), default="word")
    p.add_argument("--start", help="a saved IMDB pipeline (default: train one here)")
    p.add_argument("--epochs", type=int, default=2, help="fine_tune epochs (its default: 2)")
    p.add_argument("--learning-rate", type=float, help="fine_tune's (default: fit's / 10)")
    p.add_argument("--work", default="runs/sentiment-transfer")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json")
    p.set_defaults(func=cmd_transfer)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
