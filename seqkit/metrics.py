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

__all__ = [
    "bleu",
    "chrf",
    "perplexity",
    "bits_per_char",
    "mae",
    "rmse",
    "smape",
    "mase",
    "pinball",
    "coverage",
    "diebold_mariano",
]


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


# --------------------------------------------------------------------------- forecasting
def mae(actual, forecast) -> float:
    import numpy as np

    return float(np.mean(np.abs(np.asarray(actual) - np.asarray(forecast))))


def rmse(actual, forecast) -> float:
    import numpy as np

    return float(np.sqrt(np.mean((np.asarray(actual) - np.asarray(forecast)) ** 2)))


def smape(actual, forecast) -> float:
    """Symmetric MAPE in percent: mean of 200 |a - f| / (|a| + |f|)."""
    import numpy as np

    a, f = np.asarray(actual, float), np.asarray(forecast, float)
    denom = np.abs(a) + np.abs(f)
    ratio = np.where(denom > 0, 2 * np.abs(a - f) / np.where(denom > 0, denom, 1), 0.0)
    return float(100 * np.mean(ratio))


def mase(actual, forecast, scale) -> float:
    """Mean absolute scaled error: errors divided by each row's ``scale`` (the in-sample
    MAE of the one-step naive forecast on that series' training history)."""
    import numpy as np

    a, f, s = (np.asarray(x, float) for x in (actual, forecast, scale))
    return float(np.mean(np.abs(a - f) / s))


def pinball(actual, quantile_forecasts, quantiles) -> float:
    """Mean pinball (quantile) loss over rows and quantiles; forecasts (n, len(quantiles))."""
    import numpy as np

    a = np.asarray(actual, float)[:, None]
    q = np.asarray(quantile_forecasts, float)
    tau = np.asarray(quantiles, float)[None, :]
    diff = a - q
    return float(np.mean(np.maximum(tau * diff, (tau - 1) * diff)))


def coverage(actual, lower, upper) -> float:
    """Fraction of actual values inside [lower, upper]."""
    import numpy as np

    a = np.asarray(actual, float)
    return float(np.mean((a >= np.asarray(lower)) & (a <= np.asarray(upper))))


def diebold_mariano(loss_a, loss_b, horizon: int = 1) -> dict:
    """Diebold-Mariano test (Harvey-Leybourne-Newbold small-sample form) that the mean
    loss differential ``loss_a - loss_b`` is zero.

    Args:
        loss_a, loss_b: per-period losses of two forecasts (same periods, in time order).
        horizon: forecast horizon; autocovariances up to ``horizon - 1`` lags are used.

    Returns:
        ``{"statistic", "p_value", "mean_difference", "n"}``; a negative statistic
        means ``a`` has the lower loss; the p-value is two-sided (Student t, n - 1 df).
    """
    import numpy as np
    from scipy import stats

    d = np.asarray(loss_a, float) - np.asarray(loss_b, float)
    n = len(d)
    if n < 3:
        raise ValueError(f"Received {n} loss differentials; the test needs at least 3.")
    mean = d.mean()
    centered = d - mean
    var = centered @ centered / n
    for lag in range(1, max(1, int(horizon))):
        if lag < n:
            var += 2 * (centered[lag:] @ centered[:-lag]) / n
    if var <= 0:
        return {"statistic": 0.0, "p_value": 1.0, "mean_difference": float(mean), "n": n}
    h = max(1, int(horizon))
    correction = np.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    statistic = correction * mean / np.sqrt(var / n)
    p = 2 * stats.t.sf(abs(statistic), df=n - 1)
    return {
        "statistic": float(statistic),
        "p_value": float(p),
        "mean_difference": float(mean),
        "n": n,
    }
