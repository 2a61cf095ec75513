"""Text-generation benchmark: train a char-level TextGenPipeline on Tiny Shakespeare,
measure its validation loss, and time generate() against a window re-run loop.

Data split (as nanoGPT): the first 90 % of the characters train, the last 10 %
validate. Validation loss is reported two ways: the Keras validation loss of
independent ``seq_length`` windows (each read from a zero state, as in
training), and ``TextGenPipeline.evaluate``, which reads the validation text
with the recurrent state carried through (as generation reads).

    python benchmarks/textgen.py train --save saved_models/textgen-shakespeare --minutes 100
    python benchmarks/textgen.py train --level subword --save saved_models/textgen-shakespeare-subword --minutes 100
    python benchmarks/textgen.py speed --model saved_models/textgen-shakespeare

``--level subword`` trains the word-level model made of SentencePiece pieces
(``SUBWORD_RECIPE``: it writes words piece by piece, also words it never saw
whole); its ``evaluate`` reports bits per character of the same validation
text, comparable with the char model's. ``--max-chars N`` keeps the first N
characters of each split (a quick run: ``--max-chars 20000 --minutes 0.05``).

``train --save`` also writes the folder's MODEL_CARD.md; ``speed`` prints
tokens/s of generate() (1,000 tokens, state carried) against a loop that
re-runs the last ``seq_length`` window for every token (the way textgenrnn
generates), as a ratio, and of the exported SavedModel's generate().
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import tempfile
import time

import _machine  # benchmarks/_machine.py, beside this script
import _report  # benchmarks/_report.py, beside this script
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

DATA = os.environ.get("SEQKIT_DATA", os.path.join(os.path.dirname(HERE), "..", "shared", "data"))
TEXT = "textgen/tiny_shakespeare.txt.gz"
RECIPE = (
    dict(
        level="char",
        cell="lstm",
        units=512,
        layers=2,
        dropout=0.25,
        embedding_dim=64,
        seq_length=100,
    ),
    dict(epochs=40, batch_size=64, learning_rate=2e-3, lr_decay=0.92, patience=3),
)
ANCHORS = {
    "nanoGPT GPU transformer": 1.4697,
    "nanoGPT CPU recipe": 1.88,
    "uniform (65 chars)": 4.17,
}
# Subwords: 2,000 pieces (Tiny Shakespeare has about 25,000 distinct words; a smaller
# vocabulary spells the rare ones); a window of 64 pieces covers about 200 characters.
SUBWORD_RECIPE = dict(level="subword", max_tokens=2000, seq_length=64)
GOAL = 1.45
RESULTS = os.path.join(HERE, "results", "textgen_shakespeare.json")
SUBWORD_RESULTS = os.path.join(HERE, "results", "textgen_shakespeare_subword.json")


def load_split(max_chars=None):
    """(train, validation): the first 90 % and the last 10 % of the characters; with
    ``max_chars``, the first ``max_chars`` characters of each."""
    with gzip.open(os.path.join(DATA, TEXT), "rt", encoding="utf-8") as f:
        text = f.read()
    n = int(0.9 * len(text))
    train, val = text[:n], text[n:]
    if max_chars:
        train, val = train[:max_chars], val[:max_chars]
    return train, val


def minutes_to(history, threshold_minutes):
    """Best windowed validation loss among epochs finished within the time."""
    elapsed, best = 0.0, None
    for loss, sec in zip(history.get("val_loss", []), history.get("epoch_seconds", [])):
        elapsed += sec
        if elapsed / 60 <= threshold_minutes:
            best = loss if best is None else min(best, loss)
    return best


def cmd_train(args):
    from tasks.textgen import TextGenPipeline

    train, val = load_split(args.max_chars)
    config, fit = RECIPE
    if args.level == "subword":
        config = {**config, **SUBWORD_RECIPE}
    config = {**config, **json.loads(args.config or "{}")}
    fit = {**fit, **json.loads(args.fit or "{}")}
    lm = TextGenPipeline(**config, seed=args.seed)
    start = time.time()
    lm.fit(
        train,
        val,
        time_limit=args.minutes,
        checkpoint_dir=args.checkpoint_dir,
        verbose=2,
        **fit,
    )
    seconds = time.time() - start
    metrics = lm.evaluate(val)
    result = {
        "config": lm.get_config(),
        "fit": {**fit, "time_limit_minutes": args.minutes, "max_chars": args.max_chars},
        "train_chars": len(train),
        "val_chars": len(val),
        # summed over epochs, so a run resumed from its checkpoints reports its whole training
        "train_seconds": round(sum(lm.history.get("epoch_seconds", [])) or seconds, 1),
        "epochs_run": len(lm.history.get("loss", [])),
        "history": lm.history,
        "val_loss_windows_best": min(lm.history.get("val_loss") or [float("nan")]),
        "val_loss_windows_within_60_min": minutes_to(lm.history, 60),
        "val_eval_carried_state": metrics,
        "samples": {
            str(t): lm.generate("ROMEO:", max_length=300, temperature=t, seed=1)
            for t in (0.5, 0.8, 1.0)
        },
        "machine": _machine.describe(),
    }
    print(json.dumps(result, indent=1))
    if args.save:
        lm.save(args.save)
        results = RESULTS
        if lm.level == "subword":
            write_subword_card(args.save, result)
            results = SUBWORD_RESULTS
        else:
            write_card(args.save, result)
        if not args.max_chars:  # a cut-down run is no result of the benchmark
            os.makedirs(os.path.dirname(results), exist_ok=True)
            with open(results, "w") as f:
                json.dump(result, f, indent=1)


def _fmt(x):
    return "no epoch finished" if x is None else f"{x:.4f}"


def write_card(folder, r):
    m = r["val_eval_carried_state"]
    c = r["config"]
    h = r["history"]
    rows = []
    elapsed = 0.0
    for i, (loss, vloss, sec) in enumerate(zip(h["loss"], h["val_loss"], h["epoch_seconds"])):
        elapsed += sec
        rows.append(f"| {i + 1} | {elapsed / 60:.1f} | {loss:.4f} | {vloss:.4f} |")
    met = "met" if m["loss"] <= GOAL else "NOT met"
    card = (
        f"""# textgen-shakespeare

