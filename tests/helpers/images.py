"""Image folders for tests: small random PNGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_images(folder: Path, count: int, size: int = 8, seed: int = 0) -> Path:
    """``count`` random RGB PNGs of ``size`` x ``size`` named 000.png, 001.png, ... in ``folder`` (created)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    return folder
