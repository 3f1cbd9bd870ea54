"""Conditional WGAN-GP with auxiliary classifier heads (Gulrajani et al. 2017; Cartoon Set at 128 px).

Generator: DCGAN (gen_eval.trainers.dcgan) one block deeper: ``[z (100), labels]`` -> 1024 channels at
4x4 -> ... -> 64 -> 3 channels at 128x128 (the last ConvTranspose has a bias), Tanh.
Critic: stride-2 Conv (no bias) + LeakyReLU(0.2) blocks 64 ... 1024 with no BatchNorm and no Sigmoid; the
Wasserstein score is a 4x4 Conv; a 4x4 Conv "bottleneck" (1024) + LeakyReLU feeds one classifier per
label-space head: Linear(1024, 128) + LeakyReLU + Linear(128, choices) (the Cartoon Set: hair 6, eye 4,
face 3, glasses 2), trained with cross-entropy on logits.

Losses: critic = D(fake) - D(real) + lambda * GP + sum over heads of CE on real images; generator =
-D(fake) + sum over heads of CE on fake images for the conditions they were made from. Fake conditions
are the batch's real conditions in a random order (the data's distribution). Non-categorical label
spaces (iCLEVR, CelebA) get one head trained with BCE.

Schedule: every ``train_step`` is one critic iteration on a fresh batch; the generator is updated after
every ``n_critic``-th (5). lambda 10, Adam 1e-4 with the WGAN-GP paper's Algorithm 1 betas (0, 0.9),
batch 64.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from gen_eval.contract import ExportGraph
from gen_eval.data.labels import LabelSpace
from gen_eval.errors import UserError
from gen_eval.trainers import register_family
from gen_eval.trainers.base import Batch, Family, generator_graph
from gen_eval.trainers.config import (
    BETAS,
    NON_NEGATIVE,
    POSITIVE,
    WIDTH,
    between,
    power_of_two,
    set_option,
    setting,
)
from gen_eval.trainers.dcgan import ConvGANConfig
from gen_eval.trainers.losses import auxiliary_loss, gradient_penalty
from gen_eval.trainers.networks import strided_features, transposed_generator


class ConditionalGenerator(nn.Module):
    """(z ``[B, latent_dim]``, labels ``[B, L]``) -> image in [-1, 1]."""

    def __init__(self, latent_dim: int, num_labels: int, image_size: int, channels: int, width: int) -> None:
        super().__init__()
        self.gen = transposed_generator(latent_dim + num_labels, image_size, channels, width, final_bias=True)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.gen(torch.cat([z, labels], dim=1))


class AuxCritic(nn.Module):
    """Image -> (Wasserstein score ``[B]``, concatenated head logits ``[B, L]``)."""

    def __init__(self, image_size: int, channels: int, width: int, head_sizes: list[int], head_hidden: int) -> None:
        super().__init__()
        self.conv_layers, ch = strided_features(image_size, channels, width, batch_norm=False)
        self.discriminator_layer = nn.Conv2d(ch, 1, 4, 1, 0)
        self.bottleneck = nn.Sequential(nn.Conv2d(ch, ch, 4, 1, 0), nn.LeakyReLU(0.2), nn.Flatten(1))
        self.classifiers = nn.ModuleList(
            nn.Sequential(nn.Linear(ch, head_hidden), nn.LeakyReLU(0.2), nn.Linear(head_hidden, n)) for n in head_sizes)

    def score(self, image: torch.Tensor) -> torch.Tensor:
        return self.discriminator_layer(self.conv_layers(image)).flatten()

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.conv_layers(image)
        hidden = self.bottleneck(features)
        logits = torch.cat([classifier(hidden) for classifier in self.classifiers], dim=1)
        return self.discriminator_layer(features).flatten(), logits


def head_sizes(label_space: LabelSpace) -> list[int]:
    """One classifier per categorical head; one multi-label classifier otherwise."""
    if label_space.kind == "categorical":
        return [len(values) for _, values in label_space.heads]
    return [label_space.size]


@dataclass(frozen=True)
class WGANGPConfig(ConvGANConfig):
    image_size: int = setting(128, "image side in pixels", power_of_two(8))
    d_width: int = setting(64, "channels of the first critic block", WIDTH)
    head_hidden: int = setting(128, "hidden units of each auxiliary classifier head", WIDTH)
    gp_weight: float = setting(10.0, "gradient penalty weight (lambda)", NON_NEGATIVE)
    n_critic: int = setting(5, "critic iterations per generator update", between(1, 100))
    aux_weight: float = setting(1.0, "weight of the auxiliary classification losses", NON_NEGATIVE)
    lr: float = setting(1e-4, "Adam learning rate of both networks", POSITIVE)
    betas: list[float] = setting([0.0, 0.9], "Adam betas of both networks", BETAS)


@register_family
class WGANGP(Family):
    """Conditional WGAN-GP with auxiliary classifier heads (Cartoon Set at 128 px)."""

    name: ClassVar[str] = "wgan-gp"
    Config = WGANGPConfig
    conditional: ClassVar[bool] = True
    default_epochs: ClassVar[int] = 30

    def fit_data(self, image_shape: tuple[int, int, int], label_space: LabelSpace | None) -> None:
        if label_space is None:
            raise UserError("wgan-gp is conditional but the data has no labels; give a labelled data set "
                            f"(Cartoon Set with cartoon_attr.txt, iCLEVR with train.json, or CelebA with "
                            f"{set_option('data.attribute', 'NAME')})")
        super().fit_data(image_shape, label_space)

    def _label_space(self) -> LabelSpace:
        if self.label_space is None:
            raise UserError("wgan-gp needs a label space; train it on a labelled data set")
        return self.label_space

    def build_networks(self) -> dict[str, nn.Module]:
        c, space = self.config, self._label_space()
        channels, size, _ = self.image_shape
        return {"generator": ConditionalGenerator(c.latent_dim, space.size, size, channels, c.g_width),
                "critic": AuxCritic(size, channels, c.d_width, head_sizes(space), c.head_hidden)}

    def build_optimizers(self, networks: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        lr, betas = self.config.lr, tuple(self.config.betas)
        return {name: torch.optim.Adam(networks[name].parameters(), lr=lr, betas=betas)
                for name in ("generator", "critic")}

    def _aux_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        space = self._label_space()
        # auxiliary_loss averages the heads' cross-entropies; the critic and generator losses sum them.
        heads = len(space.heads) if space.kind == "categorical" else 1
        return self.config.aux_weight * heads * auxiliary_loss(logits, labels, space)

    def train_step(self, networks: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer],
                   batch: Batch, step: int) -> dict[str, float]:
        c = self.config
        generator, critic = networks["generator"], networks["critic"]
        real, labels = batch.images, batch.labels
        if labels is None:
            raise UserError("wgan-gp got a batch without labels; train it on a labelled data set")
        batch_size = real.shape[0]

        with torch.no_grad():
            fake = generator(torch.randn(batch_size, c.latent_dim, device=real.device),
                             labels[torch.randperm(batch_size, device=real.device)])
        real_score, real_logits = critic(real)
        fake_score = critic.score(fake)
        wasserstein = real_score.mean() - fake_score.mean()
        penalty = gradient_penalty(critic.score, real, fake)
        aux_real = self._aux_loss(real_logits, labels)
        loss_critic = -wasserstein + c.gp_weight * penalty + aux_real
        optimizers["critic"].zero_grad(set_to_none=True)
        loss_critic.backward()
        optimizers["critic"].step()
        logs = {"loss_critic": loss_critic.item(), "wasserstein": wasserstein.item(), "gp": penalty.item(),
                "aux_real": aux_real.item()}

        if (step + 1) % int(c.n_critic) == 0:
            fake_labels = labels[torch.randperm(batch_size, device=real.device)]
            fake = generator(torch.randn(batch_size, c.latent_dim, device=real.device), fake_labels)
            fake_score, fake_logits = critic(fake)
            aux_fake = self._aux_loss(fake_logits, fake_labels)
            loss_g = -fake_score.mean() + aux_fake
            optimizers["generator"].zero_grad(set_to_none=True)
            loss_g.backward()
            optimizers["generator"].step()
            logs.update(loss_g=loss_g.item(), aux_fake=aux_fake.item())
        return logs

    def export_graphs(self, networks: dict[str, nn.Module]) -> list[ExportGraph]:
        return [generator_graph(networks["generator"], self.config.latent_dim, self.image_shape, self.value_range,
                                self._label_space())]

    def sample(self, networks: dict[str, nn.Module], z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return networks["generator"](z, labels)