A character-level recurrent language model (`tasks.textgen.TextGenPipeline`), trained
from scratch on CPU on Tiny Shakespeare. Load it with `tasks.load("textgen")`.

## Data
`../shared/data/textgen/tiny_shakespeare.txt.gz` (Karpathy's char-rnn file, 1,115,394
characters, 65 distinct). First 90 % of the characters ({r["train_chars"]:,}) train, last
10 % ({r["val_chars"]:,}) validate: the nanoGPT split. Nothing else was used.

## Model
Embedding {c["embedding_dim"]} → {c["layers"]} × {c["cell"].upper()} {c["units"]} (seqkit layers,
dropout {c["dropout"]} after each) → dense over the {len(json.load(open(os.path.join(folder, "assets.json")))["vocabulary"])}-entry vocabulary
(65 characters + padding + unknown). Trained on windows of {c["seq_length"]} characters,
batch {r["fit"]["batch_size"]}, Adam {r["fit"]["learning_rate"]} × {r["fit"]["lr_decay"]}^epoch,
gradient clipping 1.0, early stopping on validation loss (patience {r["fit"]["patience"]}), time limit
{r["fit"]["time_limit_minutes"]} minutes; the best epoch's weights are kept.

## Command
```bash
python benchmarks/textgen.py train --save saved_models/textgen-shakespeare --minutes {r["fit"]["time_limit_minutes"]}
```
Training time: {r["train_seconds"] / 60:.1f} minutes on {r["machine"]} ({r["epochs_run"]} epochs).

