"""A small UNet for the diffusion family: time and condition embedded together, modulating every block.

The network sees an image ``x`` [B, C, H, W], the time ``t`` [B] in [0, 1], a condition vector ``labels``
[B, L] (any label space: k-hot, one-hot per head, one binary attribute) and ``dropped`` [B, 1], which is 1
where the condition is withheld (classifier-free guidance trains one network for both). The embedding of
``t`` and of the condition scales and shifts the normalised features of every residual block (adaptive
GroupNorm, as in Dhariwal & Nichol's ADM). ``patch`` > 1 folds each ``patch`` x ``patch`` square of pixels
into channels first (pixel unshuffle) and unfolds them at the end: a 64 px image costs what a 32 px one
would at ``patch=2``, while the output keeps every pixel.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def _groups(channels: int) -> int:
    for groups in (8, 4, 2):
        if channels % groups == 0:
            return groups
    return 1


def _zero(module: nn.Module) -> nn.Module:
    """Blocks start as the identity (their last layer at zero): the network first learns the easy part."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class Embedding(nn.Module):
    """Sinusoidal time features through an MLP, plus a linear map of ``[labels * kept, dropped]``."""

    def __init__(self, width: int, emb_dim: int, label_dim: int) -> None:
        super().__init__()
        self.half = max(1, width // 2)
        self.time = nn.Sequential(nn.Linear(2 * self.half, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.condition = nn.Linear(label_dim + 1, emb_dim) if label_dim else None

    def forward(self, t: torch.Tensor, labels: torch.Tensor | None, dropped: torch.Tensor | None) -> torch.Tensor:
        freqs = torch.exp(torch.arange(self.half, dtype=t.dtype, device=t.device) * (-math.log(10000.0) / self.half))
        angles = (t * 1000.0)[:, None] * freqs[None, :]
        emb = self.time(torch.cat([torch.cos(angles), torch.sin(angles)], dim=1))
        if self.condition is not None:
            emb = emb + self.condition(torch.cat([labels * (1 - dropped), dropped], dim=1))
        return F.silu(emb)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, emb_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(cin), cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.modulation = nn.Linear(emb_dim, 2 * cout)
        self.norm2 = nn.GroupNorm(_groups(cout), cout)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = _zero(nn.Conv2d(cout, cout, 3, padding=1))
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.modulation(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        return self.skip(x) + self.conv2(self.dropout(F.silu(h)))


class SelfAttention(nn.Module):
    """Every position attends to every other (at the lowest resolution, where objects meet)."""

    def __init__(self, channels: int, heads: int) -> None:
        super().__init__()
        self.heads = heads if channels % heads == 0 else 1
        self.norm = nn.GroupNorm(_groups(channels), channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = _zero(nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).unbind(1)
        weights = torch.softmax(torch.einsum("bhci,bhcj->bhij", q, k) / math.sqrt(c // self.heads), dim=-1)
        out = torch.einsum("bhij,bhcj->bhci", weights, v).reshape(b, c, h, w)
        return x + self.proj(out)


class Downsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class UNet(nn.Module):
    """``forward(x, t, labels, dropped)`` -> a tensor shaped like ``x`` (the predicted velocity)."""

    def __init__(self, channels: int, label_dim: int, *, width: int, mults: tuple[int, ...], res_blocks: int,
                 attention: bool, patch: int = 1, dropout: float = 0.0, heads: int = 4) -> None:
        super().__init__()
        self.patch = patch
        folded = channels * patch * patch
        emb_dim = 4 * width
        self.embed = Embedding(width, emb_dim, label_dim)
        self.stem = nn.Conv2d(folded, width, 3, padding=1)
        self.down = nn.ModuleList()
        skips, ch = [width], width
        for level, mult in enumerate(mults):
            for _ in range(res_blocks):
                self.down.append(ResBlock(ch, width * mult, emb_dim, dropout))
                ch = width * mult
                skips.append(ch)
            if level < len(mults) - 1:
                self.down.append(Downsample(ch))
                skips.append(ch)
        self.middle = nn.ModuleList([ResBlock(ch, ch, emb_dim, dropout)]
                                    + ([SelfAttention(ch, heads)] if attention else [])
                                    + [ResBlock(ch, ch, emb_dim, dropout)])
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(mults))):
            for _ in range(res_blocks + 1):
                self.up.append(ResBlock(ch + skips.pop(), width * mult, emb_dim, dropout))
                ch = width * mult
            if level > 0:
                self.up.append(Upsample(ch))
        self.head = nn.Sequential(nn.GroupNorm(_groups(ch), ch), nn.SiLU(), _zero(nn.Conv2d(ch, folded, 3, padding=1)))

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None,
                dropped: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.embed(t, labels, dropped)
        if self.patch > 1:
            x = F.pixel_unshuffle(x, self.patch)
        h = self.stem(x)
        kept = [h]
        for block in self.down:
            h = block(h, emb)
            kept.append(h)
        for block in self.middle:
            h = block(h, emb)
        for block in self.up:
            if isinstance(block, ResBlock):
                h = block(torch.cat([h, kept.pop()], dim=1), emb)
            else:
                h = block(h, emb)
        out = self.head(h)
        return F.pixel_shuffle(out, self.patch) if self.patch > 1 else out
