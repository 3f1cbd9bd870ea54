"""An image grid like ``torchvision.utils.make_grid`` (nrow=8, padding=2, pad_value=0), in numpy."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from gen_eval.data.images import save_png


def make_grid(images_u8: np.ndarray, nrow: int = 8, padding: int = 2, pad_value: int = 0) -> np.ndarray:
    """uint8 NCHW images -> one uint8 HxWx3 grid (grey images repeated to 3 channels, as torchvision)."""
    images = np.asarray(images_u8)
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"expected uint8 images [N, C, H, W], got {images.shape}")
    if images.shape[1] == 1:
        images = np.repeat(images, 3, axis=1)
    n, c, h, w = images.shape
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    cell_h, cell_w = h + padding, w + padding
    grid = np.full((cell_h * rows + padding, cell_w * cols + padding, c), pad_value, dtype=np.uint8)
    for k in range(n):
        y, x = divmod(k, cols)
        top, left = y * cell_h + padding, x * cell_w + padding
        grid[top : top + h, left : left + w] = images[k].transpose(1, 2, 0)
    return grid


def save_grid(images_u8: np.ndarray, path: str | os.PathLike, nrow: int = 8, force: bool = False) -> Path:
    """Write uint8 NCHW images as one grid PNG, atomically."""
    return save_png(make_grid(images_u8, nrow), path, force=force)
