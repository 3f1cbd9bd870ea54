"""Precision, recall (Kynkäänniemi et al. 2019), density and coverage (Naeem et al. 2020) exactly as
the ``prdc`` package 0.2 computes them, with distances in blocks.

With real (reference) features R, fake (generated) features F, Euclidean distance d and k = ``prdc_k``
(5): r_i = the (k+1)-th smallest of d(R_i, R_·) counting R_i itself (so its k-th neighbour), f_j the
same within F. Then, with strict inequalities as prdc writes them:

    precision = mean_j [∃ i: d(R_i, F_j) < r_i]          recall   = mean_i [∃ j: d(R_i, F_j) < f_j]
    density   = mean_j Σ_i [d(R_i, F_j) < r_i] / k        coverage = mean_i [min_j d(R_i, F_j) < r_i]

Distances use scikit-learn's arithmetic (``distances.py``): float32 features give float32 distances
bit-identical in practice to prdc's (it calls ``sklearn.metrics.pairwise_distances``). prdc builds
three N x M matrices (plus an int64 argpartition of the same size); here row and column tiles of
``block`` rows are read from the memory maps and reduced at once (k+1 smallest per row, counts per
fake, flags and minima per real), so memory is O(block² + N + M).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gen_eval.evaluator.metrics._common import Result, features_of
from gen_eval.evaluator.metrics.distances import DEFAULT_BLOCK, kth_nearest, tiles
from gen_eval.evaluator.metrics.registry import register_metric


@dataclass
class PRDCResult(Result):
    precision: float
    recall: float
    density: float
    coverage: float
    k: int
    n_generated: int
    n_reference: int


def prdc_from_features(real: np.ndarray, fake: np.ndarray, nearest_k: int = 5, block: int = DEFAULT_BLOCK) -> dict:
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"features differ in dimension ({real.shape[1]} vs {fake.shape[1]})")
    if min(len(real), len(fake)) < nearest_k + 1:
        raise ValueError(f"PRDC with k={nearest_k} needs more than {nearest_k} images on each side")
    real_radii = kth_nearest(real, nearest_k + 1, block)
    fake_radii = kth_nearest(fake, nearest_k + 1, block)
    inside_count = np.zeros(len(fake), np.int64)  # per fake: how many real balls hold it
    recalled = np.zeros(len(real), bool)  # per real: inside some fake ball
    min_to_fake = np.full(len(real), np.inf, real_radii.dtype)
    for r, c, d in tiles(real, fake, block):
        inside = d < real_radii[r : r + len(d), None]
        inside_count[c : c + d.shape[1]] += inside.sum(axis=0)
        recalled[r : r + len(d)] |= (d < fake_radii[None, c : c + d.shape[1]]).any(axis=1)
        np.minimum(min_to_fake[r : r + len(d)], d.min(axis=1), out=min_to_fake[r : r + len(d)])
    return dict(
        precision=float((inside_count > 0).mean()),
        recall=float(recalled.mean()),
        density=float((1.0 / float(nearest_k)) * inside_count.mean()),
        coverage=float((min_to_fake < real_radii).mean()),
    )


@register_metric("prdc", aliases=("precision_recall",))
def prdc(generated, reference, *, prdc_k: int = 5, block: int = DEFAULT_BLOCK) -> PRDCResult:
    """Precision, recall, density and coverage of the generated features against the reference's."""
    fake, real = features_of(generated), features_of(reference)
    values = prdc_from_features(real, fake, prdc_k, block)
    return PRDCResult(**values, k=int(prdc_k), n_generated=len(fake), n_reference=len(real))
