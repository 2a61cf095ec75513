"""Exported pipelines: SavedModel, ONNX and LiteRT (float32, float16, dynamic int8),
size, quality through the exported files, and speed, in one process.

For each shipped pipeline (``tasks.load(name)``) and each export variant

    SavedModel           pipeline.export(path)                  (the reference)
    ONNX                 pipeline.export(path, format="onnx")
    LiteRT float32       pipeline.export(path, format="litert")
    LiteRT float16       ... quantize="float16"
    LiteRT dynamic_int8  ... quantize="dynamic_int8"

it prints, as Markdown tables:

1. the export time, the folder's size and the model file(s)' alone (MB = 10^6 bytes);
2. the task's metric on real held-out data computed through the exported files
   (onnxruntime, the LiteRT interpreter, ``tf.saved_model.load``), beside the
   pipeline's own figure on the same subset, and the largest absolute difference
   of the raw outputs from the SavedModel's on the same inputs:

   - sentiment: accuracy on the IMDB test file (ids from the
     pipeline's vectorizer plus one padding column, batches of 64 in file order),
     against ``evaluate``; raw outputs: the class probabilities;
   - translation: corpus BLEU (sacreBLEU) of greedy decoding through
     ``encoder`` + ``decoder_step`` (the loop of the folder's README) on the
     test split of benchmarks/translation.py, batches of 64 in file order,
     against ``translate(beam_width=1)``; the SavedModel is exported greedy
     (``beam_width=1``); raw outputs: ``decoder_step``'s logits fed the
     reference's inputs at every step of the reference's decode of 64
     sentences spread over the lengths;
   - textgen: bits per character on the held-out last 10 % of Tiny Shakespeare,
     cut into 64 contiguous streams read with the state carried (as
     ``evaluate(text, batch_size=64)`` cuts it), by stepping the ``step`` part
     over every character, against the Keras model (``evaluate``'s loop) on the
     same streams; raw outputs: the logits at every character;
   - forecasting: MASE of the point forecasts (pooled over horizons 1-5) at every
     origin of the held-out period of benchmarks/forecasting.py (every ticker,
     stride 1), against the pipeline's own forecasts on the same windows (what
     ``backtest`` scores); raw outputs: the quantile forecasts (dollars).

3. median milliseconds per call at batch 1 and batch 64 after warm-up, the
   variants called in turn (round robin) so that load from other processes hits
   them alike, with the ratio to the SavedModel (< 1: faster):

   - sentiment: the SavedModel's ``serving_default`` on strings (tokenization in
     the graph) against the exported id model on the same texts' ids (batch 1:
     the review of median length);
   - textgen / translation: one step (the reference: the same step function
     saved alone as a SavedModel, since the pipeline's SavedModel only serves
     whole texts) and a full greedy decode: textgen 200 characters after
     "ROMEO:" (64 rows of the same prompt at batch 64; the SavedModel's
     ``generate_ids``), translation 8 sentences one at a time (ms per sentence)
     and 64 together, spread over the lengths (the SavedModel's ``translate`` on
     strings; the exported loop starts from ids and ends in text);
   - forecasting: the forward pass on raw windows (``serving_default``).

Runtimes at their defaults: TensorFlow's thread pools, onnxruntime's
``CPUExecutionProvider`` with default session options, the LiteRT interpreter
with its default ``num_threads`` (1) and the XNNPACK delegate it applies itself.

Usage:
    python benchmarks/export.py                         # all four, default subsets
    python benchmarks/export.py --task sentiment --limit 500
    python benchmarks/export.py --json /tmp/export.json

``--limit N`` takes a subset for the chosen task(s) (default: everything):
sentiment N reviews (seeded sample; all 25,000), translation N sentences
(seeded sample; all 2,380), textgen the first N characters of each of the 64
streams (all 1,742), forecasting the first N tickers (all 505).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import statistics
import sys
import tempfile
import time
import unicodedata

import _machine  # benchmarks/_machine.py, beside this script

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

DATA = os.environ.get("SEQKIT_DATA", os.path.join(os.path.dirname(HERE), "..", "shared", "data"))
VARIANTS = (
    ("SavedModel", "saved_model", None),
    ("ONNX", "onnx", None),
    ("LiteRT float32", "litert", None),
    ("LiteRT float16", "litert", "float16"),
    ("LiteRT dynamic_int8", "litert", "dynamic_int8"),
)
REFERENCE = VARIANTS[0][0]
DEFAULT_LIMIT = {"sentiment": 0, "translation": 0, "textgen": 0, "forecasting": 0}  # 0: all
BATCH = 64
SEED = 0


# ----------------------------------------------------------------------------- runtimes
class Runtime:
    """One exported part (.onnx or .tflite): ``runtime(name=array, ...) -> {output: array}``."""

    def __init__(self, path: str):
        self.path = path
        if path.endswith(".onnx"):
            import onnxruntime as ort

            self.session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            self.outputs = [o.name for o in self.session.get_outputs()]
        else:
            from ai_edge_litert.interpreter import Interpreter

            self.runner = Interpreter(model_path=path).get_signature_runner()

    def __call__(self, **feeds):
        if self.path.endswith(".onnx"):
            return dict(zip(self.outputs, self.session.run(None, feeds)))
        return dict(self.runner(**feeds))


class SavedSignature:
    """A SavedModel signature called like a :class:`Runtime` (numpy in, numpy out)."""

    def __init__(self, fn, keep=None):
        self.fn, self.keep = fn, keep  # keep: the loaded object that owns the variables

    def __call__(self, **feeds):
        import tensorflow as tf

        out = self.fn(**{k: tf.constant(v) for k, v in feeds.items()})
        return {k: v.numpy() for k, v in out.items()}


def saved_parts(pipeline, folder: str) -> dict:
    """The portable parts (tasks/<task>_portable.py) each saved alone as a SavedModel,
    traced as the pipeline's SavedModel traces them, loaded back: {part: SavedSignature}."""
    import tensorflow as tf

    from seqkit.export import exporting
    from tasks.portable import _concrete

    module = importlib.import_module(f"tasks.{pipeline.task}_portable")
    out = {}
    for part in module.parts(pipeline, "onnx").parts:
        path = os.path.join(folder, f"part-{part.name}")
        with exporting():
            fn, concrete = _concrete(part)
            holder = tf.Module()
            holder.serve = fn
            holder.served_variables = list(concrete.variables)
            tf.saved_model.save(holder, path, signatures={"serving_default": concrete})
        loaded = tf.saved_model.load(path)
        out[part.name] = SavedSignature(loaded.signatures["serving_default"], loaded)
    return out


