"""Torch references for the ViT extractors, written from the published architectures, and random
state dicts in the published formats (reduced depth and width for the suite).

- DINOv2 (facebookresearch/dinov2, ``vision_transformer.py``): patch Conv, CLS token, positions resized
  by ``interpolate_pos_encoding`` (bicubic, scale factor (w0 + 0.1) / M), pre-norm blocks with
  LayerScale, LayerNorm eps 1e-6, exact GELU, ``x_norm_clstoken``; preprocessing as EDM2's
  ``DINOv2Detector`` (torch resize: bicubic, antialias=True, on [0, 255]; /255; ImageNet mean/std).
- CLIP (openai/CLIP ``model.py``, ``VisionTransformer``): patch Conv without bias, class embedding,
  positions, ln_pre, ``nn.MultiheadAttention`` blocks with QuickGELU, ln_post on the CLS token, ``@ proj``;
  saved as OpenAI publishes it, a ``torch.jit`` archive of the whole model; preprocessing as CMMD's
  reference (bicubic resize with antialiasing, torch's equivalent of jax.image.resize; CLIP mean/std;
  the embedding L2-normalised).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DinoBlock(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = nn.Module()
        self.attn.qkv = nn.Linear(dim, 3 * dim)
        self.attn.proj = nn.Linear(dim, dim)
        self.ls1 = nn.Module()
        self.ls1.gamma = nn.Parameter(torch.randn(dim))
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Module()
        self.mlp.fc1 = nn.Linear(dim, 4 * dim)
        self.mlp.fc2 = nn.Linear(4 * dim, dim)
        self.ls2 = nn.Module()
        self.ls2.gamma = nn.Parameter(torch.randn(dim))

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.attn.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, c // self.heads)
        q, k, v = [t.transpose(1, 2) for t in torch.unbind(qkv, 2)]
        attn = (q * (c // self.heads) ** -0.5) @ k.transpose(-2, -1)
        h = (attn.softmax(-1) @ v).transpose(1, 2).reshape(b, n, c)
        x = x + self.ls1.gamma * self.attn.proj(h)
        return x + self.ls2.gamma * self.mlp.fc2(F.gelu(self.mlp.fc1(self.norm2(x))))


class DinoV2(nn.Module):
    """DINOv2's DinoVisionTransformer (no registers, block_chunks=0) with EDM2's preprocessing."""

    def __init__(self, dim: int = 128, depth: int = 2, patch: int = 14, trained_size: int = 518) -> None:
        super().__init__()
        self.patch = patch
        grid = trained_size // patch
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + grid * grid, dim))
        self.mask_token = nn.Parameter(torch.zeros(1, dim))
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(3, dim, patch, patch)
        self.blocks = nn.ModuleList(DinoBlock(dim, dim // 64) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def positions(self, w: int, h: int):
        pos = self.pos_embed.float()
        n = pos.shape[1] - 1
        m = int(n ** 0.5)
        w0, h0 = w // self.patch, h // self.patch
        patch_pos = F.interpolate(pos[:, 1:].reshape(1, m, m, -1).permute(0, 3, 1, 2), mode="bicubic",
                                  antialias=False, scale_factor=((w0 + 0.1) / m, (h0 + 0.1) / m))
        assert patch_pos.shape[-2:] == (w0, h0)
        return torch.cat((pos[:, :1], patch_pos.permute(0, 2, 3, 1).reshape(1, -1, pos.shape[-1])), dim=1)

    def forward(self, image01):
        x = F.interpolate(image01 * 255, size=(224, 224), mode="bicubic", antialias=True) / 255
        mean = torch.tensor([0.485, 0.456, 0.406], dtype=x.dtype).reshape(1, -1, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225], dtype=x.dtype).reshape(1, -1, 1, 1)
        x = (x - mean) / std
        b, _, w, h = x.shape
        tokens = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        tokens = torch.cat((self.cls_token.expand(b, -1, -1), tokens), dim=1)
        tokens = tokens + self.positions(w, h).to(tokens.dtype)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)[:, 0]


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class ClipBlock(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads)
        self.ln_1 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential()
        self.mlp.add_module("c_fc", nn.Linear(dim, 4 * dim))
        self.mlp.add_module("gelu", QuickGELU())
        self.mlp.add_module("c_proj", nn.Linear(4 * dim, dim))
        self.ln_2 = nn.LayerNorm(dim)

    def forward(self, x):  # x: [N, B, D] as OpenAI's
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class ClipVisual(nn.Module):
    def __init__(self, dim: int, depth: int, patch: int, size: int, out: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, dim, patch, patch, bias=False)
        self.class_embedding = nn.Parameter(torch.randn(dim) * dim ** -0.5)
        self.positional_embedding = nn.Parameter(torch.randn((size // patch) ** 2 + 1, dim) * dim ** -0.5)
        self.ln_pre = nn.LayerNorm(dim)
        self.transformer = nn.Module()
        self.transformer.resblocks = nn.Sequential(*[ClipBlock(dim, dim // 64) for _ in range(depth)])
        self.ln_post = nn.LayerNorm(dim)
        self.proj = nn.Parameter(torch.randn(dim, out) * dim ** -0.5)

    def forward(self, x):
        x = self.conv1(x).reshape(x.shape[0], self.conv1.out_channels, -1).permute(0, 2, 1)
        cls = self.class_embedding.to(x.dtype) + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype)
        x = self.ln_pre(torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype))
        x = self.transformer.resblocks(x.permute(1, 0, 2)).permute(1, 0, 2)
        return self.ln_post(x[:, 0, :]) @ self.proj


class Clip(nn.Module):
    """OpenAI CLIP with a token embedding standing in for the text tower (its weights are in the published
    file, and the converter must leave them alone)."""

    def __init__(self, dim: int = 128, depth: int = 2, patch: int = 14, size: int = 336, out: int = 96) -> None:
        super().__init__()
        self.size = size
        self.visual = ClipVisual(dim, depth, patch, size, out)
        self.token_embedding = nn.Embedding(10, 16)
        self.logit_scale = nn.Parameter(torch.ones([]))

    def forward(self, image):
        return self.visual(image)

    def embed(self, image01):
        """CMMD's embedding of [0, 1] images."""
        x = F.interpolate(image01, size=(self.size, self.size), mode="bicubic", antialias=True)
        mean = torch.tensor([0.48145466, 0.4578275, 0.40821073], dtype=x.dtype).reshape(1, -1, 1, 1)
        std = torch.tensor([0.26862954, 0.26130258, 0.27577711], dtype=x.dtype).reshape(1, -1, 1, 1)
        emb = self.visual((x - mean) / std)
        return emb / torch.linalg.norm(emb, dim=-1, keepdim=True)


def random_dinov2(seed: int, **sizes) -> DinoV2:
    torch.manual_seed(seed)
    return DinoV2(**sizes).eval()


def random_clip(seed: int, **sizes) -> Clip:
    torch.manual_seed(seed)
    return Clip(**sizes).eval()


def save_clip_archive(model: Clip, path) -> None:
    """As OpenAI publishes CLIP: ``torch.jit`` archive of the whole model, weights in float16."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, torch.zeros(1, 3, model.size, model.size))
        traced.half()
        torch.jit.save(traced, str(path))
