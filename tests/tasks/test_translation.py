"""TranslationPipeline and the search/attention pieces under it, on a tiny made-up language."""

import json
import os
import re
import subprocess
import sys
import textwrap
import unicodedata
import warnings

import numpy as np
import pytest
import tensorflow as tf

import tasks
from seqkit.data import PairData
from seqkit.layers import DecoderAttention
from seqkit.samplers import (
    BeamSampler,
    GreedySampler,
    TopKSampler,
    beam_search,
    greedy_search,
    length_normalize,
)
from tasks.base import PipelineError
from tasks.translation import (
    START_ID,
    Seq2Seq,
    TranslationPipeline,
    TranslationPreprocessor,
    detokenize_python,
)

LEXICON = {
    "el": "the", "gato": "cat", "perro": "dog", "niño": "boy", "come": "eats",
    "ve": "sees", "pan": "bread", "agua": "water", "bebe": "drinks", "grande": "big",
    "rojo": "red", "está": "is", "aquí": "here", "dónde": "where",
}  # fmt: skip


def make_pairs(n, seed=0):
    """Spanish-like sources and English-like targets: word-for-word, adjectives swapped."""
    rng = np.random.RandomState(seed)
    nouns, verbs, adjs = (
        ["gato", "perro", "niño", "pan", "agua"],
        ["come", "ve", "bebe"],
        [
            "grande",
            "rojo",
        ],
    )
    pairs = []
    for i in range(n):
        if i % 5 == 0:
            noun = rng.choice(nouns)
            pairs.append((f"¿Dónde está el {noun}?", f"Where is the {LEXICON[noun]}?"))
            continue
        subj, obj, adj = rng.choice(nouns), rng.choice(nouns), rng.choice(adjs)
        verb = rng.choice(verbs)
        src = f"el {subj} {adj} {verb} el {obj}."
        tgt = f"the {LEXICON[adj]} {LEXICON[subj]} {LEXICON[verb]} the {LEXICON[obj]}."
        pairs.append((src, tgt))
    return pairs


# The word tokenizer (its own tests); the subword default: test_translation_subword.py.
SMALL = dict(
    units=32, embedding_dim=32, max_tokens=64, target_max_tokens=64, dropout=0.0, tokenizer="word"
)
FIT = dict(epochs=12, batch_size=32, verbose=0, checkpoint_dir=None, learning_rate=1e-2)


@pytest.fixture(scope="module")
def mt():
    return TranslationPipeline(**SMALL, seed=2).fit(make_pairs(800), **FIT)


# ----------------------------------------------------------------- learning and metrics
def test_learns_the_toy_language_and_bleu_is_sacrebleus(mt):
    import sacrebleu

    test = make_pairs(100, seed=9)
    sources, refs = [s for s, _ in test], [t for _, t in test]
    m = mt.evaluate(test, beam_width=3)
    assert m["bleu_greedy"] > 60 and m["bleu_beam"] > 60 and m["n"] == 100
    hyps = mt.translate(sources)
    assert m["bleu_greedy"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
    assert m["chrf_greedy"] == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score)
    assert mt.translate("¿Dónde está el gato?") == "Where is the cat?"
    assert "val_bleu" in mt.history and len(mt.history["val_bleu"]) == len(mt.history["loss"])


def test_beam_width_one_equals_greedy(mt):
    sources = [s for s, _ in make_pairs(40, seed=4)]
    greedy = mt.translate(sources, beam_width=1, return_attention=True)
    # the search functions themselves: beam search with one beam is greedy search
    dec = mt._decoder(1, False)
    ids = dec.source_vectorizer(tf.constant(sources)).to_tensor()
    memory, mask, states = mt.model.encode(ids)
    keys = mt.model.attention.project_keys(memory)

    def step(tokens, state):
        s, mem, msk, k = state
        logits, new, w = mt.model.step(tokens, s, mem, msk, k)
        return logits, (new, mem, msk, k), w

    state = (states, memory, mask, keys)
    g = greedy_search(step, state, len(sources), 20, START_ID, 3)
    b = beam_search(step, state, len(sources), 1, 20, START_ID, 3, 0.6)
    np.testing.assert_array_equal(g[0].numpy(), b[0].numpy())
    np.testing.assert_allclose(g[1].numpy(), b[1].numpy(), rtol=1e-5)
    # ...and the pipeline's greedy translation is that search (special tokens, which
    # it bans, are never a trained model's argmax here)
    vocab = mt.target_vocabulary
    for r, row in zip(greedy, g[0].numpy()):
        words = [vocab[i] for i in row if i > 3]
        assert r["target_tokens"] == words + ["[END]"]


