"""Speed of seqkit's recurrent layers against Keras's built-ins, same process.

Each row builds the same one-layer model twice, `keras.Input((T, F)) -> layer
-> Dense(1)`, once with the Keras built-in and once with the seqkit layer
(weights copied across), compiled the way a user compiles it:
`model.compile("adam", "mse")` (no jit_compile argument). It then times

* forward:    `model.predict_on_batch(x)`
* train step: `model.train_on_batch(x, y)` (forward + backward + Adam update)

alternating Keras and seqkit call by call after a warm-up, and prints the
median milliseconds of each and the ratio seqkit / Keras (< 1 means seqkit is
faster). Ratios are the figure to quote: they survive a noisy machine.

Usage:
    python benchmarks/layers.py                 # all rows, 15 runs each
    python benchmarks/layers.py --runs 10 --only lstm-256
    KERAS_BACKEND=jax python benchmarks/layers.py   # same table under JAX
    KERAS_BACKEND=torch python benchmarks/layers.py --peer torch   # + torch's nn.* modules
    python benchmarks/layers.py --masked        # right-padded rows behind a Masking layer
    python benchmarks/layers.py --no-cudnn      # (a GPU) seqkit's own loops, cuDNN off

On a GPU the header names it, and both Keras and seqkit take cuDNN where their
configuration allows it (seqkit: masked calls too, as sequence lengths; Keras
on JAX: unmasked calls only).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from functools import partial

import _machine  # benchmarks/_machine.py, beside this script

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from seqkit import layers as sk  # noqa: E402

ROWS = {
    "simplernn-128": ("SimpleRNN", 128, False),
    "simplernn-256": ("SimpleRNN", 256, False),
    "lstm-128": ("LSTM", 128, False),
    "lstm-256": ("LSTM", 256, False),
    "gru-128": ("GRU", 128, False),
    "gru-256": ("GRU", 256, False),
    "bilstm-128": ("LSTM", 128, True),
}
# Rows run only when named with --only (not among the table).
EXTRA_ROWS = {
    "gru-128-reset-before": ("GRU", 128, False, {"reset_after": False}),
    "gru-256-reset-before": ("GRU", 256, False, {"reset_after": False}),
}


def build(lib, cls_name, units, bidirectional, steps, features, masked=False, **kwargs):
    cls = getattr(lib, cls_name)
    layer = cls(units, **kwargs)
    if bidirectional:
        layer = lib.Bidirectional(layer)
    inp = keras.Input((steps, features))
    h = keras.layers.Masking(0.0)(inp) if masked else inp
    model = keras.Model(inp, keras.layers.Dense(1)(layer(h)))
    model.compile(optimizer="adam", loss="mse")
    return model


def build_torch_peer(cls_name, units, bidirectional, features, **kwargs):
    """PyTorch's own module for the row (nn.RNN / nn.LSTM / nn.GRU, batch first)
    with a Linear(1) head on the last output, and its forward / train-step calls."""
    import torch

    if kwargs:
        raise SystemExit(f"--peer torch has no module for the options {kwargs}")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rnn = getattr(torch.nn, {"SimpleRNN": "RNN"}.get(cls_name, cls_name))(
        features, units, batch_first=True, bidirectional=bidirectional
    ).to(device)
    head = torch.nn.Linear(units * (2 if bidirectional else 1), 1).to(device)
    params = list(rnn.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params)

    def forward(x):
        return head(rnn(x)[0][:, -1])

    def predict(x):
        with torch.no_grad():
            return forward(x).cpu()  # (waits for the device, as predict_on_batch does)

    def train(x, y):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(forward(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    return predict, train


def time_call(fn, runs_box, cores_box=None):
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    wall = time.perf_counter() - t0
    runs_box.append(wall * 1000.0)
    if cores_box is not None:  # CPU seconds of the process per wall second: cores kept busy
        cores_box.append((time.process_time() - c0) / wall)


def bench_row(name, batch, steps, features, runs, warmup, peer=None, masked=False):
    cls_name, units, bi, *extra = {**ROWS, **EXTRA_ROWS}[name]
    kw = extra[0] if extra else {}
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, steps, features)).astype("float32")
    if masked:  # right padding: rows of steps/2 to steps valid steps
        lengths = rng.integers(steps // 2, steps + 1, batch)
        x[np.arange(steps)[None] >= lengths[:, None]] = 0.0
    y = rng.normal(size=(batch, 1)).astype("float32")
    models = {
        "keras": build(keras.layers, cls_name, units, bi, steps, features, masked, **kw),
        "seqkit": build(sk, cls_name, units, bi, steps, features, masked, **kw),
    }
    models["seqkit"].set_weights(models["keras"].get_weights())
    calls = {
        lib: {"forward": partial(m.predict_on_batch, x), "train": partial(m.train_on_batch, x, y)}
        for lib, m in models.items()
    }
    if peer == "torch":  # PyTorch's own module, timed in the same alternation
        import torch

        if masked:
            raise SystemExit("--peer torch times unmasked rows only")
        predict, train = build_torch_peer(cls_name, units, bi, features, **kw)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        xt, yt = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
        calls["peer"] = {"forward": partial(predict, xt), "train": partial(train, xt, yt)}
    result = {}
    for phase in ("forward", "train"):
        times = {lib: [] for lib in calls}
        cores = {lib: [] for lib in calls}
        for c in calls.values():  # warm-up: tracing and first runs
            for _ in range(warmup):
                c[phase]()
        for _ in range(runs):
            for lib, c in calls.items():
                time_call(c[phase], times[lib], cores[lib])
        k = statistics.median(times["keras"])
        s = statistics.median(times["seqkit"])
        result[phase] = (k, s, s / k)
        result[phase + "_cores"] = (
            statistics.median(cores["keras"]),
            statistics.median(cores["seqkit"]),
        )
        if peer:
            p = statistics.median(times["peer"])
            result[phase + "_peer"] = (p, s / p)
    return result


def _accelerator():
    """The GPU the backend computes on, or "none"."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        gpus = [d for d in jax.devices() if d.platform == "gpu"]
        return gpus[0].device_kind if gpus else "none"
    if backend == "torch":
        import torch

        return torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return gpus[0].name if gpus else "none"