def _mb(paths) -> float:
    return sum(os.path.getsize(p) for p in paths) / 1e6


def _files(folder):
    return [os.path.join(r, f) for r, _, fs in os.walk(folder) for f in fs]


class Export:
    """One variant's folder: export time, sizes, its parts loaded (or the error)."""

    def __init__(self, pipeline, name, fmt, quantize, folder, **kwargs):
        self.name, self.fmt, self.folder = name, fmt, folder
        self.error, self.parts, self.loaded = None, {}, None
        start = time.perf_counter()
        try:
            if fmt == "saved_model":
                pipeline.export(folder, **kwargs)
            else:
                pipeline.export(folder, format=fmt, quantize=quantize)
        except Exception as error:  # reported in the table as measured
            self.error = f"export failed: {type(error).__name__}: {str(error)[:200]}"
            self.seconds = time.perf_counter() - start
            return
        self.seconds = time.perf_counter() - start
        files = _files(folder)
        self.folder_mb = _mb(files)
        if fmt == "saved_model":
            model = [f for f in files if f.endswith("saved_model.pb") or "/variables/" in f]
        else:
            model = [f for f in files if f.endswith((".onnx", ".tflite"))]
        self.model_mb = _mb(model)
        try:
            if fmt == "saved_model":
                import tensorflow as tf

                self.loaded = tf.saved_model.load(folder)
            else:
                with open(os.path.join(folder, "signature.json")) as f:
                    signature = json.load(f)
                for part, spec in signature["parts"].items():
                    self.parts[part] = Runtime(os.path.join(folder, spec["file"]))
        except Exception as error:
            self.error = f"load failed: {type(error).__name__}: {str(error)[:200]}"

    def file(self, name: str) -> str:
        return os.path.join(self.folder, name)


def export_all(pipeline, tmp: str, **saved_model_kwargs) -> dict:
    out = {}
    for name, fmt, quantize in VARIANTS:
        folder = os.path.join(tmp, f"{pipeline.task}-{fmt}-{quantize or 'none'}")
        kwargs = saved_model_kwargs if fmt == "saved_model" else {}
        out[name] = Export(pipeline, name, fmt, quantize, folder, **kwargs)
        e = out[name]
        state = e.error or f"{e.folder_mb:.2f} MB"
        print(f"  exported {name}: {e.seconds:.1f} s, {state}", flush=True)
    return out


def read_vocabulary(path: str) -> list[str]:
    """vocabulary.txt as its README says: line i is token i, the body of a JSON string."""
    with open(path, encoding="utf-8") as f:
        return [json.loads('"' + line.rstrip("\n") + '"') for line in f]


# ----------------------------------------------------------------------------- timing
def timings(calls: dict, repeats: int, warmup: int = 2) -> dict:
    """Median ms of each ``calls[name]()``, the calls made in turn (round robin) after
    ``warmup`` calls each; a call that raises gets its error message instead."""
    results, live = {}, {}
    for name, fn in calls.items():
        if fn is None:
            continue
        try:
            for _ in range(warmup):
                fn()
            live[name] = []
        except Exception as error:
            results[name] = f"failed: {type(error).__name__}: {str(error)[:120]}"
    for _ in range(repeats):
        for name, times in live.items():
            start = time.perf_counter()
            calls[name]()
            times.append((time.perf_counter() - start) * 1000)
    results.update({name: statistics.median(times) for name, times in live.items()})
    return results


def _ms(value) -> str:
    if isinstance(value, str):
        return value
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def _ratio(value, base) -> str:
    if isinstance(value, str) or isinstance(base, str) or base is None:
        return ""
    return f"{value / base:.2f}"