@pytest.mark.parametrize("length_penalty", [0.0, 0.6])
def test_beam_search_never_scores_below_greedy(mt, length_penalty):
    sources = [s for s, _ in make_pairs(40, seed=6)] + ["el gato", "agua", "¿Dónde?"]
    greedy = mt.translate(sources, beam_width=1, return_attention=True)
    beam = mt.translate(sources, beam_width=4, length_penalty=length_penalty, return_attention=True)

    def norm(r):
        return float(length_normalize(r["score"], len(r["target_tokens"]), length_penalty))

    for g, b in zip(greedy, beam):
        assert norm(b) >= norm(g) - 1e-4
    if length_penalty == 0.0:  # raw model scores, recomputed by teacher forcing
        targets = [b["translation"] for b in beam]
        rescored = mt.score(sources, targets)
        np.testing.assert_allclose(rescored, [b["score"] for b in beam], atol=1e-3)


def test_beam_search_finds_what_greedy_misses():
    """A 2-step toy model where the best first token leads to a poor second step."""
    # vocab: 0 pad, 1 unused, 2 start, 3 end, 4 "a", 5 "b"
    first = np.log([1e-9, 1e-9, 1e-9, 1e-9, 0.6, 0.4])  # after start: a (0.6) or b (0.4)
    after_a = np.log([1e-9, 1e-9, 1e-9, 0.5, 0.25, 0.25])  # a -> end 0.5
    after_b = np.log([1e-9, 1e-9, 1e-9, 1.0 - 2e-9, 1e-9, 1e-9])  # b -> end ~1.0
    table = tf.constant(np.stack([first] * 4 + [after_a, after_b]), tf.float32)

    def step(tokens, state):
        return tf.gather(table, tokens), state, tf.zeros([tf.shape(tokens)[0], 0])

    state = tf.zeros([1, 1])
    g_ids, g_score, _, _ = greedy_search(step, state, 1, 5, 2, 3)
    b_ids, b_score, _, _ = beam_search(step, state, 1, 2, 5, 2, 3, length_penalty=0.0)
    assert g_ids.numpy()[0, :2].tolist() == [4, 3]  # greedy: a, end (p = 0.3)
    assert b_ids.numpy()[0, :2].tolist() == [5, 3]  # beam: b, end (p = 0.4)
    assert b_score.numpy()[0] == pytest.approx(np.log(0.4), abs=1e-5)
    assert g_score.numpy()[0] == pytest.approx(np.log(0.3), abs=1e-5)


# ----------------------------------------------------------------- attention
@pytest.mark.parametrize("score", ["bahdanau", "luong"])
def test_attention_sums_to_one_and_ignores_padding(score):
    att = DecoderAttention(8, score=score)
    rng = np.random.RandomState(0)
    query = rng.normal(size=(3, 4, 6)).astype("float32")
    values = rng.normal(size=(3, 5, 6)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]], bool)
    context, weights = att(query, values, mask)
    w = np.asarray(weights)
    np.testing.assert_allclose(w[:2].sum(-1), 1.0, rtol=1e-6)
    assert (w[0, :, 3:] == 0).all() and (w[2] == 0).all()  # padding and empty rows: zero
    np.testing.assert_allclose(np.asarray(context)[2], 0.0)
    # changing what sits under the padding changes nothing
    values2 = values.copy()
    values2[0, 3:] = 100.0
    np.testing.assert_allclose(
        np.asarray(att(query, values2, mask)[0])[0], np.asarray(context)[0], rtol=1e-5
    )
    one_ctx, one_w = att(query[:, 0], values, mask)  # one decoder step
    np.testing.assert_allclose(np.asarray(one_w), w[:, 0], rtol=1e-5, atol=1e-7)


