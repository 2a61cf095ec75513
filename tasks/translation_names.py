"""Names and numbers a translation model never learnt, swapped for ones it copies, and back.

A subword model can spell any name, but it copies only what it saw copied in
training: on Tatoeba that is "Tom", "Mary", "Boston" and a few numbers. An
unseen name ("Xiomara", "Cochabamba") comes out garbled ("29", "Cochadon"). So
before translating, each name and number the training data never showed is
replaced by a *surrogate* the model copies (the placeholder method of
production translation systems), and after translating each surrogate is
replaced by what it stood for:

    "Xiomara vive en Cochabamba desde 1862."
    -> "Tom vive en Boston desde 1939."       (protect: what the model reads)
    -> "Tom lives in Boston since 1939."      (the model)
    -> "Xiomara lives in Cochabamba since 1862."  (restore)

- :func:`build_lexicon`: from the training pairs, what the model already knows
  (the capitalized words and numbers it saw, and lowercased words), candidate
  surrogates (the names and numbers the pairs copy most) and sentences to try
  them in;
- :func:`calibrate`: keeps the candidates the trained model copies, best first;
- :class:`NameGuard`: ``protect`` and ``restore``, in TensorFlow ops, so an
  exported SavedModel does the same as ``translate``;
- :func:`guarded` / :func:`guarded_graph`: translate, and try again with the
  next surrogates where one did not come through.

A word is protected when it starts with a capital letter, was never seen in
the training sources (or seen too rarely to be learnt, and copied when seen),
and, at the start of a sentence, is not a known word capitalized. Adjacent
protected words form one name ("Puerto Montt"). A number is protected when it
was not seen often enough. Surrogates already in a sentence are not used for it.
"""

from __future__ import annotations

import collections
import re

import tensorflow as tf

__all__ = [
    "NameGuard",
    "build_lexicon",
    "calibrate",
    "guard_of",
    "guarded",
    "guarded_graph",
    "protect_pairs",
]

KINDS = ("names", "times", "years", "numbers")  # surrogates of each kind, in ``originals`` order

# A word: letters/digits, with inner hyphens, apostrophes and number separators.
_WORD = r"[\pL\pN]+(?:[-'’:.,][\pL\pN]+)*"
_TOKEN = rf"^([^\pL\pN]*)({_WORD})(.*)$"
# In a translation: plain letters or digits, so "Tom's" is "Tom" + "'s".
_OUT_TOKEN = r"^([^\pL\pN]*)([\pL\pN]+(?:[:.,][0-9]+)*)(.*)$"
_NUMBER = r"[0-9]+(?:[:.,][0-9]+)*"
_TIME = r"[0-9]{1,2}:[0-9]{2}"
_YEAR = r"1[0-9]{3}|20[0-9]{2}"
_PY_WORD = re.compile(r"[^\W_]+(?:[-'’:.,][^\W_]+)*")
_PY_PLAIN = re.compile(r"[^\W_]+")
_PY_TOKEN = re.compile(r"^([\W_]*)([^\W_]+(?:[-'’:.,][^\W_]+)*)(.*)$")
_PY_NUMBER = re.compile(_NUMBER)

MIN_SEEN = 5  # a capitalized word or number seen this often is left to the model
MIN_COPIED = 0.5  # ... and so is one translated (not copied) more often than this
SURROGATE_COPIED = 0.9  # candidate surrogates: copied verbatim in this share of their pairs
SURROGATE_SEEN = 3  # ... and seen this often


def _py_tokens(text: str):
    """Python twin of the graph's parse: (word, sentence-initial) for each whitespace token."""
    out, initial = [], True
    for token in text.split():
        m = _PY_TOKEN.match(token)
        pre, word, rest = m.groups() if m else (token, "", "")
        out.append((word, initial or bool(re.search(r"[¿¡\"«“(—-]", pre))))
        initial = bool(re.search(r"[.!?…]$", rest if word else pre))
    return out


def _kind(word: str, initial: bool, lower: set) -> str | None:
    """What a source word could be protected as: "names", "times", "years", "numbers" or None."""
    if _PY_NUMBER.fullmatch(word):
        for kind, pattern in (("times", _TIME), ("years", _YEAR)):
            if re.fullmatch(pattern, word):
                return kind
        return "numbers"
    if word[:1].isupper() and not (initial and word.lower() in lower):
        return "names"  # (at a sentence's start, only when it is no known word)
    return None


