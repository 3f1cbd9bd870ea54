"""DCGAN (Radford et al. 2016): transposed-conv generator, strided-conv discriminator.

Generator: ``z`` (100) -> ConvTranspose(4, stride 1) to 4x4, then stride-2 ConvTranspose + BatchNorm + ReLU
blocks halving the width (512-256-128-64 at 64x64), a last ConvTranspose to the image channels and Tanh
(images in [-1, 1]). Discriminator: stride-2 Conv + LeakyReLU(0.2) blocks (BatchNorm from the second), a 4x4
valid Conv to one score. Weights N(0, 0.02), BatchNorm scale N(1, 0.02); Adam 2e-4, betas (0.5, 0.999);
batch 128; BCE; 25 epochs (PyTorch's DCGAN example; Radford fixes no number). The discriminator's Sigmoid
is folded into the loss (BCE on logits): the same function, numerically stable.

The network builders live in gen_eval.trainers.networks (the WGAN-GP family, the selectable
generators and the conditional discriminators use them too); :func:`gan_step` serves mlp-gan as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from gen_eval.contract import ExportGraph
from gen_eval.trainers import register_family
from gen_eval.trainers.base import Batch, Family, generator_graph
from gen_eval.trainers.config import BETAS, LATENT, POSITIVE, WIDTH, between, power_of_two, setting
from gen_eval.trainers.losses import adversarial_loss
from gen_eval.trainers.networks import dcgan_init, strided_features, transposed_generator


class Discriminator(nn.Module):
    """Image -> one logit per image ``[B]``."""

    def __init__(self, image_size: int, channels: int, width: int) -> None:
        super().__init__()
        self.features, ch = strided_features(image_size, channels, width, batch_norm=True)
        self.score = nn.Conv2d(ch, 1, 4, 1, 0, bias=False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.score(self.features(image)).flatten()


@dataclass(frozen=True)
class ConvGANConfig:
    """The settings of a transposed-conv generator and a strided-conv discriminator (dcgan, wgan-gp)."""

    image_size: int = setting(64, "image side in pixels", power_of_two(8))
    image_channels: int = setting(3, "image channels", between(1, 4))
    latent_dim: int = setting(100, "length of the noise vector z", LATENT)
    g_width: int = setting(64, "channels of the last generator block", WIDTH)
    d_width: int = setting(64, "channels of the first discriminator block", WIDTH)


@dataclass(frozen=True)
class DCGANConfig(ConvGANConfig):
    lr: float = setting(2e-4, "Adam learning rate of both networks", POSITIVE)
    betas: list[float] = setting([0.5, 0.999], "Adam betas of both networks", BETAS)


@register_family
class DCGAN(Family):
    """Radford's DCGAN, unconditional."""

    name: ClassVar[str] = "dcgan"
    Config = DCGANConfig
    default_batch_size: ClassVar[int] = 128
    default_epochs: ClassVar[int] = 25
    cpu_hint: ClassVar[str] = ("~6 s per step of 128 images on 2 busy CPU cores, "   # measured: benchmarks/RESULTS.md
                               "~4.5 min per epoch of the 6000-image shapes set")

    def build_networks(self) -> dict[str, nn.Module]:
        c = self.config
        generator = transposed_generator(c.latent_dim, c.image_size, c.image_channels, c.g_width)
        discriminator = Discriminator(c.image_size, c.image_channels, c.d_width)
        generator.apply(dcgan_init)
        discriminator.apply(dcgan_init)
        return {"generator": generator, "discriminator": discriminator}

    def build_optimizers(self, networks: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        lr, betas = self.config.lr, tuple(self.config.betas)
        return {name: torch.optim.Adam(networks[name].parameters(), lr=lr, betas=betas)
                for name in ("generator", "discriminator")}

    def train_step(self, networks: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer],
                   batch: Batch, step: int) -> dict[str, float]:
        return gan_step(networks, optimizers, batch.images, self.config.latent_dim)

    def export_graphs(self, networks: dict[str, nn.Module]) -> list[ExportGraph]:
        return [generator_graph(networks["generator"], self.config.latent_dim, self.image_shape, self.value_range)]

    def sample(self, networks: dict[str, nn.Module], z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return networks["generator"](z)


def gan_step(networks: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer], real: torch.Tensor,
             latent_dim: int, update_discriminator: bool = True, update_generator: bool = True) -> dict[str, float]:
    """One non-saturating GAN step (Goodfellow et al.; Radford): D on real vs fake, then G to fool D."""
    generator, discriminator = networks["generator"], networks["discriminator"]
    z = torch.randn(real.shape[0], latent_dim, device=real.device)
    fake = generator(z)

    real_logits = discriminator(real)
    fake_logits = discriminator(fake.detach())
    loss_d = adversarial_loss(real_logits, 1.0) + adversarial_loss(fake_logits, 0.0)
    if update_discriminator:
        optimizers["discriminator"].zero_grad(set_to_none=True)
        loss_d.backward()
        optimizers["discriminator"].step()

    if update_generator:
        loss_g = adversarial_loss(discriminator(fake), 1.0)
        optimizers["generator"].zero_grad(set_to_none=True)
        loss_g.backward()
        optimizers["generator"].step()
    else:
        with torch.no_grad():
            loss_g = adversarial_loss(discriminator(fake), 1.0)
    return {"loss_d": loss_d.item(), "loss_g": loss_g.item(),
            "d_real": torch.sigmoid(real_logits).mean().item(), "d_fake": torch.sigmoid(fake_logits).mean().item()}