def test_translation_attention_maps(mt, tmp_path):
    r = mt.translate("el perro grande ve el gato.", return_attention=True)[0]
    att = r["attention"]
    assert att.shape == (len(r["target_tokens"]), len(r["source_tokens"]))
    np.testing.assert_allclose(att.sum(-1), 1.0, rtol=1e-5)
    assert r["target_tokens"][-1] == "[END]"
    path = mt.plot_attention("el perro grande ve el gato.", str(tmp_path / "att.png"))
    assert os.path.getsize(path) > 1000


# ----------------------------------------------------------------- text handling
def test_unicode_and_inverted_marks_survive():
    decomposed = unicodedata.normalize("NFD", "¿Dónde está?")
    assert decomposed != "¿Dónde está?"
    mt = TranslationPipeline("en", "es", **SMALL)
    pairs = [(t, s) for s, t in make_pairs(400)]  # English -> Spanish
    pairs += [("Where is the cat?", decomposed)] * 10  # targets in decomposed form too
    mt.fit(pairs, **{**FIT, "epochs": 10})
    tokens = mt.source_vectorizer.tokens(decomposed)
    assert tokens == ["¿", "Dónde", "está", "?"]
    assert detokenize_python(["¿", "Dónde", "está", "?"]) == "¿Dónde está?"
    assert "Dónde" in mt.target_vocabulary and unicodedata.normalize("NFD", "Dónde") not in (
        mt.target_vocabulary
    )
    assert mt.translate("Where is the cat?") == "¿Dónde está el gato?"
    assert mt.evaluate([("Where is the dog?", "¿Dónde está el perro?")], beam_width=2)["n"] == 1


def test_long_and_empty_sources_warn_and_do_not_crash(mt):
    long = " ".join(["el gato come el pan."] * 20)
    with pytest.warns(UserWarning, match="longer than max_length=40"):
        out = mt.translate(long)
    assert isinstance(out, str)
    with pytest.warns(UserWarning, match="are empty; they translate to ''"):
        assert mt.translate(["", "el gato."])[0] == ""


# ----------------------------------------------------------------- save, load, export
def test_save_load_round_trip(mt, tmp_path):
    mt.save(tmp_path / "mt")
    loaded = tasks.load(str(tmp_path / "mt"))
    assert isinstance(loaded, TranslationPipeline) and loaded.get_config() == mt.get_config()
    sources = [s for s, _ in make_pairs(20, seed=3)]
    assert loaded.translate(sources, beam_width=3) == mt.translate(sources, beam_width=3)
    assert json.load(open(tmp_path / "mt" / "pipeline.json"))["task"] == "translation"


def test_old_argument_names_warn_and_mean_the_new_ones():
    old = dict(encoder_layers=2, bidirectional_encoder=False, source_vocab_size=50)
    old.update(target_vocab_size=40, source_max_length=12)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mt = TranslationPipeline(**old, tokenizer="word")  # (those names predate subwords)
    assert [(w.category, str(w.message).split(" is now")[0]) for w in caught] == [
        (FutureWarning, f"`{name}`") for name in old
    ]
    config = mt.get_config()
    assert not set(old) & set(config)
    assert [config[k] for k in ("layers", "bidirectional", "max_tokens")] == [2, False, 50]
    assert [config[k] for k in ("target_max_tokens", "max_length")] == [40, 12]
    with pytest.raises(PipelineError, match="Received both `encoder_layers` and `layers`"):
        TranslationPipeline(encoder_layers=2, layers=2)


def test_a_folder_saved_with_the_old_names_loads_silently(mt, tmp_path):
    folder = mt.save(str(tmp_path / "mt"))
    meta = json.load(open(os.path.join(folder, "pipeline.json"), encoding="utf-8"))
    renames = {"layers": "encoder_layers", "bidirectional": "bidirectional_encoder"}
    renames.update(max_tokens="source_vocab_size", target_max_tokens="target_vocab_size")
    renames["max_length"] = "source_max_length"
    meta["config"] = {renames.get(k, k): v for k, v in meta["config"].items()}
    json.dump(meta, open(os.path.join(folder, "pipeline.json"), "w", encoding="utf-8"))
    os.remove(
        os.path.join(folder, "CHECKSUMS.sha256")
    )  # the seqkit that used those names wrote none
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        loaded = tasks.load(folder)
    assert loaded.get_config() == mt.get_config()


