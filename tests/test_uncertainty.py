"""Intervals cover the true score at about their nominal rate; paired tests see a planted drop and
do not flag identical models. Synthetic models with known scores, seeded simulations."""

from __future__ import annotations

import numpy as np
import pytest

from gen_eval.evaluator.uncertainty import decide_minimum, paired_difference, pooled_score, score_interval


def population(rng, size: int = 200_000):
    """Conditions with 1-3 labels and a per-condition hit probability: the model's true behaviour."""
    ks = rng.integers(1, 4, size)
    p = rng.beta(6, 2, size)
    return ks, p


def draw(rng, ks_pop, p_pop, conditions: int, seeds: int, drop: float = 0.0):
    idx = rng.integers(0, len(ks_pop), conditions)
    ks, p = ks_pop[idx], np.clip(p_pop[idx] - drop, 0, 1)
    return rng.binomial(ks, p, size=(seeds, conditions)), ks, p


def test_two_way_interval_covers_the_true_score_at_its_nominal_rate():
    rng = np.random.default_rng(0)
    ks_pop, p_pop = population(rng)
    truth = float((ks_pop * p_pop).sum() / ks_pop.sum())
    trials, covered = 200, 0
    for t in range(trials):
        hits, ks, _ = draw(rng, ks_pop, p_pop, conditions=32, seeds=5)
        interval = score_interval(hits, ks, resamples=400, seed=t)
        covered += interval.low <= truth <= interval.high
    assert 0.88 <= covered / trials <= 0.99, covered / trials


def test_seed_only_interval_covers_the_score_of_this_test_set():
    """Conditions fixed (the test set is the target): the truth is this set's expected score."""
    rng = np.random.default_rng(1)
    ks_pop, p_pop = population(rng)
    _, ks, p = draw(rng, ks_pop, p_pop, conditions=32, seeds=1)
    truth = float((ks * p).sum() / ks.sum())
    trials, covered = 200, 0
    for t in range(trials):
        hits = rng.binomial(ks, p, size=(8, len(ks)))
        interval = score_interval(hits, ks, over_conditions=False, resamples=400, seed=t)
        covered += interval.low <= truth <= interval.high
    assert 0.85 <= covered / trials <= 0.99, covered / trials


def shared_noise_hits(u, ks, p):
    """Hits when every label's outcome is decided by shared noise u < p: two models on the same seeds
    and conditions see the same u, as generators fed the same z and labels draw related images."""
    labels = np.arange(u.shape[-1]) < ks[:, None]
    return ((u < p[:, None]) & labels).sum(-1)


def test_paired_test_detects_a_planted_drop_and_not_identical_models():
    rng = np.random.default_rng(2)
    ks_pop, p_pop = population(rng)
    idx = rng.integers(0, len(ks_pop), 64)
    ks, p = ks_pop[idx], p_pop[idx]
    u = rng.random((5, 64, 3))
    base = shared_noise_hits(u, ks, p)
    drop = paired_difference(shared_noise_hits(u, ks, np.clip(p - 0.05, 0, 1)), base, ks, resamples=1000)
    assert drop.high < 0 and drop.estimate == pytest.approx(-0.05, abs=0.03), drop.describe()
    same = paired_difference(base, base, ks, resamples=1000)
    assert (same.estimate, same.low, same.high) == (0.0, 0.0, 0.0)
    # one model against a rerun on other noise: flagged at about the 2.5% one-sided rate, not more
    flagged = sum(paired_difference(shared_noise_hits(rng.random((5, 64, 3)), ks, p), base, ks,
                                    resamples=300, seed=t).high < 0 for t in range(100))
    assert flagged <= 8, flagged


def test_gates_decide_on_the_interval_and_say_which_rule():
    hits = np.array([[3, 2, 1, 0], [2, 2, 1, 1]])
    ks = np.array([3, 2, 1, 2])
    interval = score_interval(hits, ks, resamples=500)
    assert interval.estimate == pytest.approx(pooled_score(hits, ks)) == pytest.approx(12 / 16)
    lenient = decide_minimum(interval, interval.estimate + 0.01)
    assert lenient.passed and "confidently below" in lenient.message and "bootstrap" in lenient.message
    strict = decide_minimum(interval, interval.estimate - 0.01, strict=True)
    assert not strict.passed and "strict" in strict.message and "missed" in strict.message
    assert strict.threshold == pytest.approx(interval.estimate - 0.01) and strict.minimum
    assert not decide_minimum(interval, interval.high + 0.01).passed
    with pytest.raises(ValueError, match="one positive k"):
        score_interval(hits, np.array([3, 2, 0, 2]))


