"""Seeded latent noise that depends only on (seed, sample index).

Sample ``i`` takes row ``i % NOISE_BLOCK`` of block ``i // NOISE_BLOCK``; each block is drawn from its
own ``numpy.random.Generator`` seeded by ``SeedSequence(seed, spawn_key=(block,))``. So the same seed
gives the same images whatever the batch size, and shards of any split reproduce the whole run.
Changing ``NOISE_BLOCK`` or the draw would change every image: it is part of the output contract.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

NOISE_BLOCK = 256
MAX_SEED = 2**63 - 1  # seeds are written as int64 (sample .npz files, reports)


def check_seed(seed: int, name: str | None = None) -> int:
    """A UserError (one line) unless 0 <= seed < 2^63."""
    from gen_eval.errors import UserError, param

    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) <= MAX_SEED:
        raise UserError(f"{name or param('seed')} must be an integer from 0 to 2^63-1, got {seed}")
    return int(seed)


@lru_cache(maxsize=8)
def _block(seed: int, block: int, latent_dim: int) -> np.ndarray:
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(block,)))
    out = rng.standard_normal((NOISE_BLOCK, latent_dim), dtype=np.float32)
    out.setflags(write=False)
    return out


def latent_noise(seed: int, indices: Sequence[int] | np.ndarray, latent_dim: int) -> np.ndarray:
    """Standard normal noise float32 [len(indices), latent_dim] for global sample ``indices``."""
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    indices = np.asarray(indices, dtype=np.int64)
    out = np.empty((len(indices), latent_dim), dtype=np.float32)
    blocks, rows = np.divmod(indices, NOISE_BLOCK)
    for block in np.unique(blocks):
        where = blocks == block
        out[where] = _block(int(seed), int(block), int(latent_dim))[rows[where]]
    return out


def paired_noise_indices(indices: Sequence[int] | np.ndarray, condition_count: int) -> np.ndarray:
    """Noise indices when conditions are paired (attribute-manipulation figures: one ``z``, the attribute off and on):
    sample ``i`` takes the noise of index ``i // condition_count``, so each run of ``condition_count``
    consecutive samples (one per condition) shares one ``z`` and differs only by its condition."""
    return np.asarray(indices, dtype=np.int64) // int(condition_count)


def cycle_conditions(conditions: np.ndarray, indices: Sequence[int] | np.ndarray) -> np.ndarray:
    """Condition rows for global sample ``indices``: sample ``i`` takes condition ``i % len(conditions)``."""
    indices = np.asarray(indices, dtype=np.int64)
    return conditions[indices % len(conditions)]
