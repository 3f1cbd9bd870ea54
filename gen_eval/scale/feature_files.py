"""Feature files beside statistics files: shards of features that metrics beyond FID read back.

`stats compute --save-features` writes the shard's float32 features (index order, one row per image) to
``<stem>.features.npy`` beside ``<stem>.npz``; the statistics file says which index ranges the rows are.
:func:`open_feature_shards` checks the shards cover the run once each (as ``stats merge`` does), then
copies their rows in index order into one store, whose statistics are the exact merged ones: so every
metric equals the single-process run's.
"""

from __future__ import annotations

import os
from pathlib import Path

from gen_eval.errors import UserError


def features_path(stats_path: str | os.PathLike) -> Path:
    """Where the features of statistics file ``x.npz`` live: ``x.features.npy``."""
    path = Path(stats_path)
    return path.with_name(path.stem + ".features.npy")


def open_feature_shards(paths, directory: str | os.PathLike | None = None):
    """(FeatureStore of every shard's rows in index order, temporary; merged exact FeatureStats)."""
    from gen_eval.evaluator.metrics import FeatureStore
    from gen_eval.evaluator.stats import load_stats, merge_stats

    paths = [Path(p) for p in paths]
    merged = merge_stats(paths)
    if merged.chunked is None:
        raise UserError(f"{paths[0]}: statistics without index ranges; recompute the shards with "
                        "`gen-eval stats --save-features`")
    shards = []
    for path in paths:
        stats = load_stats(path).stats
        if len(stats.chunked.ranges) != 1:
            raise UserError(f"{path}: covers {len(stats.chunked.ranges)} separate index ranges; give the shard "
                            "files `gen-eval stats --shard` wrote, not merged ones")
        rows = features_path(path)
        if not rows.is_file():
            raise UserError(f"{rows}: not found; the features of {path} are written by `gen-eval stats "
                            "--save-features` beside it")
        try:
            store = FeatureStore.open(rows)
        except ValueError as exc:
            raise UserError(f"{rows}: {exc}; recompute it with `gen-eval stats --save-features`") from None
        if store.n != stats.n or store.dim != stats.dim:
            raise UserError(f"{rows}: {store.n} rows of {store.dim} features, but {path} holds statistics of "
                            f"{stats.n} images of {stats.dim}; they are of different runs, recompute both")
        shards.append((stats.chunked.ranges[0][0], store))
    combined = FeatureStore(merged.dim, feature_model=merged.feature_model, directory=directory)
    try:
        for _, store in sorted(shards, key=lambda item: item[0]):
            for _, block in store.blocks():
                combined.append(block)
            store.close()
    except BaseException:
        combined.close()
        raise
    combined.stats = merged
    return combined, merged