def test_the_preprocessor_fits_encodes_and_round_trips_its_assets(mt):
    pre = TranslationPreprocessor(
        max_tokens=100, target_max_tokens=100, max_length=3, tokenizer="word"
    )
    assert not pre.fitted
    assert pre.fit(PairData(["el gato.", "el perro."], ["the cat.", "the dog."], "lists")) is pre
    assert pre.fitted and pre.target_vocabulary[:4] == ["[PAD]", "[UNK]", "[START]", "[END]"]
    ids = pre(["el perro.", "el"])  # padded, truncated to max_length
    assert ids.shape == (2, 3) and ids.dtype == np.int32 and ids[1, 1:].tolist() == [0, 0]
    twin = TranslationPreprocessor(**pre.get_config())
    twin.set_assets(pre.get_assets())
    assert twin.get_assets() == pre.get_assets() and (twin("el gato.") == pre("el gato.")).all()
    assert sorted(pre.get_assets()) == ["names_lexicon", "source_vocabulary", "target_vocabulary"]
    damaged = {**pre.get_assets(), "target_vocabulary": ["[PAD]", "[UNK]", "x"]}
    with pytest.raises(PipelineError, match="The saved assets are damaged"):
        twin.set_assets(damaged)
    # the pipeline's own: the model's source ids are the preprocessor's
    sources = [s for s, _ in make_pairs(5, seed=1)]
    np.testing.assert_array_equal(
        mt.preprocessor(sources), mt._decoder(1, False).source_vectorizer(sources).to_tensor()
    )
    assert mt.source_vectorizer is mt.preprocessor.source_vectorizer


def _expand(paths: str) -> set:
    """'a/{b,c}/d{0,1}' -> {'a/b/d0', 'a/b/d1', 'a/c/d0', 'a/c/d1'} (space-separated patterns)."""
    import itertools
    import re

    out = set()
    for pattern in paths.split():
        parts = re.split(r"\{([^}]*)\}", pattern)
        options = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
        out.update("".join(c) for c in itertools.product(*options))
    return out


_COMMON = "attention/vars/0 combine/vars/{0,1} decoder/cell/vars/{0,1,2} head/vars/{0,1} "
_COMMON += "layers/{embedding,embedding_1}/vars/0 "
# The dataset paths of model.weights.h5 as seqkit 0.1.0 saved them (read from folders that
# version saved, with these configurations).
LEGACY_PATHS = {
    "gru, 2 bidirectional layers": (
        dict(cell="gru", layers=2, bidirectional=True),
        _COMMON
        + "bridges/dense/vars/{0,1} "
        + "encoders/{bidirectional,bidirectional_1}/{forward,backward}_layer/cell/vars/{0,1,2}",
    ),
    "lstm, 3 layers": (
        dict(cell="lstm", layers=3, bidirectional=False),
        _COMMON
        + "bridges/{dense,dense_1}/vars/{0,1} encoders/{lstm,lstm_1,lstm_2}/cell/vars/{0,1,2}",
    ),
    "rnn, 2 layers": (
        dict(cell="rnn", layers=2, bidirectional=False),
        _COMMON + "bridges/dense/vars/{0,1} encoders/{simple_rnn,simple_rnn_1}/cell/vars/{0,1,2}",
    ),
}


@pytest.mark.parametrize("name", sorted(LEGACY_PATHS))
def test_every_weight_maps_to_its_seqkit_0_1_0_path(name, tmp_path):
    import h5py

    config, old = LEGACY_PATHS[name]
    mt = TranslationPipeline(units=4, embedding_dim=4, tokenizer="word", **config)
    mt.preprocessor.fit(PairData(["el gato."], ["the cat."], "lists"))
    mt._build_model().save_weights(str(tmp_path / "m.weights.h5"))
    paths = []
    with h5py.File(tmp_path / "m.weights.h5", "r") as f:
        f.visititems(lambda n, item: paths.append(n) if isinstance(item, h5py.Dataset) else None)
    mapped = [mt._legacy_weight_path(p) for p in paths]
    assert len(set(mapped)) == len(paths) and set(mapped) == _expand(old)


def test_the_model_takes_its_old_argument_names_and_state_counts_from_the_cells():
    with pytest.warns(FutureWarning, match="`encoder_layers` is now called `layers`"):
        model = Seq2Seq(10, 12, embedding_dim=4, units=4, cell="lstm", encoder_layers=2)
    assert model.get_config()["layers"] == 2 and model.n_states == 2 == len(model.bridges)
    again = Seq2Seq.from_config({**model.get_config(), "bidirectional_encoder": False})
    assert again.get_config()["bidirectional"] is False and again.dec_units == 4


