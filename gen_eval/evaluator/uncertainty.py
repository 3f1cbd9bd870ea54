"""Uncertainty of a pooled score: intervals over noise seeds and conditions, confident gates, paired tests.

The classifier score pools hits over images: score = Σ hits / Σ k. Two things make it random: the
noise seeds (another seed, another set of images) and, when the test set is seen as a sample of the
conditions a user cares about, the conditions themselves. A two-way bootstrap resamples both (seeds
and conditions independently, with replacement) and recomputes the pooled score; its percentile
interval is what a gate decides on. With one seed only the conditions are resampled. A paired
comparison resamples the same seeds and conditions for both models, so the noise they share cancels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

RESAMPLES = 2000
BOOTSTRAP_SEED = 0  # the interval itself is reproducible: same inputs, same bounds


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float
    confidence: float
    method: str

    def describe(self) -> str:
        return f"{self.estimate:.4f} [{self.low:.4f}, {self.high:.4f}] ({self.confidence:.0%}, {self.method})"

    def to_dict(self) -> dict:
        return asdict(self)


def t_interval(values, confidence: float, what: str) -> Interval:
    """Student-t interval of the mean of independent ``values`` (``what`` they are, for the method text)."""
    from scipy import stats

    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean())
    if len(values) < 2:
        return Interval(mean, float("nan"), float("nan"), confidence, f"one {what}: no interval")
    half = float(stats.t.ppf((1 + confidence) / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)))
    return Interval(mean, mean - half, mean + half, confidence, f"t over {len(values)} {what}s")


def _check(hits: np.ndarray, ks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    hits = np.atleast_2d(np.asarray(hits, dtype=np.float64))
    ks = np.asarray(ks, dtype=np.float64)
    if hits.ndim != 2 or hits.shape[1] != len(ks) or not len(ks) or (ks <= 0).any():
        raise ValueError(f"hits must be [seeds, conditions] with one positive k per condition; got {hits.shape}, {ks.shape}")
    return hits, ks


def pooled_score(hits: np.ndarray, ks: np.ndarray) -> float:
    hits, ks = _check(hits, ks)
    return float(hits.sum() / (ks.sum() * len(hits)))


def _resampled(hits: np.ndarray, ks: np.ndarray, resamples: int, seed: int,
               over_conditions: bool) -> np.ndarray:
    """Pooled scores of ``resamples`` two-way bootstrap samples (seeds x conditions)."""
    rng = np.random.default_rng(seed)
    n_seeds, n_items = hits.shape
    out = np.empty(resamples)
    for r in range(resamples):
        seeds = rng.integers(0, n_seeds, n_seeds) if n_seeds > 1 else np.zeros(1, dtype=int)
        items = rng.integers(0, n_items, n_items) if over_conditions else np.arange(n_items)
        counts = np.bincount(items, minlength=n_items)
        out[r] = (hits[seeds] @ counts).sum() / (len(seeds) * (ks @ counts))
    return out


def score_interval(hits, ks, *, confidence: float = 0.95, over_conditions: bool = True,
                   resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED) -> Interval:
    """Percentile bootstrap interval of the pooled score from per-seed, per-condition hits."""
    hits, ks = _check(hits, ks)
    estimate = pooled_score(hits, ks)
    if len(hits) == 1 and not over_conditions:
        return Interval(estimate, float("nan"), float("nan"), confidence, "one seed: no interval")
    samples = _resampled(hits, ks, resamples, seed, over_conditions)
    tail = (1 - confidence) / 2
    low, high = np.quantile(samples, [tail, 1 - tail])
    what = f"{len(hits)} seeds" + (f" x {hits.shape[1]} conditions" if over_conditions else "")
    return Interval(estimate, float(low), float(high), confidence, f"bootstrap over {what}, {resamples} resamples")


def paired_difference(new_hits, base_hits, ks, *, confidence: float = 0.95, over_conditions: bool = True,
                      resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED) -> Interval:
    """Interval of score(new) - score(base), both evaluated on the same seeds and conditions."""
    new_hits, ks = _check(new_hits, ks)
    base_hits, _ = _check(base_hits, ks)
    if new_hits.shape != base_hits.shape:
        raise ValueError(f"paired reports need the same seeds and conditions; got {new_hits.shape} and {base_hits.shape}")
    samples = _resampled(new_hits - base_hits, ks, resamples, seed, over_conditions)
    tail = (1 - confidence) / 2
    low, high = np.quantile(samples, [tail, 1 - tail])
    estimate = pooled_score(new_hits, ks) - pooled_score(base_hits, ks)
    what = f"{len(new_hits)} shared seeds" + (f" x {new_hits.shape[1]} conditions" if over_conditions else "")
    return Interval(estimate, float(low), float(high), confidence, f"paired bootstrap over {what}, {resamples} resamples")


@dataclass(frozen=True)
class Decision:
    passed: bool
    message: str
    rule: str = ""      # which rule decided, in words
    shown: str = ""     # the value (and interval) it decided on


def decide_minimum(interval: Interval, threshold: float, *, strict: bool = False) -> Decision:
    """A gate on a score that should be at least ``threshold``.

    Default: fail only when the score is confidently below (the interval's upper bound is below
    the threshold), so seed noise alone cannot fail a good model. ``strict``: pass only when it is
    confidently above (lower bound at or above the threshold), so seed noise cannot pass a bad one.
    """
    shown = interval.describe()
    if not np.isfinite(interval.low):
        passed = interval.estimate >= threshold
        rule, shown = "point estimate, no interval", f"{interval.estimate:.4f}"
    elif strict:
        passed = interval.low >= threshold
        rule = f"strict: lower bound >= {threshold:g}"
    else:
        passed = interval.high >= threshold
        rule = f"fails only if confidently below {threshold:g}"
    verdict = "passed" if passed else "FAILED"
    return Decision(passed, f"gate {verdict} ({rule}): {shown}", rule, shown)


__all__ = ["Decision", "Interval", "decide_minimum", "t_interval", "paired_difference", "pooled_score", "score_interval"]
