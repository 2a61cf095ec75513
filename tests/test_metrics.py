"""seqkit.metrics: BLEU/chrF against sacreBLEU itself, the rest on hand-computed cases."""

import math

import numpy as np
import pytest
from scipy import stats

from seqkit import metrics as M

HYPOTHESES = ["the cat sat on the mat", "a dog runs in the park today", "hello world"]
REFERENCES = ["the cat sat on a mat", "the dog runs in the park", "hello there world"]


# --------------------------------------------------------------------------- translation
def test_bleu_and_chrf_are_sacrebleus_corpus_scores():
    import sacrebleu

    assert M.bleu(HYPOTHESES, REFERENCES) == sacrebleu.corpus_bleu(HYPOTHESES, [REFERENCES]).score
    assert M.chrf(HYPOTHESES, REFERENCES) == sacrebleu.corpus_chrf(HYPOTHESES, [REFERENCES]).score
    assert 0 < M.bleu(HYPOTHESES, REFERENCES) < 100
    assert M.bleu(REFERENCES, REFERENCES) == pytest.approx(100.0)
    assert M.chrf(REFERENCES, REFERENCES) == pytest.approx(100.0)
    assert M.bleu(("x y z w",), ("a b c d",)) == 0.0  # tuples are fine; nothing in common
    assert isinstance(M.bleu(HYPOTHESES, REFERENCES), float)


@pytest.mark.parametrize("score", [M.bleu, M.chrf])
@pytest.mark.parametrize(
    "hypotheses, references, expected",
    [
        (
            "a sentence",
            ["a sentence"],
            "Pass lists of strings (one per sentence), not single strings.",
        ),
        (
            ["a", "b"],
            ["a"],
            "Received 2 hypotheses and 1 references; expected one reference per hypothesis.",
        ),
        ([], [], "Received no sentences; expected at least one."),
    ],
)
def test_sentence_metric_errors(score, hypotheses, references, expected):
    with pytest.raises(ValueError) as error:
        score(hypotheses, references)
    assert str(error.value) == expected


# --------------------------------------------------------------------------- language models
def test_perplexity_and_bits_per_char():
    assert M.perplexity(0.0) == 1.0
    assert M.perplexity(math.log(4.0)) == pytest.approx(4.0)
    assert M.perplexity(1e6) == math.exp(700.0)  # capped, never an overflow
    # 10 characters coded in 10 * ln 2 nats: one bit each
    assert M.bits_per_char(10 * math.log(2), 10) == pytest.approx(1.0)
    assert M.bits_per_char(math.log(2), 0) == pytest.approx(1.0)  # no characters: divide by 1


# --------------------------------------------------------------------------- forecasting
def test_mae_and_rmse():
    assert M.mae([1, 2, 3], [2, 2, 5]) == pytest.approx(1.0)  # (1 + 0 + 2) / 3
    assert M.rmse([1, 2, 3], [2, 2, 5]) == pytest.approx(math.sqrt(5 / 3))  # (1 + 0 + 4) / 3


def test_smape():
    # 200 |a - f| / (|a| + |f|): 200 * 10 / 210, 0 (both zero: no error), 200 * 25 / 75
    expected = (2000 / 210 + 0 + 5000 / 75) / 3
    assert M.smape([100, 0, 50], [110, 0, 25]) == pytest.approx(expected)
    assert M.smape([1, 2], [1, 2]) == 0.0
    assert M.smape([1], [-1]) == pytest.approx(200.0)  # the worst case


def test_mase():
    # |a - f| / scale = 1/1, 0/2, 2/4
    assert M.mase([1, 2, 3], [2, 2, 5], [1, 2, 4]) == pytest.approx(0.5)
    assert M.mase([1, 2, 3], [2, 2, 5], 2.0) == pytest.approx(0.5)  # one scale for all rows


def test_pinball():
    quantiles = [0.1, 0.5, 0.9]
    forecasts = [[0.0, 1.0, 2.0], [2.5, 3.0, 5.0]]
    # row 1, a = 1: a - q = 1, 0, -1 -> 0.1 * 1, 0, (0.9 - 1) * -1 = 0.1
    # row 2, a = 3: a - q = 0.5, 0, -2 -> 0.1 * 0.5, 0, 0.1 * 2
    expected = (0.1 + 0 + 0.1 + 0.05 + 0 + 0.2) / 6
    assert M.pinball([1.0, 3.0], forecasts, quantiles) == pytest.approx(expected)
    # at the median, pinball is half the absolute error
    assert M.pinball([1.0, 4.0], [[2.0], [2.0]], [0.5]) == pytest.approx(0.5 * 1.5)


def test_coverage_bounds_are_inclusive():
    assert (
        M.coverage([1, 2, 3, 4], [0, 2, 4, 0], [2, 2, 5, 3]) == 0.5
    )  # in, on both bounds, out, out
    assert M.coverage(np.zeros(3), -np.ones(3), np.ones(3)) == 1.0


def test_diebold_mariano_by_hand():
    # d = a - b = 1, -1, 2, 0, 3: mean 1, variance 10 / 5 = 2, horizon 1:
    # correction sqrt((n + 1 - 2h + h(h - 1)/n) / n) = sqrt(4 / 5); DM = sqrt(4/5) * 1 / sqrt(2/5)
    a, b = [2.0, 1.0, 4.0, 1.0, 5.0], [1.0, 2.0, 2.0, 1.0, 2.0]
    out = M.diebold_mariano(a, b)
    assert out["statistic"] == pytest.approx(math.sqrt(2))
    assert out["p_value"] == pytest.approx(2 * stats.t.sf(math.sqrt(2), df=4))
    assert out["mean_difference"] == pytest.approx(1.0) and out["n"] == 5
    swapped = M.diebold_mariano(b, a)  # a negative statistic: the first has the lower loss
    assert swapped["statistic"] == pytest.approx(-math.sqrt(2))
    assert swapped["p_value"] == pytest.approx(out["p_value"])


def test_diebold_mariano_long_horizon_uses_autocovariances():
    # d = 1, 2, 3, 1, 2, 3: mean 2, centred -1, 0, 1, -1, 0, 1; gamma0 = 4/6, gamma1 = -1/6;
    # variance 4/6 + 2 * (-1/6) = 1/3; correction sqrt((6 + 1 - 4 + 2/6) / 6) = sqrt(5/9)
    # DM = sqrt(5/9) * 2 / sqrt(1/3 / 6) = 2 sqrt(10)
    d = np.array([1.0, 2.0, 3.0, 1.0, 2.0, 3.0])
    out = M.diebold_mariano(d, np.zeros(6), horizon=2)
    assert out["statistic"] == pytest.approx(2 * math.sqrt(10))
    assert out["p_value"] == pytest.approx(2 * stats.t.sf(2 * math.sqrt(10), df=5))


def test_diebold_mariano_degenerate_cases():
    same = M.diebold_mariano([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])  # no difference at all
    assert same == {"statistic": 0.0, "p_value": 1.0, "mean_difference": 0.0, "n": 3}
    with pytest.raises(ValueError) as error:
        M.diebold_mariano([1.0, 2.0], [0.0, 0.0])
    assert str(error.value) == "Received 2 loss differentials; the test needs at least 3."