def build_lexicon(sources, targets, candidates: int = 16, contexts: int = 40) -> dict:
    """What the model learnt from the training pairs, for :class:`NameGuard`.

    Args:
        sources, targets: the training pairs' texts.
        candidates: most surrogate candidates of each kind (names, times,
            other numbers), for :func:`calibrate` to try.
        contexts: most training sources of each kind, each with a word of that
            kind that its target copies, where :func:`calibrate` tries them.

    Returns:
        ``{"keep", "lower", "starts", "candidates", "contexts", "names", "times",
        "years", "numbers"}``: the capitalized words and numbers left to the
        model, the words seen in lowercase, the known words seen capitalized at
        a sentence's start, the candidates and contexts by kind, and (empty until
        :func:`calibrate`) the surrogates of each kind.

    Example:

    >>> build_lexicon(["Tom come."] * 9, ["Tom eats."] * 9)["candidates"]["names"]
    ['Tom']
    """
    tokens = [_py_tokens(src) for src in sources]
    lower = {w for row in tokens for w, _ in row if w and w[0].islower()}
    # Known words seen capitalized at a sentence's start ("Hay", "Mi"): no names there.
    starts = {w for row in tokens for w, i in row if i and w[:1].isupper() and w.lower() in lower}
    seen, copied = collections.Counter(), collections.Counter()
    where = {kind: collections.defaultdict(list) for kind in KINDS}  # kind -> word -> rows
    for i, (row, tgt) in enumerate(zip(tokens, targets)):
        target_words = _out_words(tgt)
        for word, initial in row:
            kind = _kind(word, initial, lower)
            if kind is None:
                continue
            seen[word] += 1
            copied[word] += word in target_words
            if word in target_words and len(where[kind][word]) < contexts:
                where[kind][word].append(i)
    keep = sorted(w for w, n in seen.items() if n >= MIN_SEEN or copied[w] / n < MIN_COPIED)

    def kind_of(w):
        return "names" if not w[0].isdigit() else _kind(w, False, lower)

    found = {kind: [] for kind in KINDS}
    for w, n in seen.most_common():
        if n >= SURROGATE_SEEN and copied[w] / n >= SURROGATE_COPIED and w not in ("0", "1"):
            if (w.isalpha() or w[0].isdigit()) and len(found[kind_of(w)]) < candidates:
                found[kind_of(w)].append(w)
    picked = {}
    for kind in KINDS:  # round robin over the copied words, most frequent first
        lists = sorted(where[kind].items(), key=lambda item: -seen[item[0]])
        rows = [
            (i, w)
            for step in range(contexts)
            for w, ids in lists
            if step < len(ids)
            for i in ids[step : step + 1]
        ]
        picked[kind] = [[sources[i], w] for i, w in rows[:contexts]]
    return {
        "keep": keep,
        "lower": sorted(lower),
        "starts": sorted(starts),
        "candidates": found,
        "contexts": picked,
        **{kind: [] for kind in KINDS},
    }


def _out_words(text: str) -> set:
    return set(_PY_WORD.findall(text)) | set(_PY_PLAIN.findall(text))


def calibrate(translate, lexicon: dict, most: int = 8, threshold: float = 0.5) -> dict:
    """Picks the surrogates this model copies: each candidate replaces the copied word in
    its kind's contexts, and is kept when it is in at least ``threshold`` of the
    translations (best first, at most ``most`` per kind).

    Args:
        translate: list of source strings -> list of translations (greedy is enough).
        lexicon: :func:`build_lexicon`'s dict.

    Returns:
        The lexicon with ``names``, ``times``, ``years`` and ``numbers`` set, and
        ``rates``: each candidate's share of copies.
    """
    out = dict(lexicon, rates={})
    for kind in KINDS:
        trials = []  # (candidate, source)
        for cand in lexicon["candidates"][kind]:
            for src, word in lexicon["contexts"][kind]:
                if cand in _out_words(src):
                    continue
                pattern = rf"(?<![^\W_]){re.escape(word)}(?![^\W_])"
                trials.append((cand, re.sub(pattern, cand, src, count=1)))
        done = translate([src for _, src in trials]) if trials else []
        hits, tries = collections.Counter(), collections.Counter()
        for (cand, _), text in zip(trials, done):
            tries[cand] += 1
            hits[cand] += cand in _out_words(text)
        rates = {c: hits[c] / tries[c] for c in tries}
        good = [c for c in lexicon["candidates"][kind] if rates.get(c, 0) >= threshold]
        out[kind] = sorted(good, key=lambda c: -rates[c])[:most]
        out["rates"].update({c: round(r, 3) for c, r in rates.items()})
    return out


