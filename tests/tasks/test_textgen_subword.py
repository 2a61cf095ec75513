"""TextGenPipeline(level="subword"): SentencePiece pieces, so the model writes words it
never saw whole; decoding, streaming, evaluate, save/load and the exports."""

import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf

import tasks
from tasks.base import PipelineError
from tasks.textgen import TextGenPipeline
from tasks.textgen_sampling import stream_text
from tasks.textgen_subword import SubwordLMTokenizer, training_texts
from tests.helpers import run_python
from tests.tasks.test_textgen import FIT, SMALL, make_text

SYLLABLES = ["ka", "lo", "mi", "ru", "te", "so", "ni", "pa"]
WORD = re.compile("(" + "|".join(SYLLABLES) + "){3}")  # a word of the toy language


def make_words_text(seed=0, n_words=150, n_lines=400):
    """Lines of 6 words, each 3 syllables; 150 of the 512 possible words occur.

    Returns (text, the words that occur).
    """
    rng = np.random.RandomState(seed)
    every = [a + b + c for a in SYLLABLES for b in SYLLABLES for c in SYLLABLES]
    words = [str(w) for w in rng.choice(every, n_words, replace=False)]
    lines = [" ".join(rng.choice(words, 6)) + "." for _ in range(n_lines)]
    return "\n".join(lines) + "\n", set(words)


LM = dict(units=48, layers=1, embedding_dim=16, seq_length=32, dropout=0.0, max_tokens=300)
LM_FIT = dict(epochs=20, batch_size=16, verbose=0, checkpoint_dir=None, learning_rate=1e-2)


@pytest.fixture(scope="module")
def lm():
    text, _ = make_words_text()
    return TextGenPipeline(level="subword", **LM, seed=1).fit(text, **LM_FIT)


@pytest.fixture(scope="module")
def tok():
    tok = SubwordLMTokenizer(300)
    tok.build_vocabulary(make_text(200))
    return tok


# ----------------------------------------------------------------- the tokenizer
def test_round_trip_keeps_line_breaks_and_spells_unseen_words(tok):
    assert tok.vocabulary[:5] == ["[PAD]", "[UNK]", "[START]", "[END]", "␤"]
    for text in (
        "the cat sat on the mat.\nmy king sang to a rose!\n",
        "\nthe zebra quoth: Zürich ☃ 2024,\n\n\nthe end",  # unseen words and characters
    ):
        ids = tok.encode(text)
        assert ids.dtype == np.int32 and 1 not in ids.tolist()  # byte fallback: no [UNK]
        assert tok.decode(ids) == text
        assert tok.ids_to_text(tf.constant([ids])).numpy()[0].decode("utf-8") == text
    assert tok.unknown("zebra ☃") == []
    pieces = [tok.vocabulary[i] for i in tok.encode("zebra")]
    assert len(pieces) > 1 and "▁zebra" not in tok.vocabulary  # spelled in pieces
    assert tok.decode(tok.encode("a  b ")) == "a b"  # SentencePiece drops extra spaces
    assert training_texts("a\nb\n" * 5) == ["a\nb\n" * 4, "a\nb\n"]  # 8 lines a text


def test_a_continuation_starts_with_the_space_its_first_piece_marks(tok):
    ids = tok.encode("my the cat").tolist()
    second = [i for i, t in enumerate(ids) if i and tok.vocabulary[t].startswith("▁")][0]
    ids = ids[second:]  # the pieces of " the cat": a new word first
    assert tok.continuation("a dog", ids) == " the cat"
    assert tok.continuation("a dog ", ids) == "the cat"  # the prompt has the space
    assert tok.continuation("a dog\n", ids) == "the cat"  # a word starts after a break
    assert tok.continuation("", ids) == "the cat"
    for prompt in ("a dog", "a dog ", "a dog\n", ""):
        graph = tok.continuation_text(tf.constant(prompt), tf.constant([ids]))
        assert graph.numpy().decode("utf-8") == tok.continuation(prompt, ids)


