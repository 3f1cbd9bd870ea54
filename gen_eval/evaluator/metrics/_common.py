"""Shared helpers: feature sources as arrays / memory maps, and results as dataclasses."""

from __future__ import annotations

import dataclasses

import numpy as np

from gen_eval.evaluator.metrics.store import FeatureStore
from gen_eval.evaluator.stats import FeatureStats


def features_of(source) -> np.ndarray:
    """[n, d] rows of a FeatureStore (its memory map) or an array (as given; not copied)."""
    if isinstance(source, FeatureStore):
        return source.features
    array = np.asarray(source) if not isinstance(source, np.ndarray) else source
    if array.ndim != 2:
        raise ValueError(f"features must be [n, d], got shape {array.shape}")
    return array


def logits_of(source) -> np.ndarray:
    if isinstance(source, FeatureStore):
        if not source.has_logits:
            raise ValueError("the feature store has no logits (IS needs a features model with a logits output)")
        return source.logits
    return features_of(source)


def stats_of(source, block: int = 4096) -> FeatureStats:
    """Running statistics: a store's own, or computed from an array in blocks."""
    if isinstance(source, FeatureStore):
        return source.stats
    if isinstance(source, FeatureStats):
        return source
    x = features_of(source)
    stats = FeatureStats(x.shape[1])
    for start in range(0, len(x), block):
        stats.update(np.asarray(x[start : start + block], np.float32 if x.dtype == np.float32 else np.float64))
    return stats


class Result:
    """Mixin for metric results: ``to_dict()`` gives plain Python values (JSON-ready)."""

    def to_dict(self) -> dict:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


def _plain(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if dataclasses.is_dataclass(value):
        return value.to_dict() if hasattr(value, "to_dict") else dataclasses.asdict(value)
    return value
