"""The name guard: unseen names and numbers swapped for surrogates the model copies, and back."""

import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import tasks
from tasks import PipelineError
from tasks.translation import TranslationPipeline
from tasks.translation_names import NameGuard, build_lexicon, guarded, guarded_graph
from tests.helpers import run_python
from tests.tasks.test_translation import FIT, make_pairs

LEXICON = {
    "keep": ["Boston", "Hay", "Mary", "Tom"],
    "lower": "aquí ayer bebe come conoces en gatos hay llegó nada rocío tiene ve y".split(),
    "starts": ["Conoces", "En", "Hay", "Llegó", "Nada"],  # known words that start sentences
    "names": ["Tom", "Mary"],
    "times": ["2:30"],
    "years": ["1939"],
    "numbers": ["54"],
}


def strings(t):
    return [x.decode("utf-8") for x in t.numpy()]


@pytest.fixture(scope="module")
def guard():
    return NameGuard(LEXICON)


@pytest.mark.parametrize(
    "source, protected, originals",
    [
        ("Xiomara tiene 3998 libros.", "Tom tiene 54 libros.", ["Xiomara", "3998"]),
        ("Llegó a Puerto Montt ayer.", "Llegó a Tom ayer.", ["Puerto Montt"]),
        ("Tom y Xiomara, Ulises.", "Tom y Mary, Ulises.", ["Xiomara"]),  # Tom is taken
        ("¿Conoces a Eulalia?", "¿Conoces a Tom?", ["Eulalia"]),
        ("En 1730 a las 9:45.", "En 1939 a las 2:30.", ["9:45", "1730"]),
        ("Hay 3998 gatos.", "Hay 54 gatos.", ["3998"]),  # a known word starting a sentence
        ("Rocío come. Zoe bebe.", "Tom come. Mary bebe.", ["Rocío", "Zoe"]),
        ("Boston y Mary", "Boston y Mary", []),  # known names are left to the model
        ("", "", []),
    ],
)
def test_protect_swaps_unseen_names_and_numbers(guard, source, protected, originals):
    text, orig = guard.protect(tf.constant([source, "Otra Frase 12."]))
    assert strings(text)[0] == protected
    assert [o for o in strings(orig[0]) if o] == originals
    assert orig.shape == (2, 5)  # one column per surrogate


def test_retries_use_the_next_surrogates_and_restore_counts_what_was_lost(guard):
    text, orig = guard.protect(tf.constant(["Xiomara ve a Ulises."]), shift=1)
    assert strings(text) == ["Mary ve a Tom."]
    back, missing = guard.restore(tf.constant(["Mary's friend sees Tom.", "x"])[:1], orig)
    assert strings(back) == ["Xiomara's friend sees Ulises."] and missing.numpy().tolist() == [0]
    back, missing = guard.restore(tf.constant(["Mary sees him."]), orig)
    assert strings(back) == ["Xiomara sees him."] and missing.numpy().tolist() == [1]
    # A surrogate the source had is not one of the originals: left as it is.
    _, orig = guard.protect(tf.constant(["Tom ve a Ulises."]))
    assert strings(guard.restore(tf.constant(["Tom sees Mary."]), orig)[0]) == ["Tom sees Ulises."]


def test_more_names_than_surrogates_leaves_the_rest():
    text, orig = NameGuard(LEXICON).protect(tf.constant(["Ana, Eva y Zoe."]))
    assert strings(text) == ["Tom, Mary y Zoe."]


WORDS = st.sampled_from(
    "Xiomara Tom Mary Ana 3998 9:30 1730 2:30 54 1.500 O'Brien Jean-Luc Ñandú hay Hay "
    "¿Conoces a Eulalia? ¡Zoe! (Ulises) «Rocío» x_y 12, 3.5% e-mail Éire ☃ 中文 .".split()
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.lists(WORDS, max_size=8).map(" ".join), min_size=1, max_size=4))
def test_restore_undoes_protect_for_any_text(guard, texts):
    """With a model that copies its input, every text comes back (spaces collapsed)."""
    protected, originals = guard.protect(tf.constant(texts))
    back, missing = guard.restore(protected, originals)
    assert strings(back) == [
        " ".join(t.split()) if p != t else t for t, p in zip(texts, strings(protected))
    ]
    assert missing.numpy().tolist() == [0] * len(texts)


