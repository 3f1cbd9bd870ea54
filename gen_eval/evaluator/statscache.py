"""Reference statistics cached in the per-user cache folder (``<cache>/stats/<key>.npz``).

torch-fidelity and clean-fid cache the reference side; so does ``fid`` here. The key is a SHA-256 of
what the statistics depend on: the features model file (its SHA-256) with its recorded id and
preprocessing, the split, and the content of the data: each file's name, size and SHA-256, in order.
Any change to the model, a file, or a split misses the cache and recomputes; a damaged cache file is
recomputed too. Image sets without files (none here today) are not cached.
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


def reference_key(model, images, source: str | Path, split: str) -> str | None:
    """The cache key of ``images``' statistics under features ``model`` (an OnnxModel), or None."""
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


def clear_cached() -> list[Path]:
    """Delete every cached reference statistics file; the paths removed."""
    from gen_eval.weights.cache import cache_folder

    folder = cache_folder() / STATS_FOLDER
    removed = sorted(folder.glob("*.npz")) if folder.is_dir() else []
    for path in removed:
        path.unlink()
    return removed