## Metrics (validation = last 10 %)
| measure | nats/char | bits/char |
|---|---|---|
| `evaluate` (state carried through the text, as generation reads) | {m["loss"]:.4f} | {m["bits_per_char"]:.4f} |
| best Keras validation loss (independent {c["seq_length"]}-char windows from a zero state) | {r["val_loss_windows_best"]:.4f} | {r["val_loss_windows_best"] / np.log(2):.4f} |
| same, best epoch finished within 60 minutes | {_fmt(r["val_loss_windows_within_60_min"])} | |

Goal: validation loss <= {GOAL} nats/char — **{met}** ({m["loss"]:.4f}). Anchors: nanoGPT's GPU
transformer 1.4697, its CPU recipe 1.88, uniform over 65 characters 4.17.

Per epoch (cumulative minutes, train loss, windowed validation loss):

| epoch | minutes | train | validation |
|---|---|---|---|
"""
        + "\n".join(rows)
        + """

## Samples (prompt "ROMEO:", seed 1)
"""
        + "\n".join(f"\n### temperature {t}\n```\n{s}\n```" for t, s in r["samples"].items())
        + """

## Limits
Trained on one small corpus of Shakespeare's plays: it writes Shakespeare-shaped text,
with invented words and no sense of plot. English only; 65 characters (others are read
as unknown and never written).
"""
    )
    with open(os.path.join(folder, "MODEL_CARD.md"), "w") as f:
        f.write(card)


def write_subword_card(folder, r):
    """MODEL_CARD.md of the subword model: bits per character beside the char model's."""
    m, c, f = r["val_eval_carried_state"], r["config"], r["fit"]
    nats_per_char = m["bits_per_char"] * np.log(2)
    char = None
    if os.path.isfile(RESULTS):
        with open(RESULTS) as handle:
            char = json.load(handle)["val_eval_carried_state"]["bits_per_char"]
    command = f"python benchmarks/textgen.py train --level subword --save {folder} "
    command += f"--minutes {f['time_limit_minutes']}"
    if f.get("max_chars"):
        command += f" --max-chars {f['max_chars']}"
    cut = f", each cut to its first {f['max_chars']:,} characters" if f.get("max_chars") else ""
    card = f"""# {os.path.basename(os.path.normpath(folder))}

A word-level recurrent language model made of subwords (`tasks.textgen.TextGenPipeline`,
`level="subword"`: SentencePiece unigram pieces learnt from the training text, line
breaks kept as a piece), trained from scratch on CPU on Tiny Shakespeare. It writes words
piece by piece, so it can write words it never saw whole; no text is unknown (byte
fallback). Load it with `tasks.load(path)`; serving its SavedModel needs
`import tensorflow_text` before `tf.saved_model.load`.

## Data
`../shared/data/textgen/tiny_shakespeare.txt.gz`: the first 90 % of the characters
({r["train_chars"]:,}) train, the last 10 % ({r["val_chars"]:,}) validate (the char model's split){cut}.

## Model
{c["max_tokens"]} pieces; embedding {c["embedding_dim"]} → {c["layers"]} × {c["cell"].upper()} {c["units"]}
(dropout {c["dropout"]}); windows of {c["seq_length"]} pieces, batch {f["batch_size"]}, Adam
{f["learning_rate"]} × {f["lr_decay"]}^epoch, time limit {f["time_limit_minutes"]} minutes.

## Command
```bash
{command}
```
Training time: {r["train_seconds"] / 60:.1f} minutes on {r["machine"]} ({r["epochs_run"]} epochs).

## Metrics (validation = last 10 %, state carried through the text)
| measure | value |
|---|---|
| nats per piece | {m["loss"]:.4f} |
| bits per character (total bits / characters of the decoded text) | {m["bits_per_char"]:.4f} |
| nats per character | {nats_per_char:.4f} |
| pieces / characters scored | {m["tokens"]:,} / {m["characters"]:,} |
| char model (`benchmarks/results/textgen_shakespeare.json`), bits per character | {"n/a" if char is None else f"{char:.4f}"} |

## Samples (prompt "ROMEO:", seed 1)
""" + "\n".join(f"\n### temperature {t}\n```\n{s}\n```" for t, s in r["samples"].items())
    with open(os.path.join(folder, "MODEL_CARD.md"), "w") as handle:
        handle.write(card + "\n")