def test_seed_t_interval_covers_the_score_of_this_test_set():
    """`score --repeats 5` (the default interval): Student t over the per-seed scores."""
    from gen_eval.evaluator.uncertainty import seed_interval

    rng = np.random.default_rng(3)
    ks_pop, p_pop = population(rng)
    _, ks, p = draw(rng, ks_pop, p_pop, conditions=32, seeds=1)
    truth = float((ks * p).sum() / ks.sum())
    trials, covered = 400, 0
    for _ in range(trials):
        hits = rng.binomial(ks, p, size=(5, len(ks)))
        interval = seed_interval(hits.sum(1) / ks.sum(), 0.95)
        covered += interval.low <= truth <= interval.high
    assert 0.91 <= covered / trials <= 0.98, covered / trials


def test_seeds_that_agree_never_give_a_zero_width_interval():
    """Issue 25: 3 seeds scoring alike printed "[0.125, 0.125]"; the interval also rests on the finite
    objects scored, so it keeps a width, reaches the Wilson bounds and says so in its method."""
    from scipy.stats import binomtest

    from gen_eval.evaluator.uncertainty import seeds_only_interval

    ks = np.array([3, 2, 1, 2])
    hits = np.tile([1, 0, 0, 0], (3, 1))            # every seed 1 of 8: 0.125 each
    wilson = binomtest(3, 24).proportion_ci(0.95, method="wilson")
    for interval in (score_interval(hits, ks, resamples=300), score_interval(hits, ks, over_conditions=False),
                     seeds_only_interval(hits, ks, 0.95)):
        assert interval.estimate == pytest.approx(0.125)
        assert interval.low <= wilson.low < 0.125 < wilson.high <= interval.high, interval.describe()
        assert "Wilson interval of 3 hits in 24 objects" in interval.method
    perfect = score_interval(np.tile(ks, (3, 1)), ks, resamples=300)  # every object hit, every seed
    assert perfect.high == 1.0 and perfect.low == pytest.approx(binomtest(24, 24).proportion_ci(0.95, method="wilson").low)
    assert perfect.low < 0.9


def test_widened_interval_still_covers_near_perfect_models():
    """Where the bootstrap alone fails (most conditions all-hit), the widened interval keeps its coverage."""
    rng = np.random.default_rng(4)
    ks = rng.integers(1, 4, 16)
    p = 0.97
    trials, covered = 300, 0
    for t in range(trials):
        hits = rng.binomial(ks, p, size=(3, len(ks)))
        interval = score_interval(hits, ks, over_conditions=False, resamples=200, seed=t)
        covered += interval.low <= p <= interval.high
    assert covered / trials >= 0.9, covered / trials


def test_cycled_condition_rows_are_resampled_whole_in_the_score_and_in_compare():
    """With --n beyond the file's rows, images of one row share its condition: the bootstrap resamples rows
    with all their images (hits summed per row), both in a score's interval and in a paired comparison."""
    from gen_eval.evaluator.compare import MUST_MATCH, REQUIRED, compare_reports
    from gen_eval.evaluator.uncertainty import by_condition_row

    rng = np.random.default_rng(3)
    rows, n = 6, 20
    ks = np.tile(rng.integers(1, 4, rows), 4)[:n]
    new, base = rng.binomial(ks, 0.5, size=(2, n)), rng.binomial(ks, 0.7, size=(2, n))
    summed_hits, summed_ks = by_condition_row(new, ks, rows)
    assert summed_hits.shape == (2, rows) and summed_ks.sum() == ks.sum()
    assert pooled_score(summed_hits, summed_ks) == pooled_score(new, ks)

    def report(hits):
        return {"metric": "classifier_score", "value": pooled_score(hits, ks), "hits": hits.tolist(),
                "ks": ks.tolist(), "condition_rows": rows, "provenance": {}}

    # reports made here carry no provenance: the provenance checks are waived, the statistics are what is tested
    comparison = compare_reports(report(new), report(base), allow=frozenset(REQUIRED) | frozenset(MUST_MATCH))
    expected = paired_difference(summed_hits, by_condition_row(base, ks, rows)[0], summed_ks)
    assert comparison.difference == expected and f"x {rows} conditions" in expected.method
