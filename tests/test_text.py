"""seqkit.text: WordVectorizer and LMTokenizer, eager and inside tf.function, OOV, errors."""

import numpy as np
import pytest
import tensorflow as tf

from seqkit.text import OOV, PAD, LMTokenizer, WordVectorizer, nfc_compose

TEXTS = ["A good film.", "A bad film!", "good good acting"]


@pytest.fixture(scope="module")
def vectorizer():
    v = WordVectorizer(max_tokens=20, max_length=4)
    v.build_vocabulary(TEXTS)
    return v


# --------------------------------------------------------------------------- WordVectorizer
def test_vocabulary_most_frequent_first_ties_alphabetical(vectorizer):
    # good x3; a, film x2; then the words seen once, alphabetically
    assert list(vectorizer.vocabulary) == [PAD, OOV, "good", "a", "film", "!", ".", "acting", "bad"]
    assert vectorizer.vocabulary_size == 9
    capped = WordVectorizer(max_tokens=4)
    capped.build_vocabulary(TEXTS)
    assert list(capped.vocabulary) == [PAD, OOV, "good", "a"]
    frequent = WordVectorizer(min_count=2)
    frequent.build_vocabulary(TEXTS)
    assert list(frequent.vocabulary) == [PAD, OOV, "good", "a", "film"]
    chunked = WordVectorizer(max_tokens=20)
    chunked.build_vocabulary(iter([TEXTS[:1], TEXTS[1:]]))  # chunks of a stream
    assert list(chunked.vocabulary) == list(vectorizer.vocabulary)


def test_ids_oov_and_truncation(vectorizer):
    ids = vectorizer(tf.constant(["a good day", "good acting, a bad film indeed"]))
    assert isinstance(ids, tf.RaggedTensor) and ids.dtype == tf.int32
    # "day" and "indeed" are out of vocabulary (1); ',' too; "pre" keeps the end
    assert ids.to_list() == [[3, 2, 1], [3, 8, 4, 1]]
    post = WordVectorizer(max_tokens=20, max_length=4, truncating="post")
    post.set_vocabulary(vectorizer.vocabulary)
    assert post(tf.constant(["good acting, a bad film"])).to_list() == [[2, 7, 1, 3]]
    encoded = vectorizer.encode(["a good day", "zorblax"], batch_size=1)
    assert [e.tolist() for e in encoded] == [[3, 2, 1], [1]]
    assert all(e.dtype == np.int32 for e in encoded)


def test_the_same_ids_inside_a_graph(vectorizer):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def ids(text):
        return vectorizer(text).to_tensor()

    texts = tf.constant(["A good film.", "bad acting!", ""])
    np.testing.assert_array_equal(ids(texts), vectorizer(texts).to_tensor())
    assert ids.get_concrete_function().graph.get_operations()  # traced, no Python left


def test_standardize_modes():
    assert WordVectorizer().tokens("Don't <br />stop, NOW!\x00x") == [
        "don't",
        "stop",
        ",",
        "now",
        "!",
        "x",
    ]
    assert WordVectorizer(punctuation="strip").tokens("Don't stop, now!") == [
        "don't",
        "stop",
        "now",
    ]
    assert WordVectorizer(punctuation="keep").tokens("Don't stop, now!") == [
        "don't",
        "stop,",
        "now!",
    ]
    raw = WordVectorizer(strip_html=False, lowercase=False, punctuation="keep")
    assert raw.tokens("Hi <br/>there") == ["Hi", "<br/>there"]
    assert WordVectorizer().tokens("ÉTÉ") == ["été"]  # Unicode-aware lowercase


def test_invalid_utf8_and_unicode_normalisation():
    v = WordVectorizer()
    # the bad byte becomes U+FFFD, a symbol: a token of its own
    assert v.split(tf.constant([b"caf\xe9 ok"])).to_list() == [[b"caf", "\ufffd".encode(), b"ok"]]
    decomposed, composed = "e\u0301te\u0301", "\u00e9t\u00e9"
    np.testing.assert_array_equal(
        nfc_compose(tf.constant([decomposed, "plain"])).numpy(), [composed.encode(), b"plain"]
    )
    assert WordVectorizer(unicode_normalize=True).tokens(decomposed) == [composed]
    assert WordVectorizer().tokens(decomposed) != [composed]


def test_config_round_trip(vectorizer):
    config = vectorizer.get_config()
    assert WordVectorizer(**config).get_config() == config
    assert config == {
        "max_tokens": 20,
        "max_length": 4,
        "lowercase": True,
        "strip_html": True,
        "punctuation": "split",
        "truncating": "pre",
        "min_count": 1,
        "unicode_normalize": False,
    }


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        (dict(max_tokens=2), "Received `max_tokens=2`; expected an integer >= 3."),
        (dict(max_length=0), "Received `max_length=0`; expected an integer >= 1."),
        (dict(min_count=True), "Received `min_count=True`; expected an integer >= 1."),
        (
            dict(punctuation="x"),
            "Received `punctuation='x'`; expected one of ('split', 'strip', 'keep').",
        ),
        (dict(truncating="mid"), "Received `truncating='mid'`; expected one of ('pre', 'post')."),
        (dict(lowercase=1), "Received `lowercase=1`; expected True or False."),
    ],
)
def test_vectorizer_argument_errors(kwargs, expected):
    with pytest.raises(ValueError) as error:
        WordVectorizer(**kwargs)
    assert str(error.value) == expected


