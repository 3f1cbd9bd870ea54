"""MLP VAE on MNIST 28x28: BCE (summed over pixels) + kl_weight * KL.

Encoder: 784 -> 512 (tanh, dropout 0.5) -> 256 (tanh) -> separate mu and logvar heads (latent 32).
Decoder: 32 -> 256 (tanh) -> 512 (tanh) -> 784 (sigmoid). Images 1x28x28 in [0, 1].

The BCE is summed over an image's pixels and added to the KL per image, then averaged over the batch, so
the logged loss is per image (a constant factor of the batch size, which Adam's steps all but ignore).
``bce_reduction=mean`` is ``nn.BCELoss()``'s default instead (the mean over pixels and batch, which makes
the KL term relatively 784 times heavier). The BCE is computed in float32 outside autocast, so --amp
works. Adam 1e-3, batch 64, 50 epochs.

Held out (eval.csv, each epoch): the same per-image loss (``loss``, ``bce``, ``kld``) with dropout off and
one z drawn per image from a generator of its own seed (the training RNG stays untouched, so a resumed
run stays bit-identical), beside the reconstruction MSE every VAE logs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from gen_eval.trainers import register_family
from gen_eval.trainers.base import Batch
from gen_eval.trainers.config import (
    BELOW_ONE,
    IMAGE_SIZE,
    LATENT,
    NON_NEGATIVE,
    POSITIVE,
    between,
    one_of,
    setting,
    widths,
)
from gen_eval.trainers.losses import bce_on_probs
from gen_eval.trainers.networks import mlp_to_image
from gen_eval.trainers.vae import ELBOFamily, kl_divergence

HELDOUT_NOISE_SEED = 2**31 - 2   # the held-out z draws: the same every epoch, apart from the training RNG


class MLPEncoder(nn.Module):
    """Image ``[B, C, H, W]`` -> (mu, logvar) ``[B, latent_dim]`` each."""

    def __init__(self, in_features: int, hidden: list[int], latent_dim: int, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten(1)]
        width = in_features
        for i, h in enumerate(hidden):
            layers += [nn.Linear(width, h), nn.Tanh()]
            if i == 0:
                layers.append(nn.Dropout(dropout))
            width = h
        self.body = nn.Sequential(*layers)
        self.mu = nn.Linear(width, latent_dim)
        self.logvar = nn.Linear(width, latent_dim)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(image)
        return self.mu(h), self.logvar(h)


def mlp_decoder(latent_dim: int, hidden: list[int], image_shape: tuple[int, int, int]) -> nn.Sequential:
    """``z`` -> image ``image_shape`` in [0, 1]; ``hidden`` from the latent side (e.g. 256, 512)."""
    return mlp_to_image(latent_dim, hidden, image_shape, lambda width, h: [nn.Linear(width, h), nn.Tanh()])


def summed_bce(recon: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """BCE summed over an image's pixels, averaged over the batch: a per-image loss."""
    return bce_on_probs(recon, x) * recon[0].numel()     # mean over pixels * pixels


@dataclass(frozen=True)
class MLPVAEConfig:
    image_size: int = setting(28, "image side in pixels", IMAGE_SIZE)
    image_channels: int = setting(1, "image channels", between(1, 4))
    latent_dim: int = setting(32, "latent units", LATENT)
    hidden: list[int] = setting([512, 256], "encoder hidden widths; the decoder mirrors them", widths())
    dropout: float = setting(0.5, "dropout after the first encoder layer", BELOW_ONE)
    kl_weight: float = setting(1.0, "weight of the KL term", NON_NEGATIVE)
    bce_reduction: str = setting("sum", "BCE summed over an image's pixels (sum) or averaged over them (mean, "
                                        "nn.BCELoss()'s default)", one_of("sum", "mean"))
    lr: float = setting(1e-3, "Adam learning rate", POSITIVE)


@register_family
class MLPVAE(ELBOFamily):
    """MLP VAE on MNIST 28x28: summed BCE + KL."""

    name: ClassVar[str] = "mlp-vae"
    Config = MLPVAEConfig
    reconstruction_name: ClassVar[str] = "bce"
    default_epochs: ClassVar[int] = 50

    def build_networks(self) -> dict[str, nn.Module]:
        c = self.config
        shape = self.image_shape
        hidden = [int(h) for h in c.hidden]
        return {"encoder": MLPEncoder(shape[0] * shape[1] * shape[2], hidden, c.latent_dim, c.dropout),
                "decoder": mlp_decoder(c.latent_dim, hidden[::-1], shape)}

    def reconstruction_loss(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        return summed_bce if self.config.bce_reduction == "sum" else bce_on_probs

    def evaluate(self, networks: dict[str, nn.Module], batches: Iterable[Batch]) -> dict[str, float]:
        """Held-out per-image loss (summed BCE + kl_weight * KL, one z per image) and reconstruction MSE."""
        noise: torch.Generator | None = None
        totals, count, squared_error = {"loss": 0.0, "bce": 0.0, "kld": 0.0}, 0, 0.0
        for batch in batches:
            mu, logvar = networks["encoder"](batch.images)
            if noise is None:
                noise = torch.Generator(device=mu.device).manual_seed(HELDOUT_NOISE_SEED)
            eps = torch.randn(mu.shape, generator=noise, device=mu.device, dtype=mu.dtype)
            recon = networks["decoder"](mu + eps * torch.exp(0.5 * logvar))
            bce, kld = float(summed_bce(recon, batch.images)), float(kl_divergence(mu, logvar))
            size = len(batch.images)
            totals["bce"] += bce * size
            totals["kld"] += kld * size
            totals["loss"] += (bce + self.config.kl_weight * kld) * size
            squared_error += float((networks["decoder"](mu) - batch.images).double().pow(2).sum())
            count += size
        if not count:
            return {}
        pixels = count * self.image_shape[0] * self.image_shape[1] * self.image_shape[2]
        return {"recon_mse": squared_error / pixels, **{key: value / count for key, value in totals.items()}}