def _parse(tokens, pattern):
    """Whitespace tokens -> (leading punctuation, word, rest); "" word where none."""
    has = tf.strings.regex_full_match(tokens, pattern)
    pre = tf.where(has, tf.strings.regex_replace(tokens, pattern, r"\1"), tokens)
    word = tf.where(has, tf.strings.regex_replace(tokens, pattern, r"\2"), "")
    rest = tf.where(has, tf.strings.regex_replace(tokens, pattern, r"\3"), "")
    return pre, word, rest


def _table(keys):
    keys = list(keys) or [""]  # a table needs a key; "" is never a word
    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(keys), tf.range(len(keys), dtype=tf.int64)),
        default_value=-1,
    )


def _in_row_rank(flags, rows, row_starts):
    """For each token, how many ``flags`` tokens of its row come before or at it, minus 1."""
    count = tf.cumsum(tf.cast(flags, tf.int32))  # (n,)
    before_row = tf.gather(tf.concat([[0], count], 0), row_starts)  # (batch,)
    return count - tf.gather(before_row, rows) - 1


class NameGuard(tf.Module):
    """``protect`` swaps unknown names and numbers for surrogates; ``restore`` undoes it.

    Args:
        lexicon: :func:`calibrate`'s dict (``build_lexicon``'s with surrogates).

    Example:

    >>> guard = NameGuard(lexicon)  # surrogates: names ["Tom", ...], numbers ["54", ...]
    >>> text, originals = guard.protect(tf.constant(["Xiomara tiene 3998 libros."]))
    >>> text.numpy()
    array([b'Tom tiene 54 libros.'], dtype=object)
    >>> back, missing = guard.restore(tf.constant(["Tom has 54 books."]), originals)
    >>> back.numpy(), missing.numpy()
    (array([b'Xiomara has 3998 books.'], dtype=object), array([0], dtype=int32))
    """

    def __init__(self, lexicon: dict):
        super().__init__()
        self.kinds = {kind: list(lexicon[kind]) for kind in KINDS}
        every = [w for kind in KINDS for w in self.kinds[kind]]
        self.size = len(every)  # the width of protect's originals
        self.surrogates = tf.constant(every or [""])  # (S,)
        self.keep = _table(lexicon["keep"])
        self.lower = _table(lexicon["lower"])
        self.starts = _table(lexicon["starts"])
        self.surrogate_ids = _table(every)

    def protect(self, text, shift: int = 0):
        """(batch,) strings -> (protected (batch,), originals (batch, size) strings, "" unused).

        ``shift``: the surrogates of each kind are used from the ``shift``-th
        (cyclically): a retry with other surrogates where one did not come through.
        """
        words = tf.strings.split(text)  # (batch, None)
        batch = tf.shape(text)[0]
        flat, rows, starts = words.flat_values, words.value_rowids(), words.row_starts()
        n = tf.shape(flat)[0]
        pre, word, rest = _parse(flat, _TOKEN)
        first = tf.equal(tf.range(n, dtype=tf.int64), tf.gather(starts, rows))
        ends = tf.strings.regex_full_match(tf.where(word == "", pre, rest), r".*[.!?…]")
        initial = (
            first
            | tf.concat([[False], ends[:-1]], 0)
            | tf.strings.regex_full_match(pre, r".*[¿¡\"«“(—-].*")
        )
        upper = tf.strings.regex_full_match(word, r"\p{Lu}.*")
        number = tf.strings.regex_full_match(word, _NUMBER)
        time = tf.strings.regex_full_match(word, _TIME)
        year = tf.strings.regex_full_match(word, _YEAR)
        kinds = {"names": upper, "times": time, "years": year, "numbers": number & ~time & ~year}
        known = self.keep.lookup(word) >= 0
        lower_known = self.lower.lookup(tf.strings.lower(word, encoding="utf-8")) >= 0
        # At a sentence's start, a known word is a name only when never seen starting one.
        common = lower_known & (self.starts.lookup(word) >= 0)
        candidate = ~known & (number | (upper & (~initial | ~common)))

        def previous(x, fill):
            return tf.concat([[fill], x[:-1]], 0)

        # A name continues the one before it: both names, nothing between them.
        cont = (
            candidate
            & upper
            & previous(candidate & upper, False)
            & ~first
            & tf.equal(previous(rest, "x"), "")
            & tf.equal(pre, "")
        )
        start = candidate & ~cont
        # Surrogates already in a row are not used for it.
        match = tf.equal(word[:, None], self.surrogates[None, :])  # (n, S)
        present = (
            tf.math.unsorted_segment_max(tf.cast(match, tf.int32), rows, batch) > 0
        )  # (batch, S)
        slot = tf.fill([n], -1)
        offset = 0
        for name in KINDS:
            kind, size = kinds[name], len(self.kinds[name])
            if not size:
                continue
            free = ~present[:, offset : offset + size]  # (batch, size)
            free_rank = tf.cumsum(tf.cast(free, tf.int32), axis=1) - 1
            k = _in_row_rank(start & kind, rows, starts)  # (n,): this group's index
            n_free = tf.gather(tf.reduce_sum(tf.cast(free, tf.int32), 1), rows)  # (n,)
            want = (k + shift) % tf.maximum(n_free, 1)
            hit = tf.gather(free, rows) & tf.equal(tf.gather(free_rank, rows), want[:, None])
            found = candidate & kind & (k < n_free) & tf.reduce_any(hit, 1)
            chosen = offset + tf.argmax(tf.cast(hit, tf.int32), 1, output_type=tf.int32)
            slot = tf.where(found, chosen, slot)
            offset += size
        protected = slot >= 0
        # One segment per output token: a protected name's continuation joins its start.
        new_segment = ~(cont & protected)
        segment = tf.cumsum(tf.cast(new_segment, tf.int32)) - 1  # (n,)
        segments = tf.reduce_sum(tf.cast(new_segment, tf.int32))
        heads = tf.where(new_segment)[:, 0]
        original = tf.strings.unsorted_segment_join(word, segment, segments, separator=" ")
        tail = tf.strings.unsorted_segment_join(rest, segment, segments)  # the last one's
        head_slot = tf.gather(slot, heads)
        swapped = tf.strings.join(
            [tf.gather(pre, heads), tf.gather(self.surrogates, tf.maximum(head_slot, 0)), tail]
        )
        token = tf.where(head_slot >= 0, swapped, tf.gather(flat, heads))
        head_rows = tf.gather(rows, heads)
        joined = tf.strings.reduce_join(
            tf.RaggedTensor.from_value_rowids(token, head_rows, tf.cast(batch, tf.int64)),
            axis=1,
            separator=" ",
        )
        changed = tf.math.unsorted_segment_max(tf.cast(protected, tf.int32), rows, batch) > 0
        # Originals: row * size + slot for protected names; one spare segment for the rest.
        size = max(self.size, 1)  # (no surrogates: one empty column)
        target = tf.where(
            head_slot >= 0,
            tf.cast(head_rows, tf.int32) * size + head_slot,
            batch * size,
        )
        originals = tf.strings.unsorted_segment_join(
            tf.where(head_slot >= 0, original, ""), target, batch * size + 1
        )[:-1]
        return tf.where(changed, joined, text), tf.reshape(originals, [batch, size])

    def restore(self, text, originals):
        """Translations (batch,) with surrogates -> (with what they stood for, how many
        originals did not come through (batch,) int32)."""
        words = tf.strings.split(text)
        flat, rows = words.flat_values, words.value_rowids()
        pre, word, rest = _parse(flat, _OUT_TOKEN)
        slot = tf.cast(self.surrogate_ids.lookup(word), tf.int64)
        value = tf.gather_nd(originals, tf.stack([rows, tf.maximum(slot, 0)], 1))
        swap = (slot >= 0) & (value != "")
        token = tf.where(swap, tf.strings.join([pre, value, rest]), flat)
        joined = tf.strings.reduce_join(words.with_flat_values(token), axis=1, separator=" ")
        batch = tf.shape(text)[0]
        changed = tf.math.unsorted_segment_max(tf.cast(swap, tf.int32), rows, batch) > 0
        came = tf.one_hot(tf.where(swap, slot, -1), tf.shape(originals)[1], dtype=tf.int32)
        came = tf.math.unsorted_segment_max(came, rows, batch) > 0  # (batch, size)
        missing = tf.reduce_sum(tf.cast((originals != "") & ~came, tf.int32), 1)
        return tf.where(changed, joined, text), missing


