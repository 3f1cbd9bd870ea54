"""The classifier score of a conditional generator: pooled top-k (docs/metrics.md).

Multilabel: for each image, k = its number of true labels; the classifier's top-k indices are
compared with the true labels; score = sum(correct) / sum(k) over the whole set (pooled).
Ties among probabilities: the top-k are the first k indices of a *stable* descending sort, i.e. the
lowest index wins among equal values. ``torch.topk`` does not specify its tie order (on CPU,
``torch.full((24,), .5).topk(3)`` returns indices 15, 17, 16), so on exact ties the iCLEVR reference
evaluator, which uses it, is itself arbitrary; ties occur in practice when sigmoid outputs saturate to
exactly 1.0 in float32.
Categorical heads: per-head argmax accuracy (first maximum on ties) and their mean.
Binary attribute: accuracy of ``prob > 0.5`` against the 0/1 condition (top-k needs k >= 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gen_eval.data.labels import LabelSpace
from gen_eval.errors import UserError
from gen_eval.evaluator.model import OnnxModel
from gen_eval.evaluator.noise import latent_noise
from gen_eval.evaluator.preprocess import quantize as quantize_images
from gen_eval.evaluator.preprocess import to_model_input


@dataclass
class ScoreResult:
    value: float
    correct: int
    total: int
    per_head: dict[str, float] = field(default_factory=dict)
    hits: np.ndarray | None = None    # per image: labels (or heads) it got right
    ks: np.ndarray | None = None      # per image: labels (or heads) it was asked for; value = Σhits / Σks
    probs: np.ndarray | None = None   # the classifier's probabilities, for the per-condition breakdown


def classifier_score(probs: np.ndarray, conditions: np.ndarray) -> float:
    """Pooled top-k accuracy: sum over images of |top-k(probs) & true labels| / sum of k."""
    return multilabel_score(probs, conditions).value


def multilabel_score(probs: np.ndarray, conditions: np.ndarray) -> ScoreResult:
    probs, conditions = _check(probs, conditions)
    k = conditions.sum(axis=1).astype(np.int64)
    if k.sum() == 0:
        raise ValueError("no true labels in the conditions; the top-k score needs at least one")
    order = np.argsort(-probs, axis=1, kind="stable")
    truth_in_rank_order = np.take_along_axis(conditions, order, axis=1)
    within_k = np.arange(probs.shape[1])[None, :] < k[:, None]
    hits = (truth_in_rank_order * within_k).sum(axis=1).astype(np.int64)
    correct, total = int(hits.sum()), int(k.sum())
    return ScoreResult(correct / total, correct, total, hits=hits, ks=k, probs=probs)


def categorical_score(probs: np.ndarray, conditions: np.ndarray, label_space: LabelSpace) -> ScoreResult:
    """Per-head argmax accuracy; ``value`` is their mean."""
    probs, conditions = _check(probs, conditions)
    per_head, row_hits = {}, np.zeros(len(probs), dtype=np.int64)
    for head, sl in label_space.head_slices():
        hits = np.argmax(probs[:, sl], axis=1) == np.argmax(conditions[:, sl], axis=1)
        per_head[head] = float(hits.mean())
        row_hits += hits
    correct, total = int(row_hits.sum()), len(probs) * len(per_head)
    return ScoreResult(float(np.mean(list(per_head.values()))), correct, total, per_head, hits=row_hits,
                       ks=np.full(len(probs), len(per_head), dtype=np.int64), probs=probs)


def binary_score(probs: np.ndarray, conditions: np.ndarray) -> ScoreResult:
    """Accuracy of ``probs > 0.5`` against 0/1 conditions."""
    probs, conditions = _check(probs, conditions)
    hits = (probs[:, 0] > 0.5) == (conditions[:, 0] > 0.5)
    return ScoreResult(float(hits.mean()), int(hits.sum()), len(hits), hits=hits.astype(np.int64),
                       ks=np.ones(len(hits), dtype=np.int64), probs=probs)


def score_probs(probs: np.ndarray, conditions: np.ndarray, label_space: LabelSpace | None) -> ScoreResult:
    """The score for the kind of ``label_space`` (multilabel when unknown)."""
    kind = label_space.kind if label_space is not None else "multilabel"
    if kind == "categorical":
        return categorical_score(probs, conditions, label_space)
    if kind == "binary":
        return binary_score(probs, conditions)
    return multilabel_score(probs, conditions)


def _check(probs: np.ndarray, conditions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probs = np.asarray(probs, dtype=np.float64)
    conditions = np.asarray(conditions, dtype=np.float64)
    if probs.ndim != 2 or probs.shape != conditions.shape:
        raise ValueError(f"probabilities {probs.shape} and conditions {conditions.shape} must both be [N, L]")
    return probs, conditions


def generate_for_conditions(generator: OnnxModel, conditions: np.ndarray, seed: int) -> np.ndarray:
    """One image per condition row; sample ``i`` uses the noise of (seed, i)."""
    z = latent_noise(seed, np.arange(len(conditions)), generator.info.latent_dim)
    return generator.generate(z, conditions)


def classify_generated(classifier: OnnxModel, images: np.ndarray, value_range, quantize: bool = False) -> np.ndarray:
    """Classifier probabilities for generator images in ``value_range`` (optionally PNG-quantised)."""
    if quantize:
        images = quantize_images(images, value_range)
    info = classifier.info
    try:
        batch = to_model_input(images, value_range, info.value_range, info.image_shape)
    except ValueError as exc:
        raise UserError(f"{classifier.path}: {exc}; use a classifier made for these images") from None
    return classifier.run(image=batch)["probs"]


MAX_KEPT_IMAGES = 1024  # images score_generator returns (for a grid); the rest are never all held at once


def score_generator(
    generator: OnnxModel,
    classifier: OnnxModel,
    conditions: np.ndarray,
    seed: int,
    *,
    label_space: LabelSpace | None = None,
    quantize: bool = False,
    keep_images: int = MAX_KEPT_IMAGES,
    on_batch=None,
) -> tuple[ScoreResult, np.ndarray]:
    """Generate one image per condition with noise ``seed``, classify, score; also returns the first
    ``keep_images`` images. Images are made and classified a batch at a time: memory holds one batch
    of images and the probabilities, whatever the number of conditions. ``on_batch(count)`` is called
    after each batch (a progress bar's ``update``)."""
    step = max(1, generator.batch_size)
    probs, kept = [], []
    for start in range(0, len(conditions), step):
        rows = np.arange(start, min(start + step, len(conditions)))
        images = generator.generate(latent_noise(seed, rows, generator.info.latent_dim), conditions[rows])
        batch_probs = classify_generated(classifier, images, generator.info.value_range, quantize)
        if batch_probs.shape[1] != conditions.shape[1]:
            raise UserError(
                f"{classifier.path}: the classifier gives {batch_probs.shape[1]} probabilities but the conditions have "
                f"{conditions.shape[1]} labels; use the classifier trained on this label space"
            )
        probs.append(batch_probs)
        if start < keep_images:
            kept.append(images[: keep_images - start])
        if on_batch is not None:
            on_batch(len(rows))
    images = np.concatenate(kept) if kept else np.empty((0,), np.float32)
    return score_probs(np.concatenate(probs), conditions, label_space), images