APP_WORDS = st.sampled_from(
    "Xiomara Tom Mary Ana 3998 9:30 1730 2:30 54 1.500 O'Brien Jean-Luc Ñandú hay Hay "
    "¿Conoces a Eulalia? ¡Zoe! (Ulises) «Rocío» 12, 3.5% e-mail Éire ☃ 中文 . Puerto Montt "
    "Llegó Nada —Ana «Eva» «Hay (Nada) —En ǅemal Ⓐbc İstanbul ΟΔΟΣ Tom's 54. 1939, x\u00a0Y Zoe\u0301 "
    "\t \n".split(" ")
)


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(st.lists(APP_WORDS, max_size=9).map(" ".join), min_size=1, max_size=4),
    st.integers(0, 2),
    st.lists(st.booleans(), min_size=12, max_size=12),
)
@example(
    ["Vi «Nada» (Nada) y —En Puerto Montt, «Eulalia» 9:30.", "Ana O'Brien ve 1.500"], 1, [0] * 12
)
def test_the_apps_names_guard_does_what_the_graph_does(guard, texts, shift, drop):
    """tasks/names_guard.py (copied into ONNX / LiteRT folders) against NameGuard's ops."""
    from tasks import names_guard

    protected, originals = guard.protect(tf.constant(texts), shift)
    app_protected, app_originals = names_guard.protect(texts, LEXICON, shift)
    assert app_protected == strings(protected)
    assert app_originals == [strings(row) for row in originals]
    # a "translation" that drops some of the words, surrogates among them
    outs = [" ".join(w for w, d in zip(p.split(), drop * 9) if not d) for p in app_protected]
    back, missing = guard.restore(tf.constant(outs, tf.string), originals)
    app_back, app_missing = names_guard.restore(outs, app_originals, LEXICON)
    assert (app_back, app_missing) == (strings(back), missing.numpy().tolist())


def test_the_apps_names_guard_retries_as_the_pipeline_does(guard):
    from tasks import names_guard

    sources = ["Xiomara tiene 3998 libros.", "Nada aquí.", "Ana y Eva."]

    def model(texts):
        return [t.replace("Tom", "Tim") for t in texts]

    assert names_guard.guarded(model, sources, LEXICON) == guarded(model, guard, sources)
    assert names_guard.guarded(model, sources, LEXICON) == [
        "Xiomara tiene 3998 libros.",
        "Nada aquí.",
        "Tim y Eva.",
    ]


def _garbles_tom(text):
    """A stand-in model: copies its input, but writes "Tim" for "Tom"."""
    return tf.strings.regex_replace(text, "Tom", "Tim")


def test_guarded_tries_again_where_a_surrogate_was_lost_in_python_and_in_the_graph(guard):
    sources = ["Xiomara tiene 3998 libros.", "Nada aquí.", "Ana y Eva."]

    def python_model(texts):
        return strings(_garbles_tom(tf.constant(texts)))

    out = guarded(python_model, guard, sources)
    # Row 0: Tom was lost, so the retry used Mary; row 2 loses one name on every try
    # (two names, two surrogates, one garbled): the first try is kept.
    assert out == ["Xiomara tiene 3998 libros.", "Nada aquí.", "Tim y Eva."]
    graph = tf.function(lambda t: guarded_graph(_garbles_tom, guard, t))
    assert strings(graph(tf.constant(sources))) == out
    assert strings(graph(tf.constant(["sin nombres"]))) == ["sin nombres"]