ROUNDS = 3  # tries with other surrogates where one did not come through
_GUARDS: dict = {}  # id(lexicon) -> (lexicon, its NameGuard)


def guard_of(lexicon: dict | None) -> NameGuard | None:
    """The (cached) ``NameGuard`` of a lexicon with surrogates; None without any."""
    if lexicon is None or not any(lexicon.get(kind) for kind in KINDS):
        return None
    cached = _GUARDS.get(id(lexicon))
    if cached is None or cached[0] is not lexicon:
        _GUARDS.clear()  # (one lexicon in use at a time, as a rule)
        cached = _GUARDS[id(lexicon)] = (lexicon, NameGuard(lexicon))
    return cached[1]


def guarded(translate, guard: NameGuard, texts: list[str], rounds: int = ROUNDS) -> list:
    """``translate`` (protected strings -> strings, or dicts with a "translation") over
    ``texts`` with names and numbers protected; rows where an original did not come
    through are tried again with the next surrogates, and the try that lost fewest kept."""
    best: list = [None] * len(texts)
    missing = [None] * len(texts)
    rows = list(range(len(texts)))
    for shift in range(rounds):
        if not rows:
            break
        protected, originals = guard.protect(tf.constant([texts[i] for i in rows]), shift)
        out = translate([p.decode("utf-8") for p in protected.numpy()])
        strings = [o if isinstance(o, str) else o["translation"] for o in out]
        restored, lost = guard.restore(tf.constant(strings, tf.string), originals)
        for i, o, text, n in zip(rows, out, restored.numpy(), lost.numpy()):
            if missing[i] is None or n < missing[i]:
                text = text.decode("utf-8")
                best[i] = text if isinstance(o, str) else {**o, "translation": text}
                missing[i] = n
        rows = [i for i in rows if missing[i] > 0]
    return best