# ----------------------------------------------------------------------------- tables
def size_quality_table(exports, metric, quality, reference, diffs, extra_name, extra):
    """One row per variant: export time, sizes, the metric, its change from the
    pipeline's, the largest raw difference from the SavedModel, and one more column."""
    lines = [
        f"| variant | export s | folder MB | model file(s) MB | {metric} | Δ vs pipeline "
        f"| max abs diff vs SavedModel | {extra_name} |",
        "|---|---|---|---|---|---|---|---|",
        f"| pipeline (in process) | | | | {reference:.4f} | | | |",
    ]
    for name, e in exports.items():
        if e.error:
            lines.append(f"| {name} | {e.seconds:.1f} | | | {e.error} | | | |")
            continue
        q = quality.get(name)
        if isinstance(q, str) or q is None:
            lines.append(
                f"| {name} | {e.seconds:.1f} | {e.folder_mb:.2f} | {e.model_mb:.2f} | "
                f"{q or 'not run'} | | | |"
            )
            continue
        d = diffs.get(name)
        d = "0 (reference)" if name == REFERENCE else (f"{d:.2e}" if d is not None else "")
        lines.append(
            f"| {name} | {e.seconds:.1f} | {e.folder_mb:.2f} | {e.model_mb:.2f} | {q:.4f} | "
            f"{_delta(q - reference)} | {d} | {extra.get(name, '')} |"
        )
    return "\n".join(lines)


def _delta(d: float) -> str:
    """A change of the metric: 4 decimals, or its exponent where that rounds to 0."""
    if d == 0:
        return "0"
    return f"{d:+.4f}" if abs(d) >= 5e-5 else f"{d:+.0e}"


def speed_table(columns: dict) -> str:
    """``columns``: {column title: {variant: ms or error}}; each column gets its ratio."""
    names = [v[0] for v in VARIANTS]
    head = "| variant | " + " | ".join(f"{c} ms | ratio" for c in columns) + " |"
    lines = [head, "|---|" + "---|---|" * len(columns)]
    for name in names:
        cells = []
        for col in columns.values():
            value = col.get(name, "")
            cells += [_ms(value) if value != "" else "", _ratio(value, col.get(REFERENCE))]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _quality_safe(fn):
    """``fn()``, or the error message if the runtime fails on this variant."""
    try:
        return fn()
    except Exception as error:
        return f"run failed: {type(error).__name__}: {str(error)[:160]}"


