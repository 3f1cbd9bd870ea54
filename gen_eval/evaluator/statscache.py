"""Reference statistics cached in the per-user cache folder (``<cache>/stats/<key>.npz``).

torch-fidelity and clean-fid cache the reference side; so does ``fid`` here. The key is a SHA-256 of
what the statistics depend on: the features model file (its SHA-256) with its recorded id and
preprocessing, the split, and the content of the data: each file's name, size and SHA-256, in order.
Any change to the model, a file, or a split misses the cache and recomputes; a damaged cache file is
recomputed too. Image sets without files (none here today) are not cached.

``metrics`` needs every reference image's features (KID, PRDC, CMMD), not only mu and sigma: its
entries are ``<key>.npz`` with ``<key>.features.npy`` beside (the layout `stats --save-features`
writes), read back memory-mapped, keyed with the index chunk size too (the exact sums follow the chunks).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from gen_eval.errors import UserError

log = logging.getLogger("gen_eval")
KEY_VERSION = 1
STATS_FOLDER = "stats"


def _file_entry(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return f"{path.name}\t{path.stat().st_size}\t{digest.hexdigest()}"


def reference_key(model, images, source: str | Path, split: str, extra: dict | None = None) -> str | None:
    """The cache key of ``images``' statistics under features ``model`` (an OnnxModel), or None;
    ``extra``: more of what the cached entry depends on (it then differs from ``fid``'s key)."""
    from gen_eval.evaluator.features import feature_model_id, preprocessing_id

    files = getattr(images, "files", None)
    if files:
        paths = [Path(p) for p in files]
    elif Path(source).is_file():
        paths = [Path(source)]
    else:
        return None
    try:
        listing = [_file_entry(p) for p in paths]
    except OSError:
        return None  # an unreadable file fails later with its own message
    material = {"version": KEY_VERSION, "features_sha256": model.sha256, "feature_model": feature_model_id(model),
                "preprocessing": preprocessing_id(model), "split": split, "files": listing}
    if extra:
        material["extra"] = extra
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def cached_stats_path(key: str) -> Path:
    from gen_eval.weights.cache import cache_folder

    return cache_folder() / STATS_FOLDER / f"{key}.npz"


def load_cached(key: str):
    """The cached FeatureStats for ``key``, or None (absent or damaged)."""
    from gen_eval.evaluator.stats import load_stats

    path = cached_stats_path(key)
    if not path.is_file():
        return None
    try:
        stats = load_stats(path).stats
    except UserError as exc:
        log.warning("ignoring the damaged cached statistics %s (%s); recomputing", path, exc)
        return None
    if stats is not None:
        log.info("reference statistics from the cache: %s", path)
    return stats


def save_cached(key: str, stats) -> None:
    """Keep ``stats`` for ``key``; a cache that cannot be written is a warning, not a failure."""
    path = cached_stats_path(key)
    try:
        stats.save(path, force=True)
    except (UserError, OSError) as exc:
        log.warning("could not cache the reference statistics in %s (%s); set GEN_EVAL_CACHE to a writable "
                    "folder", path.parent, exc)


def load_cached_features(key: str):
    """The cached reference FeatureStore (memory-mapped, its statistics set) for ``key``, or None."""
    from gen_eval.evaluator.metrics import FeatureStore
    from gen_eval.scale.feature_files import features_path

    stats_path = cached_stats_path(key)
    rows = features_path(stats_path)
    if not rows.is_file():
        return None
    stats = load_cached(key)
    if stats is None:
        return None
    try:
        store = FeatureStore.open(rows, feature_model=stats.feature_model)
    except (ValueError, OSError) as exc:
        log.warning("ignoring the damaged cached features %s (%s); recomputing", rows, exc)
        return None
    if store.n != stats.n or store.dim != stats.dim:
        store.close()
        log.warning("ignoring the cached features %s (%d rows of %d, statistics of %d of %d); recomputing",
                    rows, store.n, store.dim, stats.n, stats.dim)
        return None
    store.stats = stats
    log.info("reference features from the cache: %s", rows)
    return store


def save_cached_features(key: str, store, stats) -> None:
    """Keep ``store``'s features and their ``stats`` for ``key``: the features first, so that a statistics file
    in the cache always has complete features beside it; each file lands whole or not at all."""
    import shutil

    from gen_eval.fileio import atomic_path
    from gen_eval.scale.feature_files import features_path

    stats_path = cached_stats_path(key)
    try:
        with atomic_path(features_path(stats_path), force=True) as tmp:
            shutil.copyfile(store.path, tmp)
    except (UserError, OSError) as exc:
        log.warning("could not cache the reference features in %s (%s); set GEN_EVAL_CACHE to a writable "
                    "folder", stats_path.parent, exc)
        return
    save_cached(key, stats)


def clear_cached() -> list[Path]:
    """Delete every cached reference statistics file (and the features beside); the paths removed."""
    from gen_eval.weights.cache import cache_folder

    folder = cache_folder() / STATS_FOLDER
    removed = sorted([*folder.glob("*.npz"), *folder.glob("*.features.npy")]) if folder.is_dir() else []
    for path in removed:
        path.unlink()
    return removed