def test_vocabulary_errors():
    v = WordVectorizer()
    with pytest.raises(RuntimeError, match=r"^The vocabulary is not built; call build_vocabulary"):
        v(tf.constant(["x"]))
    with pytest.raises(ValueError) as error:
        v.set_vocabulary(["a", "b"])
    assert str(error.value) == "A vocabulary must start with '[PAD]' and '[UNK]'; got ['a', 'b']."
    with pytest.raises(ValueError, match=r"^The vocabulary has duplicate entries\.$"):
        v.set_vocabulary([PAD, OOV, "a", "a"])


# --------------------------------------------------------------------------- LMTokenizer
CHAR_TEXT = "Ça va?\n¡Sí! 😀 tab\there  "


def test_char_level_round_trip_of_any_text():
    tok = LMTokenizer("char")
    tok.build_vocabulary(CHAR_TEXT)
    ids = tok.encode(CHAR_TEXT)
    assert len(ids) == len(CHAR_TEXT) and ids.dtype == np.int32 and ids.min() >= 2
    assert tok.decode(ids) == tok.decode_python(ids.tolist()) == CHAR_TEXT
    assert list(tok.vocabulary[:3]) == [PAD, OOV, " "]  # the most frequent character first


def test_char_level_oov():
    tok = LMTokenizer("char")
    tok.build_vocabulary("abcab")
    assert list(tok.vocabulary) == [PAD, OOV, "a", "b", "c"]
    assert tok.encode("abz").tolist() == [2, 3, 1]
    assert tok.decode([2, 3, 1, 0]) == "ab"  # [UNK] and padding decode to nothing
    assert tok.unknown("zaz!") == ["z", "!"]


WORD_TEXT = "the cat sat.\nthe dog, ran!"


def test_word_level_tokens_and_round_trip():
    tok = LMTokenizer("word")
    tok.build_vocabulary(WORD_TEXT)
    assert tok.split(tf.constant(["a\r\nb (c)."])).to_list() == [
        [b"a", b"\n", b"b", b"(", b"c", b")", b"."]
    ]
    text = "the cat ran.\nthe dog sat!"
    assert tok.decode(tok.encode(text)) == tok.decode_python(tok.encode(text).tolist()) == text
    ids = tok.encode("the fish sat")
    assert ids.tolist() == [2, 1, tok.vocabulary.index("sat")]
    assert tok.decode(ids) == "the sat"
    assert tok.unknown("the fish and fish sat") == ["fish", "and"]
    lower = LMTokenizer("word", lowercase=True)
    lower.build_vocabulary("The THE the")
    assert list(lower.vocabulary) == [PAD, OOV, "the"]


def test_lm_vocabulary_cap_and_chunks():
    capped = LMTokenizer("word", max_tokens=4)
    capped.build_vocabulary("b a b c a b")
    assert list(capped.vocabulary) == [PAD, OOV, "b", "a"]
    pieces = LMTokenizer("word")
    pieces.build_vocabulary(iter(["the cat sat.\n", "the dog, ran!"]))
    whole = LMTokenizer("word")
    whole.build_vocabulary(WORD_TEXT)
    assert list(pieces.vocabulary) == list(whole.vocabulary)


@pytest.mark.parametrize("level", ["char", "word"])
def test_lm_ids_and_text_inside_a_graph(level):
    tok = LMTokenizer(level)
    tok.build_vocabulary(WORD_TEXT)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def round_trip(text):
        ids = tok(text).to_tensor()  # (batch, time), padded with 0
        return ids, tok.ids_to_text(ids)

    ids, text = round_trip(tf.constant(["the cat ran.", "the dog, sat!\nthe"]))
    assert [t.decode() for t in text.numpy()] == ["the cat ran.", "the dog, sat!\nthe"]
    np.testing.assert_array_equal(
        ids[0][: len(tok.encode("the cat ran."))], tok.encode("the cat ran.")
    )


def test_lm_config_and_errors():
    tok = LMTokenizer("word", max_tokens=50, lowercase=True)
    assert tok.get_config() == {"level": "word", "max_tokens": 50, "lowercase": True}
    assert LMTokenizer(**tok.get_config()).get_config() == tok.get_config()
    with pytest.raises(ValueError) as error:
        LMTokenizer("byte")
    assert str(error.value) == "Received `level='byte'`; expected one of ('char', 'word')."
    with pytest.raises(ValueError, match=r"^Received `max_tokens=2`; expected an integer >= 3\.$"):
        LMTokenizer(max_tokens=2)
    with pytest.raises(ValueError) as error:
        tok.set_vocabulary([PAD, OOV])
    assert str(error.value) == (
        "A vocabulary must start with '[PAD]' and '[UNK]' and hold at least one token; "
        "got ['[PAD]', '[UNK]']."
    )
    with pytest.raises(RuntimeError, match="call build_vocabulary first"):
        LMTokenizer()(tf.constant(["x"]))
