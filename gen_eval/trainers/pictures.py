"""What the loop draws: fixed-noise sample grids, reconstruction grids and 2-D latent plots.

The noise and the conditions are fixed per run (from the seed and the first images of the data), so
the grids of successive epochs show the same samples. The image files are written by
gen_eval.trainers.logs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

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
                 device: torch.device) -> None:
        self.family, self.networks, self.run, self.device = family, networks, run, device
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
        means, colours = [], []
        with evaluating(self.networks):
            for batch in iterate_all(_Head(dataset, count), 256, self.family.value_range, self.device):
                means.append(self.family.encode(self.networks, batch.images, batch.labels).float().cpu())
                if batch.labels is not None:
                    colours.append(batch.labels[:, 0].float().cpu())
        space = self.family.label_space or getattr(dataset.image_set, "label_space", None)
        colour_name = space.names[0] if space is not None else ""
        save_latent_plot(torch.cat(means), torch.cat(colours).numpy() if colours else None,
                         self.run / "latent" / f"epoch_{epoch:03d}.png", colour_name=colour_name,
                         title=f"{self.family.name} latent means, epoch {epoch}")


class _Head:
    """The first ``count`` items of an ImageSetDataset (same interface as far as iterate_all needs)."""

    def __init__(self, dataset: ImageSetDataset, count: int) -> None:
        self.dataset, self.count = dataset, count
        self.labels = dataset.labels[:count] if dataset.labels is not None else None

    def __len__(self) -> int:
        return self.count

    def image(self, index: int) -> torch.Tensor:
        return self.dataset.image(index)
