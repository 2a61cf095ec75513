"""The name guard for apps: Python's standard library only, no TensorFlow.

An ONNX or LiteRT export of a translation pipeline (``format="onnx"`` or
``"litert"``) holds this file as ``names_guard.py`` and the pipeline's
lexicon as ``names.json``. An app that translates with the exported parts
calls ``protect`` on its sentences before tokenizing them and ``restore`` on
the translations, as the pipeline's ``translate`` does with its
``NameGuard`` (:mod:`tasks.translation_names`), whose TensorFlow ops this
file repeats rule for rule (a test holds the two equal):

    import names_guard
    lexicon = names_guard.load("mt_onnx/names.json")
    out = names_guard.guarded(my_translate, ["Xiomara vive en Cochabamba."], lexicon)

where ``my_translate`` maps a list of sentences to their translations (the
folder's README shows the decoding loop). The rules:

- A sentence is split on ASCII whitespace. Each token is leading punctuation,
  a word (letters and digits, with inner ``- ' ’ : . ,``) and the rest.
- A word is protected when it is not in ``keep`` (what the model already
  knows) and it is a number (ASCII digits, with inner ``: . ,``), or it starts
  with an uppercase letter and is not, at a sentence's start, a word in
  ``starts`` whose lowercase is in ``lower``. Adjacent protected capitalized
  words with nothing between them form one name.
- The k-th name (time ``H:MM``, year ``1xxx``/``20xx``, other number) of a
  sentence becomes the (k + shift)-th surrogate of its kind not already in the
  sentence; names beyond the surrogates stay as they are.
- ``restore`` swaps each surrogate in a translation (a token's leading run of
  letters and digits, with ``: . ,`` followed by digits) back, and counts the
  originals that did not come through; ``guarded`` then retries those
  sentences with ``shift`` 1 and 2, keeping the try that lost fewest.
"""

from __future__ import annotations

import json
import re
import unicodedata

__all__ = ["KINDS", "ROUNDS", "guarded", "load", "protect", "restore"]

KINDS = ("names", "times", "years", "numbers")  # the surrogates' order in ``originals``
ROUNDS = 3
_SPLIT = re.compile(r"[ \t\n\v\f\r]+")  # TensorFlow's whitespace split
_NUMBER = re.compile(r"[0-9]+(?:[:.,][0-9]+)*")
_TIME = re.compile(r"[0-9]{1,2}:[0-9]{2}")
_YEAR = re.compile(r"1[0-9]{3}|20[0-9]{2}")
_OPENERS = set('¿¡"«“(—-')
_ENDS = tuple(".!?…")