def test_build_lexicon_learns_known_words_surrogates_and_contexts():
    sources = ["Tom come pan.", "Hay pan.", "no hay agua.", "el pan de Tom.", "Compré 54 panes."]
    targets = ["Tom eats.", "There is bread.", "no water.", "Tom's bread.", "I bought 54 loaves."]
    sources, targets = sources * 6, targets * 6
    lexicon = build_lexicon(sources + ["Bea come."], targets + ["Bea eats."])
    assert lexicon["candidates"] == {"names": ["Tom"], "times": [], "years": [], "numbers": ["54"]}
    # Tom and 54: seen often; Compré: never copied (translated); Bea: once, copied, not kept
    assert lexicon["keep"] == ["54", "Compré", "Tom"]
    assert lexicon["starts"] == ["Hay"] and "hay" in lexicon["lower"]
    assert lexicon["contexts"]["names"][:2] == [["Tom come pan.", "Tom"], ["Bea come.", "Bea"]]
    assert all(lexicon[k] == [] for k in ("names", "times", "years", "numbers"))


# ----------------------------------------------------------------- in a trained pipeline
NAMES = ["Tom", "Ana", "Luis", "Eva", "Pablo", "Marta"]
NEW = ["Xiomara", "Gumersindo", "Quetzali"]  # never in the training pairs


def name_pairs(n, seed=0):
    rng = np.random.RandomState(seed)
    out = []
    for i in range(n):
        name, food = NAMES[rng.randint(len(NAMES))], ["pan", "agua"][i % 2]
        english = {"pan": "bread", "agua": "water"}[food]
        verb = ("come", "eats") if food == "pan" else ("bebe", "drinks")
        out.append((f"{name} {verb[0]} {food}.", f"{name} {verb[1]} {english}."))
    return out + make_pairs(n)


@pytest.fixture(scope="module")
def mt():
    return TranslationPipeline(units=64, embedding_dim=32, max_tokens=300, dropout=0.0, seed=3).fit(
        name_pairs(500), **FIT
    )


