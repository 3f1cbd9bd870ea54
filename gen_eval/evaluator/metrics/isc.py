"""Inception Score (Salimans et al. 2016) from logits, exactly as torch-fidelity 0.4.0 computes it.

Rows are shuffled by ``np.random.RandomState(seed).permutation(N)`` (seed 2020, torch-fidelity's
``samples_shuffle=True`` default), cut into ``is_splits`` (10) consecutive parts [i·N//s, (i+1)·N//s),
and for each part, in float64, with p = softmax(logits) per row and q the part's mean of p:

    IS_i = exp( mean_rows Σ_c p_c (log p_c − log q_c) ) = exp( mean_rows Σ_c p_c log p_c − Σ_c q_c log q_c )

(the second form is the same number, and needs only Σp and Σ p log p per part, so logits are read in
row blocks, never all at once). The result is the mean and the population std (ddof = 0) of the IS_i.
Give the logits the Inception's classifier head outputs (torch-fidelity's ``logits_unbiased``, 1008
classes for the FID Inception); softmax is over every column given.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gen_eval.evaluator.metrics._common import Result, logits_of
from gen_eval.evaluator.metrics.registry import register_metric


@dataclass
class ISResult(Result):
    mean: float
    std: float
    splits: int
    n: int


def _log_softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - x.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def inception_scores(logits: np.ndarray, *, is_splits: int = 10, shuffle: bool = True, seed: int = 2020,
                     block: int = 1024) -> np.ndarray:
    """IS of each split."""
    n, classes = logits.shape
    if n < is_splits:
        raise ValueError(f"IS with {is_splits} splits needs at least {is_splits} images, got {n}")
    # position of each stored row after torch-fidelity's shuffle: row perm[j] goes to place j
    place = np.empty(n, np.int64)
    perm = np.random.RandomState(seed).permutation(n) if shuffle else np.arange(n)
    place[perm] = np.arange(n)
    bounds = np.array([i * n // is_splits for i in range(is_splits + 1)])
    sum_p = np.zeros((is_splits, classes))
    sum_plogp = np.zeros(is_splits)
    for start in range(0, n, block):
        log_p = _log_softmax(np.asarray(logits[start : start + block], np.float64))
        p = np.exp(log_p)
        split = np.searchsorted(bounds, place[start : start + len(p)], side="right") - 1
        plogp = (p * log_p).sum(axis=1)
        for part in np.unique(split):
            rows = split == part
            sum_p[part] += p[rows].sum(axis=0)
            sum_plogp[part] += plogp[rows].sum()
    counts = np.diff(bounds)
    q = sum_p / counts[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        q_log_q = np.where(q > 0, q * np.log(q), 0.0).sum(axis=1)
    return np.exp(sum_plogp / counts - q_log_q)


@register_metric("is", aliases=("isc", "inception_score"))
def inception_score(generated, reference=None, *, is_splits: int = 10, is_shuffle: bool = True,
                    seed: int = 2020) -> ISResult:
    """IS of the generated set's logits (a ``FeatureStore`` with logits, or an [n, classes] array);
    the reference is not used."""
    logits = logits_of(generated)
    scores = inception_scores(logits, is_splits=is_splits, shuffle=is_shuffle, seed=seed)
    return ISResult(float(np.mean(scores)), float(np.std(scores)), int(is_splits), len(logits))
