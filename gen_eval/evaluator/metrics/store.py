"""Features of one image set on disk: a float32 memory-mapped ``.npy`` that grows batch by batch.

``FeatureStore.append`` writes each batch to the end of the file (nothing is kept in RAM but the
running ``FeatureStats``: n, Σx, Σxxᵀ in float64, so FID needs no second pass). The ``.npy`` header is
written with room for any row count and rewritten in place, so the file is a plain ``np.load``-able
array at every point between appends. Logits (when the features model has them, e.g. Inception's for
IS) go to a second file the same way. Without ``path`` the files are temporary and removed on
``close()``; with ``path`` they are kept (``<path>`` and ``<path stem>.logits.npy``).

Readers get read-only ``np.memmap`` views (``features`` / ``logits``) and ``blocks()``, which yields
float32 row blocks, so metrics touch a bounded number of rows at a time.
"""

from __future__ import annotations

import ast
import os
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

from gen_eval.evaluator.stats import FeatureStats
from gen_eval.fileio import forget_temporary, register_temporary

_MAGIC = b"\x93NUMPY\x01\x00"
_HEADER_BYTES = 128  # magic (8) + length (2) + dict padded with spaces and '\n'; a multiple of 64


def _header(rows: int, dim: int) -> bytes:
    text = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % (rows, dim)
    body_len = _HEADER_BYTES - len(_MAGIC) - 2
    if len(text) + 1 > body_len:
        raise ValueError(f"feature array of shape ({rows}, {dim}) is too large for the store's header")
    text = text.ljust(body_len - 1) + "\n"
    return _MAGIC + body_len.to_bytes(2, "little") + text.encode("latin1")


class _GrowingNpy:
    """A float32 [n, dim] .npy file appended to at the end; header rewritten after each append."""

    def __init__(self, path: Path, dim: int, create: bool = True) -> None:
        self.path = path
        self.dim = int(dim)
        self.rows = 0
        self._view: np.memmap | None = None
        if create:
            with open(path, "wb") as handle:
                handle.write(_header(0, self.dim))

    @classmethod
    def open(cls, path: Path) -> "_GrowingNpy":
        with open(path, "rb") as handle:
            head = handle.read(_HEADER_BYTES)
        if len(head) < _HEADER_BYTES or not head.startswith(_MAGIC):
            raise ValueError(f"{path}: not a feature store file")
        info = ast.literal_eval(head[10:].decode("latin1").strip())
        if info.get("descr") != "<f4" or info.get("fortran_order") or len(info.get("shape", ())) != 2:
            raise ValueError(f"{path}: not a float32 [n, d] feature store file")
        store = cls(path, info["shape"][1], create=False)
        store.rows = int(info["shape"][0])
        return store

    def append(self, batch: np.ndarray) -> None:
        batch = np.ascontiguousarray(batch, dtype="<f4")
        if batch.ndim != 2 or batch.shape[1] != self.dim:
            raise ValueError(f"expected a batch [B, {self.dim}], got {batch.shape}")
        if not len(batch):
            return
        with open(self.path, "r+b") as handle:
            handle.seek(_HEADER_BYTES + self.rows * self.dim * 4)
            handle.write(batch.tobytes())
            self.rows += len(batch)
            handle.seek(0)
            handle.write(_header(self.rows, self.dim))
        self._view = None

    def view(self) -> np.ndarray:
        if self.rows == 0:
            return np.zeros((0, self.dim), np.float32)
        if self._view is None or len(self._view) != self.rows:
            self._view = np.memmap(self.path, dtype="<f4", mode="r", offset=_HEADER_BYTES, shape=(self.rows, self.dim))
        return self._view

    def release(self) -> None:
        self._view = None


