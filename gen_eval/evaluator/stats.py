"""Feature statistics streamed as float64 sufficient statistics, saved as pytorch-fid-style .npz.

``FeatureStats`` keeps n, Σx and Σxxᵀ, so memory is O(D²) whatever the number of images, shards
merge exactly (sums add), and mu / sigma are those of ``np.mean`` / ``np.cov(rowvar=False)`` (the
unbiased covariance pytorch-fid uses). Files hold ``mu`` and ``sigma`` (what pytorch-fid reads and
writes) plus ``n``, ``sum``, ``sum_outer`` and ``feature_model`` (which features they are of).
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gen_eval.errors import UserError
from gen_eval.fileio import atomic_path


class FeatureStats:
    """Running n, sum and sum of outer products of D-dimensional features (float64)."""

    def __init__(self, dim: int, feature_model: str = "") -> None:
        self.dim = int(dim)
        self.feature_model = feature_model
        self.n = 0
        self.sum = np.zeros(self.dim, dtype=np.float64)
        self.sum_outer = np.zeros((self.dim, self.dim), dtype=np.float64)

    def update(self, features: np.ndarray) -> None:
        """Add a batch of features [B, D]."""
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"expected features [B, {self.dim}], got {x.shape}")
        self.n += len(x)
        self.sum += x.sum(axis=0)
        self.sum_outer += x.T @ x

    def merge(self, other: "FeatureStats") -> "FeatureStats":
        """Add another set's statistics (same dimension and feature model) into this one."""
        if other.dim != self.dim:
            raise UserError(f"cannot merge statistics of dimension {other.dim} into {self.dim}; use one feature model")
        if self.feature_model and other.feature_model and other.feature_model != self.feature_model:
            raise UserError(
                f"cannot merge statistics of different feature models ({self.feature_model} vs {other.feature_model})"
            )
        self.n += other.n
        self.sum += other.sum
        self.sum_outer += other.sum_outer
        self.feature_model = self.feature_model or other.feature_model
        return self

    @property
    def mu(self) -> np.ndarray:
        self._need(1)
        return self.sum / self.n

    @property
    def sigma(self) -> np.ndarray:
        """Unbiased covariance (divides by n - 1), symmetric."""
        self._need(2)
        mu = self.sum / self.n
        sigma = (self.sum_outer - self.n * np.outer(mu, mu)) / (self.n - 1)
        return (sigma + sigma.T) / 2

    def _need(self, count: int, source: str = "") -> None:
        if self.n < count:
            where = f"{source}: " if source else ""
            raise UserError(
                f"{where}{self.n} image{'s' if self.n != 1 else ''}; statistics need at least {count}, give more images"
            )

    def require_covariance(self, source: str) -> None:
        """A one-line error naming ``source`` when there are fewer than 2 images (no covariance)."""
        self._need(2, source)

    def save(self, path: str | os.PathLike, force: bool = False) -> Path:
        """Write ``mu``, ``sigma``, ``n``, ``sum``, ``sum_outer``, ``feature_model`` to an .npz, atomically.

        With a single image (a tiny shard) ``sigma`` is NaN: only merged files are used for distances.
        """
        path = Path(path)
        if path.suffix != ".npz":
            raise UserError(f"{path}: statistics files end in .npz; rename the output")
        self._need(1)
        # a shard of one image has no covariance yet; its sums still merge exactly
        sigma = self.sigma if self.n >= 2 else np.full((self.dim, self.dim), np.nan)
        arrays = dict(mu=self.mu, sigma=sigma, n=np.int64(self.n), sum=self.sum, sum_outer=self.sum_outer,
                      feature_model=np.str_(self.feature_model))
        with atomic_path(path, force) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, **arrays)
        return path


@dataclass
class ReferenceStats:
    """mu and sigma from a file; ``stats`` when the file also holds sufficient statistics (ours)."""

    path: Path
    mu: np.ndarray
    sigma: np.ndarray
    n: int | None
    feature_model: str
    stats: FeatureStats | None


def load_stats(path: str | os.PathLike) -> ReferenceStats:
    """Read an .npz of ours or of pytorch-fid (``mu``, ``sigma`` only)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: statistics file not found; write one with `gen-eval stats`")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        # (numpy's own message may suggest allow_pickle=True, which would run code from the file: not shown)
        raise UserError(f"{path}: not a readable .npz statistics file; write one with `gen-eval stats`") from None
    if "mu" not in arrays or "sigma" not in arrays:
        raise UserError(f"{path}: holds {', '.join(arrays) or 'nothing'}, not 'mu' and 'sigma'; is this a statistics file?")
    mu, sigma = np.asarray(arrays["mu"], np.float64), np.asarray(arrays["sigma"], np.float64)
    if mu.ndim != 1 or sigma.shape != (len(mu), len(mu)):
        raise UserError(
            f"{path}: mu {mu.shape} and sigma {sigma.shape} do not fit (need [D] and [D, D]); "
            "recompute the file with `gen-eval stats`"
        )
    feature_model = str(arrays["feature_model"]) if "feature_model" in arrays else ""
    stats = None
    if {"n", "sum", "sum_outer"} <= set(arrays):
        stats = FeatureStats(len(mu), feature_model)
        stats.n = int(arrays["n"])
        stats.sum = np.asarray(arrays["sum"], np.float64)
        stats.sum_outer = np.asarray(arrays["sum_outer"], np.float64)
        if stats.sum.shape != mu.shape or stats.sum_outer.shape != sigma.shape:
            raise UserError(
                f"{path}: sum / sum_outer do not match mu / sigma in size; the file is damaged, "
                "recompute it with `gen-eval stats`"
            )
    n = stats.n if stats else (int(arrays["n"]) if "n" in arrays else None)
    return ReferenceStats(path, mu, sigma, n, feature_model, stats)


def merge_stats(paths: list[str | os.PathLike]) -> FeatureStats:
    """Exactly combine shard statistics files (each must hold n, sum, sum_outer)."""
    if not paths:
        raise UserError("give at least one statistics file to merge")
    total: FeatureStats | None = None
    for path in paths:
        ref = load_stats(path)
        if ref.stats is None:
            raise UserError(
                f"{ref.path}: holds only mu and sigma (pytorch-fid style), which cannot be merged exactly; "
                "recompute it with `gen-eval stats`"
            )
        if total is None:
            total = FeatureStats(ref.stats.dim, ref.stats.feature_model)
        try:
            total.merge(ref.stats)
        except UserError as exc:
            raise UserError(f"{ref.path}: {exc}") from None
    return total
