"""Multi-worker benchmark: examples per second of text-generation training, one
process against 2 local workers (MultiWorkerMirroredStrategy over localhost,
on text in memory, sharded by data, and on a TextFileStream, sharded by chunk)
and MirroredStrategy over 2 logical CPUs, on Tiny Shakespeare.

    python benchmarks/distributed.py [--chars 300000] [--epochs 2]

Each configuration runs in its own fresh process(es), with the same global
batch; the rate is the training windows of one epoch over the seconds of the
last epoch (the first one also traces). On one 2-core machine two workers
share the same two cores and add collectives over loopback, so they are not
expected to be faster: the figure shows the cost of the multi-worker path,
while the same command spreads over hosts by TF_CONFIG.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import _machine  # benchmarks/_machine.py, beside this script

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

CONFIG = dict(level="char", cell="lstm", units=256, layers=1, dropout=0.0, seq_length=100)
FIT = dict(batch_size=64, learning_rate=2e-3, patience=5, checkpoint_dir=None)


def run(mode: str, chars: int, epochs: int, out: str) -> None:
    """One configuration's process (a worker, under TF_CONFIG, for mode "workers")."""
    if mode == "mirrored":
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )
    import tensorflow as tf
    from textgen import load_split  # benchmarks/textgen.py

    from seqkit.distributed import multi_worker_strategy
    from tasks.textgen import TextGenPipeline

    train, val = load_split(chars)
    strategy = {
        "one": lambda: None,
        "mirrored": lambda: tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]),
        "workers": multi_worker_strategy,
        "stream": multi_worker_strategy,
    }[mode]()
    data = train
    if mode == "stream":  # the training text, written once by launch: 6 chunks, 3 a worker
        from seqkit.data import TextFileStream

        data = TextFileStream(os.path.join(os.path.dirname(out), "train.txt"))
        data = TextFileStream(data.path, chunk_chars=-(-len(data) // 6))
    lm = TextGenPipeline(**CONFIG).fit(
        data, val, epochs=epochs, strategy=strategy, verbose=0, **FIT
    )
    if mode == "stream":  # the steps both workers took: the fewest full batches of 32
        index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
        own = lm._dataset(data.shard(index, 2), FIT["batch_size"] // 2, None)
        windows = int(own.cardinality()) * FIT["batch_size"]  # (per worker: agreed below)
    else:
        windows = sum(int(x.shape[0]) for x, _ in lm._dataset(lm._read(train, True), 64, None))
    result = {"mode": mode, "windows": windows, "epoch_seconds": lm.history["epoch_seconds"]}
    result["examples_per_second"] = round(windows / lm.history["epoch_seconds"][-1], 1)
    result["val_loss"] = lm.history["val_loss"][-1]
    with open(out, "w") as f:
        json.dump(result, f)


def launch(mode: str, chars: int, epochs: int) -> dict:
    from tasks.workers import tf_configs

    with tempfile.TemporaryDirectory() as tmp:
        configs = tf_configs(2) if mode in ("workers", "stream") else [""]
        if mode == "stream":  # one file both workers read (the run key hashes its path)
            sys.path.insert(0, HERE)
            from textgen import load_split

            with open(os.path.join(tmp, "train.txt"), "w", encoding="utf-8") as f:
                f.write(load_split(chars)[0])
        procs = []
        for i, config in enumerate(configs):
            env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
            env.update({"CUDA_VISIBLE_DEVICES": ""}, **({"TF_CONFIG": config} if config else {}))
            command = [sys.executable, __file__, "--run", mode, "--chars", str(chars)]
            command += ["--epochs", str(epochs), "--out", os.path.join(tmp, f"{i}.json")]
            procs.append(subprocess.Popen(command, env=env))
        codes = [p.wait() for p in procs]
        if any(codes):
            raise SystemExit(f"{mode}: exit codes {codes}")
        results = []
        for i in range(len(configs)):
            with open(os.path.join(tmp, f"{i}.json")) as f:
                results.append(json.load(f))
        result = results[0]
        if mode == "stream":  # every worker trained the fewest batches any worker had
            result["windows"] = min(r["windows"] for r in results)
            result["examples_per_second"] = round(
                result["windows"] / result["epoch_seconds"][-1], 1
            )
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chars", type=int, default=300_000, help="characters of each split")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument(
        "--modes", default="one,workers,stream,mirrored", help="configurations, in order"
    )
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        return run(args.run, args.chars, args.epochs, args.out)
    results = [launch(mode, args.chars, args.epochs) for mode in args.modes.split(",")]
    base = results[0]["examples_per_second"]
    print(
        f"textgen char LSTM-{CONFIG['units']}, global batch 64, {results[0]['windows']} windows/epoch"
    )
    print(f"{'configuration':<34}{'examples/s':>12}{'vs one':>8}{'val loss':>10}")
    names = {
        "one": "1 process",
        "workers": "2 workers (MultiWorkerMirrored)",
        "stream": "2 workers, TextFileStream by chunk",
        "mirrored": "MirroredStrategy, 2 logical CPUs",
    }
    for r in results:
        rate = r["examples_per_second"]
        print(f"{names[r['mode']]:<34}{rate:>12.1f}{rate / base:>8.2f}{r['val_loss']:>10.4f}")
    print(json.dumps({"machine": _machine.describe(), "results": results}))


if __name__ == "__main__":
    main()