class FeatureStore:
    """Features [n, dim] (and optional logits [n, logits_dim]) of one image set, on disk.

    ``FeatureStore(dim)`` writes temporary files (removed by ``close()`` / the ``with`` block);
    ``FeatureStore(dim, path="gen.npy")`` keeps them. ``FeatureStore.open("gen.npy")`` reads a kept store
    back; ``FeatureStore.from_array(x)`` copies an array in (tests, small sets).
    """

    def __init__(self, dim: int, path: str | os.PathLike | None = None, *, logits_dim: int | None = None,
                 feature_model: str = "", directory: str | os.PathLike | None = None) -> None:
        self.keep = path is not None
        if path is None:
            fd, name = tempfile.mkstemp(prefix="gen-eval-features-", suffix=".npy", dir=directory)
            os.close(fd)
            path = name
            register_temporary(path)
            register_temporary(Path(path).with_name(Path(path).stem + ".logits.npy"))
        self.path = Path(path)
        self._features = _GrowingNpy(self.path, dim)
        self._logits = _GrowingNpy(self._logits_path(), logits_dim) if logits_dim else None
        self._feature_model = feature_model
        self.stats = FeatureStats(dim, feature_model)
        self.closed = False

    def _logits_path(self) -> Path:
        return self.path.with_name(self.path.stem + ".logits.npy")

    @classmethod
    def open(cls, path: str | os.PathLike, feature_model: str = "") -> "FeatureStore":
        """A kept store read back (its running statistics recomputed in blocks)."""
        store = cls.__new__(cls)
        store.keep, store.path, store.closed = True, Path(path), False
        store._features = _GrowingNpy.open(store.path)
        logits_path = store._logits_path()
        store._logits = _GrowingNpy.open(logits_path) if logits_path.is_file() else None
        store._stats = None  # computed on first use (one blocked pass), as only FID-type metrics need it
        store._feature_model = feature_model
        return store

    @property
    def stats(self) -> FeatureStats:
        """Running n, Σx, Σxxᵀ (float64) of the stored float32 features."""
        if self._stats is None:
            self._stats = FeatureStats(self.dim, self._feature_model)
            for _, block in self.blocks():
                self._stats.update(block)
        return self._stats

    @stats.setter
    def stats(self, value: FeatureStats) -> None:
        self._stats = value

    @classmethod
    def from_array(cls, features: np.ndarray, logits: np.ndarray | None = None, *, path=None,
                   block: int = 4096) -> "FeatureStore":
        features = np.asarray(features)
        store = cls(features.shape[1], path, logits_dim=None if logits is None else np.shape(logits)[1])
        for start in range(0, len(features), block):
            store.append(features[start : start + block], None if logits is None else logits[start : start + block])
        return store

    @property
    def dim(self) -> int:
        return self._features.dim

    @property
    def n(self) -> int:
        return self._features.rows

    def __len__(self) -> int:
        return self.n

    @property
    def has_logits(self) -> bool:
        return self._logits is not None

    def append(self, features: np.ndarray, logits: np.ndarray | None = None) -> None:
        """Add a batch: features [B, dim] (and logits [B, logits_dim] when the store has them)."""
        if self.closed:
            raise ValueError("the feature store is closed")
        features = np.asarray(features)
        if (logits is None) != (self._logits is None):
            raise ValueError("give logits with every batch exactly when the store was made with logits_dim")
        if logits is not None and len(logits) != len(features):
            raise ValueError(f"{len(features)} feature rows but {len(logits)} logit rows")
        self._features.append(features)
        if logits is not None:
            self._logits.append(logits)
        # statistics of the float32 values stored, so FID from the store equals FID from its file
        self.stats.update(np.asarray(features, np.float32))

    @property
    def features(self) -> np.ndarray:
        """Read-only memory map [n, dim] float32 (pages are read on access, not held)."""
        return self._features.view()

    @property
    def logits(self) -> np.ndarray | None:
        return None if self._logits is None else self._logits.view()

    def blocks(self, rows: int = 4096, logits: bool = False) -> Iterator[tuple[int, np.ndarray]]:
        """(start, float32 array copy) blocks of ``rows`` rows of the features (or logits)."""
        source = self.logits if logits else self.features
        if source is None:
            raise ValueError("this store has no logits")
        for start in range(0, len(source), rows):
            yield start, np.array(source[start : start + rows])

    def close(self) -> None:
        """Drop the memory maps; remove the files unless the store was made with a path to keep."""
        if self.closed:
            return
        self.closed = True
        for part in (self._features, self._logits):
            if part is not None:
                part.release()
                if not self.keep:
                    part.path.unlink(missing_ok=True)
        if not self.keep:
            forget_temporary(self.path)
            forget_temporary(self._logits_path())

    def __enter__(self) -> "FeatureStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