def protect_pairs(guard: NameGuard, sources: list[str], targets: list[str]):
    """Sources protected as ``translate`` protects them, and each target with the same
    originals swapped for the same surrogates (where it has them whole): the pair the
    model would read and write."""
    protected, originals = guard.protect(tf.constant(sources, tf.string))
    surrogates = [s.decode("utf-8") for s in guard.surrogates.numpy()]
    out = []
    for target, row in zip(targets, originals.numpy()):
        for surrogate, original in zip(surrogates, row):
            if original:
                pattern = rf"(?<![^\W_]){re.escape(original.decode('utf-8'))}(?![^\W_])"
                target = re.sub(pattern, lambda _, s=surrogate: s, target)
        out.append(target)
    return [p.decode("utf-8") for p in protected.numpy()], out


def guarded_graph(translate, guard: NameGuard, text, rounds: int = ROUNDS):
    """Graph twin of :func:`guarded` for strings: ``translate`` maps (m,) strings to (m,)."""
    protected, originals = guard.protect(text, 0)
    out, missing = guard.restore(translate(protected), originals)
    for shift in range(1, rounds):
        rows = tf.where(missing > 0)[:, 0]

        def retry(rows=rows, out=out, missing=missing, shift=shift):
            again, lost = guard.restore(*_swap(translate, guard, tf.gather(text, rows), shift))
            better = lost < tf.gather(missing, rows)
            index = rows[:, None]
            out = tf.tensor_scatter_nd_update(
                out, index, tf.where(better, again, tf.gather(out, rows))
            )
            return out, tf.tensor_scatter_nd_min(missing, index, lost)

        out, missing = tf.cond(tf.size(rows) > 0, retry, lambda out=out, m=missing: (out, m))
    return out


def _swap(translate, guard, text, shift):
    protected, originals = guard.protect(text, shift)
    return translate(protected), originals