def test_export_checks_its_arguments(mt, tmp_path):
    with pytest.raises(PipelineError, match=r"Received `beam_width=0`; expected an integer >= 1."):
        mt.export(str(tmp_path / "x"), beam_width=0)
    with pytest.raises(PipelineError, match=r"Received `length_penalty=-1`; expected a number"):
        mt.export(str(tmp_path / "x"), length_penalty=-1)
    assert not (tmp_path / "x").exists()


def test_export_translates_in_a_fresh_process_without_seqkit(mt, tmp_path):
    sources = [s for s, _ in make_pairs(12, seed=8)] + ["¿Dónde está el niño?", ""]
    mt.export(str(tmp_path / "served"), beam_width=4)
    expected = mt.translate(sources, beam_width=4, warn=False)
    script = textwrap.dedent(
        f"""
        import json, sys
        import tensorflow as tf
        m = tf.saved_model.load({str(tmp_path / "served")!r})
        fn = m.signatures["translate"]
        out = fn(text=tf.constant({sources!r}))["translation"]
        spec = lambda s: [s.dtype.name, s.shape.as_list()]
        print(json.dumps({{
            "out": [x.decode("utf-8") for x in out.numpy()],
            "signatures": sorted(m.signatures),
            "inputs": {{k: spec(v) for k, v in fn.structured_input_signature[1].items()}},
            "outputs": {{k: spec(v) for k, v in fn.structured_outputs.items()}},
            "default": sorted(m.signatures["serving_default"].structured_outputs),
            "seqkit_imported": any(n.startswith(("seqkit", "tasks")) for n in sys.modules),
        }}))
        """
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["out"] == expected and not result["seqkit_imported"]
    assert result["signatures"] == ["serving_default", "translate"]
    assert result["inputs"] == {"text": ["string", [None]]}
    assert result["outputs"] == {"translation": ["string", [None]]}
    assert result["default"] == ["translation"]


# ----------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "data, message",
    [
        ([], "No sentence pairs in the pairs; give at least one."),
        ([("hola", "hello"), ("", "x")], "Pair 1 of the pairs: the source is empty"),
        ([("hola", "hello"), ("x", 3)], "Pair 1 of the pairs: the target is a int (3); expected"),
        ([("hola",)], "Pair 0 is ('hola',); expected a (source, target) pair of strings."),
        ("missing.tsv", "No such file: missing.tsv."),
    ],
)
def test_bad_pairs_are_named(data, message):
    with pytest.raises(PipelineError, match=re.escape(message)):
        TranslationPipeline(**SMALL).fit(data, **FIT)


def test_tsv_in_the_anki_format(tmp_path):
    mt = TranslationPipeline("es", "en", **SMALL)
    path = tmp_path / "pairs.tsv"
    path.write_text("Go.\tVe.\tCC-BY 2.0 (France) Attribution\nHi.\tHola.\n", encoding="utf-8")
    pairs = mt._read(str(path))
    assert pairs.texts == ["Ve.", "Hola."] and pairs.labels == ["Go.", "Hi."]
    english_first = TranslationPipeline("en", "es", **SMALL)._read(str(path))
    assert english_first.texts == ["Go.", "Hi."]
    assert mt._read(str(path), tsv_source_column=0, tsv_target_column=1).texts == ["Go.", "Hi."]
    path.write_text("Go.\tVe.\nno tab here\n", encoding="utf-8")
    with pytest.raises(PipelineError, match=r"line 2: expected 2 tab-separated columns"):
        mt._read(str(path))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(cell="tcn"), "Received `cell='tcn'`; expected one of ('lstm', 'gru', 'rnn')."),
        (
            dict(attention="dot"),
            "Received `attention='dot'`; expected one of ('bahdanau', 'luong').",
        ),
        (dict(units=0), "Received `units=0`; expected an integer >= 1."),
        (dict(dropout=-0.1), "Received `dropout=-0.1`; expected a number in [0, 1)."),
        (dict(source_lang=""), "Received `source_lang=''`; expected a language code."),
    ],
)
def test_bad_hyperparameters(kwargs, message):
    with pytest.raises(PipelineError, match=re.escape(message)):
        TranslationPipeline(**kwargs)


