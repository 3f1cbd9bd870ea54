"""Uncertainty of a pooled score: intervals over noise seeds and conditions, confident gates, paired tests.

The classifier score pools hits over images: score = Σ hits / Σ k. Two things make it random: the
noise seeds (another seed, another set of images) and, when the test set is seen as a sample of the
conditions a user cares about, the conditions themselves. A two-way bootstrap resamples both (seeds
and conditions independently, with replacement) and recomputes the pooled score; its percentile
interval is what a gate decides on. With one seed only the conditions are resampled. A paired
comparison resamples the same seeds and conditions for both models, so the noise they share cancels.

A bootstrap cannot see beyond its data: when every condition scores alike (all hits, or seeds and
conditions that all agree) every resample is the same and the percentile interval has no width,
although the score rests on a finite number of objects. So the score's interval is widened to hold
at least the Wilson interval of the pooled hits among all objects scored (``scipy.stats.binomtest``),
which is never zero-width: an interval never claims more certainty than its number of objects allows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

RESAMPLES = 2000
BOOTSTRAP_SEED = 0  # the interval itself is reproducible: same inputs, same bounds


@dataclass(frozen=True)
class Interval:
    """A value with its interval.

    Attributes:
        estimate: the reported value.
        low, high: the bounds (NaN when there is none; ``method`` then says why).
        confidence: the nominal coverage, e.g. 0.95.
        method: how it was made and what it covers, in words.

    Example:
        >>> Interval(0.5, 0.4, 0.6, 0.95, "t over 5 seeds").describe()
        '0.5000 [0.4000, 0.6000] (95%, t over 5 seeds)'
    """
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


def object_interval(hits, ks, confidence: float) -> tuple[float, float]:
    """Wilson interval of all hits among all objects scored (every seed's), as independent trials."""
    from scipy.stats import binomtest

    hits, ks = _check(hits, ks)
    correct, objects = int(round(hits.sum())), int(round(ks.sum() * len(hits)))
    bounds = binomtest(correct, objects).proportion_ci(confidence_level=confidence, method="wilson")
    return float(bounds.low), float(bounds.high)


def score_interval(hits, ks, *, confidence: float = 0.95, over_conditions: bool = True,
                   resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED) -> Interval:
    """Interval of the pooled score from per-seed, per-condition hits: the percentile bootstrap over seeds
    (and, with ``over_conditions``, conditions), widened to hold the Wilson interval of the hits among all
    objects scored, so that a bootstrap whose resamples all agree cannot give a zero-width interval.

    Args:
        hits: [seeds, conditions] labels each generated image got right.
        ks: [conditions] labels each condition asks for (all positive).
        confidence: the interval's coverage, between 0 and 1.
        over_conditions: also resample the conditions (the test set as a sample of the conditions a user
            cares about); False: the conditions are fixed, only the seeds vary.
        resamples: bootstrap resamples.
        seed: the bootstrap's own seed (same inputs, same bounds).

    Returns:
        An :class:`Interval` whose ``method`` says what it covers.

    Raises:
        ValueError: when ``hits`` is not [seeds, conditions] or a k is not positive.

    Example:
        >>> interval = score_interval([[1, 2], [1, 2]], [1, 2])  # two seeds agree: every object hit
        >>> interval.estimate, interval.high, interval.low < 1.0
        (1.0, 1.0, True)
    """
    hits, ks = _check(hits, ks)
    estimate = pooled_score(hits, ks)
    objects = int(round(ks.sum() * len(hits)))
    wilson_low, wilson_high = object_interval(hits, ks, confidence)
    floor = f"widened to at least the Wilson interval of {int(round(hits.sum()))} hits in {objects} objects"
    if len(hits) == 1 and not over_conditions:
        return Interval(estimate, wilson_low, wilson_high, confidence,
                        f"one seed: Wilson interval of {int(round(hits.sum()))} hits in {objects} objects only")
    samples = _resampled(hits, ks, resamples, seed, over_conditions)
    tail = (1 - confidence) / 2
    low, high = np.quantile(samples, [tail, 1 - tail])
    what = f"{len(hits)} seeds" + (f" x {hits.shape[1]} conditions" if over_conditions else " (conditions fixed)")
    return Interval(estimate, float(min(low, wilson_low)), float(max(high, wilson_high)), confidence,
                    f"bootstrap over {what}, {resamples} resamples, {floor}")


def by_condition_row(hits, ks, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-image ``hits`` [seeds, n] and ``ks`` [n] of images made for condition rows cycled to n (image i for
    row i mod ``rows``) summed per row, so a bootstrap over conditions resamples a row with all its images
    (they share the condition, so they are not independent conditions); the pooled score is unchanged.

    Example:
        >>> by_condition_row([[1, 0, 1]], [1, 1, 1], 2)
        (array([[2., 0.]]), array([2., 1.]))
    """
    hits, ks = _check(hits, ks)
    if rows >= hits.shape[1]:
        return hits, ks
    row = np.arange(hits.shape[1]) % rows
    summed = np.stack([np.bincount(row, weights=seed_hits, minlength=rows) for seed_hits in hits])
    return summed, np.bincount(row, weights=ks, minlength=rows)


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
    """The verdict of a quality gate.

    Attributes:
        passed: whether the gate passed.
        message: one line: passed or missed, the value (and interval), the threshold and the rule.
        rule: which rule decided, in words (on the value, lenient or strict on the interval).
        shown: the value (and interval) it decided on.
        threshold: the threshold it was held against.
        minimum: True when the threshold is a minimum (a score), False when a maximum (a distance).

    Example:
        >>> decision = decide_minimum(Interval(0.7, 0.6, 0.8, 0.95, "t over 5 seeds"), 0.9)
        >>> decision.passed, decision.threshold
        (False, 0.9)
    """
    passed: bool
    message: str
    rule: str = ""
    shown: str = ""
    threshold: float | None = None
    minimum: bool = True

    @property
    def comparison(self) -> str:
        """How the value stands against the threshold, e.g. 'is below 0.8'."""
        if self.passed:
            return f"meets {'at least' if self.minimum else 'at most'} {self.threshold:g}"
        return f"is {'below' if self.minimum else 'above'} {self.threshold:g}"


def make_decision(passed: bool, rule: str, shown: str, threshold: float, *, minimum: bool) -> Decision:
    """A :class:`Decision` whose message names the value, the threshold and the rule."""
    decision = Decision(passed, "", rule, shown, float(threshold), minimum)
    message = f"gate {'passed' if passed else 'missed'}: {shown} {decision.comparison} ({rule})"
    return Decision(passed, message, rule, shown, float(threshold), minimum)


def decide_minimum(interval: Interval, threshold: float, *, strict: bool = False) -> Decision:
    """A gate on a score that should be at least ``threshold``.

    Default: fail only when the score is confidently below (the interval's upper bound is below
    the threshold), so seed noise alone cannot fail a good model. ``strict``: pass only when it is
    confidently above (lower bound at or above the threshold), so seed noise cannot pass a bad one.

    Args:
        interval: the score and its interval (a NaN bound: decide on the point estimate).
        threshold: the lowest acceptable score.
        strict: decide on the lower bound instead of the upper one.

    Returns:
        The :class:`Decision`, with ``threshold`` and the rule that decided.

    Example:
        >>> decide_minimum(Interval(0.85, 0.8, 0.9, 0.95, "t over 5 seeds"), 0.88).passed
        True
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
    return make_decision(passed, rule, shown, threshold, minimum=True)


def decide_maximum(interval: Interval | None, value: float, threshold: float, *, strict: bool = False) -> Decision:
    """A gate on a distance that should be at most ``threshold`` (the mirror of :func:`decide_minimum`).

    Args:
        interval: the distance's interval, or None (then the gate decides on ``value``).
        value: the distance.
        threshold: the highest acceptable distance.
        strict: pass only when the upper bound is at or below ``threshold``.

    Returns:
        The :class:`Decision`, with ``threshold`` and the rule that decided.

    Example:
        >>> decide_maximum(None, 12.5, 10.0).message
        'gate missed: 12.5 is above 10 (point estimate, no interval)'
    """
    if interval is None or not np.isfinite(interval.low):
        passed, rule, shown = value <= threshold, "point estimate, no interval", f"{value:.6g}"
    elif strict:
        passed, rule, shown = interval.high <= threshold, f"strict: upper bound <= {threshold:g}", interval.describe()
    else:
        passed, rule = interval.low <= threshold, f"fails only if confidently above {threshold:g}"
        shown = interval.describe()
    return make_decision(passed, rule, shown, threshold, minimum=False)


def jackknife_interval(whole, ref_mu: np.ndarray, ref_sigma: np.ndarray, value: float, confidence: float,
                       blocks: list | None = None, what: str = "blocks of the images") -> Interval | None:
    """The delete-a-block jackknife interval of the Fréchet distance ``value`` of ``whole`` (a
    :class:`~gen_eval.evaluator.stats.FeatureStats`) to (``ref_mu``, ``ref_sigma``): the distance recomputed
    with each of ``blocks`` (default: ``whole``'s block sums) left out. None when there are no blocks."""
    from gen_eval.evaluator.frechet import frechet_distance

    blocks = whole.blocks() if blocks is None else blocks
    if not blocks:
        return None
    left_out = [frechet_distance(rest.mu, rest.sigma, ref_mu, ref_sigma) for rest in whole.leave_one_block_out(blocks)]
    return jackknife_from(value, left_out, confidence, what)


def frechet_with_interval(whole, ref_mu: np.ndarray, ref_sigma: np.ndarray, confidence: float,
                          blocks: list | None = None, what: str = "blocks of the images",
                          no_blocks: str | None = None) -> tuple[float, Interval | None]:
    """FID's one path: the Fréchet distance of ``whole`` to (``ref_mu``, ``ref_sigma``) and its
    :func:`jackknife_interval`; without blocks the interval is None, or NaN bounds saying ``no_blocks``."""
    from gen_eval.evaluator.frechet import frechet_distance

    value = frechet_distance(whole.mu, whole.sigma, ref_mu, ref_sigma)
    interval = jackknife_interval(whole, ref_mu, ref_sigma, value, confidence, blocks, what)
    if interval is None and no_blocks is not None:
        interval = Interval(value, float("nan"), float("nan"), confidence, no_blocks)
    return value, interval


def jackknife_from(value: float, left_out, confidence: float, what: str = "blocks of the images") -> Interval:
    """The delete-a-block jackknife interval of ``value`` from its values with each block left out."""
    from scipy import stats as scipy_stats

    g = len(left_out)
    if g < 2:
        return Interval(value, float("nan"), float("nan"), confidence, "too few images for a jackknife")
    values = np.array(left_out)
    se = float(np.sqrt((g - 1) / g * np.sum((values - values.mean()) ** 2)))
    half = float(scipy_stats.t.ppf((1 + confidence) / 2, g - 1)) * se
    return Interval(value, value - half, value + half, confidence, f"jackknife over {g} {what}")


def seed_interval(values: np.ndarray, confidence: float) -> Interval:
    """Student-t interval of the mean over independent noise seeds (none with one seed).

    Args:
        values: one score per seed.
        confidence: the interval's coverage, between 0 and 1.

    Returns:
        An :class:`Interval` (NaN bounds with one seed).
    """
    interval = t_interval(values, confidence, "seed")
    if len(values) < 2:
        return Interval(interval.estimate, interval.low, interval.high, confidence,
                        "one seed: no interval (use repeats >= 2)")
    return interval


def seeds_only_interval(hits: np.ndarray, ks: np.ndarray, confidence: float) -> Interval:
    """The conditions held fixed: Student t over the seeds' scores, widened to hold the Wilson interval of
    the hits among all objects scored, so seeds that agree do not give a zero-width interval."""
    hits = np.asarray(hits, dtype=np.float64)
    low, high = object_interval(hits, ks, confidence)
    objects = f"{int(round(hits.sum()))} hits in {int(round(np.sum(ks) * len(hits)))} objects"
    seeds = seed_interval(hits.sum(axis=1) / np.sum(ks), confidence)
    if not np.isfinite(seeds.low):
        return Interval(seeds.estimate, low, high, confidence,
                        f"one seed, conditions fixed: Wilson interval of {objects}")
    return Interval(seeds.estimate, min(seeds.low, low), max(seeds.high, high), confidence,
                    f"{seeds.method}, conditions fixed, widened to at least the Wilson interval of {objects}")


__all__ = ["Decision", "Interval", "by_condition_row", "decide_maximum", "decide_minimum", "frechet_with_interval", "jackknife_from",
           "jackknife_interval", "make_decision", "object_interval", "paired_difference", "pooled_score",
           "score_interval", "seed_interval", "seeds_only_interval", "t_interval"]
