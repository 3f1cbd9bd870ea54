"""Bringing images to what a model takes: value range, size, channels (numpy, NCHW float32).

Resizing is bilinear with ``align_corners=False`` and no antialiasing — the semantics of
``torch.nn.functional.interpolate(x, size, mode="bilinear", align_corners=False)`` — done as two
small matrix products (rows, then columns), so it is exact to float32 rounding and needs no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from gen_eval.data.images import from_uint8, to_uint8


def rescale(images: np.ndarray, source: Sequence[float], target: Sequence[float]) -> np.ndarray:
    """Map float images linearly from value range ``source`` to ``target`` (no clamping)."""
    (a, b), (c, d) = (tuple(map(float, source)), tuple(map(float, target)))
    if (a, b) == (c, d):
        return np.asarray(images, dtype=np.float32)
    scale = (d - c) / (b - a)
    return (np.asarray(images, dtype=np.float32) - np.float32(a)) * np.float32(scale) + np.float32(c)


@lru_cache(maxsize=16)
def _bilinear_matrix(out_size: int, in_size: int) -> np.ndarray:
    """[out, in] interpolation weights of torch's bilinear, align_corners=False, along one axis.

    Computed in float32 as torch's CPU kernel does (scale = in/out, src = scale*(dst+0.5)-0.5
    clamped at 0), so the weights are torch's to the last bit.
    """
    f32 = np.float32
    scale = f32(in_size) / f32(out_size)
    src = scale * (np.arange(out_size, dtype=f32) + f32(0.5)) - f32(0.5)
    src = np.maximum(src, f32(0))
    lo = np.minimum(src.astype(np.int64), in_size - 1)
    hi = np.minimum(lo + 1, in_size - 1)
    frac = np.clip(src - lo.astype(f32), f32(0), f32(1))
    weights = np.zeros((out_size, in_size), dtype=f32)
    rows = np.arange(out_size)
    np.add.at(weights, (rows, lo), f32(1) - frac)
    np.add.at(weights, (rows, hi), frac)
    return weights


def resize_bilinear(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize float32 NCHW images to ``size`` = (H, W), bilinear, align_corners=False, no antialias."""
    images = np.asarray(images, dtype=np.float32)
    out_h, out_w = size
    n, c, h, w = images.shape
    if (h, w) == (out_h, out_w):
        return images
    rows = _bilinear_matrix(out_h, h)  # [out_h, h]
    cols = _bilinear_matrix(out_w, w)  # [out_w, w]
    out = np.matmul(rows, images.reshape(n * c, h, w))  # [nc, out_h, w]
    out = np.matmul(out, cols.T)  # [nc, out_h, out_w]
    return out.reshape(n, c, out_h, out_w)


def quantize(images: np.ndarray, value_range: Sequence[float]) -> np.ndarray:
    """Round float images through uint8 as if saved to PNG (torchvision ``save_image``), same range back."""
    return from_uint8(to_uint8(images, value_range), value_range)


def match_channels(images: np.ndarray, channels: int | None) -> np.ndarray:
    """Grey images to 3 channels (as Pillow's L->RGB) when the model takes 3; other mismatches are left to the caller."""
    if channels == 3 and images.shape[1] == 1:
        return np.repeat(images, 3, axis=1)
    return images


def hwc_to_nchw(images: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """Stack uint8 HxWxC images into one uint8 NCHW array."""
    return np.ascontiguousarray(np.stack(list(images)).transpose(0, 3, 1, 2))


def to_model_input(
    images: np.ndarray,
    source_range: Sequence[float],
    target_range: Sequence[float],
    target_shape: tuple[int, int, int] | None,
) -> np.ndarray:
    """Float NCHW images in ``source_range`` -> float32 in ``target_range`` at ``target_shape`` (C,H,W).

    ``target_shape`` None (a graph with dynamic H, W and no metadata) keeps the size. Rescaling is
    affine and bilinear weights sum to one, so the order of the two steps does not matter.
    """
    channels = target_shape[0] if target_shape else None
    images = match_channels(np.asarray(images, dtype=np.float32), channels)
    if target_shape is not None:
        if images.shape[1] != target_shape[0]:
            raise ValueError(f"images have {images.shape[1]} channels, the model takes {target_shape[0]}")
        images = resize_bilinear(images, target_shape[1:])
    return np.ascontiguousarray(rescale(images, source_range, target_range))
