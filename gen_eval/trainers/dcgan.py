"""DCGAN (Radford et al. 2016; S1 problem 2): transposed-conv generator, strided-conv discriminator.

Generator: ``z`` -> ConvTranspose(4, stride 1) to 4x4, then stride-2 ConvTranspose + BatchNorm + ReLU
blocks halving the width, a last ConvTranspose to the image channels and Tanh (images in [-1, 1]).
Discriminator: stride-2 Conv + LeakyReLU(0.2) blocks (BatchNorm from the second), a 4x4 valid Conv to one
score. Weights N(0, 0.02), BatchNorm scale N(1, 0.02); Adam 2e-4, betas (0.5, 0.999); batch 128; BCE;
25 epochs (PyTorch's DCGAN example; neither Radford nor S1 fix a number).

S1's printed layer list is OCR-garbled but is Radford's 64x64 DCGAN (widths 512-256-128-64) with
``z`` of 256; we keep Radford's ``z`` of 100 (``latent_dim`` sets S1's 256). The discriminator's Sigmoid
is folded into the loss (BCE on logits): the same function, numerically stable.

The two builders here also serve the WGAN-GP family (S3 is this DCGAN one block deeper, at 128 px).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import nn

from gen_eval import contract
from gen_eval.errors import UserError
from gen_eval.trainers.base import Batch, ExportGraph, Family
from gen_eval.trainers.losses import adversarial_loss


def doublings(image_size: int, smallest: int = 8) -> int:
    """Number of stride-2 stages between 4x4 and ``image_size`` (a power of two >= ``smallest``)."""
    n = int(math.log2(image_size)) if image_size > 0 else 0
    if image_size < smallest or 2 ** n != image_size:
        raise UserError(f"image_size must be a power of two >= {smallest} (e.g. 64), got {image_size}; "
                        "set it with --set image_size=64")
    return n - 2


def transposed_generator(in_dim: int, image_size: int, channels: int, width: int,
                         final_bias: bool = False) -> nn.Sequential:
    """DCGAN generator: a vector ``[B, in_dim]`` -> image ``[B, channels, image_size, image_size]`` in [-1, 1]."""
    n_up = doublings(image_size)
    ch = width * 2 ** (n_up - 1)
    layers: list[nn.Module] = [nn.Unflatten(1, (in_dim, 1, 1)),
                               nn.ConvTranspose2d(in_dim, ch, 4, 1, 0, bias=False), nn.BatchNorm2d(ch), nn.ReLU(True)]
    for _ in range(n_up - 1):
        layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
        ch //= 2
    layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1, bias=final_bias), nn.Tanh()]
    return nn.Sequential(*layers)


def strided_features(image_size: int, channels: int, width: int, batch_norm: bool) -> tuple[nn.Sequential, int]:
    """DCGAN discriminator body: image -> ``[B, C, 4, 4]``; returns the module and ``C``."""
    n_down = doublings(image_size)
    layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
    ch = width
    for _ in range(n_down - 1):
        layers.append(nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False))
        if batch_norm:
            layers.append(nn.BatchNorm2d(ch * 2))
        layers.append(nn.LeakyReLU(0.2, True))
        ch *= 2
    return nn.Sequential(*layers), ch


def dcgan_init(module: nn.Module) -> None:
    """Radford's initialisation: conv weights N(0, 0.02); BatchNorm scale N(1, 0.02), shift 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class Discriminator(nn.Module):
    """Image -> one logit per image ``[B]``."""

    def __init__(self, image_size: int, channels: int, width: int) -> None:
        super().__init__()
        self.features, ch = strided_features(image_size, channels, width, batch_norm=True)
        self.score = nn.Conv2d(ch, 1, 4, 1, 0, bias=False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.score(self.features(image)).flatten()


class DCGAN(Family):
    name: ClassVar[str] = "dcgan"
    value_range: ClassVar[tuple[float, float]] = (-1.0, 1.0)
    default_batch_size: ClassVar[int] = 128
    default_epochs: ClassVar[int] = 25
    defaults: ClassVar[dict[str, Any]] = {
        "image_size": 64, "image_channels": 3, "latent_dim": 100,
        "g_width": 64, "d_width": 64,            # channels of the last generator / first discriminator block
        "lr": 2e-4, "betas": [0.5, 0.999],
    }

    def build_networks(self) -> dict[str, nn.Module]:
        c = self.config
        generator = transposed_generator(c["latent_dim"], c["image_size"], c["image_channels"], c["g_width"])
        discriminator = Discriminator(c["image_size"], c["image_channels"], c["d_width"])
        generator.apply(dcgan_init)
        discriminator.apply(dcgan_init)
        return {"generator": generator, "discriminator": discriminator}

    def build_optimizers(self, networks: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        lr, betas = self.config["lr"], tuple(self.config["betas"])
        return {name: torch.optim.Adam(networks[name].parameters(), lr=lr, betas=betas)
                for name in ("generator", "discriminator")}

    def train_step(self, networks: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer],
                   batch: Batch, step: int) -> dict[str, float]:
        return gan_step(networks, optimizers, batch.images, self.config["latent_dim"])

    def export_graphs(self, networks: dict[str, nn.Module]) -> list[ExportGraph]:
        return [generator_graph(networks["generator"], self.config["latent_dim"], self.image_shape, self.value_range)]

    def sample(self, networks: dict[str, nn.Module], z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return networks["generator"](z)


def gan_step(networks: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer], real: torch.Tensor,
             latent_dim: int, update_discriminator: bool = True) -> dict[str, float]:
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

    loss_g = adversarial_loss(discriminator(fake), 1.0)
    optimizers["generator"].zero_grad(set_to_none=True)
    loss_g.backward()
    optimizers["generator"].step()
    return {"loss_d": loss_d.item(), "loss_g": loss_g.item(),
            "d_real": torch.sigmoid(real_logits).mean().item(), "d_fake": torch.sigmoid(fake_logits).mean().item()}


def generator_graph(generator: nn.Module, latent_dim: int, image_shape: tuple[int, int, int],
                    value_range: tuple[float, float], label_space=None) -> ExportGraph:
    """The ONNX generator graph: ``z`` (+ ``labels`` when conditional) -> ``image``."""
    names, shapes = [contract.INPUT_Z], [(latent_dim,)]
    if label_space is not None:
        names.append(contract.INPUT_LABELS)
        shapes.append((label_space.size,))
    return ExportGraph(role="generator", module=generator, input_names=names, input_shapes=shapes,
                       output_names=[contract.OUTPUT_IMAGE], image_shape=image_shape, value_range=value_range,
                       latent_dim=latent_dim, label_space=label_space)


FAMILY = DCGAN
