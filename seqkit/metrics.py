"""Metrics for sequence tasks: corpus BLEU and chrF (sacreBLEU), perplexity and bits.

BLEU and chrF are computed by sacreBLEU (Post 2018) with its default settings
(13a tokenization, case-sensitive), so the numbers compare with published
sacreBLEU scores.

Example:

>>> bleu(["the cat sat on the mat"], ["the cat sat on the mat"])
100.0
"""

from __future__ import annotations

import math

__all__ = ["bleu", "chrf", "perplexity", "bits_per_char"]


def _check(hypotheses, references):
    if isinstance(hypotheses, str) or isinstance(references, str):
        raise ValueError("Pass lists of strings (one per sentence), not single strings.")
    if len(hypotheses) != len(references):
        raise ValueError(
            f"Received {len(hypotheses)} hypotheses and {len(references)} references; "
            "expected one reference per hypothesis."
        )
    if not hypotheses:
        raise ValueError("Received no sentences; expected at least one.")


def bleu(hypotheses: list[str], references: list[str]) -> float:
    """Corpus BLEU (0-100) of ``hypotheses`` against one reference each (sacreBLEU)."""
    import sacrebleu

    _check(hypotheses, references)
    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)]).score)


def chrf(hypotheses: list[str], references: list[str]) -> float:
    """Corpus chrF (0-100) of ``hypotheses`` against one reference each (sacreBLEU)."""
    import sacrebleu

    _check(hypotheses, references)
    return float(sacrebleu.corpus_chrf(list(hypotheses), [list(references)]).score)


def perplexity(loss_nats: float) -> float:
    """exp(loss) for a mean loss in nats per token."""
    return float(math.exp(min(loss_nats, 700.0)))


def bits_per_char(total_nats: float, characters: int) -> float:
    """Total loss in nats over a text, as bits per character."""
    return total_nats / math.log(2) / max(int(characters), 1)
