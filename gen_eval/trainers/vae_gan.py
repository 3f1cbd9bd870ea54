"""VAE-GAN (Larsen et al. 2016): encoder, generator (the decoder) and discriminator at 64x64.

Networks, with ``width`` = 32 and a latent of 200:
- encoder: Conv 5x5/2 (3 -> 32) + LeakyReLU(0.2), then Conv 5x5/2 + BatchNorm + LeakyReLU to 64, 128, 256
  channels (4x4), flatten (4096), ``x_to_mu`` and ``x_to_logvar`` Linear(4096, 200);
- generator: Linear(200, 4096, no bias) + BatchNorm1d + LeakyReLU, 256x4x4, then ConvTranspose 5x5/2
  (output_padding 1, no bias) + BatchNorm + LeakyReLU to 128, 64, 32 channels, a last ConvTranspose to 3
  channels and Tanh (images in [-1, 1]);
- discriminator: Conv 3x3 + BatchNorm + LeakyReLU blocks (32, 32 | 64, 64 | 128 x3 | 256 x3), MaxPool 2
  after each group, Linear(4096, 256) -> Linear(256, 32) -> Linear(32, 1) (no activations between); its
  Sigmoid is folded into the loss (BCE on logits, the same function).

Losses: encoder = recon + beta * KL (beta 1); generator = recon_weight * recon + gamma * (BCE(D(recon), real)
+ BCE(D(G(z_p)), real)) (gamma 0.1); discriminator = d_real_weight * BCE(D(x), real) + BCE(D(recon), fake) +
BCE(D(G(z_p)), fake). ``recon`` is the pixel MSE and the KL is averaged over latent units and the batch
(both as ``nn.MSELoss()`` normalises). Each loss updates only its own network. Adam 1e-4 (``lr_d`` gives
the discriminator a rate of its own, ``d_weight_decay`` an Adam weight decay), batch 64, 20 epochs.

``image_size`` may be any multiple of 16 (e.g. 128): every network halves or doubles 4 times.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from gen_eval.contract import ExportGraph
from gen_eval.errors import UserError
from gen_eval.trainers import register_family
from gen_eval.trainers.base import Batch, Family
from gen_eval.trainers.config import LATENT, NON_NEGATIVE, POSITIVE, WIDTH, between, multiple_of, set_option, setting
from gen_eval.trainers.losses import adversarial_loss
from gen_eval.trainers.vae import VAEHooks, kl_divergence, reparameterize, vae_graphs

HALVINGS = 4
DISCRIMINATOR_GROUPS = (2, 2, 3, 3)     # 3x3 convs per resolution of the discriminator


def _leaky() -> nn.LeakyReLU:
    return nn.LeakyReLU(0.2)


class Encoder(nn.Module):
    """Image -> (mu, logvar)."""

    def __init__(self, channels: int, image_size: int, width: int, latent_dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 5, 2, 2), _leaky()]
        ch = width
        for _ in range(HALVINGS - 1):
            layers.append(nn.Sequential(nn.Conv2d(ch, ch * 2, 5, 2, 2), nn.BatchNorm2d(ch * 2), _leaky()))
            ch *= 2
        self.conv_layer = nn.Sequential(*layers, nn.Flatten(1))
        flat = ch * (image_size // 2 ** HALVINGS) ** 2
        self.x_to_mu = nn.Linear(flat, latent_dim)
        self.x_to_logvar = nn.Linear(flat, latent_dim)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.conv_layer(image)
        return self.x_to_mu(h), self.x_to_logvar(h)


class Generator(nn.Module):
    """``z`` -> image in [-1, 1]."""

    def __init__(self, channels: int, image_size: int, width: int, latent_dim: int) -> None:
        super().__init__()
        ch, side = width * 2 ** (HALVINGS - 1), image_size // 2 ** HALVINGS
        flat = ch * side * side
        self.linearT_layer = nn.Sequential(nn.Linear(latent_dim, flat, bias=False), nn.BatchNorm1d(flat), _leaky(),
                                           nn.Unflatten(1, (ch, side, side)))
        layers: list[nn.Module] = []
        for _ in range(HALVINGS - 1):
            layers.append(nn.Sequential(nn.ConvTranspose2d(ch, ch // 2, 5, 2, 2, output_padding=1, bias=False),
                                        nn.BatchNorm2d(ch // 2), _leaky()))
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, channels, 5, 2, 2, output_padding=1, bias=False), nn.Tanh()]
        self.convT_layer = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.convT_layer(self.linearT_layer(z))


class Discriminator(nn.Module):
    """Image -> one logit per image ``[B]``."""

    def __init__(self, channels: int, image_size: int, width: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = channels
        for level, convs in enumerate(DISCRIMINATOR_GROUPS):
            out_ch = width * 2 ** level
            for _ in range(convs):
                layers.append(nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, 1, 1), nn.BatchNorm2d(out_ch), _leaky()))
                in_ch = out_ch
            layers.append(nn.MaxPool2d(2, 2))
        self.conv_layer = nn.Sequential(*layers, nn.Flatten(1))
        flat = in_ch * (image_size // 2 ** len(DISCRIMINATOR_GROUPS)) ** 2
        self.lin_layer = nn.Sequential(nn.Linear(flat, 256), nn.Linear(256, 32), nn.Linear(32, 1), nn.Flatten(0))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.lin_layer(self.conv_layer(image))


@dataclass(frozen=True)
class VAEGANConfig:
    image_size: int = setting(64, "image side in pixels", multiple_of(2 ** HALVINGS))
    image_channels: int = setting(3, "image channels", between(1, 4))
    latent_dim: int = setting(200, "latent units", LATENT)
    width: int = setting(32, "channels of the first block of every network", WIDTH)
    beta: float = setting(1.0, "encoder: weight of the KL term", NON_NEGATIVE)
    gamma: float = setting(0.1, "generator: weight of the adversarial terms", NON_NEGATIVE)
    lr: float = setting(1e-4, "Adam learning rate of the three networks", POSITIVE)
    recon_weight: float = setting(1.0, "generator: weight of the reconstruction MSE", NON_NEGATIVE)
    d_real_weight: float = setting(1.0, "discriminator: weight of the real-image term", NON_NEGATIVE)
    lr_d: float | None = setting(None, "discriminator Adam learning rate (none: lr)", POSITIVE)
    d_weight_decay: float = setting(0.0, "discriminator Adam weight decay", NON_NEGATIVE)


@register_family
class VAEGAN(VAEHooks, Family):
    """VAE-GAN (Larsen et al. 2016) at 64x64."""

    name: ClassVar[str] = "vae-gan"
    Config = VAEGANConfig
    decoder_key: ClassVar[str] = "generator"
    default_epochs: ClassVar[int] = 20

    def build_networks(self) -> dict[str, nn.Module]:
        c = self.config
        channels, size, _ = self.image_shape
        if size < 2 ** HALVINGS or size % 2 ** HALVINGS:
            raise UserError(f"the vae-gan family needs image_size a multiple of {2 ** HALVINGS}, got {size}; "
                            f"e.g. {set_option('image_size', 64)}")
        return {"encoder": Encoder(channels, size, c.width, c.latent_dim),
                "generator": Generator(channels, size, c.width, c.latent_dim),
                "discriminator": Discriminator(channels, size, c.width)}

    def build_optimizers(self, networks: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        optimizers = {name: torch.optim.Adam(networks[name].parameters(), lr=c.lr) for name in ("encoder", "generator")}
        optimizers["discriminator"] = torch.optim.Adam(networks["discriminator"].parameters(), lr=c.lr_d or c.lr,
                                                       weight_decay=c.d_weight_decay)
        return optimizers

    def train_step(self, networks: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer],
                   batch: Batch, step: int) -> dict[str, float]:
        c = self.config
        encoder, generator, discriminator = networks["encoder"], networks["generator"], networks["discriminator"]
        real = batch.images
        mu, logvar = encoder(real)
        recon = generator(reparameterize(mu, logvar))
        sampled = generator(torch.randn_like(mu))

        loss_d = (c.d_real_weight * adversarial_loss(discriminator(real), 1.0) + adversarial_loss(discriminator(recon.detach()), 0.0)
                  + adversarial_loss(discriminator(sampled.detach()), 0.0))
        optimizers["discriminator"].zero_grad(set_to_none=True)
        loss_d.backward()
        optimizers["discriminator"].step()

        mse = F.mse_loss(recon, real)
        kld = kl_divergence(mu, logvar, reduction="mean")
        fooling = adversarial_loss(discriminator(recon), 1.0) + adversarial_loss(discriminator(sampled), 1.0)
        loss_e = mse + c.beta * kld
        loss_g = c.recon_weight * mse + c.gamma * fooling
        optimizers["encoder"].zero_grad(set_to_none=True)
        optimizers["generator"].zero_grad(set_to_none=True)
        loss_e.backward(inputs=list(encoder.parameters()), retain_graph=True)
        loss_g.backward(inputs=list(generator.parameters()))
        optimizers["encoder"].step()
        optimizers["generator"].step()
        return {"loss_e": loss_e.item(), "loss_g": loss_g.item(), "loss_d": loss_d.item(),
                "mse": mse.item(), "kld": kld.item()}

    def export_graphs(self, networks: dict[str, nn.Module]) -> list[ExportGraph]:
        return vae_graphs(networks["encoder"], networks["generator"], self.config.latent_dim,
                          self.image_shape, self.value_range)