def test_translate_takes_a_sampler_object_as_keras_hub_does(mt, tmp_path):
    sources = [s for s, _ in make_pairs(12, seed=5)]
    beam = mt.translate(sources, beam_width=3, length_penalty=0.2)
    assert mt.translate(sources, sampler=BeamSampler(3, length_penalty=0.2)) == beam
    assert mt.translate(sources, sampler=GreedySampler()) == mt.translate(sources)
    assert mt.translate(sources, sampler=BeamSampler(1)) == mt.translate(sources)
    with pytest.raises(PipelineError, match=r"Received both `sampler=BeamSampler\(num_beams=3"):
        mt.translate(sources, beam_width=3, sampler=BeamSampler(3))
    with pytest.raises(PipelineError, match=r"a search takes BeamSampler\(num_beams, length_pe"):
        mt.translate(sources, sampler=TopKSampler(5))
    with pytest.raises(PipelineError, match=r"Received `num_beams=0`; expected an integer >= 1."):
        BeamSampler(0)
    with pytest.raises(PipelineError, match=r"Received both `sampler="):
        mt.export(str(tmp_path / "x"), sampler=BeamSampler(2), length_penalty=0.1)
    assert not (tmp_path / "x").exists()


def test_bad_translate_arguments(mt):
    with pytest.raises(PipelineError, match=r"Received `beam_width=0`; expected an integer >= 1."):
        mt.translate("hola", beam_width=0)
    with pytest.raises(
        PipelineError, match=r"Received `length_penalty=-1`; expected a number >= 0."
    ):
        mt.translate("hola", length_penalty=-1)
    with pytest.raises(PipelineError, match=r"Text 1 is a int \(5\); expected a string."):
        mt.translate(["hola", 5])
    with pytest.raises(PipelineError, match=r"translate\(\) needs a trained pipeline"):
        TranslationPipeline().translate("hola")


def test_seqkit_translate_and_train_commands(tmp_path, capsys):
    from tasks.cli import main

    lines = [f"{t}\t{s}" for s, t in make_pairs(300)]  # Anki order: english<TAB>spanish
    (tmp_path / "pairs.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    small = [f"--set={k}={v}" for k, v in SMALL.items()]
    args = ["train", "translation", "--data", str(tmp_path / "pairs.tsv"), "--out"]
    args += [str(tmp_path / "mt"), "--epochs", "1", "--verbose", "0", "--checkpoint-dir", ""]
    assert main(args + small) == 0
    capsys.readouterr()
    assert main(["translate", "el gato come.", "--model", str(tmp_path / "mt")]) == 0
    expected = tasks.load(str(tmp_path / "mt")).translate("el gato come.", beam_width=4)
    assert capsys.readouterr().out == expected + "\n"
    assert main(["evaluate", str(tmp_path / "mt"), "--data", str(tmp_path / "pairs.tsv")]) == 0
    assert "bleu_beam" in json.loads(capsys.readouterr().out)
    assert main(["translate", "hola", "--model", "sentiment"]) == 2
    assert "translate needs a translation one" in capsys.readouterr().err


# ----------------------------------------------------------------- shipped model
def test_shipped_model_translates_everyday_spanish(capsys):
    from tasks.cli import main

    mt = tasks.load("translation")
    assert isinstance(mt, TranslationPipeline) and (mt.source_lang, mt.target_lang) == ("es", "en")
    sources = ["¿Dónde está la biblioteca?", "Tengo hambre.", "No sé qué hacer."]
    greedy = mt.translate(sources, return_attention=True)
    beam = mt.translate(sources, beam_width=4, return_attention=True)
    assert [b["translation"] for b in beam] == [
        "Where is the library?",
        "I'm hungry.",
        "I don't know what to do.",
    ]

    def norm(r):  # the length-normalised model score beam search ranks by
        return float(length_normalize(r["score"], len(r["target_tokens"]), 0.6))

    assert all(norm(b) >= norm(g) - 1e-4 for g, b in zip(greedy, beam))
    capsys.readouterr()
    assert main(["translate", "¿Dónde está la biblioteca?"]) == 0
    assert "Where is the library?" in capsys.readouterr().out
