"""Copy augmentation for the translation benchmark: teach the model to copy names and numbers.

Tatoeba's pairs hold few names (mostly "Tom", "Mary", "Boston") and few numbers,
so a model learns to translate those few, not to copy what it never saw. Each
training pair whose source and target share a proper noun (a capitalised word
of 3+ letters that occurs capitalised inside English sentences) gets a copy with
that word replaced, on both sides, by an invented name; each pair that shares a
number gets copies with other random numbers. Invented names are random
syllables (with accents now and then); the names of the benchmark's and the
tests' names/numbers sets are never produced, so those stay unseen.
"""

from __future__ import annotations

import collections
import re

import numpy as np

_ONSETS = "b c d f g j l m n p r s t v z ch br tr gr pl qu ll ñ rr".split()
_VOWELS = list("aeiou" * 4) + ["á", "é", "í", "ó", "ú"]
_CODAS = ["", "", "", "n", "s", "l", "r"]
_WORD = re.compile(r"\w+")
_NUMBER = re.compile(r"\d+")


def proper_nouns(pairs, min_count: int = 3) -> set[str]:
    """Capitalised words (3+ letters, the rest lowercase) seen inside English targets."""
    counts: collections.Counter = collections.Counter()
    for _, target in pairs:
        for word in _WORD.findall(target)[1:]:
            if len(word) >= 3 and word[0].isupper() and word[1:].islower():
                counts[word] += 1
    return {w for w, c in counts.items() if c >= min_count}


def invented_name(rng, banned: set[str]) -> str:
    while True:
        syllables = rng.randint(2, 5)
        name = "".join(
            _ONSETS[rng.randint(len(_ONSETS))]
            + _VOWELS[rng.randint(len(_VOWELS))]
            + _CODAS[rng.randint(len(_CODAS))]
            for _ in range(syllables)
        )
        name = name[0].upper() + name[1:]
        if name not in banned:
            return name


def _random_number(rng, like: str) -> str:
    digits = rng.randint(1, 5) if rng.rand() < 0.7 else len(like)
    first = str(rng.randint(1, 10))
    return first + "".join(str(rng.randint(10)) for _ in range(digits - 1))


def augment(pairs, banned: set[str], seed: int = 0, number_copies: int = 5) -> list:
    """The invented-name and random-number copies of ``pairs`` ((source, target) list)."""
    rng = np.random.RandomState(seed)
    proper = proper_nouns(pairs)
    out = []
    for source, target in pairs:
        shared = set(_WORD.findall(source)) & set(_WORD.findall(target)) & proper
        if shared:
            names = {w: invented_name(rng, banned) for w in shared}
            swap = re.compile(r"\b(" + "|".join(map(re.escape, sorted(shared))) + r")\b")
            out.append(
                tuple(
                    swap.sub(lambda m, names=names: names[m.group(1)], x) for x in (source, target)
                )
            )
        numbers = set(_NUMBER.findall(source)) & set(_NUMBER.findall(target))
        for _ in range(number_copies if numbers else 0):
            new = {n: _random_number(rng, n) for n in numbers}
            swap = re.compile(r"(?<!\d)(" + "|".join(sorted(numbers, key=len)[::-1]) + r")(?!\d)")
            out.append(
                tuple(swap.sub(lambda m, new=new: new[m.group(1)], x) for x in (source, target))
            )
    return out
