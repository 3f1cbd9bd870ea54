"""Conditional diffusion by rectified flow (Liu et al. 2022; Lipman et al. 2022's flow matching), with
classifier-free guidance (Ho & Salimans 2022) and an EMA of the weights.

Why rectified flow rather than DDPM/DDIM: the path from noise to image is a straight line,
``x_t = (1 - t) x_0 + t z``, and the network learns its velocity ``z - x_0``; sampling is a deterministic
Euler integration from ``t = 1`` (``x = z``, the noise the evaluator draws) to ``t = 0``, a few lines that
unroll into one ONNX graph with nothing but the noise schedule's constants. Straight paths need fewer
steps than DDPM's for the same quality, which is what a CPU budget asks for.

Training: ``t`` drawn logit-normally (Esser et al. 2024: more weight on the middle of the path, where
the content is decided), the condition withheld with probability ``label_dropout`` so the same network
also predicts unconditionally; Adam with a linear warm-up and gradient clipping.

Sampling (and the exported generator): ``sample_steps`` Euler steps; with a condition, each step runs
the network on the condition and without it and takes ``v_u + guidance * (v_c - v_u)``. The exported
graph ``z, labels -> image`` holds the whole sampler unrolled, so ``score``, ``fid``, ``sample`` and
``metrics`` run it as any other generator; its metadata records the steps and the guidance scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from gen_eval import contract
from gen_eval.contract import ExportGraph
from gen_eval.data.labels import LabelSpace
from gen_eval.errors import UserError
from gen_eval.trainers import register_family
from gen_eval.trainers.base import Batch, Family, generator_graph
from gen_eval.trainers.config import (
    BELOW_ONE,
    NON_NEGATIVE,
    POSITIVE,
    WIDTH,
    Rule,
    between,
    number_between,
    one_of,
    set_option,
    setting,
)
from gen_eval.trainers.gan_tricks import ema_copy, update_ema
from gen_eval.trainers.unet import UNet

TIME_SAMPLING = ("logit-normal", "uniform")
MAX_SAMPLE_STEPS = 1000


def _parse_mults(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in str(text).split(","))


def _mults_ok(text: Any) -> bool:
    try:
        mults = _parse_mults(text)
    except ValueError:
        return False
    return 1 <= len(mults) <= 6 and all(1 <= m <= 16 for m in mults)


CHANNEL_MULTS = Rule("1 to 6 comma-separated integers from 1 to 16, one per resolution (e.g. 1,2,2)", _mults_ok)


@dataclass(frozen=True)
class DiffusionConfig:
    image_size: int = setting(32, "image side in pixels (divisible by patch x 2^(levels - 1))", between(4, 1024))
    image_channels: int | None = setting(None, "image channels (none: the data's)", between(1, 4))
    width: int = setting(64, "UNet channels at the first resolution", WIDTH)
    channel_mults: str = setting("1,2,2", "UNet width multiplier per resolution; each level after the first "
                                 "halves the side", CHANNEL_MULTS)
    res_blocks: int = setting(1, "residual blocks per resolution on the way down (one more on the way up)",
                              between(1, 8))
    attention: bool = setting(True, "self-attention at the lowest resolution")
    patch: int = setting(1, "fold patch x patch pixels into channels before the UNet (2: a 64 px image costs "
                         "what 32 px would)", one_of(1, 2, 4))
    dropout: float = setting(0.0, "dropout inside the residual blocks", BELOW_ONE)
    lr: float = setting(3e-4, "Adam learning rate", POSITIVE)
    warmup: int = setting(200, "steps of linear learning-rate warm-up", between(0, 10**7))
    grad_clip: float = setting(1.0, "clip the gradient's norm to this (0: off)", NON_NEGATIVE)
    label_dropout: float = setting(0.1, "probability of training a step's image without its condition "
                                   "(classifier-free guidance needs > 0)", BELOW_ONE)
    time_sampling: str = setting("logit-normal", "how training draws t: logit-normal (Esser 2024) or uniform",
                                 one_of(*TIME_SAMPLING))
    ema_decay: float = setting(0.999, "moving average of the weights (0: off); samples and the export use it",
                               BELOW_ONE)
    sample_steps: int = setting(20, "Euler steps of the sampler (grids and the exported ONNX generator)",
                                between(1, MAX_SAMPLE_STEPS))
    guidance: float = setting(2.0, "classifier-free guidance scale of the sampler (1: the conditional "
                              "prediction alone; 0: unconditional)", number_between(0, 20))
    sample_shift: float = setting(1.0, "time-grid shift of the sampler: t' = s t / (1 + (s - 1) t); > 1 spends "
                                  "more steps at high noise", number_between(0.1, 10))


def time_grid(steps: int, shift: float) -> list[float]:
    """``steps + 1`` times from 1 down to 0 (uniform, then shifted as in Esser et al. 2024)."""
    grid = [1.0 - i / steps for i in range(steps + 1)]
    return [shift * t / (1 + (shift - 1) * t) for t in grid]


class FlowSampler(nn.Module):
    """``z`` [B, C*H*W] (+ ``labels`` [B, L]) -> image [B, C, H, W] in [-1, 1]: the Euler sampler, unrolled.

    Tracing unrolls the Python loop: the exported graph holds ``steps`` copies of the network (sharing
    its weights) with the time grid as constants.
    """

    def __init__(self, unet: nn.Module, image_shape: tuple[int, int, int], steps: int, guidance: float,
                 shift: float, conditional: bool) -> None:
        super().__init__()
        self.unet = unet
        self.image_shape = tuple(image_shape)
        self.times = time_grid(steps, shift)
        self.guidance = float(guidance)
        self.conditional = conditional

    def velocity(self, x: torch.Tensor, t: float, labels: torch.Tensor | None) -> torch.Tensor:
        b = x.shape[0]
        times = x.new_full((b,), t)
        if not self.conditional:
            return self.unet(x, times)
        kept, withheld = x.new_zeros((b, 1)), x.new_ones((b, 1))
        if self.guidance == 1.0:
            return self.unet(x, times, labels, kept)
        if self.guidance == 0.0:
            return self.unet(x, times, labels, withheld)
        both = self.unet(torch.cat([x, x]), torch.cat([times, times]), torch.cat([labels, labels]),
                         torch.cat([kept, withheld]))
        conditioned, unconditioned = both[:b], both[b:]
        return unconditioned + self.guidance * (conditioned - unconditioned)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = z.reshape(z.shape[0], *self.image_shape)
        if labels is not None:
            labels = labels.to(x.dtype)
        for t, t_next in zip(self.times[:-1], self.times[1:]):
            x = x + (t_next - t) * self.velocity(x, t, labels)
        return x.clamp(-1.0, 1.0)


@register_family
class Diffusion(Family):
    """Conditional (or unconditional) rectified-flow diffusion with a small UNet."""

    name: ClassVar[str] = "diffusion"
    Config = DiffusionConfig
    conditional: ClassVar[bool] = True
    default_epochs: ClassVar[int] = 20
    export_settings: ClassVar[tuple[str, ...]] = ("sample_steps", "guidance", "sample_shift")
    steps_between_pictures: ClassVar[int] = 500
    cpu_hint: ClassVar[str] = ("measured on one thread of a busy 2-core AMD EPYC (benchmarks/RESULTS.md): preset "
                               "mnist-diffusion 0.46 s per step of 64, shapes-diffusion 0.36 s per step of 32")

    @property
    def latent_dim(self) -> int | None:
        """The sampler's noise is an image: C*H*W standard normal values."""
        if self.config.image_channels is None:
            return None
        c, h, w = self.image_shape
        return c * h * w

    def fit_data(self, image_shape: tuple[int, int, int], label_space: LabelSpace | None) -> None:
        super().fit_data(image_shape, label_space)
        c = self.config
        levels = len(_parse_mults(c.channel_mults))
        step = c.patch * 2 ** (levels - 1)
        if c.image_size % step:
            raise UserError(f"diffusion: image_size {c.image_size} is not divisible by patch x 2^(levels - 1) "
                            f"= {step}; choose another {set_option('image_size', '...')}, "
                            f"{set_option('patch', '...')} or {set_option('channel_mults', '...')}")
        if label_space is not None and c.guidance != 1.0 and not c.label_dropout:
            raise UserError(f"guidance {c.guidance:g} needs the unconditional prediction, which "
                            f"{set_option('label_dropout', 0)} never trains; set {set_option('label_dropout', 0.1)} "
                            f"or {set_option('guidance', 1)}")

    def build_networks(self) -> dict[str, nn.Module]:
        c = self.config
        label_dim = self.label_space.size if self.label_space is not None else 0
        unet = UNet(self.image_shape[0], label_dim, width=c.width, mults=_parse_mults(c.channel_mults),
                    res_blocks=c.res_blocks, attention=c.attention, patch=c.patch, dropout=c.dropout)
        networks = {"unet": unet}
        if c.ema_decay:
            networks["unet_ema"] = ema_copy(unet)
        return networks

    def build_optimizers(self, networks: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        return {"unet": torch.optim.Adam(networks["unet"].parameters(), lr=self.config.lr, betas=(0.9, 0.99))}

    def _draw_times(self, count: int, device: torch.device) -> torch.Tensor:
        if self.config.time_sampling == "uniform":
            return torch.rand(count, device=device)
        return torch.sigmoid(torch.randn(count, device=device))

    def train_step(self, networks: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer],
                   batch: Batch, step: int) -> dict[str, float]:
        c = self.config
        unet, optimizer = networks["unet"], optimizers["unet"]
        x0 = batch.images
        noise = torch.randn_like(x0)
        t = self._draw_times(len(x0), x0.device)
        xt = torch.lerp(x0, noise, t[:, None, None, None])
        labels = dropped = None
        if self.label_space is not None:
            labels = batch.labels.to(x0.dtype)
            dropped = (torch.rand(len(x0), 1, device=x0.device) < c.label_dropout).to(x0.dtype)
        loss = F.mse_loss(unet(xt, t, labels, dropped), noise - x0)
        for group in optimizer.param_groups:
            group["lr"] = c.lr * min(1.0, (step + 1) / c.warmup) if c.warmup else c.lr
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        out = {"loss": loss.item()}
        if c.grad_clip:
            out["grad_norm"] = float(nn.utils.clip_grad_norm_(unet.parameters(), c.grad_clip))
        optimizer.step()
        if "unet_ema" in networks:
            update_ema(networks["unet_ema"], unet, c.ema_decay, step)
        return out

    def sampler(self, networks: dict[str, nn.Module]) -> FlowSampler:
        """The sampler that makes the grids and is exported: on the EMA network when ``ema_decay`` is on."""
        c = self.config
        unet = networks.get("unet_ema", networks["unet"])
        return FlowSampler(unet, self.image_shape, c.sample_steps, c.guidance, c.sample_shift,
                           conditional=self.label_space is not None)

    def sample(self, networks: dict[str, nn.Module], z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.sampler(networks)(z, labels)

    def export_graphs(self, networks: dict[str, nn.Module]) -> list[ExportGraph]:
        c = self.config
        graph = generator_graph(self.sampler(networks), self.latent_dim, self.image_shape, self.value_range,
                                self.label_space)
        graph.metadata = {contract.KEY_SAMPLER: (f"rectified flow, {c.sample_steps} Euler steps, guidance "
                                        f"{c.guidance:g}, time shift {c.sample_shift:g}")}
        return [graph]
