"""Euclidean distances in blocks, with the arithmetic of scikit-learn's ``pairwise_distances`` (what
``prdc`` calls), so that radii and comparisons agree with prdc to the bit on the same float32 features.

For float32 inputs scikit-learn upcasts chunks to float64 and computes d² = (−2 X·Yᵀ + |x|²) + |y|²
(norms by ``einsum('ij,ij->i')`` of the float64 rows), rounds d² to float32, clips at 0, then takes
the float32 square root; self-distances (X is Y) are set to 0. Here the same expression is evaluated
on tiles of ``block`` x ``block`` rows, so memory is O(block² + block·D) whatever N is, never an
N x M matrix. float64 inputs stay float64 throughout, as in scikit-learn.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

DEFAULT_BLOCK = 1024


def _rows(source: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Rows [start, stop) as float64 (a copy: a memory map is read only for these rows)."""
    return np.asarray(source[start:stop], dtype=np.float64)


def _out_dtype(x: np.ndarray, y: np.ndarray) -> type:
    return np.float32 if (x.dtype == np.float32 or y.dtype == np.float32) else np.float64


def distance_tile(x64: np.ndarray, xx: np.ndarray, y64: np.ndarray, yy: np.ndarray, dtype) -> np.ndarray:
    """Distances between float64 rows with their squared norms, rounded as scikit-learn rounds them."""
    d = x64 @ y64.T
    d *= -2  # exact, so the same as scikit-learn's -2 * (X @ Y.T), without a second tile
    d += xx[:, None]
    d += yy[None, :]
    d = d.astype(dtype, copy=False)
    np.maximum(d, 0, out=d)
    np.sqrt(d, out=d)
    return d


def squared_norms(x64: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", x64, x64)


def tiles(x: np.ndarray, y: np.ndarray | None = None, block: int = DEFAULT_BLOCK
          ) -> Iterator[tuple[int, int, np.ndarray]]:
    """(row start, column start, distance tile) over the X x Y distance matrix, row blocks outer.

    ``y=None`` means Y is X: the diagonal (self-distances) is exactly 0, as in scikit-learn.
    """
    same = y is None
    y = x if same else y
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"features differ in dimension ({x.shape[1]} vs {y.shape[1]})")
    dtype = _out_dtype(x, y)
    block = max(int(block), 1)
    y_norms = np.concatenate([squared_norms(_rows(y, s, s + block)) for s in range(0, len(y), block)]) \
        if len(y) else np.zeros(0)
    for r in range(0, len(x), block):
        x64 = _rows(x, r, r + block)
        xx = squared_norms(x64)
        for c in range(0, len(y), block):
            y64 = _rows(y, c, c + block)
            d = distance_tile(x64, xx, y64, y_norms[c : c + block], dtype)
            if same and c < r + len(x64) and r < c + len(y64):
                i = np.arange(max(r, c), min(r + len(x64), c + len(y64)))
                d[i - r, i - c] = 0
            yield r, c, d


def pairwise_distances(x: np.ndarray, y: np.ndarray | None = None, block: int = DEFAULT_BLOCK) -> np.ndarray:
    """The full matrix, assembled from tiles (for tests and small sets only)."""
    y_len = len(x) if y is None else len(y)
    out = np.empty((len(x), y_len), _out_dtype(x, x if y is None else y))
    for r, c, d in tiles(x, y, block):
        out[r : r + d.shape[0], c : c + d.shape[1]] = d
    return out


def kth_nearest(x: np.ndarray, k: int, block: int = DEFAULT_BLOCK) -> np.ndarray:
    """Per row of X, the k-th smallest distance to the rows of X counting itself (distance 0) as the
    first — prdc's ``get_kth_value(distances, k=nearest_k + 1)`` is ``kth_nearest(x, nearest_k + 1)``.
    Keeps only the k smallest per row across column tiles."""
    if not 1 <= k <= len(x):
        raise ValueError(f"need 1 <= k <= n, got k={k} with n={len(x)}")
    out = np.empty(len(x), _out_dtype(x, x))
    kept: np.ndarray | None = None
    for r, c, d in tiles(x, None, block):
        both = d if c == 0 else np.concatenate([kept, d], axis=1)
        kept = both if both.shape[1] <= k else np.partition(both, k - 1, axis=1)[:, :k]
        if c + d.shape[1] >= len(x):
            out[r : r + len(d)] = kept.max(axis=1)
    return out


def nearest(x: np.ndarray, y: np.ndarray, block: int = DEFAULT_BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """For each row of X, the distance to its nearest row of Y and that row's index (first on ties)."""
    dist = np.full(len(x), np.inf)
    index = np.zeros(len(x), np.int64)
    for r, c, d in tiles(x, y, block):
        j = d.argmin(axis=1)
        best = d[np.arange(len(d)), j]
        rows = slice(r, r + len(d))
        better = best < dist[rows]
        dist[rows] = np.where(better, best, dist[rows])
        index[rows] = np.where(better, j + c, index[rows])
    return dist, index
