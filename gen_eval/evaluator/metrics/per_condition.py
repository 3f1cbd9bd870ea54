"""Fréchet distance per condition: intra-class FID (categorical labels) and per-label FD (binary or
multilabel conditions), with the number of images on each side.

Labels: a 1-D integer array (one class per image) or a 2-D 0/1 matrix [n, L] (image carries label j
where column j is 1); both sides use the same label space. For each class / label, the generated and
reference images that carry it give a mean and covariance (rows read from the memory maps in blocks,
one label at a time, so memory is O(D²)) and their Fréchet distance. A label is skipped — listed in
``skipped`` with both counts — when either side has fewer than ``min_count`` images; the default
min_count is D + 1, the fewest images whose covariance can be of full rank (pass a smaller one, e.g.
StudioGAN-style small classes, knowing the FD is then biased upwards). ``mean_fd`` is the mean over
the labels computed (StudioGAN's intra-class FID for categorical labels).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gen_eval.evaluator.frechet import frechet_distance
from gen_eval.evaluator.metrics._common import Result, features_of
from gen_eval.evaluator.metrics.fid import subset_stats
from gen_eval.evaluator.metrics.registry import register_metric


@dataclass
class ConditionFD:
    label: str
    fd: float | None
    n_generated: int
    n_reference: int


@dataclass
class PerConditionResult(Result):
    mean_fd: float | None
    min_count: int
    per_label: list[ConditionFD] = field(default_factory=list)
    skipped: list[ConditionFD] = field(default_factory=list)


def label_matrix(labels: np.ndarray, n_labels: int | None = None) -> np.ndarray:
    """[n, L] bool from class indices [n] or a 0/1 matrix [n, L]."""
    labels = np.asarray(labels)
    if labels.ndim == 1:
        if not np.issubdtype(labels.dtype, np.integer) or (labels < 0).any():
            raise ValueError("1-D labels must be non-negative class indices")
        count = int(labels.max()) + 1 if n_labels is None else int(n_labels)
        return np.arange(count)[None, :] == labels[:, None]
    if labels.ndim == 2:
        return labels.astype(bool)
    raise ValueError(f"labels must be [n] class indices or an [n, L] 0/1 matrix, got shape {labels.shape}")


def condition_columns(labels: np.ndarray, label_space=None) -> tuple[np.ndarray, list[str]]:
    """Condition vectors [n, L] -> (a 0/1 matrix [n, K], the K condition names) for ``fd_per_condition``.

    Categorical heads and multilabel names: one column per value / name (``label_space.names``). A
    binary attribute: two columns, the attribute and its absence ("not Smiling"), so both classes get
    an intra-class FD."""
    labels = np.asarray(labels) > 0.5
    names = list(label_space.names) if label_space is not None else [str(j) for j in range(labels.shape[1])]
    if label_space is not None and label_space.kind == "binary":
        return np.concatenate([labels, ~labels], axis=1).astype(np.uint8), [names[0], f"not {names[0]}"]
    return labels.astype(np.uint8), names


@register_metric("per-condition-fd", aliases=("intra_fid", "intra-fid", "per_condition", "fd_per_condition",
                                                "per_condition_fd"))
def fd_per_condition(generated, reference, *, generated_labels, reference_labels, label_names=None,
                     min_count: int | None = None) -> PerConditionResult:
    x, y = features_of(generated), features_of(reference)
    g_labels, r_labels = np.asarray(generated_labels), np.asarray(reference_labels)
    if len(g_labels) != len(x) or len(r_labels) != len(y):
        raise ValueError(f"labels for {len(g_labels)} / {len(r_labels)} images but features of {len(x)} / {len(y)}")
    count = None
    if g_labels.ndim == 1 and r_labels.ndim == 1:
        count = int(max(g_labels.max(initial=-1), r_labels.max(initial=-1))) + 1
    g, r = label_matrix(g_labels, count), label_matrix(r_labels, count)
    if g.shape[1] != r.shape[1]:
        raise ValueError(f"the two sides have {g.shape[1]} and {r.shape[1]} labels; use one label space")
    names = [str(v) for v in (label_names if label_names is not None else range(g.shape[1]))]
    minimum = x.shape[1] + 1 if min_count is None else int(min_count)
    minimum = max(minimum, 2)
    done, skipped = [], []
    for j, name in enumerate(names):
        gi, ri = np.flatnonzero(g[:, j]), np.flatnonzero(r[:, j])
        if len(gi) < minimum or len(ri) < minimum:
            skipped.append(ConditionFD(name, None, len(gi), len(ri)))
            continue
        a, b = subset_stats(x, gi), subset_stats(y, ri)
        done.append(ConditionFD(name, frechet_distance(a.mu, a.sigma, b.mu, b.sigma), len(gi), len(ri)))
    mean = float(np.mean([c.fd for c in done])) if done else None
    return PerConditionResult(mean, minimum, done, skipped)
