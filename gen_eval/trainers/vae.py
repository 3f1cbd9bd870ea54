"""Convolutional VAE at 64x64 (Kingma & Welling 2014): MSE + kl_weight * KL.

Encoder: three [Conv 3x3 (no bias) + BatchNorm + ReLU + AvgPool 2] blocks of ``width`` channels
(64 -> 8 px), flatten (256*8*8 = 16384), then ``fc11`` -> mu and ``fc12`` -> logvar.
Decoder: ``fc2`` (latent -> 16384), then two [ConvTranspose 4/2/1 + BatchNorm + ReLU] blocks and a last
ConvTranspose to 3 channels + BatchNorm + Sigmoid. Images in [0, 1]. The default latent is 1024 units.

The MSE is the mean over pixels and channels, the KL is summed over latent units and averaged over the
batch, weighted by ``kl_weight`` (1e-5). Adam 1e-3, batch 64. Where these choices come from:
docs/recipes.md, "How the families read the seed reports".

The helpers at the bottom (reparameterisation, KL, the two export graphs) serve every VAE family.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from gen_eval import contract
from gen_eval.contract import ExportGraph
from gen_eval.errors import UserError
from gen_eval.trainers import register_family
from gen_eval.trainers.base import Batch, Family
from gen_eval.trainers.config import LATENT, NON_NEGATIVE, POSITIVE, WIDTH, between, multiple_of, set_option, setting

POOLINGS = 3


class ConvEncoder(nn.Module):
    """Image ``[B, C, S, S]`` -> (mu, logvar), each ``[B, latent_dim]``."""

    def __init__(self, channels: int, image_size: int, width: int, latent_dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = channels
        for _ in range(POOLINGS):
            layers += [nn.Conv2d(in_ch, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(True),
                       nn.AvgPool2d(2, 2)]
            in_ch = width
        layers.append(nn.Flatten(1))
        self.features = nn.Sequential(*layers)
        flat = width * (image_size // 2 ** POOLINGS) ** 2
        self.fc11 = nn.Linear(flat, latent_dim)
        self.fc12 = nn.Linear(flat, latent_dim)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(image)
        return self.fc11(h), self.fc12(h)


class ConvDecoder(nn.Module):
    """``z [B, latent_dim]`` -> image ``[B, C, S, S]`` in [0, 1]."""

    def __init__(self, channels: int, image_size: int, width: int, latent_dim: int) -> None:
        super().__init__()
        side = image_size // 2 ** POOLINGS
        self.fc2 = nn.Linear(latent_dim, width * side * side)
        layers: list[nn.Module] = [nn.Unflatten(1, (width, side, side))]
        for _ in range(POOLINGS - 1):
            layers += [nn.ConvTranspose2d(width, width, 4, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.BatchNorm2d(channels), nn.Sigmoid()]
        self.decoder = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.fc2(z))


# -- shared by the VAE families (vae, mlp-vae, vae-gan) ------------------------------------------------

def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z = mu + sigma * eps, eps ~ N(0, I) (Kingma & Welling's reparameterisation trick)."""
    return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor, reduction: str = "batchmean") -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)).

    ``batchmean``: summed over latent units, averaged over the batch (per-image KL);
    ``mean``: averaged over batch and latent units (the normalisation of ``nn.MSELoss()``).
    """
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())
    if reduction == "batchmean":
        return kl.sum(dim=1).mean()
    if reduction == "mean":
        return kl.mean()
    raise ValueError(f"unknown KL reduction {reduction!r}; use 'batchmean' or 'mean'")


def elbo_step(networks: dict[str, nn.Module], optimizer: torch.optim.Optimizer, x: torch.Tensor, recon_name: str,
              reconstruction: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
              kl_weight: float) -> dict[str, float]:
    """One VAE step: ``reconstruction(recon, x) + kl_weight * KL`` through the reparameterised latent.

    The families differ only in the reconstruction loss (logged as ``recon_name``).
    """
    mu, logvar = networks["encoder"](x)
    recon = networks["decoder"](reparameterize(mu, logvar))
    rec = reconstruction(recon, x)
    kld = kl_divergence(mu, logvar)
    loss = rec + kl_weight * kld
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return {"loss": loss.item(), recon_name: rec.item(), "kld": kld.item()}


def vae_optimizer(networks: dict[str, nn.Module], lr: float) -> torch.optim.Optimizer:
    """One Adam over encoder and decoder (they minimise the same ELBO)."""
    params = [*networks["encoder"].parameters(), *networks["decoder"].parameters()]
    return torch.optim.Adam(params, lr=lr)


def vae_graphs(encoder: nn.Module, decoder: nn.Module, latent_dim: int, image_shape: tuple[int, int, int],
               value_range: tuple[float, float]) -> list[ExportGraph]:
    """A VAE's two ONNX graphs: the decoder as the generator (z -> image), the encoder (image -> mu, logvar)."""
    return [
        ExportGraph(role="generator", module=decoder, input_names=[contract.INPUT_Z], input_shapes=[(latent_dim,)],
                    output_names=[contract.OUTPUT_IMAGE], image_shape=image_shape, value_range=value_range,
                    latent_dim=latent_dim),
        ExportGraph(role="encoder", module=encoder, input_names=[contract.INPUT_IMAGE], input_shapes=[image_shape],
                    output_names=[contract.OUTPUT_MU, contract.OUTPUT_LOGVAR], image_shape=image_shape,
                    value_range=value_range, latent_dim=latent_dim, suffix="encoder"),
    ]


