"""What a job reads images from, as one small frozen object: a path, or images held in memory.

Every job that takes images takes a path, an :class:`ImageSource`, or the in-memory images
themselves (a numpy array or torch tensor, uint8 or float in [0, 1], [N, H, W, C] or [N, C, H, W],
or an iterable of such batches); :func:`image_source` turns any of them into an ImageSource.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gen_eval.data.memory import is_in_memory, memory_image_set


@dataclass(frozen=True, eq=False)
class ImageSource:
    """Images for a job: a folder / data set / sample .npz (``split`` picks a data set's split), or in-memory
    images. ``value_range`` is the range of float images in memory ([0, 1] when None); ``layout`` is
    "NHWC" or "NCHW" when the shape leaves it open (both axes 1 or 3). An iterable of batches is read once,
    when the source is opened."""

    images: Any
    split: str = "train"
    value_range: tuple[float, float] | None = None
    layout: str | None = None

    @property
    def in_memory(self) -> bool:
        return is_in_memory(self.images)

    @property
    def path(self) -> Path | None:
        """The path the images are read from, or None for images in memory."""
        return None if self.in_memory else Path(self.images)

    def describe(self) -> str:
        return "in-memory images" if self.in_memory else str(self.images)

    def open(self, channels: int | None = None, what: str = "images"):
        """The images as an :class:`~gen_eval.data.imageset.ImageSet` (uint8 H x W x C per image)."""
        if self.in_memory:
            return memory_image_set(self.images, self.value_range, self.layout, what)
        from gen_eval.api.inputs import image_set

        return image_set(self.images, self.split, channels)


def image_source(images: Any, split: str = "train") -> ImageSource | None:
    """``images`` as an ImageSource (None stays None; an ImageSource is kept as it is)."""
    if images is None or isinstance(images, ImageSource):
        return images
    if isinstance(images, (str, os.PathLike)):
        return ImageSource(images, split)
    return ImageSource(images)


def path_or_none(images: Any):
    """The path of a job's images for provenance and messages (None for images in memory)."""
    source = image_source(images)
    return None if source is None else source.path


__all__ = ["ImageSource", "image_source", "path_or_none"]
