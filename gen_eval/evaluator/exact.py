"""Statistics that come out bit-identical however the images are split into shards or actors.

Float64 sums added batch by batch depend on the order of the additions, so statistics merged from
shards would differ in the last bits from the unsharded run (and FID with them). Two rules remove
every order dependence:

* Images are taken in fixed **chunks** of ``chunk_size`` consecutive indices; shards are whole
  chunks, and each chunk's Σx and Σxxᵀ are computed in one call on that chunk's features (split by
  jackknife block), so a chunk's float64 partial sums depend only on the chunk.
* Chunk sums are added into an :class:`ExactSum`: each float64 value is cut into 32-bit integer
  digits at fixed absolute binary positions and the digits are added as int64, which is exact and so
  independent of order. Only the ``DIGITS`` positions under the largest value's are kept (96 bits:
  every bit of the largest entries, and 2⁻⁶⁴ of the largest value absolute below that); since the
  largest value does not depend on order either, nor does the rounding.

The statistics file of a shard keeps these integer sums (per jackknife block) and the index ranges it
covers, so ``stats merge`` adds them exactly and refuses overlapping or missing ranges. Σxxᵀ is
symmetric, so only its upper triangle is summed and stored (a chunk's triangle is taken from its one
float64 product, which makes the result exactly symmetric): memory and file size are ``DIGITS`` int64
arrays of D(D+1)/2 entries per block, 1.5x a full D x D float64 sum.
"""

from __future__ import annotations

import numpy as np

from gen_eval.errors import UserError

DIGIT_BITS = 32
DIGITS = 3          # int64 digits < 2**32 in size: 2**31 additions before an int64 could overflow
DEFAULT_CHUNK_SIZE = 1024
NO_TOP = -(2**31)   # the file's marker for a sum of nothing but zeros


