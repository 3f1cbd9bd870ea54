"""Reference implementations of the classifier score, to check gen-eval's against.

"TA" is the course teaching assistants' evaluator for iCLEVR, as the S4 seed report ships it
(shared/seeds/004_*.txt). :func:`ta_compute_acc` is its ``compute_acc`` (torch tensors in);
:func:`stable_reference` is the same semantics with an explicit stable sort (numpy in, no torch);
:func:`tie_slack` says how far a score may move where top-k decisions lie within float32 noise.

Also imported by benchmarks/bench_evaluator.py (which puts tests/ on sys.path), so this module
imports nothing beyond numpy: no pytest, no onnx, torch only for type checkers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def ta_compute_acc(out: torch.Tensor, onehot_labels: torch.Tensor) -> tuple[int, int]:
    """The S4 TA's evaluator.compute_acc, verbatim in logic (returns the pooled counts)."""
    acc, total = 0, 0
    for i in range(out.size(0)):
        k = int(onehot_labels[i].sum().item())
        total += k
        outv, outi = out[i].topk(k)
        lv, li = onehot_labels[i].topk(k)
        for j in outi:
            if j in li:
                acc += 1
    return acc, total


def stable_reference(probs: np.ndarray, conditions: np.ndarray) -> float:
    """The same semantics with an explicit stable descending sort (lowest index first on ties)."""
    correct = total = 0
    for p, c in zip(probs.tolist(), conditions.tolist()):
        k = int(sum(c))
        top = sorted(range(len(p)), key=lambda i: -p[i])[:k]  # sorted() is stable
        correct += sum(1 for i in top if c[i] == 1)
        total += k
    return correct / total


def tie_slack(probs, conditions, eps: float = 2.0 ** -16) -> float:
    """How far a score may move on another CPU: images whose k-th and (k+1)-th probabilities lie within
    float32 noise (the float32 rule's floor for probabilities) may rank either way; each moves it by
    at most 1/Σk. Zero when no decision is that close: then the score must match exactly."""
    probs, conditions = np.asarray(probs, np.float64), np.asarray(conditions)
    ordered = -np.sort(-probs, axis=1)
    ks = conditions.sum(1).astype(int)
    close = sum(1 for row, k in zip(ordered, ks) if k < len(row) and row[k - 1] - row[k] <= eps)
    return close / ks.sum()