# ----------------------------------------------------------------------------- sentiment
def bench_sentiment(args, tmp):
    import tensorflow as tf

    import tasks

    p = tasks.load("sentiment")
    df = pd.read_csv(os.path.join(DATA, "sentiment/imdb_test.csv.gz"))
    n = min(args.limit or DEFAULT_LIMIT["sentiment"] or len(df), len(df))
    index = np.sort(np.random.default_rng(SEED).choice(len(df), size=n, replace=False))
    sub = df.iloc[index].reset_index(drop=True)
    names = {0: "negative", 1: "positive"}
    sub["label"] = sub.label.map(names)
    texts = sub.text.tolist()
    y = np.array([p.labels.index(label) for label in sub.label])
    sample = f" (seeded sample, seed {SEED})" if n < len(df) else ""
    print(f"sentiment: {n} IMDB test reviews{sample}, batches of {BATCH}", flush=True)

    start = time.perf_counter()
    reference = p.evaluate(sub)["accuracy"]
    pipeline_proba = p.predict_proba(texts)
    pipeline_s = time.perf_counter() - start

    def ids(batch):  # as the README says: the vectorizer's ids plus one padding column
        x = p.vectorizer(tf.constant(batch)).to_tensor().numpy()
        return np.pad(x, [[0, 0], [0, 1]]).astype(np.int32)

    batches = [texts[i : i + BATCH] for i in range(0, n, BATCH)]
    id_batches = [ids(b) for b in batches]
    lengths = np.concatenate([(x > 0).sum(1) for x in id_batches])
    one = [texts[int(np.argsort(lengths)[n // 2])]]  # batch 1: the review of median length
    exports = export_all(p, tmp)
    probs, quality, diffs, agree, calls1, calls64 = {}, {}, {}, {}, {}, {}
    for name, e in exports.items():
        if e.error:
            continue
        if name == REFERENCE:
            serve = e.loaded.signatures["serving_default"]

            def run(b, serve=serve):
                return serve(text=tf.constant(b))["probabilities"].numpy()

            calls1[name] = lambda run=run: run(one)
            calls64[name] = lambda run=run: run(texts[:BATCH])
            got = _quality_safe(lambda run=run: np.concatenate([run(b) for b in batches]))
        else:
            model = e.parts["model"]

            def run(x, model=model):
                return model(token_ids=x)["probabilities"]

            x1, x64 = ids(one), ids(texts[:BATCH])
            calls1[name] = lambda run=run, x=x1: run(x)
            calls64[name] = lambda run=run, x=x64: run(x)
            got = _quality_safe(lambda run=run: np.concatenate([run(x) for x in id_batches]))
        if isinstance(got, str):
            quality[name] = got
            calls1[name] = calls64[name] = None
            continue
        probs[name] = got
        quality[name] = float((got.argmax(-1) == y).mean())
    base = probs.get(REFERENCE)
    for name, got in probs.items():
        if base is not None:
            diffs[name] = float(np.abs(got - base).max())
            agree[name] = f"{int((got.argmax(-1) == base.argmax(-1)).sum())}/{n}"
    if base is not None:
        print(
            f"  pipeline predict_proba vs SavedModel: max abs diff "
            f"{np.abs(pipeline_proba - base).max():.2e} ({pipeline_s:.0f} s for evaluate + predict)"
        )
    table = size_quality_table(
        exports,
        "accuracy",
        quality,
        reference,
        diffs,
        "labels = SavedModel's",
        agree,
    )
    words = int((ids(one) > 0).sum())
    longest = ids(texts[:BATCH]).shape[1]
    speed = speed_table(
        {
            f"batch 1 ({words} words)": timings(calls1, args.repeats),
            f"batch 64 ({longest} columns)": timings(calls64, args.repeats),
        }
    )
    notes = (
        f"{n:,} reviews of the IMDB test file"
        + (f" (seeded sample, seed {SEED})" if n < len(df) else "")
        + f", batches of {BATCH} in file order; probabilities of the "
        f"{len(p.labels)} classes. SavedModel timed on strings (tokenization in its "
        "graph), the others on ids (tokenization not timed)."
    )
    return {"task": "sentiment", "n": n, "tables": [table, speed], "notes": notes}


# ----------------------------------------------------------------------------- translation
def _greedy_parts(encoder, step, source, settings, tap=None):
    """The README's greedy loop over ``encoder`` / ``decoder_step`` runtimes.

    ``tap(t, feeds)`` (optional) sees every step's inputs. Returns the tokens
    (rows, steps) int32, 0 after a row's end token.
    """
    encoded = encoder(source_ids=source)
    carried = [k for k in ("h", "c") if k in encoded]
    states = {k: encoded[k] for k in carried}
    fixed = {k: encoded[k] for k in ("memory", "keys", "source_mask")}
    rows = source.shape[0]
    token = np.full((rows,), settings["start_id"], np.int32)
    finished = np.zeros(rows, bool)
    never = settings["never_generate"]
    tokens = []
    while len(tokens) < settings["target_max_length"] and not finished.all():
        feeds = {"token_ids": token, **states, **fixed}
        if tap is not None:
            tap(len(tokens), feeds)
        out = step(**feeds)
        logits = np.array(out["logits"], np.float32)
        logits[:, never] = -np.inf
        token = np.where(finished, 0, logits.argmax(-1)).astype(np.int32)
        tokens.append(token)
        finished |= token == settings["end_id"]
        states = {k: out["new_" + k] for k in carried}
    return np.stack(tokens, 1)


def _detokenize(tokens, vocabulary, settings) -> list[str]:
    """Target ids -> text, as the README's step 5 says (``vocabulary``: the word list, or
    for subwords a ``sentencepiece.SentencePieceProcessor``)."""
    if settings.get("tokenizer") == "subword":
        ends = [
            list(row).index(settings["end_id"]) if settings["end_id"] in row else None
            for row in tokens
        ]
        return [
            vocabulary.decode([int(t) for t in row[:n] if t >= 4]) for row, n in zip(tokens, ends)
        ]
    rules = settings["detokenize"]
    out = []
    for row in tokens:
        text = ""
        for t in row:
            if t in (0, settings["end_id"]):
                break
            word = vocabulary[t]
            if text and word[0] not in rules["no_space_before"]:
                if text[-1] not in rules["no_space_after"]:
                    text += rules["join"]
            text += word
        out.append(text)
    return out


def _folder_guard(e):
    """(the folder's names_guard module, its names.json lexicon), or None without them."""
    if not os.path.exists(e.file("names.json")):
        return None
    spec = importlib.util.spec_from_file_location(f"names_guard_{id(e)}", e.file("names_guard.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, module.load(e.file("names.json"))


def bench_translation(args, tmp):
    import tensorflow as tf
    import translation as translation_benchmark  # benchmarks/translation.py: the test split

    import tasks
    from seqkit.metrics import bleu

    p = tasks.load("translation")
    _, test = translation_benchmark.load_split("es-en")
    n = min(args.limit or DEFAULT_LIMIT["translation"] or len(test), len(test))
    index = np.sort(np.random.default_rng(SEED).choice(len(test), size=n, replace=False))
    sources = [test[i][0] for i in index]
    targets = [test[i][1] for i in index]
    print(f"translation: {n} of the {len(test)} test pairs", flush=True)
    pipeline_out = p.translate(sources, beam_width=1, warn=False)
    reference = bleu(pipeline_out, targets)

    def ids(batch):
        batch = [unicodedata.normalize("NFC", s) for s in batch]
        x = p.source_vectorizer(tf.constant(batch)).to_tensor().numpy().astype(np.int32)
        return x if x.shape[1] else np.zeros((len(batch), 1), np.int32)

    batches = [sources[i : i + BATCH] for i in range(0, n, BATCH)]
    exports = export_all(p, tmp, beam_width=1)
    ref_parts = saved_parts(p, tmp)
    quality, diffs, same, decode1, decode64, step1, step64 = {}, {}, {}, {}, {}, {}, {}
    encode64, texters = {}, {}  # texters: variant -> (sentences -> translations)
    # Timing inputs spread over the subset, which is in file order (roughly by length).
    spread = [sources[i] for i in np.linspace(0, n - 1, min(BATCH, n)).astype(int)]
    few = spread[:: max(1, len(spread) // 8)][:8]
    spread_ids = ids(spread)

    settings = _settings(exports)
    # The reference decode of the first batch, every step's inputs kept: each variant's
    # decoder_step is fed the same inputs, so logit differences do not compound.
    taps = []
    _greedy_parts(
        ref_parts["encoder"],
        ref_parts["decoder_step"],
        spread_ids,
        settings,
        tap=lambda t, feeds: taps.append(dict(feeds)),
    )
    ref_logits = [ref_parts["decoder_step"](**feeds)["logits"] for feeds in taps]
    steps_b1 = {k: v[:1] for k, v in taps[0].items()}  # the first step of the first sentence
    steps_b64 = taps[0]

    for name, e in exports.items():
        if e.error:
            continue
        if name == REFERENCE:
            serve = e.loaded.signatures["translate"]

            def run_text(batch, serve=serve):
                out = serve(text=tf.constant(batch))["translation"].numpy()
                return [s.decode("utf-8") for s in out]

            hyps = _quality_safe(lambda run_text=run_text: sum(map(run_text, batches), []))
            texters[name] = run_text
            decode1[name] = lambda run_text=run_text: [run_text([s]) for s in few]
            decode64[name] = lambda run_text=run_text: run_text(spread)
            step, encoder = ref_parts["decoder_step"], ref_parts["encoder"]
        else:
            if settings.get("tokenizer") == "subword":
                import sentencepiece

                vocabulary = sentencepiece.SentencePieceProcessor(
                    model_file=e.file("sentencepiece.model")
                )
            else:
                vocabulary = read_vocabulary(e.file("target_vocabulary.txt"))
            encoder, step = e.parts["encoder"], e.parts["decoder_step"]

            def run_ids(x, encoder=encoder, step=step, vocabulary=vocabulary):
                return _detokenize(_greedy_parts(encoder, step, x, settings), vocabulary, settings)

            guard = _folder_guard(e)

            def run_text(batch, run_ids=run_ids, guard=guard):
                """Text -> text as an app would, with the folder's name guard where it has one."""
                if guard is None:
                    return run_ids(ids(batch))
                module, lexicon = guard
                return module.guarded(lambda b: run_ids(ids(b)), batch, lexicon)  # noqa: B023

            hyps = _quality_safe(lambda run_text=run_text: sum(map(run_text, batches), []))
            texters[name] = run_text
            few_ids = [ids([s]) for s in few]
            decode1[name] = lambda run_ids=run_ids, xs=few_ids: [run_ids(x) for x in xs]
            decode64[name] = lambda run_ids=run_ids, x=spread_ids: run_ids(x)
            diffs[name] = _quality_safe(
                lambda step=step: max(
                    float(np.abs(step(**feeds)["logits"] - want).max())
                    for feeds, want in zip(taps, ref_logits)
                )
            )
        step1[name] = lambda step=step: step(**steps_b1)
        step64[name] = lambda step=step: step(**steps_b64)
        encode64[name] = lambda encoder=encoder: encoder(source_ids=spread_ids)
        if isinstance(hyps, str):
            quality[name] = hyps
            decode1[name] = decode64[name] = step1[name] = step64[name] = None
            encode64[name] = None
            continue
        quality[name] = bleu(hyps, targets)
        same[name] = f"{sum(a == b for a, b in zip(hyps, pipeline_out))}/{n}"
    diffs = {k: v for k, v in diffs.items() if not isinstance(v, str)}
    table = size_quality_table(
        exports, "BLEU (greedy)", quality, reference, diffs, "= pipeline's translation", same
    )
    speed = speed_table(
        {
            "step, batch 1": timings(step1, args.repeats * 5),
            "step, batch 64": timings(step64, args.repeats * 5),
            f"encoder, batch 64 ({spread_ids.shape[1]} words)": timings(encode64, args.repeats),
            "decode, batch 1 (per sentence)": {
                k: (v / len(few) if not isinstance(v, str) else v)
                for k, v in timings(decode1, args.repeats).items()
            },
            "decode, batch 64": timings(decode64, args.repeats),
        }
    )
    notes = (
        f"{n:,} sentences of the test split (line index % 50 == 0)"
        + (f", seeded sample (seed {SEED})" if n < len(test) else "")
        + f", greedy, batches of {BATCH} in file order; max diff: the logits of decoder_step "
        f"over the {len(taps)} steps of the reference decode of {len(spread)} sentences spread "
        "over the lengths (also the decode batch 64 timed). Step reference: the "
        "decoder_step function saved alone as a SavedModel. Decode: SavedModel `translate` "
        "on strings; the exported loop from source ids to text (tokenization and the "
        "folder's names_guard.py not timed; BLEU and = pipeline's translation: with it)."
    )
    names = _names_table(p, texters)
    notes += (
        " Names: the unseen names and numbers of benchmarks/translation.py's `names` sets 1 "
        "and 2 (240 sentences each), greedy, each variant as an app runs it (the ONNX and "
        "LiteRT folders: with their names_guard.py)."
    )
    return {"task": "translation", "n": n, "tables": [table, speed, names], "notes": notes}


def _names_table(p, texters) -> str:
    """Names and numbers carried by each variant, against the pipeline's greedy translate."""
    import _mt_names  # benchmarks/_mt_names.py
    import _mt_splits

    text = "\n".join(f"{en}\t{es}" for en, es in _mt_splits.read_pairs(DATA))
    lines = [
        "| variant | names + numbers carried, set 1 | set 2 | = pipeline's translation |",
        "|---|---|---|---|",
    ]
    rows = {"pipeline (in process)": lambda b: p.translate(b, beam_width=1, warn=False)}
    rows["pipeline, keep_names=False"] = lambda b: p.translate(
        b, beam_width=1, warn=False, keep_names=False
    )
    rows.update(texters)
    sets = [_mt_names.cases(text, n=240, other=other) for other in (False, True)]
    want = None
    for name, fn in rows.items():
        out = [_quality_safe(lambda c=c, fn=fn: fn([x["source"] for x in c])) for c in sets]
        if any(isinstance(o, str) for o in out):
            lines.append(f"| {name} | {next(o for o in out if isinstance(o, str))} | | |")
            continue
        scores = [_mt_names.score(c, o)["carried"] for c, o in zip(sets, out)]
        flat = sum(out, [])
        want = flat if want is None else want
        same = f"{sum(a == b for a, b in zip(flat, want))}/{len(want)}"
        lines.append(f"| {name} | {100 * scores[0]:.1f} % | {100 * scores[1]:.1f} % | {same} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- textgen
def _lm_loop(step, names, prompt, rows, steps, never):
    """The README's greedy loop over the ``step`` runtime: zero states, the prompt, then
    ``steps`` argmax tokens; returns them (rows, steps)."""
    states = {k: np.zeros((rows, w), np.float32) for k, w in names}
    out = None
    for token in prompt:
        out = step(token_ids=np.full((rows,), token, np.int32), **states)
        states = {k: out["new_" + k] for k in states}
    tokens = []
    for _ in range(steps):
        logits = np.array(out["logits"], np.float32)
        logits[:, never] = -np.inf
        token = logits.argmax(-1).astype(np.int32)
        tokens.append(token)
        out = step(token_ids=token, **states)
        states = {k: out["new_" + k] for k in states}
    return np.stack(tokens, 1)


def bench_textgen(args, tmp):
    import tensorflow as tf
    import textgen as textgen_benchmark  # benchmarks/textgen.py: the held-out 10 %

    import tasks

    p = tasks.load("textgen")
    _, val = textgen_benchmark.load_split()
    ids = p.preprocessor(p._read(val))
    # As evaluate(val, batch_size=64) cuts it: 64 contiguous streams, state carried.
    streams = BATCH
    chunk = (len(ids) - 1) // streams
    x = ids[: streams * chunk].reshape(streams, chunk).astype(np.int32)
    y = ids[1 : streams * chunk + 1].reshape(streams, chunk)
    if args.limit:
        x, y = x[:, : args.limit], y[:, : args.limit]
    length = x.shape[1]
    print(f"textgen: {streams} streams x {length} characters of the held-out text", flush=True)

    score = p._score_fn()  # evaluate's loop: windows of seq_length, state carried
    states = p.model.zero_states(streams)
    total = 0.0
    for s in range(0, length, p.seq_length):
        nll, states = score(
            tf.constant(x[:, s : s + p.seq_length]), tf.constant(y[:, s : s + p.seq_length]), states
        )
        total += float(nll)
    reference = total / (streams * length) / math.log(2)

    exports = export_all(p, tmp)
    ref_parts = saved_parts(p, tmp)
    settings = _settings(exports)
    names = [(k, p.model.units) for k in _state_order(exports)]

    def stream(step, keep=None, against=None):
        """bits/char over the streams; keep: list to store logits; against: max diff."""
        states = {k: np.zeros((streams, w), np.float32) for k, w in names}
        nll, worst = 0.0, 0.0
        rows = np.arange(streams)
        for t in range(length):
            out = step(token_ids=x[:, t], **states)
            logits = np.asarray(out["logits"], np.float64)
            z = logits - logits.max(-1, keepdims=True)
            log_p = z - np.log(np.exp(z).sum(-1, keepdims=True))
            nll -= log_p[rows, y[:, t]].sum()
            if keep is not None:
                keep.append(np.asarray(out["logits"], np.float32))
            if against is not None:
                worst = max(worst, float(np.abs(out["logits"] - against[t]).max()))
            states = {k: out["new_" + k] for k in states}
        return nll / (streams * length) / math.log(2), worst

    quality, diffs, same, steps1, steps64, decode1, decode64 = {}, {}, {}, {}, {}, {}, {}
    ref_logits = []
    quality[REFERENCE] = _quality_safe(lambda: stream(ref_parts["step"], keep=ref_logits)[0])
    prompt = [int(i) for i in p._prompt_ids("ROMEO:", on_unknown="error")]
    new_tokens, never = 200, settings["never_generate"]
    # States after the prompt (the same inputs for every variant's one-step timing).
    warm = {k: np.zeros((BATCH, w), np.float32) for k, w in names}
    for token in prompt:
        out = ref_parts["step"](token_ids=np.full((BATCH,), token, np.int32), **warm)
        warm = {k: out["new_" + k] for k in warm}
    feeds64 = {"token_ids": np.full((BATCH,), prompt[-1], np.int32), **warm}
    feeds1 = {k: v[:1] for k, v in feeds64.items()}
    greedy = {}
    for name, e in exports.items():
        if e.error:
            continue
        if name == REFERENCE:
            step = ref_parts["step"]
            gen = e.loaded.generate_ids

            def run_gen(rows, gen=gen):
                return gen(tf.constant(prompt, tf.int32), rows, new_tokens, 0.0, 0, 1.0, 0).numpy()

            decode1[name] = lambda run_gen=run_gen: run_gen(1)
            decode64[name] = lambda run_gen=run_gen: run_gen(BATCH)
            greedy[name] = _quality_safe(lambda run_gen=run_gen: run_gen(1)[0])
        else:
            step = e.parts["step"]
            result = _quality_safe(lambda step=step: stream(step, against=ref_logits))
            if isinstance(result, str):
                quality[name] = result
                continue
            quality[name], diffs[name] = result

            def run_loop(rows, step=step):
                return _lm_loop(step, names, prompt, rows, new_tokens, never)

            decode1[name] = lambda run_loop=run_loop: run_loop(1)
            decode64[name] = lambda run_loop=run_loop: run_loop(BATCH)
            greedy[name] = _quality_safe(lambda run_loop=run_loop: run_loop(1)[0])
        steps1[name] = lambda step=step: step(**feeds1)
        steps64[name] = lambda step=step: step(**feeds64)
    base = greedy.get(REFERENCE)
    for name, tokens in greedy.items():
        if isinstance(tokens, str) or isinstance(base, str) or base is None:
            continue
        differ = np.flatnonzero(tokens != base)
        same[name] = "identical" if not len(differ) else f"differs from token {differ[0] + 1}"
    table = size_quality_table(
        exports,
        "bits/char",
        quality,
        reference,
        diffs,
        f'greedy {new_tokens} after "ROMEO:" vs SavedModel',
        same,
    )
    speed = speed_table(
        {
            "step, batch 1": timings(steps1, args.repeats * 5),
            "step, batch 64": timings(steps64, args.repeats * 5),
            f"decode {new_tokens}, batch 1": timings(decode1, args.repeats),
            f"decode {new_tokens}, batch 64": timings(decode64, args.repeats),
        }
    )
    notes = (
        f"{streams} streams x {length} characters ({streams * length:,}) of the last 10 % "
        "of Tiny Shakespeare; reference: the Keras model (evaluate's loop) on the same streams; "
        "SavedModel row: the step function saved alone as a SavedModel, stepped the same way "
        "(the pipeline's SavedModel serves whole texts), also the step reference for speed; "
        "max diff: logits at every character. Decode: 200 greedy characters after "
        '"ROMEO:" (the SavedModel\'s generate_ids; batch 64 = 64 rows of the same prompt).'
    )
    return {"task": "textgen", "n": streams * length, "tables": [table, speed], "notes": notes}


def _portable_file(exports, name: str):
    """A file of the first portable export that worked (they all write the same ones)."""
    for e in exports.values():
        if not e.error and e.fmt != "saved_model":
            with open(e.file(name), encoding="utf-8") as f:
                return json.load(f)
    raise RuntimeError(f"no ONNX or LiteRT export was written, so no {name} to read")


def _settings(exports) -> dict:
    return _portable_file(exports, "tokenizer.json")


def _state_order(exports) -> list[str]:
    """The step part's state names (h_0, c_0, ...) in signature.json's order."""
    spec = _portable_file(exports, "signature.json")["parts"]["step"]
    outs = {t["name"] for t in spec["outputs"]}
    return [t["name"] for t in spec["inputs"] if "new_" + t["name"] in outs]


# ----------------------------------------------------------------------------- forecasting
def bench_forecasting(args, tmp):
    import forecasting as forecasting_benchmark  # benchmarks/forecasting.py: the held-out period
    import tensorflow as tf

    import tasks
    from seqkit import metrics as M
    from seqkit.series import make_windows

    p = tasks.load("forecasting")
    df = pd.read_csv(os.path.join(DATA, forecasting_benchmark.PRICES))
    if args.limit:
        df = df[df.ticker.isin(sorted(df.ticker.unique())[: args.limit])]
    data = p._read(df, missing="ffill")
    start = pd.Timestamp(forecasting_benchmark.HOLDOUT_START)
    H = p.horizon
    windows, futures, scales = [], [], []
    for frame in data.series.values():  # the origins backtest(stride=1) scores
        values = frame.to_numpy()
        y = values[:, 0]
        history_end = int(np.searchsorted(frame.index.values, start.to_datetime64()))
        origins = np.arange(max(p.lookback - 1, history_end), len(y) - H)
        if len(origins) == 0 or history_end < 5 + H + 2:
            continue
        w, future = make_windows(values, p.lookback, H, origins)
        windows.append(w)
        futures.append(future)
        scales.append(np.full(len(origins), np.mean(np.abs(np.diff(y[:history_end]))) + 1e-12))
    windows = np.concatenate(windows).astype(np.float32)
    future, scale = np.concatenate(futures), np.concatenate(scales)
    n = len(windows)
    print(f"forecasting: {n} windows ({len(data.series)} tickers) from {start.date()}", flush=True)

    def mase(point):  # (n, H) -> MASE pooled over the horizons, as backtest's "all" row
        return M.mase(future.ravel(), point.ravel(), np.repeat(scale, H))

    chunk = 4096
    pipeline_q = p._forecast_windows(windows)
    reference = mase(pipeline_q[:, :, p.point_index])
    exports = export_all(p, tmp)
    quality, diffs, outputs, calls1, calls64 = {}, {}, {}, {}, {}
    for name, e in exports.items():
        if e.error:
            continue
        if name == REFERENCE:
            serve = e.loaded.signatures["serving_default"]

            def run(w, serve=serve):
                out = serve(window=tf.constant(w))
                return out["forecast"].numpy(), out["quantiles"].numpy()
        else:
            model = e.parts["model"]

            def run(w, model=model):
                out = model(window=w)
                return out["forecast"], out["quantiles"]

        got = _quality_safe(
            lambda run=run: [run(windows[s : s + chunk]) for s in range(0, n, chunk)]
        )
        calls1[name] = lambda run=run: run(windows[:1])
        calls64[name] = lambda run=run: run(windows[:BATCH])
        if isinstance(got, str):
            quality[name] = got
            calls1[name] = calls64[name] = None
            continue
        forecast = np.concatenate([g[0] for g in got])
        outputs[name] = np.concatenate([g[1] for g in got])
        quality[name] = mase(forecast)
    base = outputs.get(REFERENCE)
    rel = {}
    for name, q in outputs.items():
        if base is not None:
            diffs[name] = float(np.abs(q - base).max())
            rel[name] = f"{float((np.abs(q - base) / np.abs(base)).max()):.1e}"
    if base is not None:
        print(
            f"  pipeline vs SavedModel quantiles: max abs diff {np.abs(pipeline_q - base).max():.2e}"
        )
    table = size_quality_table(
        exports, "MASE (h 1-5)", quality, reference, diffs, "max relative diff", rel
    )
    speed = speed_table(
        {
            "batch 1": timings(calls1, args.repeats * 5),
            "batch 64": timings(calls64, args.repeats * 5),
        }
    )
    notes = (
        f"{n:,} windows: every ticker, every origin from {start.date()} with 5 rows ahead "
        "(stride 1, as benchmarks/forecasting.py's backtest); MASE of the point forecast "
        "(quantile 0.5) pooled over horizons 1-5; max diff over all quantile forecasts, in "
        "dollars (relative: divided by the SavedModel's value)."
    )
    return {"task": "forecasting", "n": n, "tables": [table, speed], "notes": notes}


BENCHES = {
    "sentiment": bench_sentiment,
    "textgen": bench_textgen,
    "translation": bench_translation,
    "forecasting": bench_forecasting,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=list(BENCHES), action="append")
    parser.add_argument(
        "--limit", type=int, default=0, help="subset size of the chosen task(s), see above"
    )
    parser.add_argument("--repeats", type=int, default=10, help="timed calls (steps: 5x)")
    parser.add_argument("--json", help="also write the tables and notes here")
    args = parser.parse_args()
    import keras
    import tensorflow as tf

    started = time.time()
    header = (
        f"machine: {_machine.describe()}; tensorflow {tf.__version__}, keras {keras.__version__}, "
        f"onnxruntime {_version('onnxruntime')}, ai-edge-litert {_version('ai_edge_litert')}, "
        f"tf2onnx {_version('tf2onnx')}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    print(header, flush=True)
    results = []
    for task in args.task or list(BENCHES):
        t0 = time.time()
        with tempfile.TemporaryDirectory(prefix=f"seqkit-export-{task}-") as tmp:
            result = BENCHES[task](args, tmp)
        result["seconds"] = round(time.time() - t0, 1)
        results.append(result)
        print(f"\n### {task} ({result['seconds']:.0f} s)\n")
        print(result["notes"] + "\n")
        for table in result["tables"]:
            print(table + "\n", flush=True)
    total = time.time() - started
    print(f"total {total / 60:.1f} min")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"header": header, "results": results, "seconds": total}, f, indent=1)


def _version(module: str) -> str:
    try:
        from importlib.metadata import version

        return version(module.replace("_", "-"))
    except Exception:
        return "?"


if __name__ == "__main__":
    main()
