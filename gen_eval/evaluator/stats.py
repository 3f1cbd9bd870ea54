"""Feature statistics streamed as float64 sufficient statistics, saved as pytorch-fid-style .npz.

``FeatureStats`` keeps n, Σx and Σxxᵀ, so memory is O(D²) whatever the number of images, shards
merge exactly (sums add), and mu / sigma are those of ``np.mean`` / ``np.cov(rowvar=False)`` (the
unbiased covariance pytorch-fid uses). Files hold ``mu`` and ``sigma`` (what pytorch-fid reads and
writes) plus ``n``, ``sum``, ``sum_outer``, ``feature_model`` (which features they are of: the
features model's family and weights hash), ``feature_model_sha256`` (of its ONNX file) and
``preprocessing`` (how images reached it). Files are read without pickles, with every array's
declared size checked before it is inflated, and ``n`` must be a positive integer.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gen_eval.errors import UserError
from gen_eval.evaluator.exact import CHUNKED_KEYS, ChunkedStats
from gen_eval.fileio import atomic_path
from gen_eval.inputfiles import read_input_bytes, read_npz

# Arrays in a statistics file: an 8192-d covariance is 512 MiB; pytorch-fid's 2048-d one 32 MiB.
MAX_STATS_MEMBER_BYTES = 2**30
STATS_HINT = "write one with `gen-eval stats`"


class FeatureStats:
    """Running n, sum and sum of outer products of D-dimensional features (float64)."""

    def __init__(self, dim: int, feature_model: str = "", preprocessing: str = "", model_sha256: str = "") -> None:
        self.dim = int(dim)
        self.feature_model = feature_model
        self.preprocessing = preprocessing
        self.model_sha256 = model_sha256
        self.n = 0
        self.sum = np.zeros(self.dim, dtype=np.float64)
        self.sum_outer = np.zeros((self.dim, self.dim), dtype=np.float64)
        self.chunked: ChunkedStats | None = None  # exact per-block sums: shards merge bit-identically

    @classmethod
    def from_chunked(cls, chunked: ChunkedStats, feature_model: str = "", preprocessing: str = "",
                     model_sha256: str = "") -> "FeatureStats":
        """n, sum, sum_outer of every block of ``chunked`` (kept as ``.chunked`` for files and jackknives)."""
        stats = cls(chunked.dim, feature_model, preprocessing, model_sha256)
        stats.n, stats.sum, stats.sum_outer = chunked.sums_of(range(chunked.blocks))
        stats.chunked = chunked
        return stats

    def blocks(self) -> list["FeatureStats"]:
        """Statistics of each jackknife block ([] without blocks)."""
        if self.chunked is None or self.chunked.blocks < 2:
            return []
        out = []
        for b in range(self.chunked.blocks):
            block = FeatureStats(self.dim)
            block.n, block.sum, block.sum_outer = self.chunked.sums_of([b])
            out.append(block)
        return out

    def leave_one_block_out(self, blocks: list["FeatureStats"] | None = None) -> list["FeatureStats"]:
        """The statistics with each block left out in turn (``blocks``: subsets of these images; default
        the jackknife block sums). Blocks of no images, or leaving fewer than 2, are skipped; sums, so exact."""
        blocks = self.blocks() if blocks is None else blocks
        return [self.without(block) for block in blocks if block.n > 0 and self.n - block.n >= 2]

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
        if self.preprocessing and other.preprocessing and other.preprocessing != self.preprocessing:
            raise UserError(f"cannot merge statistics of differently preprocessed images ({self.preprocessing!r} vs "
                            f"{other.preprocessing!r}); compute every shard with one features model")
        self.n += other.n
        self.sum += other.sum
        self.sum_outer += other.sum_outer
        self.feature_model = self.feature_model or other.feature_model
        self.preprocessing = self.preprocessing or other.preprocessing
        self.model_sha256 = self.model_sha256 or other.model_sha256
        return self

    def without(self, part: "FeatureStats") -> "FeatureStats":
        """The statistics of these images less ``part`` (a subset of them, e.g. one jackknife block)."""
        rest = FeatureStats(self.dim, self.feature_model, self.preprocessing, self.model_sha256)
        rest.n = self.n - part.n
        rest.sum = self.sum - part.sum
        rest.sum_outer = self.sum_outer - part.sum_outer
        return rest

    def compute(self) -> tuple[np.ndarray, np.ndarray]:
        """(mu, sigma) of the features so far (the accumulator protocol's result)."""
        return self.mu, self.sigma

    def reset(self) -> None:
        """Forget every feature added (the dimension and feature model stay)."""
        self.n = 0
        self.sum = np.zeros(self.dim, dtype=np.float64)
        self.sum_outer = np.zeros((self.dim, self.dim), dtype=np.float64)
        self.chunked = None

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
                      feature_model=np.str_(self.feature_model), preprocessing=np.str_(self.preprocessing),
                      feature_model_sha256=np.str_(self.model_sha256))
        if self.chunked is not None:
            arrays.update(self.chunked.to_arrays())
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
    preprocessing: str = ""