def _loops():
    """Which seqkit loop implementation these rows measure."""
    if keras.backend.backend() == "jax":
        from seqkit.layers import _jax_fast

        return "jax-fused" if _jax_fast.ENABLED else "generic"
    if keras.backend.backend() == "torch":
        from seqkit.layers import _torch_fast

        return "torch-fused (_VF)" if _torch_fast.ENABLED else "generic"
    if keras.backend.backend() != "tensorflow":
        return "generic"
    import os

    from seqkit.layers import _native

    if _native.ops() is None:
        return "xla"
    return f"native(-march={os.environ.get('SEQKIT_NATIVE_MARCH', 'native')})"


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--runs", type=int, default=15, help="timed runs per model (median)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--features", type=int, default=64)
    p.add_argument("--only", nargs="*", choices=sorted({**ROWS, **EXTRA_ROWS}), help="rows to run")
    p.add_argument(
        "--peer",
        choices=["torch"],
        help="also time PyTorch's own module (nn.RNN / nn.LSTM / nn.GRU) in the same process",
    )
    p.add_argument("--masked", action="store_true", help="right-padded rows behind Masking")
    p.add_argument("--no-cudnn", action="store_true", help="seqkit's own loops on a GPU")
    p.add_argument(
        "--cores",
        action="store_true",
        help="also print the cores each train step kept busy (process CPU time / wall time)",
    )
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error(f"--runs must be >= 1, got {args.runs}")
    if args.no_cudnn:
        from seqkit.layers import _cudnn

        _cudnn.ENABLED = False

    print(
        f"backend={keras.backend.backend()} keras={keras.__version__} "
        f'python={platform.python_version()} cpu="{_machine.describe()}" '
        f"batch={args.batch} steps={args.steps} features={args.features} "
        f"runs={args.runs} (median) loops={_loops()} gpu={_accelerator()} "
        f"masked={args.masked} seqkit_cudnn={not args.no_cudnn}"
    )
    header = (
        "| layer | Keras fwd ms | seqkit fwd ms | fwd ratio | "
        "Keras train ms | seqkit train ms | train ratio |"
    )
    if args.peer:
        header += " torch fwd ms | torch train ms | seqkit/torch fwd | seqkit/torch train |"
    if args.cores:
        header += " Keras train cores | seqkit train cores |"
    print(header)
    print("|" + "---|" * ((11 if args.peer else 7) + (2 if args.cores else 0)))
    for name in args.only or ROWS:
        r = bench_row(
            name,
            args.batch,
            args.steps,
            args.features,
            args.runs,
            args.warmup,
            args.peer,
            args.masked,
        )
        (kf, sf, rf), (kt, st, rt) = r["forward"], r["train"]
        line = f"| {name} | {kf:.1f} | {sf:.1f} | {rf:.2f} | {kt:.1f} | {st:.1f} | {rt:.2f} |"
        if args.peer:
            (pf, qf), (pt, qt) = r["forward_peer"], r["train_peer"]
            line += f" {pf:.1f} | {pt:.1f} | {qf:.2f} | {qt:.2f} |"
        if args.cores:
            kc, sc = r["train_cores"]
            line += f" {kc:.2f} | {sc:.2f} |"
        print(line, flush=True)


if __name__ == "__main__":
    main()
