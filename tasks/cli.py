"""The ``seqkit`` command.

    seqkit demo                                   # every shipped pipeline on built-in examples
    seqkit sentiment "A moving film." "Dull."     # classify texts with the shipped model
    seqkit generate "ROMEO:" --max-length 300 --temperature 0.8   # continue a prompt
    seqkit translate "¿Dónde está la biblioteca?" --beam-width 4     # translate texts
    seqkit forecast prices.csv --horizon 5                           # quantile forecasts
    seqkit train sentiment --data train.csv --out runs/clf [--set units=128 ...]
    seqkit evaluate runs/clf --data test.csv
    seqkit export runs/clf serving/clf
    seqkit upgrade runs/old_clf runs/clf        # re-save a folder from an older seqkit

TensorFlow's log lines (absl, XLA, CUDA) are hidden; ``seqkit --verbose <command>``
shows them. ``--encoding latin-1`` reads data files that are not UTF-8.

Errors in what was given (a missing file, a bad column, a bad option) print
one line saying what to fix and exit with status 2; Ctrl-C prints one line
(for ``train``: the epoch, where the last checkpoint is, how to resume) and
exits with status 130.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from tasks import workers
from tasks.cli_support import _parse_sets, column_options, label_map_options, parse_columns
from tasks.cli_support import read_args as _read_args

TRAINABLE = ("sentiment", "textgen", "translation", "forecasting")


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=1, ensure_ascii=False, default=str))


def cmd_sentiment(args) -> int:
    import tasks

    clf = tasks.load(args.model)
    texts = list(args.texts)
    if not texts:
        texts = [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not texts:
        raise ValueError("No texts given: pass them as arguments or on standard input.")
    for text, result in zip(texts, clf.predict(texts)):
        print(f"{result['label']}\t{result['score']:.3f}\t{text}")
        if args.explain:
            weights = clf.explain(text)
            top = sorted(weights, key=lambda tw: -abs(tw[1]))[: args.explain]
            print("\t" + ", ".join(f"{t} {w:+.3f}" for t, w in top))
    return 0


def cmd_generate(args) -> int:
    import tasks

    lm = tasks.load(args.model)
    if lm.task != "textgen":
        raise ValueError(f"{args.model} is a {lm.task} pipeline; generate needs a textgen one.")
    prompt = args.prompt
    if prompt is None:
        prompt = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
    options = ("max_length", "temperature", "top_k", "top_p", "seed", "stop")
    pieces = lm.generate(prompt, stream=True, **{k: getattr(args, k) for k in options})
    for piece in pieces:
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return 0


def cmd_translate(args) -> int:
    import tasks

    mt = tasks.load(args.model)
    if mt.task != "translation":
        raise ValueError(
            f"{args.model} is a {mt.task} pipeline; translate needs a translation one."
        )
    texts = list(args.texts)
    if not texts:
        texts = [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not texts:
        raise ValueError("No texts given: pass them as arguments or on standard input.")
    for text in mt.translate(texts, beam_width=args.beam_width, keep_names=args.keep_names):
        print(text)
    return 0


def cmd_forecast(args) -> int:
    import pandas as pd

    import tasks

    fc = tasks.load(args.model)
    if fc.task != "forecasting":
        raise ValueError(f"{args.model} is a {fc.task} pipeline; forecast needs a forecasting one.")
    if args.horizon is not None and not 1 <= args.horizon <= fc.horizon:
        raise ValueError(
            f"Received `--horizon {args.horizon}`; this model forecasts 1 to {fc.horizon} steps."
        )
    out = fc.predict(
        args.data,
        time_column=args.time_column,
        id_column=args.id_column,
        missing=args.missing,
        encoding=args.encoding,
        **({"columns": parse_columns(args.columns)} if args.columns else {}),
    )
    if args.horizon is not None:
        out = out[out.step <= args.horizon]
    with pd.option_context("display.width", 200, "display.max_rows", 200):
        print(out.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0


def cmd_train(args) -> int:
    from tasks.cli_support import check_set_keys
    from tasks.registry import get_task

    if args.workers is not None:  # N local processes, each running this command
        return workers.launch(args, args.argv)
    cls = get_task(args.task)
    config = _parse_sets(args.set)
    config.setdefault("seed", args.seed)
    check_set_keys(cls, args.task, config)
    try:
        pipeline = cls(**config)
    except TypeError as error:
        raise ValueError(f"Bad --set for {args.task}: {error}") from None
    read = _read_args(args.task, args)
    pipeline.fit(
        args.data,
        args.validation,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        checkpoint_dir=args.checkpoint_dir or None,
        strategy=workers.strategy_for(args),
        verbose=args.verbose,
        **read,
    )
    pipeline.save(args.out)  # (a worker other than the chief writes a temporary copy)
    if not workers.is_chief():
        return 0
    print(f"Saved the trained {args.task} pipeline to {args.out}")
    if args.test:
        _print_json(pipeline.evaluate(args.test, **read))
    return 0


def cmd_evaluate(args) -> int:
    import tasks

    pipeline = tasks.load(args.model)
    read = _read_args(pipeline.task, args)
    _print_json(pipeline.evaluate(args.data, **read))
    return 0


def cmd_export(args) -> int:
    import tasks

    pipeline = tasks.load(args.model)
    options = {"quantize": args.quantize} if args.quantize else {}
    pipeline.export(args.out, format=args.format, overwrite=args.overwrite, **options)
    what = {"saved_model": "a SavedModel", "onnx": "ONNX", "litert": "LiteRT"}[args.format]
    note = "" if args.format == "saved_model" else " (inputs, outputs and files: README.md there)"
    print(f"Exported {what} to {args.out}{note}")
    return 0


_SAVED_FILES = ("pipeline.json", "assets.json", "model.weights.h5", "CHECKSUMS.sha256")


def cmd_upgrade(args) -> int:
    import tasks
    from tasks.registry import CONFIG_FILE, read_json

    pipeline = tasks.load(args.old)
    meta, extras = {}, {}
    if os.path.isdir(args.old):
        meta = read_json(os.path.join(args.old, CONFIG_FILE))
        # Files the save does not write (a MODEL_CARD.md, notes) come along.
        for name in sorted(os.listdir(args.old)):
            path = os.path.join(args.old, name)
            if name not in _SAVED_FILES and os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as f:
                    extras[name] = f.read()
    pipeline.save(args.new, weights_dtype=meta.get("weights_dtype", "float32"))
    for name, content in extras.items():
        with open(os.path.join(args.new, name), "wb") as f:
            f.write(content)
    saved_by = meta.get("seqkit_version", "?")
    print(f"Saved {args.old} (seqkit {saved_by}) again as {args.new} (seqkit {_version()}).")
    return 0


def _version() -> str:
    import seqkit

    return seqkit.__version__


DEMO_SENTIMENT = [
    "A moving, beautifully acted film. I loved every minute of it.",
    "Dull, predictable and far too long. A waste of two hours.",
    "The plot was thin, but the performances were wonderful.",
    "I have never been so bored in a cinema.",
]


def cmd_demo(args) -> int:
    import tasks

    _demo_sentiment(tasks)
    _demo_textgen(tasks)
    if _shipped(tasks, "translation"):
        _demo_translation(tasks)
    if _shipped(tasks, "forecasting"):
        _demo_forecasting(tasks)
    return 0


def demo_prices(n=120, seed=7):
    """A made-up daily price series (a random walk with OHLCV columns) for the demo."""
    import numpy as np
    import pandas as pd

    rng = np.random.RandomState(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0.0005, 0.015, n)))
    open_ = close * np.exp(rng.normal(0, 0.004, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.006, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.006, n)))
    return pd.DataFrame(
        {
            "date": pd.bdate_range("2024-01-02", periods=n),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": rng.randint(1_000_000, 5_000_000, n).astype(float),
            "ticker": "DEMO",
        }
    )


def _demo_forecasting(tasks) -> None:
    print()
    print("== forecasting (tasks.load('forecasting'): LSTM quantiles, S&P 500 tickers) ==")
    fc = tasks.load("forecasting")
    prices = demo_prices()
    print(
        f"  a made-up price series; last close {prices.close.iloc[-1]:.2f} on "
        f"{prices.date.iloc[-1].date()}"
    )
    for row in fc.predict(prices).itertuples(index=False):
        print(
            f"  {row.date.date()}  step {row.step}  q10 {row.q10:8.2f}  "
            f"q50 {row.q50:8.2f}  q90 {row.q90:8.2f}"
        )


def _shipped(tasks, name) -> bool:
    from tasks.registry import is_shipped

    return is_shipped(name)


DEMO_TRANSLATION = [
    "¿Dónde está la biblioteca?",
    "Tengo hambre.",
    "No sé qué hacer.",
    "Me gustaría reservar una mesa para dos personas.",
    "Xiomara vive en Cochabamba desde 1862.",  # unseen names: the name guard
]


def _demo_translation(tasks) -> None:
    print()
    print("== translation (tasks.load('translation'): Spanish -> English, BiGRU + attention) ==")
    mt = tasks.load("translation")
    for source, target in zip(DEMO_TRANSLATION, mt.translate(DEMO_TRANSLATION, beam_width=4)):
        print(f"  {source}  ->  {target}")


def _demo_textgen(tasks) -> None:
    print()
    print("== textgen (tasks.load('textgen'): char-level LSTM trained on Tiny Shakespeare) ==")
    lm = tasks.load("textgen")
    for temperature in (0.5, 0.8):
        text = lm.generate("ROMEO:", max_length=160, temperature=temperature, seed=1)
        print(f"  -- temperature {temperature}, seed 1:")
        print("\n".join("  " + line for line in text.splitlines()))


def _demo_sentiment(tasks) -> None:
    print("== sentiment (tasks.load('sentiment'): BiGRU trained on IMDB) ==")
    clf = tasks.load("sentiment")
    for text, result in zip(DEMO_SENTIMENT, clf.predict(DEMO_SENTIMENT)):
        print(f"  {result['label']:>8}  {result['score']:.2f}  {text}")
    weights = clf.explain(DEMO_SENTIMENT[2])
    top = sorted(weights, key=lambda tw: -abs(tw[1]))[:4]
    print("  words that decided the third one: " + ", ".join(f"{t} {w:+.2f}" for t, w in top))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seqkit",
        description=(
            "Recurrent sequence pipelines: sentiment analysis, text generation, translation "
            "and forecasting. Use a shipped pretrained pipeline, train one on your data, "
            "evaluate it and export it."
        ),
        epilog=(
            'examples: seqkit demo | seqkit sentiment "A moving film." | '
            "seqkit train sentiment --data train.csv --out runs/clf --set units=128. "
            "TensorFlow's log lines are hidden; --verbose shows them."
        ),
    )
    parser.add_argument(
        "--verbose", dest="logs", action="store_true", help="show TensorFlow's log lines"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    cols = column_options()  # forecasting: --columns Date=date,Close=close
    labels = label_map_options()  # sentiment: --label-map pos=positive,neg=negative
    logs = argparse.ArgumentParser(add_help=False)  # `seqkit <command> ... --verbose` too
    logs.add_argument(
        "--verbose",
        dest="logs",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show TensorFlow's log lines",
    )

    p = sub.add_parser("demo", help="run every shipped pipeline on a few examples", parents=[logs])
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "sentiment", help="classify texts (arguments, or one per line on stdin)", parents=[logs]
    )
    p.add_argument("texts", nargs="*")
    p.add_argument("--model", default="sentiment", help="shipped name or saved folder")
    p.add_argument("--explain", type=int, default=0, metavar="K", help="show the K top words")
    p.set_defaults(func=cmd_sentiment)

    p = sub.add_parser(
        "generate", help="continue a prompt with a text-generation pipeline", parents=[logs]
    )
    p.add_argument("prompt", nargs="?", help="text to continue (default: standard input)")
    p.add_argument("--model", default="textgen", help="shipped name or saved folder")
    p.add_argument("--max-length", type=int, default=300, help="new tokens to generate")
    p.add_argument("--temperature", type=float, default=0.8, help="0 is greedy")
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--seed", type=int, default=None, help="repeat a sampled text exactly")
    p.add_argument("--stop", action="append", help="end the text before this string")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser(
        "translate", help="translate texts (arguments, or one per line on stdin)", parents=[logs]
    )
    p.add_argument("texts", nargs="*")
    p.add_argument("--model", default="translation", help="shipped name or saved folder")
    p.add_argument("--beam-width", type=int, default=4, help="1 is greedy")
    p.add_argument(
        "--no-keep-names",
        dest="keep_names",
        action="store_false",
        help="leave unseen names and numbers to the model (no name guard)",
    )
    p.set_defaults(func=cmd_translate)

    p = sub.add_parser(
        "forecast",
        help="quantile forecasts after the last row of each series",
        parents=[logs, cols],
    )
    p.add_argument("data", help="CSV of date, ticker, close (and covariates)")
    p.add_argument("--model", default="forecasting", help="shipped name or saved folder")
    p.add_argument("--horizon", type=int, default=None, help="steps to show (<= the model's)")
    p.add_argument("--time-column", default="date")
    p.add_argument("--id-column", default="ticker")
    p.add_argument("--missing", default="error", choices=["error", "ffill"])
    p.add_argument("--encoding", default="utf-8", help="the CSV's text encoding")
    p.set_defaults(func=cmd_forecast)

    p = sub.add_parser(
        "train", help="train a pipeline on your data and save it", parents=[cols, labels]
    )
    p.add_argument("task", help="task name: sentiment, textgen, translation or forecasting")
    p.add_argument(
        "--data",
        required=True,
        help="training data (CSV/TSV/folder; text for textgen; Anki TSV for translation)",
    )
    p.add_argument("--out", required=True, help="folder to save the trained pipeline in")
    p.add_argument("--validation", help="validation data (default: 10%% of --data)")
    p.add_argument("--test", help="data to evaluate on after training")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--learning-rate", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="a hyperparameter")
    p.add_argument(
        "--checkpoint-dir",
        default="auto",
        help="where per-epoch checkpoints go ('auto': ~/.cache/seqkit, '': none)",
    )
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="label")
    p.add_argument("--time-column", default="date")
    p.add_argument("--id-column", default="ticker")
    p.add_argument("--encoding", default="utf-8", help="the data files' text encoding")
    p.add_argument(
        "--verbose",
        type=int,
        default=1,
        help="0 silent, 1 progress bars, 2 a line per epoch (TensorFlow's logs: seqkit --verbose)",
    )
    workers.add_arguments(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "evaluate",
        help="metrics of a saved pipeline on labelled data",
        parents=[logs, cols, labels],
    )
    p.add_argument("model", help="saved folder or shipped name")
    p.add_argument("--data", required=True)
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="label")
    p.add_argument("--time-column", default="date")
    p.add_argument("--id-column", default="ticker")
    p.add_argument("--encoding", default="utf-8", help="the data file's text encoding")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "export",
        help="write a SavedModel that serves raw inputs, or ONNX / LiteRT files",
        parents=[logs],
    )
    p.add_argument("model", help="saved folder or shipped name")
    p.add_argument("out", help="folder to write (must not exist, unless --overwrite)")
    p.add_argument(
        "--format",
        choices=["saved_model", "onnx", "litert"],
        default="saved_model",
        help="saved_model (default: raw strings in), onnx or litert (token ids in)",
    )
    p.add_argument(
        "--quantize", choices=["float16", "dynamic_int8"], help="LiteRT weights (litert only)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "upgrade", help="re-save a pipeline folder written by an older seqkit", parents=[logs]
    )
    p.add_argument("old", help="the saved folder")
    p.add_argument("new", help="where to write it in this seqkit's layout (may equal old)")
    p.set_defaults(func=cmd_upgrade)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    from tasks.cli_support import quiet_tensorflow

    quiet_tensorflow(verbose=args.logs)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as error:
        # The toolkit's own errors (DataError, PipelineError) are ValueErrors with a fix in them.
        print(f"seqkit {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        # Training already printed its one line (epoch, checkpoint, how to resume).
        if not interrupt.args:
            print(f"\nseqkit {args.command}: interrupted.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
