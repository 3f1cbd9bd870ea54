"""MLP GAN on MNIST 28x28 (Goodfellow et al. 2014): BCE, Adam.

Generator: 100 -> 128 -> 256 -> 512 -> 600 -> 784, each hidden layer Linear + ReLU then BatchNorm1d,
Sigmoid out; images 1x28x28 in [0, 1].
Discriminator: Dropout(0.5) on the input, 784 -> 1024 (ReLU) -> 512 (ReLU) -> 1; its Sigmoid is folded
into the loss (BCE on logits, the same function, numerically stable).

Defaults: the discriminator at Adam's default (1e-3), the generator slowed to 5e-5, and the
discriminator skipped every 50th minibatch (``d_skip_every``; 0 never skips); batch 64, 200 epochs.

Per-epoch schedules (epochs counted from 1): ``schedule=epoch-digit`` trains the discriminator in
epochs ending in 1-4, the generator in epochs ending in 5-9 and both in every 10th;
``d_skip_epoch_every=5`` skips the discriminator for whole epochs 5, 10, ...
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from gen_eval.contract import ExportGraph
from gen_eval.trainers import register_family
from gen_eval.trainers.base import Batch, Family, generator_graph
from gen_eval.trainers.config import BELOW_ONE, BETAS, IMAGE_SIZE, LATENT, POSITIVE, between, one_of, setting, widths
from gen_eval.trainers.dcgan import gan_step
from gen_eval.trainers.networks import mlp_to_image


def mlp_generator(latent_dim: int, hidden: list[int], image_shape: tuple[int, int, int]) -> nn.Sequential:
    """``z`` -> image in [0, 1]; each hidden layer Linear + ReLU + BatchNorm1d."""
    return mlp_to_image(latent_dim, hidden, image_shape,
                        lambda width, h: [nn.Linear(width, h), nn.ReLU(), nn.BatchNorm1d(h)])


def mlp_discriminator(in_features: int, hidden: list[int], dropout: float) -> nn.Sequential:
    """Image -> one logit per image ``[B]``."""
    layers: list[nn.Module] = [nn.Flatten(1), nn.Dropout(dropout)]
    width = in_features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers += [nn.Linear(width, 1), nn.Flatten(0)]
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class MLPGANConfig:
    image_size: int = setting(28, "image side in pixels", IMAGE_SIZE)
    image_channels: int = setting(1, "image channels", between(1, 4))
    latent_dim: int = setting(100, "length of the noise vector z", LATENT)
    g_hidden: list[int] = setting([128, 256, 512, 600], "generator hidden widths", widths())
    d_hidden: list[int] = setting([1024, 512], "discriminator hidden widths", widths())
    dropout: float = setting(0.5, "dropout on the discriminator's input", BELOW_ONE)
    lr_g: float = setting(5e-5, "generator Adam learning rate", POSITIVE)
    lr_d: float = setting(1e-3, "discriminator Adam learning rate", POSITIVE)
    betas: list[float] = setting([0.9, 0.999], "Adam betas of both networks", BETAS)
    d_skip_every: int = setting(50, "skip the discriminator update every N-th step (0: never)", between(0, 10**6))
    schedule: str = setting("every-step", "which network trains when: both every step, or by the epoch's last digit "
                                          "(epoch-digit: D in 1-4, G in 5-9, both in 0)", one_of("every-step", "epoch-digit"))
    d_skip_epoch_every: int = setting(0, "skip the discriminator for every N-th whole epoch (0: never)",
                                      between(0, 10**6))


@register_family
class MLPGAN(Family):
    """MLP GAN on MNIST 28x28."""

    name: ClassVar[str] = "mlp-gan"
    Config = MLPGANConfig
    value_range: ClassVar[tuple[float, float]] = (0.0, 1.0)
    default_epochs: ClassVar[int] = 200

    def build_networks(self) -> dict[str, nn.Module]:
        c = self.config
        shape = self.image_shape
        return {"generator": mlp_generator(c.latent_dim, [int(h) for h in c.g_hidden], shape),
                "discriminator": mlp_discriminator(shape[0] * shape[1] * shape[2], [int(h) for h in c.d_hidden],
                                                   c.dropout)}

    def build_optimizers(self, networks: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        betas = tuple(c.betas)
        return {"generator": torch.optim.Adam(networks["generator"].parameters(), lr=c.lr_g, betas=betas),
                "discriminator": torch.optim.Adam(networks["discriminator"].parameters(), lr=c.lr_d, betas=betas)}

    def train_step(self, networks: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer],
                   batch: Batch, step: int) -> dict[str, float]:
        update_d, update_g = self.updates(step)
        return gan_step(networks, optimizers, batch.images, self.config.latent_dim, update_discriminator=update_d,
                        update_generator=update_g)

    def updates(self, step: int) -> tuple[bool, bool]:
        """Whether step ``step`` (from 0) updates the discriminator and the generator."""
        c = self.config
        skip = int(c.d_skip_every)
        update_d, update_g = not (skip > 0 and (step + 1) % skip == 0), True
        if c.schedule == "epoch-digit" or c.d_skip_epoch_every:
            if not self.steps_per_epoch:
                raise RuntimeError("per-epoch schedules need steps_per_epoch (the training loop sets it)")
            epoch = step // self.steps_per_epoch + 1
            if c.schedule == "epoch-digit":
                digit = epoch % 10
                update_d, update_g = update_d and digit in (0, 1, 2, 3, 4), digit in (0, 5, 6, 7, 8, 9)
            if c.d_skip_epoch_every and epoch % int(c.d_skip_epoch_every) == 0:
                update_d = False
        return update_d, update_g

    def export_graphs(self, networks: dict[str, nn.Module]) -> list[ExportGraph]:
        return [generator_graph(networks["generator"], self.config.latent_dim, self.image_shape, self.value_range)]

    def sample(self, networks: dict[str, nn.Module], z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return networks["generator"](z)

