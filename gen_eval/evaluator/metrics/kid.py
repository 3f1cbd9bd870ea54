"""Kernel Inception Distance (Bińkowski et al. 2018) exactly as torch-fidelity 0.4.0 computes it.

Kernel k(x, y) = (γ x·y + c)^d with d = 3, γ = 1/D, c = 1. ``kid_subsets`` (100) times: draw
``kid_subset_size`` rows of the generated set, then as many of the reference set, each without
replacement, from one ``np.random.RandomState(seed)`` (``rng.choice(n, m, replace=False)``, generated
first — torch-fidelity's ``input1`` — then reference, so the same seed draws the same subsets);
compute the unbiased MMD² estimator

    MMD² = (Σ_{i≠j} k(x_i, x_j) + Σ_{i≠j} k(y_i, y_j)) / (m (m − 1)) − 2 Σ_{i,j} k(x_i, y_j) / m²

and report the mean and the (population, ddof = 0) standard deviation over subsets. Differences from
torch-fidelity: the subset size is min(``kid_subset_size``, n_generated, n_reference) (torch-fidelity
refuses sets smaller than the subset size); kernel sums are formed in float64 from the float32
features in row blocks of ``block`` rows (torch-fidelity holds three m x m kernel matrices in the
features' dtype, float32 for its extractors) — so on float64 inputs the two agree to rounding, and on
float32 inputs ours is the more exact one. KID can be slightly negative when the sets are alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gen_eval.evaluator.metrics._common import Result, features_of
from gen_eval.evaluator.metrics.registry import register_metric


@dataclass
class KIDResult(Result):
    mean: float
    std: float
    subsets: int
    subset_size: int
    n_generated: int
    n_reference: int


def _kernel_sums(x: np.ndarray, y: np.ndarray, gamma: float, coef0: float, degree: int, block: int):
    """(Σ_{i≠j} k(x_i, x_j), Σ_{i,j} k(x_i, y_j)) in float64, row blocks of x."""
    off_diagonal = 0.0
    cross = 0.0
    for start in range(0, len(x), block):
        xb = x[start : start + block]
        kxx = _kernel(x if len(xb) == len(x) else xb, x, gamma, coef0, degree)  # x @ x.T: one syrk
        diagonal = kxx[np.arange(len(xb)), np.arange(start, start + len(xb))]
        off_diagonal += float((kxx.sum(axis=1) - diagonal).sum())
        if len(y):
            cross += float(_kernel(xb, y, gamma, coef0, degree).sum())
    return off_diagonal, cross


def _kernel(a: np.ndarray, b: np.ndarray, gamma: float, coef0: float, degree: int) -> np.ndarray:
    k = a @ b.T
    k *= gamma
    k += coef0
    if degree == 3:  # the default: two in-place products instead of pow (same value to 1 ulp)
        cube = k * k
        cube *= k
        return cube
    return k**degree


def kid_from_features(generated: np.ndarray, reference: np.ndarray, *, kid_subsets: int = 100,
                      kid_subset_size: int = 1000, kid_degree: int = 3, kid_gamma: float | None = None,
                      kid_coef0: float = 1.0, seed: int = 2020, block: int = 1000) -> tuple[np.ndarray, int]:
    """The MMD² of each subset pair, and the subset size used."""
    if generated.shape[1] != reference.shape[1]:
        raise ValueError(f"features differ in dimension ({generated.shape[1]} vs {reference.shape[1]})")
    n1, n2 = len(generated), len(reference)
    m = min(int(kid_subset_size), n1, n2)
    if m < 2:
        raise ValueError(f"KID needs at least 2 images on each side, got {n1} and {n2}")
    gamma = 1.0 / generated.shape[1] if kid_gamma is None else float(kid_gamma)
    rng = np.random.RandomState(seed)
    mmds = np.zeros(int(kid_subsets))
    for i in range(int(kid_subsets)):
        x = np.asarray(generated[rng.choice(n1, m, replace=False)], np.float64)
        y = np.asarray(reference[rng.choice(n2, m, replace=False)], np.float64)
        kxx, kxy = _kernel_sums(x, y, gamma, kid_coef0, kid_degree, block)
        kyy, _ = _kernel_sums(y, y[:0], gamma, kid_coef0, kid_degree, block)
        mmds[i] = (kxx + kyy) / (m * (m - 1)) - 2 * kxy / (m * m)
    return mmds, m


@register_metric("kid")
def kid(generated, reference, *, kid_subsets: int = 100, kid_subset_size: int = 1000, kid_degree: int = 3,
        kid_gamma: float | None = None, kid_coef0: float = 1.0, seed: int = 2020, block: int = 1000) -> KIDResult:
    """KID between two feature sources (``FeatureStore`` or [n, D] arrays). Kernel rows are formed
    ``block`` at a time: the default (a whole subset: ``x @ x.T`` is then one symmetric product) holds
    m x m float64 kernels (8 MB at m = 1000) whatever N is; a smaller block holds block x m."""
    x, y = features_of(generated), features_of(reference)
    mmds, m = kid_from_features(x, y, kid_subsets=kid_subsets, kid_subset_size=kid_subset_size,
                                kid_degree=kid_degree, kid_gamma=kid_gamma, kid_coef0=kid_coef0, seed=seed,
                                block=block)
    return KIDResult(float(np.mean(mmds)), float(np.std(mmds)), int(kid_subsets), m, len(x), len(y))