def load(path: str) -> dict:
    """The lexicon in an export's ``names.json``."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _alnum(c: str) -> bool:
    return unicodedata.category(c)[0] in "LN"


def _parse(token: str, inner: str, digits_only: bool):
    """(leading punctuation, word, rest) of a token; ("token", "", "") without a word."""
    i = 0
    while i < len(token) and not _alnum(token[i]):
        i += 1
    if i == len(token):
        return token, "", ""
    j = i
    while j < len(token) and _alnum(token[j]):
        j += 1
    ok = (lambda c: "0" <= c <= "9") if digits_only else _alnum
    while j + 1 < len(token) and token[j] in inner:
        k = j + 1
        while k < len(token) and ok(token[k]):
            k += 1
        if k == j + 1:
            break
        j = k
    return token[:i], token[i:j], token[j:]


def _surrogates(lexicon: dict) -> list:
    return [w for kind in KINDS for w in lexicon.get(kind, [])]


def _kind(word: str) -> str | None:
    if _NUMBER.fullmatch(word):
        return "times" if _TIME.fullmatch(word) else "years" if _YEAR.fullmatch(word) else "numbers"
    return "names" if word[:1] and unicodedata.category(word[0]) == "Lu" else None


def _protect_one(text: str, lexicon: dict, sets: dict, shift: int):
    every = sets["every"]
    tokens = [t for t in _SPLIT.split(text) if t]
    parsed = [_parse(t, "-'’:.,", False) for t in tokens]
    words = [w for _, w, _ in parsed]
    kinds, candidate = [], []
    for j, (pre, word, _) in enumerate(parsed):
        prev_end = j > 0 and (parsed[j - 1][2] if parsed[j - 1][1] else parsed[j - 1][0])
        first = j == 0 or (prev_end or "").endswith(_ENDS) or bool(_OPENERS & set(pre))
        kind = _kind(word)
        common = word.lower() in sets["lower"] and word in sets["starts"]
        is_candidate = (
            word not in sets["keep"]
            and kind is not None
            and (kind != "names" or not (first and common))
        )
        kinds.append(kind)
        candidate.append(is_candidate)
    cont = [
        j > 0
        and candidate[j]
        and kinds[j] == "names"
        and candidate[j - 1]
        and kinds[j - 1] == "names"
        and parsed[j - 1][2] == ""
        and parsed[j][0] == ""
        for j in range(len(tokens))
    ]
    present = set(words)
    slot = [-1] * len(tokens)
    offset = 0
    for kind in KINDS:
        own = lexicon.get(kind, [])
        free = [offset + c for c, s in enumerate(own) if s not in present]
        k = -1
        for j in range(len(tokens)):
            if candidate[j] and kinds[j] == kind:
                k += not cont[j]
                if k < len(free):
                    slot[j] = free[(k + shift) % len(free)]
        offset += len(own)
    originals = [""] * max(len(every), 1)
    if not any(s >= 0 for s in slot):
        return text, originals
    out = []
    for j, token in enumerate(tokens):
        if cont[j] and slot[j] >= 0:  # (the name before it has no rest)
            out[-1] += parsed[j][2]
            originals[slot[j]] += " " + words[j]
            continue
        if slot[j] >= 0:
            out.append(parsed[j][0] + every[slot[j]] + parsed[j][2])
            originals[slot[j]] = words[j]
        else:
            out.append(token)
    return " ".join(out), originals


def _sets(lexicon: dict) -> dict:
    """What every sentence's protect reads, built once per call."""
    sets = {key: set(lexicon.get(key, [])) for key in ("keep", "lower", "starts")}
    return {**sets, "every": _surrogates(lexicon)}


def protect(texts: list, lexicon: dict, shift: int = 0):
    """Sentences -> (what the model reads, each sentence's originals by surrogate slot)."""
    sets = _sets(lexicon)
    pairs = [_protect_one(t, lexicon, sets, shift) for t in texts]
    return [p for p, _ in pairs], [o for _, o in pairs]


def restore(texts: list, originals: list, lexicon: dict):
    """Translations with surrogates -> (with their originals back, originals lost per row)."""
    every = _surrogates(lexicon)
    index = {w: i for i, w in enumerate(every)}
    back, lost = [], []
    for text, orig in zip(texts, originals):
        tokens = [t for t in _SPLIT.split(text) if t]
        came, out = set(), []
        for token in tokens:
            pre, word, rest = _parse(token, ":.,", True)
            s = index.get(word, -1) if word else -1
            if s >= 0 and orig[s]:
                came.add(s)
                out.append(pre + orig[s] + rest)
            else:
                out.append(token)
        back.append(" ".join(out) if came else text)
        lost.append(sum(1 for s, o in enumerate(orig) if o and s not in came))
    return back, lost


def guarded(translate, texts: list, lexicon: dict, rounds: int = ROUNDS) -> list:
    """``translate`` (a list of sentences -> their translations) with names protected;
    sentences that lost an original are retried with the next surrogates."""
    best, missing = [None] * len(texts), [None] * len(texts)
    rows = list(range(len(texts)))
    for shift in range(rounds):
        if not rows:
            break
        protected, originals = protect([texts[i] for i in rows], lexicon, shift)
        back, lost = restore(translate(protected), originals, lexicon)
        for i, text, n in zip(rows, back, lost):
            if missing[i] is None or n < missing[i]:
                best[i], missing[i] = text, n
        rows = [i for i in rows if missing[i] > 0]
    return best
