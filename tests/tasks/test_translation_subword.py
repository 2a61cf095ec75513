"""The subword (SentencePiece) translator, the default: open vocabulary end to end."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from seqkit.subword import SPECIALS, SubwordTokenizer
from tasks import PipelineError
from tasks.translation import TranslationPipeline
from tests.helpers import run_python
from tests.tasks.test_translation import FIT, make_pairs

SUBWORD = dict(units=64, embedding_dim=32, max_tokens=300, dropout=0.0)
ODD = ["Zyx 2015 ☃ 中文", "Ñandú come 34 panes a las 9:30."]


@pytest.fixture(scope="module")
def mt():
    return TranslationPipeline(**SUBWORD, seed=2).fit(make_pairs(800), **FIT)


def test_subword_is_the_default_and_learns_the_toy_language(mt):
    assert TranslationPipeline().get_config()["tokenizer"] == "subword"
    config = mt.get_config()
    assert config["tokenizer"] == "subword" and config["target_max_tokens"] is None
    pre = mt.preprocessor
    assert pre.target_vocabulary[:4] == SPECIALS
    assert pre.source_vectorizer.vocabulary is pre.target_vectorizer.vocabulary  # shared
    m = mt.evaluate(make_pairs(100, seed=9), beam_width=3)
    assert m["bleu_greedy"] > 40 and m["bleu_beam"] > 40  # (untrained: about 0)
    assert mt.translate("¿Dónde está el gato?") == "Where is the cat?"


def test_no_input_is_unknown_and_numbers_are_single_digits(mt):
    tok = mt.preprocessor.subword
    for text in ODD:
        ids = tok.encode([text])[0]
        assert 1 not in ids.tolist() and tok.decode(ids) == text  # byte fallback: no [UNK]
    assert len([t for t in tok.tokens("2015") if t != "▁"]) == 4  # (unseen digits: bytes)
    ids = mt.preprocessor(ODD)
    assert ids.dtype == np.int32 and (ids != 1).all()
    # translate, score and attention maps take any text
    out = mt.translate(ODD, return_attention=True)
    assert all(r["attention"].shape[1] == len(r["source_tokens"]) for r in out)
    assert np.isfinite(mt.score(ODD, ODD)).all()


def test_subword_tokenizer_round_trips_in_the_graph():
    train = ["el gato\ncome 1000 peces.", "0123456789"] * 20
    tok = SubwordTokenizer(vocabulary_size=300, newlines=True).train(train)
    assert [t for t in tok.tokens("2015") if t != "▁"] == ["2", "0", "1", "5"]  # split digits
    text = "el perro\nbebe 12 ☃"
    ids = tok(tf.constant([text]))
    assert tok.detokenize(ids).numpy()[0].decode("utf-8") == text == tok.decode(ids[0].numpy())
    again = SubwordTokenizer(vocabulary_size=300, newlines=True)
    again.from_text(tok.to_text())
    assert again.encode([text])[0].tolist() == ids[0].numpy().tolist()
    tf.random.set_seed(1)  # drops TensorFlow's kernel caches: the tokenizer still works
    assert tok.encode([text])[0].tolist() == ids[0].numpy().tolist()


def test_save_and_load_give_the_same_translations(mt, tmp_path):
    import tasks

    sources = [s for s, _ in make_pairs(10, seed=3)] + ODD
    mt.save(str(tmp_path / "mt"))
    assets = json.load(open(tmp_path / "mt" / "assets.json"))
    assert sorted(assets) == ["names_lexicon", "subword_model"]
    loaded = tasks.load(str(tmp_path / "mt"))
    assert loaded.get_config() == mt.get_config()
    assert loaded.translate(sources, beam_width=3) == mt.translate(sources, beam_width=3)


def test_folders_saved_before_subwords_load_as_words(tmp_path):
    import tasks

    old = TranslationPipeline(units=8, embedding_dim=8, tokenizer="word", max_tokens=40)
    old.fit(make_pairs(80), epochs=1, verbose=0, checkpoint_dir=None)
    folder = tmp_path / "old"
    old.save(str(folder))
    meta = json.load(open(folder / "pipeline.json"))
    del meta["config"]["tokenizer"]  # as seqkit 0.2.0 wrote it
    json.dump(meta, open(folder / "pipeline.json", "w"))
    os.remove(folder / "CHECKSUMS.sha256")  # (the edit would fail its checksum)
    loaded = tasks.load(str(folder))
    assert loaded.preprocessor.tokenizer == "word"
    assert loaded.translate(["el gato."]) == old.translate(["el gato."])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            dict(target_max_tokens=8000),
            "Received `target_max_tokens=8000` with tokenizer='subword'; source and target "
            "share one vocabulary: set `max_tokens` (its size) instead.",
        ),
        (dict(max_tokens=100), "Received `max_tokens=100`; expected an integer >= 300."),
        (
            dict(tokenizer="bpe"),
            "Received `tokenizer='bpe'`; expected one of ('subword', 'word').",
        ),
    ],
)
def test_bad_tokenizer_arguments(kwargs, message):
    with pytest.raises(PipelineError, match=re.escape(message)):
        TranslationPipeline(**kwargs)


def test_too_little_text_for_the_vocabulary_says_so():
    with pytest.raises(ValueError, match=r"pass a larger vocabulary_size \(it holds 4 special"):
        SubwordTokenizer(vocabulary_size=300).train(["".join(map(chr, range(0x4E00, 0x4F00)))])


def test_savedmodel_serves_raw_strings_with_tensorflow_text_imported(mt, tmp_path):
    """What README says serving needs: `import tensorflow_text` before loading."""
    sources = [s for s, _ in make_pairs(6, seed=8)] + ODD + [""]
    mt.export(str(tmp_path / "served"), beam_width=4)
    expected = mt.translate(sources, beam_width=4, warn=False)
    script = f"""
        import json, sys
        import tensorflow as tf
        import tensorflow_text  # registers the SentencePiece ops
        m = tf.saved_model.load({str(tmp_path / "served")!r})
        out = m.signatures["translate"](text=tf.constant({sources!r}))["translation"]
        print(json.dumps({{
            "out": [x.decode("utf-8") for x in out.numpy()],
            "seqkit_imported": any(n.startswith(("seqkit", "tasks")) for n in sys.modules),
        }}))
        """
    proc = run_python(script, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["out"] == expected and not result["seqkit_imported"]
    # Without the import, loading names the missing op.
    bare = f"""
        import tensorflow as tf
        tf.saved_model.load({str(tmp_path / "served")!r})
        """
    proc = run_python(bare, tmp_path)
    assert proc.returncode != 0 and "Sentencepiece" in proc.stderr
    # TF Serving's loader (the TF1 session one), as `saved_model_cli` runs it, with the import
    cli = [
        sys.executable,
        "-c",
        "import sys, tensorflow_text; from tensorflow.python.tools.saved_model_cli import main; "
        "sys.argv[0] = 'saved_model_cli'; sys.exit(main())",
        "run",
        "--dir",
        str(tmp_path / "served"),
        "--tag_set",
        "serve",
        "--signature_def",
        "translate",
        "--input_exprs",
        f"text={sources[:2]!r}",
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(cli, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert all(repr(t.encode("utf-8")) in proc.stdout for t in expected[:2]), proc.stdout


def test_onnx_export_ships_the_sentencepiece_model_and_decodes_the_same(mt, tmp_path):
    import onnxruntime as ort
    import sentencepiece as spm

    folder = tmp_path / "onnx"
    mt.export(str(folder), format="onnx")
    files = sorted(os.listdir(folder))
    assert {"sentencepiece.model", "vocabulary.txt", "tokenizer.json"} <= set(files)
    settings = json.load(open(folder / "tokenizer.json"))
    assert settings["tokenizer"] == "subword" and settings["shared_vocabulary"] is True
    sp = spm.SentencePieceProcessor(model_file=str(folder / "sentencepiece.model"))
    sources = [s for s, _ in make_pairs(8, seed=5)] + ODD
    # the app's side, as the folder's README says: SentencePiece ids, the parts, DecodeIds
    rows = [sp.encode(s)[: settings["source_max_length"]] for s in sources]
    ids = np.zeros((len(rows), max(map(len, rows))), np.int32)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
    assert (ids == mt.preprocessor(sources)).all()  # the app's ids are the pipeline's
    encoder = ort.InferenceSession(str(folder / "encoder.onnx"))
    step = ort.InferenceSession(str(folder / "decoder_step.onnx"))
    encoded = dict(
        zip([o.name for o in encoder.get_outputs()], encoder.run(None, {"source_ids": ids}))
    )
    states = [encoded.pop(name) for name in ("h", "c") if name in encoded]
    token = np.full(len(rows), settings["start_id"], np.int32)
    out, done = [[] for _ in rows], np.zeros(len(rows), bool)
    for _ in range(settings["target_max_length"]):
        feeds = {"token_ids": token, **dict(zip(("h", "c"), states)), **encoded}
        result = dict(zip([o.name for o in step.get_outputs()], step.run(None, feeds)))
        logits = result["logits"]
        states = [result[f"new_{name}"] for name in ("h", "c") if f"new_{name}" in result]
        logits[:, settings["never_generate"]] = -np.inf
        token = logits.argmax(-1).astype(np.int32)
        for i in range(len(rows)):
            if not done[i]:
                done[i] = token[i] == settings["end_id"]
                if not done[i]:
                    out[i].append(int(token[i]))
        if done.all():
            break
    assert [sp.decode(o) for o in out] == mt.translate(sources, beam_width=1, warn=False)


def test_damaged_subword_assets_are_named(mt):
    from tasks.translation_data import TranslationPreprocessor

    twin = TranslationPreprocessor(**mt.preprocessor.get_config())
    twin.set_assets(mt.preprocessor.get_assets())
    assert (twin(ODD) == mt.preprocessor(ODD)).all()
    for damaged in ({"subword_model": "not base64!"}, {"subword_model": "AAAA"}, {}):
        with pytest.raises(PipelineError, match=r"The saved assets are damaged \("):
            twin.set_assets(damaged)