def test_streaming_decodes_only_whole_characters(tok):
    """A character spelled in bytes shows up once its last byte piece is there."""
    ids = tok.encode("x a ☃ and é\n")[1:].tolist()
    assert sum(tok.vocabulary[i].startswith("<0x") for i in ids) >= 5
    expected = tok.continuation("x", ids)

    def continue_ids(logits, states, t0, n, seed):  # the loop, replaying `ids`
        t0, n = int(t0), int(n)
        return tf.constant([ids[t0 : t0 + n]]), logits, states

    decode = tok.stream_decoder("x")
    pieces = list(stream_text(continue_ids, (), None, [], len(ids), 0, decode, [], ""))
    assert "".join(pieces) == expected and not any("\ufffd" in p for p in pieces)
    # The incremental decoder equals decoding everything, for any ids
    rng = np.random.RandomState(0)
    for prompt in ("", "the", "the "):
        ids = rng.randint(4, tok.vocabulary_size, size=80).tolist()
        decode = tok.stream_decoder(prompt)
        for n in range(1, len(ids) + 1):
            assert decode(ids[:n]) == tok.continuation(prompt, ids[:n]), (prompt, n)


# ----------------------------------------------------------------- the pipeline
def test_the_model_writes_words_it_never_saw_whole(lm):
    _, seen = make_words_text()
    assert lm.level == "subword" and lm.get_config()["level"] == "subword"
    assert lm.tokenizer.vocabulary_size <= 300
    out = lm.generate("", max_length=200, temperature=0.8, seed=0)
    words = re.findall(r"[a-z]+", out)
    well_formed = [w for w in words if WORD.fullmatch(w)]
    assert len(well_formed) >= 0.6 * len(words)  # it learnt the shape of a word
    new = {w for w in well_formed if w not in seen}
    assert new, out  # a word of 3 syllables never in the training text, written piece by piece
    for word in new:
        assert f" {word}" in out or out.startswith(word) or f"\n{word}" in out


def test_generation_never_writes_special_ids(lm):
    gen = lm._generator_module()
    for temperature in (0.0, 1.0, 20.0):  # very hot: every id is about as likely
        ids = gen.generate_ids(
            tf.constant(lm.tokenizer.encode("kalo")), tf.constant(4), tf.constant(60),
            tf.constant(temperature), tf.constant(0), tf.constant(1.0), tf.constant(3),
        ).numpy()  # fmt: skip
        assert ids.min() >= 4  # never [PAD] [UNK] [START] [END]
    # greedy generation = the obviously right loop that re-runs the text for every piece
    prompt = "kalomi ruteso"
    ids = lm.tokenizer.encode(prompt).tolist()
    for _ in range(20):
        logits = lm.model(np.array([ids], "int32")).numpy()[0, -1]
        logits[:4] = -np.inf
        ids.append(int(logits.argmax()))
    new = ids[len(lm.tokenizer.encode(prompt)) :]
    expected = prompt + lm.tokenizer.continuation(prompt, new)
    assert lm.generate(prompt, max_length=20, temperature=0) == expected


def test_stream_num_samples_and_include_prompt(lm):
    a = lm.generate("kalo", max_length=60, temperature=1.0, seed=7)
    assert a == lm.generate("kalo", max_length=60, temperature=1.0, seed=7)
    pieces = list(lm.generate("kalo", max_length=60, temperature=1.0, seed=7, stream=True))
    assert len(pieces) > 10 and "".join(pieces) == a
    cont = lm.generate("kalo", max_length=60, temperature=1.0, seed=7, include_prompt=False)
    assert a == "kalo" + cont
    streamed = lm.generate(
        "kalo", max_length=60, temperature=1.0, seed=7, include_prompt=False, stream=True
    )
    assert "".join(streamed) == cont
    outs = lm.generate("kalo", max_length=30, num_samples=3, seed=2, stop="\n")
    assert len(outs) == 3 and all(o.startswith("kalo") and "\n" not in o for o in outs)