def _text(path: Path, arrays: dict, key: str) -> str:
    if key not in arrays:
        return ""
    value = arrays[key]
    if value.ndim != 0 or value.dtype.kind not in "US" or value.nbytes > 4096:
        raise UserError(f"{path}: {key!r} is not a short text; the file is damaged, recompute it with `gen-eval stats`")
    return str(value)


def _count(path: Path, value: np.ndarray) -> int:
    """``n``: one integer >= 1 (a string, an array, a fraction, zero or a negative count is refused)."""
    if value.ndim != 0 or value.dtype.kind not in "iu" or int(value) < 1:
        shown = repr(value.tolist()) if value.size <= 4 else f"an array of shape {value.shape}"
        raise UserError(f"{path}: image count n is {shown[:60]}, not a positive integer; the file is damaged or "
                        "not a statistics file, recompute it with `gen-eval stats`")
    return int(value)


def _check_consistent(path: Path, mu: np.ndarray, sigma: np.ndarray, stats: FeatureStats | None) -> None:
    """A statistics file is anyone's to edit: ``sigma`` must be a covariance (symmetric, no negative variance)
    and, where the file keeps its sums, ``mu`` and ``sigma`` must be the ones those sums give (``fid`` reads
    mu / sigma, ``stats merge`` the sums: a file whose two halves disagree would give two answers)."""
    if stats is not None and stats.n < 2:
        return  # a one-image shard: no covariance yet (sigma is NaN), merged by its sums only
    scale = max(float(np.abs(sigma).max(initial=0.0)), np.finfo(np.float64).tiny)
    if np.abs(sigma - sigma.T).max(initial=0.0) > 1e-9 * scale or (np.diag(sigma) < -1e-9 * scale).any():
        raise UserError(f"{path}: sigma is not a covariance matrix (not symmetric, or a negative variance); the "
                        "file is damaged or edited, recompute it with `gen-eval stats`")
    if stats is None:
        return
    for key, kept, derived in (("mu", mu, stats.mu), ("sigma", sigma, stats.sigma)):
        tolerance = 1e-9 * max(float(np.abs(derived).max(initial=0.0)), 1.0)
        if np.abs(kept - derived).max(initial=0.0) > tolerance:
            raise UserError(f"{path}: {key} is not the one its sums (n, sum, sum_outer) give; the file is damaged or "
                            "edited, recompute it with `gen-eval stats`")


