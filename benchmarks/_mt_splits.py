"""The two test splits of the Spanish-English translation benchmark, and their scoring.

(a) ``% 50``: the pairs whose 0-based line index in ``spa-eng.tsv.gz`` is
    divisible by 50 (2,380 pairs), one reference each (the project's split
    since 0.1.0). Tatoeba holds many near-duplicates: about a quarter of these
    English targets occur verbatim among the training pairs.
(b) leak-free: pairs are linked when they share their Spanish or their English
    sentence; a linked group (a connected component) is tested when the CRC32
    of its first Spanish sentence (in file order) is divisible by 50. No test
    Spanish or English sentence then occurs in training. Each distinct test
    source is scored against every English translation of it in the file
    (multi-reference sacreBLEU).

Training uses the pairs in neither test set, so one model is scored on both.
"""

from __future__ import annotations

import gzip
import os
import zlib

PAIRS = "translation/spa-eng.tsv.gz"


def read_pairs(data_dir: str) -> list[tuple[str, str]]:
    """Every (english, spanish) pair of the file, in file order."""
    with gzip.open(os.path.join(data_dir, PAIRS), "rt", encoding="utf-8") as f:
        lines = [x for x in f.read().split("\n") if x]
    return [tuple(line.split("\t")[:2]) for line in lines]


def components(pairs) -> list[int]:
    """For each pair, the index of its linked group's first pair (union-find over
    sentences: two pairs are linked when they share a side)."""
    parent: dict = {}

    def find(x):
        root = x
        while parent.setdefault(root, root) != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    for en, es in pairs:
        a, b = find(("en", en)), find(("es", es))
        if a != b:
            parent[a] = b
    first: dict = {}
    out = []
    for i, (_, es) in enumerate(pairs):
        out.append(first.setdefault(find(("es", es)), i))
    return out


def splits(data_dir: str, direction: str = "es-en"):
    """-> (train, test_a, test_b): lists of (source, target) pairs; ``test_b`` is a list
    of (source, [every reference]) with distinct sources, in file order."""
    pairs = read_pairs(data_dir)
    group = components(pairs)
    in_b = [zlib.crc32(pairs[g][1].encode("utf-8")) % 50 == 0 for g in group]

    def oriented(en, es):
        return (es, en) if direction == "es-en" else (en, es)

    train, test_a, refs = [], [], {}
    for i, (en, es) in enumerate(pairs):
        src, tgt = oriented(en, es)
        if i % 50 == 0:
            test_a.append((src, tgt))
        if in_b[i]:
            refs.setdefault(src, []).append(tgt)
        elif i % 50:
            train.append((src, tgt))
    test_b = [(src, sorted(set(r), key=r.index)) for src, r in refs.items()]
    return train, test_a, test_b


def check_leak_free(train, test_b) -> None:
    """Raises AssertionError if a test (b) sentence occurs on either side of training."""
    sources = {s for s, _ in train}
    targets = {t for _, t in train}
    for src, refs in test_b:
        assert src not in sources, src
        assert not any(r in targets for r in refs), refs


def multi_reference(hypotheses: list[str], references: list[list[str]]) -> dict:
    """Corpus sacreBLEU and chrF of ``hypotheses`` against each source's references
    (sources with fewer references get None for the missing ones, as sacreBLEU allows)."""
    import sacrebleu

    width = max(len(r) for r in references)
    streams = [[r[k] if k < len(r) else None for r in references] for k in range(width)]
    return {
        "bleu": round(sacrebleu.corpus_bleu(hypotheses, streams).score, 2),
        "chrf": round(sacrebleu.corpus_chrf(hypotheses, streams).score, 2),
        "sources": len(hypotheses),
        "references": sum(len(r) for r in references),
    }