def test_a_word_level_stream_without_the_prompt_matches_generate():
    lm = TextGenPipeline(level="word", **SMALL).fit(make_text(200), **{**FIT, "epochs": 1})
    kwargs = dict(max_length=12, seed=3, include_prompt=False)
    assert "".join(lm.generate("the cat", stream=True, **kwargs)) == lm.generate(
        "the cat", **kwargs
    )


def test_evaluate_reports_bits_per_character_of_the_decoded_text(lm):
    text, _ = make_words_text(seed=5, n_lines=60)
    m = lm.evaluate(text, batch_size=1)
    ids = lm.tokenizer.encode(text)
    # one stream: every piece after the first is scored, the state carried throughout
    logits = lm.model(ids[None, :-1]).numpy()[0].astype(np.float64)
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    total = -log_p[np.arange(len(ids) - 1), ids[1:]].sum()
    assert m["tokens"] == len(ids) - 1 and m["unknown_tokens"] == 0
    assert m["characters"] == len(lm.tokenizer.decode(ids[1:]))  # (all but the first piece)
    assert len(text) - len(text.split()[0]) <= m["characters"] <= len(text)
    assert m["loss"] == pytest.approx(total / m["tokens"], rel=1e-5)
    assert m["bits_per_char"] == pytest.approx(total / np.log(2) / m["characters"], rel=1e-5)
    shuffled = "".join(np.random.RandomState(0).permutation(list(text)))
    assert lm.evaluate(shuffled)["bits_per_char"] > m["bits_per_char"]


def test_save_load_gives_the_same_text(lm, tmp_path):
    folder = lm.save(str(tmp_path / "lm"))
    assets = json.load(open(os.path.join(folder, "assets.json")))
    assert set(assets) == {"subword_model"}  # the SentencePiece model, base64
    loaded = tasks.load(folder)
    assert isinstance(loaded, TextGenPipeline) and loaded.get_config() == lm.get_config()
    assert loaded.tokenizer.vocabulary == lm.tokenizer.vocabulary
    for prompt in ("kalo", "", "ruteso nipa "):
        assert loaded.generate(prompt, max_length=40, seed=4) == lm.generate(
            prompt, max_length=40, seed=4
        )
    text, _ = make_words_text(seed=6, n_lines=30)
    assert loaded.evaluate(text) == lm.evaluate(text)
    # fine-tuning keeps the pieces
    loaded.fine_tune(text, epochs=1, verbose=0, checkpoint_dir=None)
    assert loaded.tokenizer.vocabulary == lm.tokenizer.vocabulary


def test_a_subword_vocabulary_needs_room_for_the_bytes():
    with pytest.raises(
        PipelineError,
        match=r"Received `max_tokens=100` with level='subword'; expected at least 300",
    ):
        TextGenPipeline(level="subword", max_tokens=100)
    with pytest.raises(PipelineError, match=r"expected one of \('char', 'word', 'subword'\)"):
        TextGenPipeline(level="piece")
    assert TextGenPipeline(level="subword").max_tokens is None  # 8,000 pieces