@pytest.mark.slow
def test_invented_names_come_through_translate_save_and_the_savedmodel(mt, tmp_path):
    names = mt.preprocessor.names
    assert names["names"] and set(names["names"]) <= set(NAMES)  # calibrated on the model
    sources = [f"{n} come pan." for n in NEW] + ["¿Dónde está el gato?", ""]
    expected = [f"{n} eats bread." for n in NEW] + ["Where is the cat?", ""]
    assert mt.translate(sources, beam_width=3, warn=False) == expected
    attention = mt.translate(sources[:1], return_attention=True)[0]
    assert attention["translation"] == expected[0]
    assert NEW[0] not in "".join(attention["source_tokens"])  # the model read a surrogate
    # saved and loaded: the lexicon comes back
    mt.save(str(tmp_path / "mt"))
    loaded = tasks.load(str(tmp_path / "mt"))
    assert loaded.preprocessor.names == names
    assert loaded.translate(sources, beam_width=3, warn=False) == expected
    # exported: the guard is in the graph; a fresh process without seqkit serves it
    mt.export(str(tmp_path / "served"), beam_width=3)
    mt.export(str(tmp_path / "bare"), beam_width=3, keep_names=False)
    script = f"""
        import json
        import tensorflow as tf
        import tensorflow_text
        out = {{}}
        for name in ("served", "bare"):
            m = tf.saved_model.load({str(tmp_path)!r} + "/" + name)
            t = m.signatures["translate"](text=tf.constant({sources!r}))["translation"]
            out[name] = [x.decode("utf-8") for x in t.numpy()]
        print(json.dumps(out))
        """
    proc = run_python(script, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["served"] == expected
    assert out["bare"] == mt.translate(sources, beam_width=3, warn=False, keep_names=False)


@pytest.mark.slow
def test_onnx_app_with_the_folders_names_guard_keeps_invented_names(mt, tmp_path):
    """An app's side, as the folder's README says: names_guard.py and names.json around
    SentencePiece ids and the ONNX parts, in a process without TensorFlow or seqkit."""
    mt.export(str(tmp_path / "onnx"), format="onnx")
    mt.export(str(tmp_path / "bare"), format="onnx", keep_names=False)
    assert {"names.json", "names_guard.py"} <= set(os.listdir(tmp_path / "onnx"))
    assert not {"names.json", "names_guard.py"} & set(os.listdir(tmp_path / "bare"))
    assert "names_guard.guarded(" in (tmp_path / "onnx" / "README.md").read_text()
    sources = [f"{n} come pan." for n in NEW] + ["Tom bebe agua.", ""]
    script = f"""
        import json, sys
        import numpy as np
        import onnxruntime as ort
        import sentencepiece as spm
        folder = {str(tmp_path / "onnx")!r}
        sys.path.insert(0, folder)
        import names_guard
        settings = json.load(open(folder + "/tokenizer.json"))
        sp = spm.SentencePieceProcessor(model_file=folder + "/sentencepiece.model")
        encoder = ort.InferenceSession(folder + "/encoder.onnx")
        step = ort.InferenceSession(folder + "/decoder_step.onnx")

        def translate(sentences):
            rows = [sp.encode(s)[: settings["source_max_length"]] for s in sentences]
            ids = np.zeros((len(rows), max(1, max(map(len, rows)))), np.int32)
            for i, r in enumerate(rows):
                ids[i, : len(r)] = r
            names = [o.name for o in encoder.get_outputs()]
            fixed = dict(zip(names, encoder.run(None, {{"source_ids": ids}})))
            states = {{k: fixed.pop(k) for k in ("h", "c") if k in fixed}}
            token = np.full(len(rows), settings["start_id"], np.int32)
            out, done = [[] for _ in rows], np.zeros(len(rows), bool)
            for _ in range(settings["target_max_length"]):
                got = step.run(None, {{"token_ids": token, **states, **fixed}})
                got = dict(zip([o.name for o in step.get_outputs()], got))
                states = {{k: got["new_" + k] for k in states}}
                logits = got["logits"]
                logits[:, settings["never_generate"]] = -np.inf
                token = logits.argmax(-1).astype(np.int32)
                for i in range(len(rows)):
                    if not done[i]:
                        done[i] = token[i] == settings["end_id"]
                        if not done[i]:
                            out[i].append(int(token[i]))
                if done.all():
                    break
            return [sp.decode(o) if r else "" for o, r in zip(out, rows)]  # as README says

        lexicon = names_guard.load(folder + "/names.json")
        sentences = {sources!r}
        result = {{
            "guarded": names_guard.guarded(translate, sentences, lexicon),
            "bare": translate(sentences),
            "leaked": sorted(m for m in ("tensorflow", "keras", "seqkit", "tasks") if m in sys.modules),
        }}
        print(json.dumps(result))
        """
    proc = run_python(script, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["leaked"] == []
    expected = [f"{n} eats bread." for n in NEW] + ["Tom drinks water.", ""]
    assert out["guarded"] == mt.translate(sources, beam_width=1, warn=False) == expected
    assert out["bare"] == mt.translate(sources, beam_width=1, warn=False, keep_names=False)
    assert out["bare"][:3] != expected[:3]  # without the guard the names do not come through


def test_score_reads_the_pair_as_translate_does(mt):
    first = mt.preprocessor.names["names"][0]  # the first surrogate, what protect writes
    sources = [f"{NEW[0]} come pan.", "Tom bebe agua."]
    targets = [f"{NEW[0]}'s friend eats bread.", "Tom drinks water."]
    guarded_score = mt.score(sources, targets)
    surrogate = [f"{first} come pan.", "Tom bebe agua."]
    surrogate_targets = [f"{first}'s friend eats bread.", "Tom drinks water."]
    np.testing.assert_allclose(
        guarded_score, mt.score(surrogate, surrogate_targets, keep_names=False), rtol=1e-6
    )
    bare = mt.score(sources, targets, keep_names=False)
    assert guarded_score[0] > bare[0] + 1.0 and guarded_score[1] == pytest.approx(bare[1])


def test_keep_names_is_checked_and_switches_the_guard_off(mt):
    with pytest.raises(PipelineError, match=re.escape("Received `keep_names='yes'`")):
        mt.translate("Xiomara come pan.", keep_names="yes")
    with pytest.raises(PipelineError, match=re.escape("Received `keep_names=2`")):
        TranslationPipeline(keep_names=2)
    assert mt._name_guard(False) is None and mt._name_guard(None) is not None
    assert TranslationPipeline(keep_names=False).get_config()["keep_names"] is False


def test_learn_names_needs_a_fitted_pipeline():
    with pytest.raises(PipelineError, match="learn_names"):
        TranslationPipeline().learn_names([("a", "b")])
