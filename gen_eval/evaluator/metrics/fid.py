"""FID (pytorch-fid's definition, ``gen_eval.evaluator.frechet``) and FID∞ (Chong & Forsyth 2020).

FID∞ — "Effectively Unbiased FID and Inception Score and where to find them", CVPR 2020. FID_N, the
FID of N generated images against the full reference statistics, has expectation ≈ FID∞ + c/N for
large N; FID∞ is the value extrapolated to N → ∞. As in the authors' ``calculate_FID_infinity``:
N takes ``fid_inf_points`` (15) values ``np.linspace(n_min, n, points).astype(int32)``; for each N,
N generated feature rows are drawn uniformly without replacement (a fresh ``permutation(n)[:N]`` of
one ``np.random.RandomState(seed)``, the authors reshuffle the activations each time); FID_N is
computed against the reference's mean and covariance (all of it, fixed); an ordinary least-squares
line FID_N = FID∞ + slope / N is fitted (``np.polyfit`` on 1/N, as sklearn's ``LinearRegression``
fits) and its intercept is FID∞. ``n_min`` is ``fid_inf_min_n`` (5000, the paper's) but at most n/2,
so that small sets still span a range of 1/N; the authors draw latents from a Sobol sequence, which
does not apply to a set of features given in advance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gen_eval.evaluator.frechet import frechet_distance
from gen_eval.evaluator.metrics._common import Result, features_of, stats_of
from gen_eval.evaluator.metrics.registry import register_metric
from gen_eval.evaluator.stats import FeatureStats


@dataclass
class FIDResult(Result):
    fid: float
    n_generated: int
    n_reference: int | None


@dataclass
class FIDInfResult(Result):
    fid_inf: float
    slope: float
    n_values: list[int] = field(default_factory=list)
    fid_values: list[float] = field(default_factory=list)
    n_generated: int = 0


def mu_sigma(source) -> tuple[np.ndarray, np.ndarray, int | None]:
    """Mean, covariance and n of a FeatureStore, array, FeatureStats or loaded statistics file."""
    if hasattr(source, "mu") and hasattr(source, "sigma") and not isinstance(source, FeatureStats):
        return np.asarray(source.mu), np.asarray(source.sigma), getattr(source, "n", None)
    stats = stats_of(source)
    return stats.mu, stats.sigma, stats.n


@register_metric("fid", aliases=("fd",))  # fd: what EDM2 and dgm-eval call it on other features
def fid(generated, reference) -> FIDResult:
    """FID from the running statistics of a store (or an array / statistics)."""
    mu1, sigma1, n1 = mu_sigma(generated)
    mu2, sigma2, n2 = mu_sigma(reference)
    return FIDResult(frechet_distance(mu1, sigma1, mu2, sigma2), int(n1), n2)


def subset_stats(x: np.ndarray, rows: np.ndarray, block: int = 2048) -> FeatureStats:
    rows = np.sort(rows)
    stats = FeatureStats(x.shape[1])
    for start in range(0, len(rows), block):
        stats.update(np.asarray(x[rows[start : start + block]], np.float64))
    return stats


def fid_n_values(n: int, points: int = 15, min_n: int = 5000) -> np.ndarray:
    low = min(int(min_n), n // 2)
    if low < 2:
        raise ValueError(f"FID∞ needs more generated images (got {n})")
    return np.linspace(low, n, int(points)).astype("int32")


@register_metric("fid-inf", aliases=("fid_inf", "fidinf"))
def fid_infinity(generated, reference, *, fid_inf_points: int = 15, fid_inf_min_n: int = 5000,
                 seed: int = 2020) -> FIDInfResult:
    x = features_of(generated)
    mu2, sigma2, _ = mu_sigma(reference)
    ns = fid_n_values(len(x), fid_inf_points, fid_inf_min_n)
    rng = np.random.RandomState(seed)
    fids = []
    for size in ns:
        stats = subset_stats(x, rng.permutation(len(x))[:size])
        fids.append(frechet_distance(stats.mu, stats.sigma, mu2, sigma2))
    slope, intercept = np.polyfit(1.0 / ns.astype(np.float64), np.asarray(fids), 1)
    return FIDInfResult(float(intercept), float(slope), [int(v) for v in ns], [float(v) for v in fids], len(x))