# ----------------------------------------------------------------- export
def test_savedmodel_generates_in_a_fresh_process_with_tensorflow_text(lm, tmp_path):
    lm.export(str(tmp_path / "served"))
    prompts = [("kalomi", 40), ("", 20), ("ruteso nipa ", 30), ("Zürich ☃", 10)]
    expected = [lm.generate(p, max_length=n, temperature=0) for p, n in prompts]
    sampled = lm.generate("kalo", max_length=30, temperature=1.0, seed=4)
    script = f"""
        import json, sys
        import tensorflow as tf
        import tensorflow_text  # registers the SentencePiece ops
        m = tf.saved_model.load({str(tmp_path / "served")!r})
        gen = m.signatures["generate"]
        def run(prompt, n, temperature, seed):
            r = gen(prompt=tf.constant(prompt), max_length=tf.constant(n),
                    temperature=tf.constant(temperature), seed=tf.constant(seed))
            return r["text"].numpy().decode("utf-8")
        print(json.dumps({{
            "greedy": [run(p, n, 0.0, 0) for p, n in {prompts!r}],
            "sampled": run("kalo", 30, 1.0, 4),
            "seqkit_imported": any(n.startswith(("seqkit", "tasks")) for n in sys.modules),
        }}))
        """
    proc = run_python(script, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["greedy"] == expected and not out["seqkit_imported"]
    assert out["sampled"] == sampled


def test_onnx_export_ships_the_sentencepiece_model_and_generates_the_same(lm, tmp_path):
    """The app's side, as the folder's README says: SentencePiece ids, the step, DecodeIds."""
    import onnxruntime as ort
    import sentencepiece as spm

    folder = tmp_path / "onnx"
    lm.export(str(folder), format="onnx")
    assert {"sentencepiece.model", "vocabulary.txt", "tokenizer.json", "step.onnx"} <= set(
        os.listdir(folder)
    )
    settings = json.load(open(folder / "tokenizer.json"))
    assert settings["level"] == "subword" and settings["never_generate"] == [0, 1, 2, 3]
    readme = open(folder / "README.md").read()
    assert "sentencepiece.model" in readme and "<0x41>" in readme
    sp = spm.SentencePieceProcessor(model_file=str(folder / "sentencepiece.model"))
    newline = settings["newline_piece"]
    prompt = "kalomi\nruteso"
    ids = sp.encode(re.sub(f"{newline}+", r"\g<0> ", re.sub(r"[ \t]*(\r\n?|\n)", newline, prompt)))
    assert ids == lm.tokenizer.encode(prompt).tolist()  # the app's ids are the pipeline's
    step = ort.InferenceSession(str(folder / "step.onnx"))
    names = [i.name for i in step.get_inputs()][1:]
    states = {n: np.zeros((1, lm.model.units), np.float32) for n in names}
    new, t = [], 0
    while len(new) < 20:
        token = ids[t] if t < len(ids) else new[-1]
        t += 1
        out = dict(zip([o.name for o in step.get_outputs()], step.run(None, {
            "token_ids": np.array([token], np.int32), **states})))  # fmt: skip
        states = {n: out[f"new_{n}"] for n in names}
        if t >= len(ids):
            logits = out["logits"][0]
            logits[settings["never_generate"]] = -np.inf
            new.append(int(logits.argmax()))
    sentinel = sp.piece_to_id("<0x41>")
    text = re.sub(f"{newline} ?", "\n", sp.decode([sentinel] + new)[1:])
    assert prompt + text == lm.generate(prompt, max_length=20, temperature=0)


def test_fit_from_a_stream_trains_the_pieces_on_its_chunks(tmp_path):
    from seqkit.data import TextFileStream

    text, _ = make_words_text(n_lines=120)
    path = tmp_path / "words.txt"
    path.write_text(text, encoding="utf-8")
    stream = TextFileStream(str(path), chunk_chars=700)
    lm = TextGenPipeline(level="subword", **LM, seed=2)
    lm.fit(stream, **{**LM_FIT, "epochs": 1})
    assert lm.tokenizer.vocabulary[4] == "␤" and lm.tokenizer.vocabulary_size <= 300
    train, _ = lm.preprocessor.split(stream, 0.1)
    chunks = list(lm.preprocessor.chunks(train))
    assert len(chunks) > 3 and all(c[-1] in " \n" for c in chunks[:-1])  # whole words
    assert lm.preprocessor.count_tokens(train) == sum(len(lm.preprocessor(c)) for c in chunks)
    assert lm.generate("kalo", max_length=10, seed=1).startswith("kalo")
