"""What the loop draws: fixed-noise sample grids, reconstruction grids and 2-D latent plots.

The noise and the conditions are fixed per run (from the seed and the first images of the data), so
the grids of successive epochs show the same samples. Latent plots project the means to 2-D by PCA or
t-SNE and colour them by one attribute of the data (a label name, or a categorical head's choice). The
image files are written by gen_eval.trainers.logs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gen_eval.data.labels import LabelSpace
from gen_eval.errors import UserError
from gen_eval.trainers.base import Family
from gen_eval.trainers.logs import save_grid, save_latent_plot, save_reconstruction_grid
from gen_eval.trainers.torchdata import BatchSource, ImageSetDataset, iterate_all

GRID_SIZE = 64
LATENT_PLOT_ITEMS = 1000


@contextlib.contextmanager
def evaluating(networks: dict[str, nn.Module]) -> Iterator[None]:
    """Networks in eval mode without gradients for the duration; their previous modes restored after."""
    modes = {name: net.training for name, net in networks.items()}
    for net in networks.values():
        net.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for name, net in networks.items():
            net.train(modes[name])


class Pictures:
    """Sample grids from fixed noise and conditions, reconstruction grids and latent plots."""

    def __init__(self, family: Family, networks, source: BatchSource, run: Path, seed: int,
                 device: torch.device, latent_projection: str = "pca", colour_by: str | None = None) -> None:
        self.family, self.networks, self.run, self.device = family, networks, run, device
        self.latent_projection, self.colour_by, self.seed = latent_projection, colour_by, int(seed)
        self.real, self.labels = source.fixed_items(GRID_SIZE)
        self.z = None
        if family.latent_dim:
            generator = torch.Generator().manual_seed(int(seed))
            self.z = torch.randn(self.real.shape[0], family.latent_dim, generator=generator).to(device)
        self.source = source

    def real_grid(self) -> None:
        if self.z is not None and type(self.family).sample is not Family.sample:
            save_grid(self.real, self.run / "samples" / "real.png", self.family.value_range)

    def samples(self, path: Path) -> None:
        if self.z is None:
            return
        with evaluating(self.networks):
            images = self.family.sample(self.networks, self.z, self.labels)
        if images is not None:
            save_grid(images, path, self.family.value_range)

    def epoch(self, epoch: int) -> None:
        self.samples(self.run / "samples" / f"epoch_{epoch:03d}.png")
        with evaluating(self.networks):
            recon = self.family.reconstruct(self.networks, self.real[:32], None if self.labels is None else self.labels[:32])
        if recon is not None:
            save_reconstruction_grid(self.real[:32], recon, self.run / "recon" / f"epoch_{epoch:03d}.png",
                                     self.family.value_range)
        self.latent_plot(epoch)

    def latent_plot(self, epoch: int) -> None:
        if type(self.family).encode is Family.encode:
            return
        dataset = self.source.dataset
        count = min(LATENT_PLOT_ITEMS, len(dataset))
        means, labels = [], []
        with evaluating(self.networks):
            for batch in iterate_all(_Head(dataset, count), 256, self.family.value_range, self.device):
                means.append(self.family.encode(self.networks, batch.images, batch.labels).float().cpu())
                if batch.labels is not None:
                    labels.append(batch.labels.float().cpu().numpy())
        space = self.family.label_space or getattr(dataset.image_set, "label_space", None)
        colours, colour_name = None, ""
        if labels and space is not None:
            colours, colour_name = colour_values(np.concatenate(labels), space, self.colour_by)
        save_latent_plot(torch.cat(means), colours, self.run / "latent" / f"epoch_{epoch:03d}.png",
                         colour_name=colour_name, method=self.latent_projection,
                         title=f"{self.family.name} latent means ({self.latent_projection}), epoch {epoch}")


def colour_values(labels: np.ndarray, space: LabelSpace, colour_by: str | None) -> tuple[np.ndarray, str]:
    """One number per item for the latent plot's colours: the column of label ``colour_by`` (0/1), the
    chosen value's index of a categorical head ``colour_by``, or the first label when None."""
    name = colour_by or space.names[0]
    if name in space.index:
        return labels[:, space.index[name]], name
    for head, part in space.head_slices():
        if head == name:
            return labels[:, part].argmax(axis=1).astype(np.float64), head
    raise UserError(check_colour_by(space, name) or f"cannot colour by {name!r}")


def check_colour_by(space: LabelSpace | None, colour_by: str | None) -> str | None:
    """The one-line problem with colouring latent plots by ``colour_by`` on ``space``, or None."""
    if colour_by is None:
        return None
    if space is None:
        return f"cannot colour the latent plot by {colour_by!r}: the data has no labels"
    choices = [head for head, _ in space.heads] + list(space.names)
    if colour_by not in choices:
        shown = ", ".join(choices[:12]) + (", ..." if len(choices) > 12 else "")
        return f"cannot colour the latent plot by {colour_by!r}: the data has no label or head of that name; choose one of: {shown}"
    return None


class _Head:
    """The first ``count`` items of an ImageSetDataset (same interface as far as iterate_all needs)."""

    def __init__(self, dataset: ImageSetDataset, count: int) -> None:
        self.dataset, self.count = dataset, count
        self.labels = dataset.labels[:count] if dataset.labels is not None else None

    def __len__(self) -> int:
        return self.count

    def image(self, index: int) -> torch.Tensor:
        return self.dataset.image(index)