def _median_time(fn, runs):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def window_rerun_generate(lm, prompt, n_tokens, temperature, seed):
    """The textgenrnn way: for every new token, re-run the model over the last
    ``seq_length`` tokens from a zero state (here with a compiled forward pass,
    which is faster than textgenrnn's per-token ``model.predict``)."""
    import tensorflow as tf

    model = lm.model
    forward = tf.function(
        lambda x: model(x, training=False)[:, -1],
        input_signature=[tf.TensorSpec((1, None), tf.int32)],
    )
    rng = np.random.RandomState(seed)
    ids = list(lm.tokenizer.encode(prompt))
    for _ in range(n_tokens):
        window = np.array([ids[-lm.seq_length :]], np.int32)
        logits = forward(tf.constant(window)).numpy()[0].astype(np.float64)
        logits[:2] = -np.inf
        p = np.exp((logits - logits.max()) / temperature)
        ids.append(int(rng.choice(len(p), p=p / p.sum())))
    return ids


def cmd_speed(args):
    import tensorflow as tf

    import tasks

    lm = tasks.load(args.model)
    n, prompt, runs = args.tokens, "ROMEO:", args.runs
    # warm-up (traces) for every path
    lm.generate(prompt, max_length=n, temperature=0.8, seed=0)
    list(lm.generate(prompt, max_length=20, temperature=0.8, seed=0, stream=True))
    window_rerun_generate(lm, prompt, lm.seq_length + 5, 0.8, 0)  # every window length
    carried = _median_time(lambda: lm.generate(prompt, max_length=n, temperature=0.8, seed=1), runs)
    streamed = _median_time(
        lambda: list(lm.generate(prompt, max_length=n, temperature=0.8, seed=1, stream=True)), runs
    )
    batch16 = _median_time(
        lambda: lm.generate(prompt, max_length=n, temperature=0.8, seed=1, num_samples=16), runs
    )
    rerun = _median_time(lambda: window_rerun_generate(lm, prompt, n, 0.8, 1), max(1, runs // 2))
    with tempfile.TemporaryDirectory() as tmp:
        lm.export(os.path.join(tmp, "served"))
        served = tf.saved_model.load(os.path.join(tmp, "served")).signatures["generate"]
        inputs = dict(
            prompt=tf.constant(prompt),
            max_length=tf.constant(n),
            temperature=tf.constant(0.8),
            seed=tf.constant(1),
        )
        served(**inputs)
        exported = _median_time(lambda: served(**inputs), runs)
    result = {
        "model": args.model,
        "tokens": n,
        "seq_length_of_rerun_window": lm.seq_length,
        "tokens_per_s": {
            "generate (state carried, loop in graph)": n / carried,
            "generate(stream=True) (state carried, 8 tokens per compiled call)": n / streamed,
            "generate(num_samples=16), all samples": 16 * n / batch16,
            "window re-run per token (textgenrnn way)": n / rerun,
            "exported SavedModel generate()": n / exported,
        },
        "ratio_generate_vs_rerun": rerun / carried,
        "ratio_stream_vs_rerun": rerun / streamed,
        "machine": _machine.describe(),
    }
    _report.report(result, args.json)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train")
    p.add_argument("--save")
    p.add_argument("--minutes", type=float, default=60)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--config", help="JSON overrides of the pipeline arguments")
    p.add_argument("--fit", help="JSON overrides of the fit arguments")
    p.add_argument("--checkpoint-dir", default="runs/checkpoints-textgen")
    p.add_argument(
        "--level",
        choices=["char", "subword"],
        default="char",
        help="char: RECIPE; subword: RECIPE with SUBWORD_RECIPE (words made of pieces)",
    )
    p.add_argument("--max-chars", type=int, help="keep the first N characters of each split")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("speed")
    p.add_argument("--model", default="textgen")
    p.add_argument("--tokens", type=int, default=1000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--json", help="also write the result to this file")
    p.set_defaults(func=cmd_speed)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
