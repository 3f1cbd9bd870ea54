"""Images handed over in memory: numpy arrays, torch tensors, or an iterable of such batches.

They become what a PNG folder of the same images decodes to, uint8 [N, H, W, C], so every job sees
the same pixels either way. Float images are quantised like ``torchvision.utils.save_image`` (see
:func:`gen_eval.data.images.to_uint8`) from a stated value range, [0, 1] unless told. torch is never
imported here: a tensor is recognised only when the caller has imported torch already.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterable
from typing import Any

import numpy as np

from gen_eval.data.images import to_uint8
from gen_eval.data.imageset import ArrayImageSet
from gen_eval.errors import UserError

LAYOUTS = ("NHWC", "NCHW")
CHANNELS = (1, 3)
# A float value this far outside its range still rounds to the range's end (half a uint8 step);
# further out, the range given is wrong (e.g. [-1, 1] images taken for [0, 1]).
RANGE_SLACK = 0.5 / 255


def is_in_memory(images: Any) -> bool:
    """Whether ``images`` are held in memory (an array, a tensor, an iterable of batches) rather than named by a path."""
    return images is not None and not isinstance(images, (str, bytes, os.PathLike))


def _as_numpy(batch: Any) -> np.ndarray | None:
    """A numpy view of an array or (when torch is already imported) a tensor; None for anything else."""
    if isinstance(batch, np.ndarray):
        return batch
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(batch, torch.Tensor):
        return batch.detach().cpu().numpy()
    return None


def _layout_of(shape: tuple[int, ...], layout: str | None, what: str) -> str:
    if layout is not None:
        if layout not in LAYOUTS:
            raise UserError(f"{what}: layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        return layout
    channels_last, channels_first = shape[3] in CHANNELS, shape[1] in CHANNELS
    if channels_last and not channels_first:
        return "NHWC"
    if channels_first and not channels_last:
        return "NCHW"
    if channels_last:
        raise UserError(f"{what}: shape {shape} could be [N, H, W, C] or [N, C, H, W]; say which with "
                        "gen_eval.ImageSource(images, layout='NHWC' or 'NCHW')")
    raise UserError(f"{what}: shape {shape} has no axis of 1 or 3 channels; give images [N, H, W, C] or "
                    "[N, C, H, W] with 1 (grey) or 3 (RGB) channels")


def batch_to_uint8(batch: Any, value_range: tuple[float, float] | None = None, layout: str | None = None,
                   what: str = "images") -> np.ndarray:
    """One batch of images (array or tensor, uint8 or float in ``value_range``) as uint8 [N, H, W, C]."""
    array = _as_numpy(batch)
    if array is None:
        raise UserError(f"{what}: a batch is {type(batch).__name__}, not a numpy array or torch tensor of images")
    if array.ndim != 4:
        raise UserError(f"{what}: a batch has shape {array.shape}; give images as [N, H, W, C] or [N, C, H, W] "
                        "(one image: add the batch axis, e.g. image[None])")
    if array.shape[0] and _layout_of(array.shape, layout, what) == "NCHW":
        array = array.transpose(0, 2, 3, 1)
    if array.shape[0] and array.shape[3] not in CHANNELS:
        raise UserError(f"{what}: {array.shape[3]} channels; images need 1 (grey) or 3 (RGB)")
    if array.dtype == np.uint8:
        if value_range is not None:
            raise UserError(f"{what}: uint8 images are 0..255; a value range is for float images, leave it out")
        return np.ascontiguousarray(array)
    if array.dtype.kind != "f":
        raise UserError(f"{what}: images of dtype {array.dtype}; give uint8 (0..255) or float images "
                        "(in [0, 1], or in the value range you state)")
    lo, hi = (0.0, 1.0) if value_range is None else (float(v) for v in value_range)
    if not lo < hi:
        raise UserError(f"{what}: value range needs low < high, got {value_range!r}")
    if array.size:
        if not np.isfinite(array).all():
            raise UserError(f"{what}: images hold NaN or Inf; check the generator's output")
        low, high = float(array.min()), float(array.max())
        slack = RANGE_SLACK * (hi - lo)
        if low < lo - slack or high > hi + slack:
            raise UserError(f"{what}: float images span [{low:.4g}, {high:.4g}], outside the value range "
                            f"[{lo:g}, {hi:g}]; state their range with gen_eval.ImageSource(images, "
                            "value_range=(LOW, HIGH)), e.g. (-1, 1) for a tanh output")
    return np.ascontiguousarray(to_uint8(array, (lo, hi)))


def images_to_uint8(images: Any, value_range: tuple[float, float] | None = None, layout: str | None = None,
                    what: str = "images") -> np.ndarray:
    """An array, a tensor or an iterable of such batches as one uint8 array [N, H, W, C]."""
    if _as_numpy(images) is not None:
        out = batch_to_uint8(images, value_range, layout, what)
    elif isinstance(images, Iterable) and not isinstance(images, (str, bytes, dict)):
        batches = [batch_to_uint8(batch, value_range, layout, what) for batch in images]
        shapes = {b.shape[1:] for b in batches if len(b)}
        if len(shapes) > 1:
            raise UserError(f"{what}: batches of different image shapes ({', '.join(map(str, sorted(shapes)))} as "
                            "H, W, C); give images of one size")
        out = np.concatenate(batches) if batches else np.zeros((0, 1, 1, 3), np.uint8)
    else:
        raise UserError(f"{what}: {type(images).__name__} is not images; give a path, a numpy array or torch "
                        "tensor [N, H, W, C] / [N, C, H, W], or an iterable of such batches")
    if len(out) == 0:
        raise UserError(f"{what}: no images; give at least one")
    if 0 in out.shape[1:3]:
        raise UserError(f"{what}: images of size {out.shape[2]}x{out.shape[1]}; give images at least 1x1")
    return out


def memory_image_set(images: Any, value_range: tuple[float, float] | None = None, layout: str | None = None,
                     what: str = "images") -> ArrayImageSet:
    """In-memory images as an image set, named by their shape and the digest of their pixels."""
    pixels = images_to_uint8(images, value_range, layout, what)
    digest = hashlib.sha256(pixels.tobytes()).hexdigest()
    n, h, w, c = pixels.shape
    image_set = ArrayImageSet(pixels, format="memory", source=f"in-memory images [{n}, {h}, {w}, {c}] "
                                                              f"sha256 {digest[:12]}")
    image_set.sha256 = digest
    return image_set


__all__ = ["batch_to_uint8", "images_to_uint8", "is_in_memory", "memory_image_set"]