def load_stats(path: str | os.PathLike) -> ReferenceStats:
    """Read an .npz of ours or of pytorch-fid (``mu``, ``sigma`` only), checking what it holds."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: statistics file not found; write one with `gen-eval stats`")
    arrays = read_npz(path, "statistics file", MAX_STATS_MEMBER_BYTES, hint=STATS_HINT)
    if "mu" not in arrays or "sigma" not in arrays:
        raise UserError(f"{path}: holds {', '.join(arrays) or 'nothing'}, not 'mu' and 'sigma'; is this a statistics file?")
    for key in ("mu", "sigma", "sum", "sum_outer"):
        if key in arrays and arrays[key].dtype.kind not in "fiu":
            raise UserError(f"{path}: {key!r} is not numeric ({arrays[key].dtype}); recompute it with `gen-eval stats`")
    mu, sigma = np.asarray(arrays["mu"], np.float64), np.asarray(arrays["sigma"], np.float64)
    if mu.ndim != 1 or sigma.shape != (len(mu), len(mu)):
        raise UserError(
            f"{path}: mu {mu.shape} and sigma {sigma.shape} do not fit (need [D] and [D, D]); "
            "recompute the file with `gen-eval stats`"
        )
    feature_model = _text(path, arrays, "feature_model")
    preprocessing = _text(path, arrays, "preprocessing")
    model_sha256 = _text(path, arrays, "feature_model_sha256")
    n = _count(path, arrays["n"]) if "n" in arrays else None
    stats = None
    if {"n", "sum", "sum_outer"} <= set(arrays):
        stats = FeatureStats(len(mu), feature_model, preprocessing, model_sha256)
        stats.n = n
        stats.sum = np.asarray(arrays["sum"], np.float64)
        stats.sum_outer = np.asarray(arrays["sum_outer"], np.float64)
        if stats.sum.shape != mu.shape or stats.sum_outer.shape != sigma.shape:
            raise UserError(
                f"{path}: sum / sum_outer do not match mu / sigma in size; the file is damaged, "
                "recompute it with `gen-eval stats`"
            )
        if not (np.isfinite(stats.sum).all() and np.isfinite(stats.sum_outer).all()):
            raise UserError(f"{path}: sum / sum_outer hold NaN or Inf; the file is damaged, recompute it with `gen-eval stats`")
        if set(CHUNKED_KEYS) <= set(arrays):
            stats.chunked = ChunkedStats.from_arrays(path, arrays, len(mu), _text(path, arrays, "run"))
            if stats.chunked.n != n:
                raise UserError(f"{path}: n {n} differs from the {stats.chunked.n} images of its block sums; "
                                "the file is damaged, recompute it with `gen-eval stats`")
    if not np.isfinite(mu).all() or (not np.isfinite(sigma).all() and (n is None or n >= 2)):
        raise UserError(f"{path}: mu / sigma hold NaN or Inf; recompute the file with `gen-eval stats`")
    _check_consistent(path, mu, sigma, stats)
    return ReferenceStats(path, mu, sigma, n, feature_model, stats, preprocessing)


def is_stats_file(path: str | os.PathLike) -> bool:
    """Whether an .npz is statistics (``mu`` and ``sigma``) rather than samples, by its member names."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return {"mu.npy", "sigma.npy"} <= set(archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def merge_stats(paths: list[str | os.PathLike]) -> FeatureStats:
    """Exactly combine shard statistics files (each must hold n, sum, sum_outer).

    Files with chunked sums (ours since shards became exact) merge bit-identically to the unsharded
    run and must cover the run's images once each; older files are added as float64 sums."""
    if not paths:
        raise UserError("give at least one statistics file to merge")
    total: FeatureStats | None = None
    chunked: ChunkedStats | None = None
    seen: dict[str, str] = {}
    for path in paths:
        digest = hashlib.sha256(read_input_bytes(path, "statistics file")).hexdigest()
        if digest in seen:
            raise UserError(f"{path} has the same content as {seen[digest]}: the shard would be counted twice; "
                            "give each shard once")
        seen[digest] = str(path)
        ref = load_stats(path)
        if ref.stats is None:
            raise UserError(
                f"{ref.path}: holds only mu and sigma (pytorch-fid style), which cannot be merged exactly; "
                "recompute it with `gen-eval stats`"
            )
        first = total is None
        if first:
            total = FeatureStats(ref.stats.dim, ref.stats.feature_model, ref.stats.preprocessing,
                                 ref.stats.model_sha256)
        try:
            total.merge(ref.stats)
            if not first and (ref.stats.chunked is None) != (chunked is None):
                raise UserError(f"{ref.path}: mixes shard files of two gen-eval versions (with and without exact "
                                "chunk sums); recompute the older shards with `gen-eval stats --shard`")
            if ref.stats.chunked is not None:
                chunked = ref.stats.chunked if chunked is None else chunked.merge(ref.stats.chunked, str(ref.path))
        except UserError as exc:
            message = str(exc)
            raise UserError(message if message.startswith(str(ref.path)) else f"{ref.path}: {message}") from None
    if chunked is None:
        return total
    gaps = chunked.missing()
    if gaps:
        shown = ", ".join(f"{lo}-{hi - 1}" for lo, hi in gaps[:3]) + (" ..." if len(gaps) > 3 else "")
        raise UserError(f"images {shown} of the {chunked.total} of the run are in none of the files: missing shards; "
                        "compute them with `gen-eval stats compute --shard k/N` (the same --n, --chunk-size and N) and merge again")
    return FeatureStats.from_chunked(chunked, total.feature_model, total.preprocessing, total.model_sha256)