class VAEHooks:
    """The loop's picture hooks for VAE families: sample = decode z; reconstruct and encode through mu."""

    decoder_key: ClassVar[str] = "decoder"

    def sample(self, networks: dict[str, nn.Module], z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return networks[self.decoder_key](z)

    def reconstruct(self, networks: dict[str, nn.Module], images: torch.Tensor,
                    labels: torch.Tensor | None) -> torch.Tensor:
        return networks[self.decoder_key](networks["encoder"](images)[0])

    def encode(self, networks: dict[str, nn.Module], images: torch.Tensor,
               labels: torch.Tensor | None) -> torch.Tensor:
        return networks["encoder"](images)[0]

    def evaluate(self, networks: dict[str, nn.Module], batches: Iterable[Batch]) -> dict[str, float]:
        """Held-out reconstruction MSE through mu, per pixel and channel, on images scaled to [0, 1] (docs/metrics.md)."""
        low, high = self.value_range
        total, count = 0.0, 0
        for batch in batches:
            diff = (self.reconstruct(networks, batch.images, batch.labels) - batch.images) / (high - low)
            total += float(diff.double().pow(2).sum())
            count += diff.numel()
        return {"recon_mse": total / count} if count else {}


@dataclass(frozen=True)
class ConvVAEConfig:
    image_size: int = setting(64, "image side in pixels", multiple_of(2 ** POOLINGS))
    image_channels: int = setting(3, "image channels", between(1, 4))
    latent_dim: int = setting(1024, "latent units", LATENT)
    width: int = setting(256, "channels of every conv block", WIDTH)
    kl_weight: float = setting(1e-5, "weight of the KL term", NON_NEGATIVE)
    lr: float = setting(1e-3, "Adam learning rate", POSITIVE)


class ELBOFamily(VAEHooks, Family):
    """A VAE trained on the ELBO with one Adam over encoder and decoder; the decoder is the exported generator.

    A subclass sets ``reconstruction_name`` and :meth:`reconstruction_loss`, and its config has
    ``latent_dim``, ``kl_weight`` and ``lr``."""

    value_range: ClassVar[tuple[float, float]] = (0.0, 1.0)
    reconstruction_name: ClassVar[str]

    def reconstruction_loss(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        raise NotImplementedError

    def build_optimizers(self, networks: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        return {"vae": vae_optimizer(networks, self.config.lr)}

    def train_step(self, networks: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer],
                   batch: Batch, step: int) -> dict[str, float]:
        return elbo_step(networks, optimizers["vae"], batch.images, self.reconstruction_name,
                         self.reconstruction_loss(), self.config.kl_weight)

    def export_graphs(self, networks: dict[str, nn.Module]) -> list[ExportGraph]:
        return vae_graphs(networks["encoder"], networks["decoder"], self.config.latent_dim, self.image_shape,
                          self.value_range)


@register_family
class ConvVAE(ELBOFamily):
    """Convolutional VAE at 64x64: MSE + KL."""

    name: ClassVar[str] = "vae"
    Config = ConvVAEConfig
    reconstruction_name: ClassVar[str] = "mse"
    default_epochs: ClassVar[int] = 20

    def build_networks(self) -> dict[str, nn.Module]:
        c = self.config
        channels, size, _ = self.image_shape
        if size < 2 ** POOLINGS or size % 2 ** POOLINGS:
            raise UserError(f"the vae family needs image_size a multiple of {2 ** POOLINGS}, got {size}; "
                            f"e.g. {set_option('image_size', 64)}")
        return {"encoder": ConvEncoder(channels, size, c.width, c.latent_dim),
                "decoder": ConvDecoder(channels, size, c.width, c.latent_dim)}

    def reconstruction_loss(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        return F.mse_loss
