"""Batches for the training loop from a ``gen_eval.data`` ImageSet.

The order of every epoch is a pure function of ``(seed, epoch)``, so a resumed run sees exactly the
batches an uninterrupted run would have seen, with no data-loader state in the checkpoint. Small data
sets (the shapes set, MNIST) are decoded once into one uint8 tensor and batched by indexing, which on
a 2-core CPU is far faster than a per-item DataLoader; larger ones stream through a DataLoader.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from gen_eval.errors import UserError
from gen_eval.trainers.base import Batch

DEFAULT_CACHE_BYTES = 2 << 30   # decode into memory when the uint8 images fit in this


def epoch_order(num_items: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffled item order of ``epoch``: a permutation that depends only on (seed, epoch)."""
    return np.random.default_rng([int(seed), int(epoch)]).permutation(num_items)


def to_float(images_uint8: torch.Tensor, value_range: tuple[float, float]) -> torch.Tensor:
    """uint8 NCHW -> float32 NCHW in ``value_range`` (0 -> low, 255 -> high)."""
    low, high = value_range
    return images_uint8.to(torch.float32).mul_((high - low) / 255.0).add_(low)


def fit_image(image: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Center-crop to a square, resize (bicubic) and convert channels so that HWC matches ``shape`` (C,H,W)."""
    channels, height, width = shape
    pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    side = min(pil.size)
    left, top = (pil.size[0] - side) // 2, (pil.size[1] - side) // 2
    pil = pil.crop((left, top, left + side, top + side))
    if pil.size != (width, height):
        pil = pil.resize((width, height), Image.BICUBIC)
    pil = pil.convert("L" if channels == 1 else "RGB")
    array = np.asarray(pil)
    return array[..., None] if array.ndim == 2 else array


class ImageSetDataset(torch.utils.data.Dataset):
    """torch Dataset over an ImageSet: item ``i`` -> (uint8 CHW tensor, float32 label vector or empty)."""

    def __init__(self, image_set, image_shape: tuple[int, int, int] | None = None) -> None:
        self.image_set = image_set
        self.image_shape = tuple(image_shape) if image_shape else tuple(image_set.image_shape)
        self.resize = self.image_shape != tuple(image_set.image_shape)
        labels = getattr(image_set, "labels", None)
        self.labels = torch.from_numpy(np.asarray(labels, dtype=np.float32)) if labels is not None else None

    def __len__(self) -> int:
        return len(self.image_set)

    def image(self, index: int) -> torch.Tensor:
        array = self.image_set.image(int(index))
        if self.resize or array.shape != (self.image_shape[1], self.image_shape[2], self.image_shape[0]):
            array = fit_image(array, self.image_shape)
        return torch.from_numpy(np.array(array, dtype=np.uint8, order="C")).permute(2, 0, 1)   # a writable copy

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        label = self.labels[index] if self.labels is not None else torch.empty(0)
        return self.image(index), label


@dataclass
class BatchSource:
    """Batches of an ImageSet for training: fixed batch size, last partial batch dropped.

    ``batches(epoch, start)`` yields the batches of ``epoch`` from batch number ``start`` on, as
    :class:`Batch` objects on ``device`` with images in ``value_range``.
    """

    dataset: ImageSetDataset
    batch_size: int
    seed: int
    value_range: tuple[float, float]
    device: torch.device
    shuffle: bool = True
    workers: int = 0
    cache_bytes: int = DEFAULT_CACHE_BYTES

    def __post_init__(self) -> None:
        if len(self.dataset) == 0:
            raise UserError(f"data set {self.dataset.image_set.source} holds no images")
        self.batch_size = min(int(self.batch_size), len(self.dataset))
        c, h, w = self.dataset.image_shape
        self._cache: torch.Tensor | None = None
        if len(self.dataset) * c * h * w <= self.cache_bytes:
            self._cache = torch.stack([self.dataset.image(i) for i in range(len(self.dataset))])

    @property
    def steps_per_epoch(self) -> int:
        return len(self.dataset) // self.batch_size

    def _index_batches(self, epoch: int, start: int) -> list[np.ndarray]:
        order = epoch_order(len(self.dataset), self.seed, epoch) if self.shuffle else np.arange(len(self.dataset))
        n = self.steps_per_epoch
        return [order[i * self.batch_size:(i + 1) * self.batch_size] for i in range(start, n)]

    def _make_batch(self, images_uint8: torch.Tensor, labels: torch.Tensor | None) -> Batch:
        return make_batch(images_uint8, labels, self.value_range, self.device)

    def batches(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        index_batches = self._index_batches(epoch, start)
        if self._cache is not None:
            for indices in index_batches:
                idx = torch.from_numpy(indices)
                labels = self.dataset.labels[idx] if self.dataset.labels is not None else None
                yield self._make_batch(self._cache[idx], labels)
            return
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_sampler=[list(map(int, b)) for b in index_batches], num_workers=self.workers,
            pin_memory=self.device.type == "cuda", generator=torch.Generator())   # keeps the global RNG untouched
        for images, labels in loader:
            yield self._make_batch(images, labels)

    def fixed_items(self, count: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The same ``count`` items every time (chosen by seed): real images and their labels, on device."""
        count = min(count, len(self.dataset))
        indices = np.sort(np.random.default_rng([int(self.seed), 2**31 - 1]).permutation(len(self.dataset))[:count])
        images = torch.stack([self._cache[i] if self._cache is not None else self.dataset.image(i) for i in indices])
        labels = self.dataset.labels[torch.from_numpy(indices)] if self.dataset.labels is not None else None
        batch = self._make_batch(images, labels)
        return batch.images, batch.labels


def make_batch(images_uint8: torch.Tensor, labels: torch.Tensor | None, value_range: tuple[float, float],
               device: torch.device) -> Batch:
    """A :class:`Batch` on ``device``: images scaled to ``value_range``; empty labels become None."""
    non_blocking = device.type == "cuda"
    images = to_float(images_uint8.to(device, non_blocking=non_blocking), value_range)
    labels = labels.to(device, non_blocking=non_blocking) if labels is not None and labels.numel() else None
    return Batch(images=images, labels=labels)


def iterate_all(dataset: ImageSetDataset, batch_size: int, value_range: tuple[float, float],
                device: torch.device) -> Iterator[Batch]:
    """Every item once, in order (held-out evaluation); the last batch may be smaller."""
    for start in range(0, len(dataset), batch_size):
        idx = list(range(start, min(start + batch_size, len(dataset))))
        images = torch.stack([dataset.image(i) for i in idx])
        labels = dataset.labels[idx] if dataset.labels is not None else None
        yield make_batch(images, labels, value_range, device)