class ExactSum:
    """An order-independent sum of float64 arrays of one shape (see the module docstring)."""

    def __init__(self, shape) -> None:
        self.shape = tuple(shape)
        self.top: int | None = None                   # digit position of bins[0]
        self.bins = np.zeros((DIGITS, *self.shape), np.int64)

    def _raise_top(self, top: int) -> None:
        if self.top is not None and top <= self.top:
            return
        if self.top is not None:
            drop = top - self.top
            shifted = np.zeros_like(self.bins)
            if drop < DIGITS:
                shifted[drop:] = self.bins[: DIGITS - drop]
            self.bins = shifted
        self.top = top

    def add(self, values: np.ndarray) -> None:
        values = np.asarray(values, np.float64)
        if values.shape != self.shape:
            raise ValueError(f"expected values of shape {self.shape}, got {values.shape}")
        if not np.isfinite(values).all():
            raise UserError("features hold NaN or Inf; check the features model and the images")
        peak = float(np.abs(values).max()) if values.size else 0.0
        if peak == 0.0:
            return
        self._raise_top((int(np.frexp(peak)[1]) - 1) // DIGIT_BITS)
        upper = np.zeros(self.shape, np.float64)
        for j in range(DIGITS):
            # truncations at two neighbouring positions differ by one digit, exactly representable
            truncated = np.trunc(np.ldexp(values, -DIGIT_BITS * (self.top - j)))
            self.bins[j] += (truncated - upper * 2.0**DIGIT_BITS).astype(np.int64)
            upper = truncated

    def merge(self, other: "ExactSum") -> "ExactSum":
        if other.shape != self.shape:
            raise ValueError(f"cannot add sums of shape {other.shape} to {self.shape}")
        if other.top is None:
            return self
        self._raise_top(other.top)
        drop = self.top - other.top
        if drop < DIGITS:
            self.bins[drop:] += other.bins[: DIGITS - drop]
        return self

    def copy(self) -> "ExactSum":
        out = ExactSum(self.shape)
        out.top, out.bins = self.top, self.bins.copy()
        return out

    def value(self) -> np.ndarray:
        """The sum as float64 (the same bits for the same digits, whatever order they came in)."""
        out = np.zeros(self.shape, np.float64)
        if self.top is None:
            return out
        for j in reversed(range(DIGITS)):
            out += np.ldexp(self.bins[j].astype(np.float64), DIGIT_BITS * (self.top - j))
        return out


def chunk_ranges(total: int, chunk_size: int, shard: tuple[int, int] | None = None) -> list[range]:
    """The chunks (index ranges) of ``range(total)`` that shard k of N computes: whole chunks, in order,
    split as evenly as chunks allow."""
    if chunk_size < 1:
        raise UserError(f"the chunk size must be at least 1 image, got {chunk_size}")
    starts = list(range(0, total, chunk_size))
    chunks = [range(s, min(s + chunk_size, total)) for s in starts]
    if shard is None:
        return chunks
    k, count = shard
    mine = chunks[(k - 1) * len(chunks) // count : k * len(chunks) // count]
    if not mine:
        raise UserError(f"shard {k}/{count} has no images: {total} images make {len(chunks)} chunk(s) of {chunk_size}; "
                        f"use at most {len(chunks)} shards or a smaller chunk size")
    return mine


class ChunkedStats:
    """Exact per-block sums of features of chunks of ``range(total)``, and the index ranges they cover.

    ``blocks`` > 1 keeps one sum per contiguous index block (``i * blocks // total``) for the jackknife
    interval of FID; the whole-set sums are their exact total."""

    def __init__(self, dim: int, total: int, chunk_size: int = DEFAULT_CHUNK_SIZE, blocks: int = 1,
                 run: str = "") -> None:
        self.dim, self.total, self.chunk_size, self.blocks = int(dim), int(total), int(chunk_size), max(1, int(blocks))
        self.run = run  # what the images are (generator, seed, n, conditions / image listing): shards must agree
        self.block_n = np.zeros(self.blocks, np.int64)
        self.sums = [ExactSum((self.dim,)) for _ in range(self.blocks)]
        self.triangle = np.triu_indices(self.dim)          # Σxxᵀ is summed on its upper triangle only
        self.outers = [ExactSum((len(self.triangle[0]),)) for _ in range(self.blocks)]
        self.ranges: list[tuple[int, int]] = []

    def add(self, start: int, features: np.ndarray) -> None:
        """The features [C, D] of images ``start .. start + C - 1`` (one whole chunk)."""
        x = np.asarray(features, np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"expected features [C, {self.dim}], got {x.shape}")
        rows = np.arange(start, start + len(x), dtype=np.int64)
        which = rows * self.blocks // max(1, self.total)
        for block in np.unique(which):
            part = x[which == block]
            self.block_n[block] += len(part)
            self.sums[block].add(part.sum(axis=0))
            self.outers[block].add((part.T @ part)[self.triangle])
        self._cover(start, start + len(x))

    def _cover(self, start: int, stop: int, source: str = "") -> None:
        for lo, hi in self.ranges:
            if start < hi and lo < stop:
                where = f"{source}: " if source else ""
                raise UserError(f"{where}images {max(lo, start)}-{min(hi, stop) - 1} are already in the merged "
                                "statistics: overlapping shards; give each shard once")
        self.ranges = _joined(self.ranges + [(start, stop)])

    def merge(self, other: "ChunkedStats", source: str = "") -> "ChunkedStats":
        where = f"{source}: " if source else ""
        if self.run and other.run and other.run != self.run:
            raise UserError(f"{where}statistics of another run ({other.run}, the others {self.run}); "
                            "merge shards of one run")
        for name in ("dim", "total", "chunk_size", "blocks"):
            if getattr(other, name) != getattr(self, name):
                raise UserError(f"{where}{name.replace('_', ' ')} {getattr(other, name)} differs from "
                                f"{getattr(self, name)} of the other shards; merge shards of one run")
        for lo, hi in other.ranges:
            self._cover(lo, hi, source)
        self.block_n += other.block_n
        for mine, theirs in zip(self.sums + self.outers, other.sums + other.outers):
            mine.merge(theirs)
        return self

    def missing(self) -> list[tuple[int, int]]:
        """Index ranges of ``range(total)`` not covered yet."""
        gaps, at = [], 0
        for lo, hi in self.ranges:
            if lo > at:
                gaps.append((at, lo))
            at = hi
        if at < self.total:
            gaps.append((at, self.total))
        return gaps

    @property
    def n(self) -> int:
        return int(self.block_n.sum())

    def sums_of(self, blocks) -> tuple[int, np.ndarray, np.ndarray]:
        """(n, Σx, Σxxᵀ) in float64 of the given blocks, added exactly."""
        total_sum, total_outer = ExactSum((self.dim,)), ExactSum((len(self.triangle[0]),))
        for b in blocks:
            total_sum.merge(self.sums[b])
            total_outer.merge(self.outers[b])
        outer = np.zeros((self.dim, self.dim), np.float64)
        upper = total_outer.value()
        outer[self.triangle] = upper
        outer[self.triangle[1], self.triangle[0]] = upper
        return int(self.block_n[list(blocks)].sum()), total_sum.value(), outer

    def to_arrays(self) -> dict[str, np.ndarray]:
        def tops(sums):
            return np.array([NO_TOP if s.top is None else s.top for s in sums], np.int64)

        return {"run": np.str_(self.run), "chunk_size": np.int64(self.chunk_size), "total": np.int64(self.total),
                "ranges": np.array(self.ranges, np.int64).reshape(-1, 2), "block_n": self.block_n,
                "block_sum_bins": np.stack([s.bins for s in self.sums]), "block_sum_top": tops(self.sums),
                "block_outer_bins": np.stack([s.bins for s in self.outers]), "block_outer_top": tops(self.outers)}

    @classmethod
    def from_arrays(cls, path, arrays: dict, dim: int, run: str = "") -> "ChunkedStats":
        def damaged(what: str) -> UserError:
            return UserError(f"{path}: {what}; the file is damaged, recompute it with `gen-eval stats`")

        for key in CHUNKED_KEYS:
            if arrays[key].dtype.kind not in "iu":
                raise damaged(f"{key!r} is not integer")
        scalars = [int(arrays[k]) for k in ("chunk_size", "total") if arrays[k].ndim == 0]
        if len(scalars) != 2 or min(scalars) < 1:
            raise damaged("chunk_size / total are not positive integers")
        block_n = arrays["block_n"].astype(np.int64)
        blocks = len(block_n)
        shapes = {"block_n": (blocks,), "block_sum_bins": (blocks, DIGITS, dim), "block_sum_top": (blocks,),
                  "block_outer_bins": (blocks, DIGITS, dim * (dim + 1) // 2), "block_outer_top": (blocks,)}
        if blocks < 1 or any(arrays[k].shape != shape for k, shape in shapes.items()):
            raise damaged("its block sums do not fit its feature dimension")
        out = cls(dim, scalars[1], scalars[0], blocks, run)
        ranges = arrays["ranges"].astype(np.int64)
        if ranges.ndim != 2 or ranges.shape[1] != 2 or (ranges[:, 0] >= ranges[:, 1]).any() \
                or (ranges < 0).any() or (ranges > out.total).any():
            raise damaged("its index ranges are not inside the run")
        for lo, hi in ranges.tolist():
            out._cover(lo, hi, str(path))
        if (block_n < 0).any() or int(block_n.sum()) != sum(hi - lo for lo, hi in out.ranges):
            raise damaged("its block counts do not add up to its index ranges")
        out.block_n = block_n
        for b in range(blocks):
            for sums, bins, tops in ((out.sums, "block_sum_bins", "block_sum_top"),
                                     (out.outers, "block_outer_bins", "block_outer_top")):
                top = int(arrays[tops][b])
                sums[b].bins = np.asarray(arrays[bins][b], np.int64).copy()
                sums[b].top = None if top == NO_TOP else top
        return out


CHUNKED_KEYS = ("chunk_size", "total", "ranges", "block_n", "block_sum_bins", "block_sum_top", "block_outer_bins",
                "block_outer_top")


def _joined(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and out[-1][1] == lo:
            out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out
