"""Generators selectable by name for the GAN families, conditional or not.

Every generator maps ``z`` [B, latent_dim] (+ ``labels`` [B, L]) to an image in [-1, 1] (Tanh). When
conditional, the condition is expanded by ``Linear(L, cond_embed) + ReLU`` and concatenated to ``z``;
the body then sees a vector of ``latent_dim + cond_embed``. ``cond_embed`` 0 concatenates the raw
condition instead (e.g. ``[z, attribute]``, 256 + 1 = 257 inputs). Bodies:

- ``dcgan``: transposed convolutions from 1x1 (Radford; the DCGAN family's builder);
- ``upsample``: Linear to ``start_size``^2 x 2*width, then per doubling
  Upsample(nearest) + Conv3x3 + BatchNorm(eps 0.8) + LeakyReLU(0.2), a Conv3x3 to the image and Tanh;
- ``srgan``: SRGAN's generator (Ledig et al. 2017): Linear to ``start_size``^2 x width,
  Conv9x9 + PReLU, residual blocks, Conv3x3 + BatchNorm with the long skip, per doubling
  Conv3x3 to 4x width + PixelShuffle(2) + PReLU, a Conv9x9 to the image and Tanh. ``start_size`` 1 drops
  the Linear: the vector is a 1x1 map whose Conv9x9 takes all its channels (``Conv2d(356, 64, 9)``
  for a z of 100 and an embedding of 256), then 6 doublings to 64 px;
- ``resnet``: BigGAN's generator (Brock et al. 2019) at small scale: ``z`` split into one chunk per
  block plus one; Linear([first chunk, label embedding]) to ``start_size``^2 (default 4x4) x
  2^blocks * width, then per doubling a residual up-block (CBN-ReLU-Upsample-Conv3x3-CBN-ReLU-Conv3x3,
  skip Upsample-Conv1x1) whose conditional BatchNorms take their scale and shift from [label
  embedding, that block's chunk of z], so the labels reach every resolution and can bind to where
  z puts an object; BatchNorm-ReLU-Conv3x3-Tanh to the image. The label embedding is a bias-free
  ``Linear(L, cond_embed)`` shared by every block (``cond_embed`` 0: the raw condition).

Widths are set by ``width`` (ngf) so tests can build tiny ones.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gen_eval.errors import UserError
from gen_eval.trainers.config import set_option
from gen_eval.trainers.networks import dcgan_init, doublings, transposed_generator

GENERATORS = ("dcgan", "upsample", "srgan", "resnet")
DEFAULT_START_SIZE = {"upsample": 16, "srgan": 4, "resnet": 4}


class ConditionalGenerator(nn.Module):
    """``forward(z, labels=None)``: the condition (when there is one) expanded and concatenated to ``z``."""

    def __init__(self, body: nn.Module, label_dim: int, cond_embed: int) -> None:
        super().__init__()
        self.conditional = bool(label_dim)
        self.condition_expand = (nn.Sequential(nn.Linear(label_dim, cond_embed), nn.ReLU())
                                 if label_dim and cond_embed else None)
        self.body = body

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if getattr(self.body, "takes_latent_and_labels", False):   # embeds the condition itself (resnet)
            return self.body(z, labels)
        if self.condition_expand is not None:
            z = torch.cat([z, self.condition_expand(labels)], dim=1)
        elif self.conditional:
            z = torch.cat([z, labels.to(z.dtype)], dim=1)
        if getattr(self.body, "takes_labels", False):    # conditional BatchNorm (gen_eval.trainers.gan_tricks)
            return self.body(z, labels)
        return self.body(z)


def _up_count(image_size: int, start_size: int, kind: str) -> int:
    count = math.log2(image_size / start_size) if start_size > 0 else -1
    if start_size < 1 or count < 1 or count != int(count):
        raise UserError(f"the {kind} generator needs image_size / g_start_size to be a power of two >= 2, "
                        f"got {image_size} / {start_size}; set e.g. {set_option('g_start_size', DEFAULT_START_SIZE[kind])}")
    return int(count)


def upsample_body(in_dim: int, image_size: int, channels: int, width: int, start_size: int) -> nn.Sequential:
    """Nearest-upsampling generator body: Linear to ``start_size``^2, then Upsample + Conv3x3 per doubling."""
    n_up = _up_count(image_size, start_size, "upsample")
    widths = [width * 2 ** (n_up - 1 - i) for i in range(n_up)]
    layers: list[nn.Module] = [nn.Linear(in_dim, widths[0] * start_size ** 2),
                               nn.Unflatten(1, (widths[0], start_size, start_size)), nn.BatchNorm2d(widths[0])]
    ch = widths[0]
    for out in widths:
        layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(ch, out, 3, 1, 1),
                   nn.BatchNorm2d(out, eps=0.8), nn.LeakyReLU(0.2, inplace=True)]
        ch = out
    layers += [nn.Conv2d(ch, channels, 3, 1, 1), nn.Tanh()]
    return nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    """SRGAN residual block: Conv3x3-BN-PReLU-Conv3x3-BN plus the input."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.Conv2d(width, width, 3, 1, 1), nn.BatchNorm2d(width), nn.PReLU(),
                                   nn.Conv2d(width, width, 3, 1, 1), nn.BatchNorm2d(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class SRGANBody(nn.Module):
    def __init__(self, in_dim: int, image_size: int, channels: int, width: int, start_size: int,
                 res_blocks: int) -> None:
        super().__init__()
        n_up = _up_count(image_size, start_size, "srgan")
        if start_size == 1:
            self.project = nn.Unflatten(1, (in_dim, 1, 1))
            head_in = in_dim
        else:
            self.project = nn.Sequential(nn.Linear(in_dim, width * start_size ** 2),
                                         nn.Unflatten(1, (width, start_size, start_size)))
            head_in = width
        self.head = nn.Sequential(nn.Conv2d(head_in, width, 9, 1, 4), nn.PReLU())
        self.residuals = nn.Sequential(*[ResidualBlock(width) for _ in range(res_blocks)],
                                       nn.Conv2d(width, width, 3, 1, 1), nn.BatchNorm2d(width))
        ups: list[nn.Module] = []
        for _ in range(n_up):
            ups += [nn.Conv2d(width, width * 4, 3, 1, 1), nn.PixelShuffle(2), nn.PReLU()]
        self.upsample = nn.Sequential(*ups, nn.Conv2d(width, channels, 9, 1, 4), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.project(x))
        return self.upsample(x + self.residuals(x))


class ResNetUpBlock(nn.Module):
    """BigGAN's generator block: conditional BatchNorms fed by ``condition``, nearest 2x upsampling."""

    def __init__(self, in_channels: int, out_channels: int, condition_dim: int) -> None:
        super().__init__()
        from gen_eval.trainers.gan_tricks import ConditionalBatchNorm2d

        self.norm1 = ConditionalBatchNorm2d(in_channels, condition_dim)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, 1, 1)
        self.norm2 = ConditionalBatchNorm2d(out_channels, condition_dim)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.norm1(x, condition)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.norm2(self.conv1(h), condition)))
        return h + self.skip(F.interpolate(x, scale_factor=2, mode="nearest"))


class ResNetGeneratorBody(nn.Module):
    """The ``resnet`` generator body (see the module text). ``forward(z, labels)`` with the raw ``z``."""

    takes_latent_and_labels = True

    def __init__(self, latent_dim: int, label_dim: int, image_size: int, channels: int, width: int,
                 start_size: int, embed_dim: int) -> None:
        super().__init__()
        n_up = _up_count(image_size, start_size, "resnet")
        if latent_dim < n_up + 1:
            raise UserError(f"the resnet generator splits z into {n_up + 1} chunks (one per block and one for "
                            f"the first layer) but latent_dim is {latent_dim}; set e.g. "
                            f"{set_option('latent_dim', 32 * (n_up + 1))}")
        self.chunk_sizes = [len(c) for c in torch.arange(latent_dim).tensor_split(n_up + 1)]
        self.embed = nn.Linear(label_dim, embed_dim, bias=False) if label_dim and embed_dim else None
        label_width = (embed_dim or label_dim) if label_dim else 0
        channel_list = [width * 2 ** (n_up - i) for i in range(n_up + 1)]
        self.start = (channel_list[0], start_size)
        self.project = nn.Linear(self.chunk_sizes[0] + label_width, channel_list[0] * start_size ** 2)
        self.blocks = nn.ModuleList(ResNetUpBlock(channel_list[i], channel_list[i + 1],
                                                  label_width + self.chunk_sizes[i + 1]) for i in range(n_up))
        self.to_image = nn.Sequential(nn.BatchNorm2d(channel_list[-1]), nn.ReLU(),
                                      nn.Conv2d(channel_list[-1], channels, 3, 1, 1), nn.Tanh())
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)) and not _in_conditional_norm(module, self):
                nn.init.orthogonal_(module.weight)     # BigGAN's initialisation
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        chunks = list(z.split(self.chunk_sizes, dim=1))
        embedded = []
        if labels is not None:
            embedded = [self.embed(labels) if self.embed is not None else labels.to(z.dtype)]
        x = self.project(torch.cat([chunks[0], *embedded], dim=1)).unflatten(1, (self.start[0], self.start[1],
                                                                                 self.start[1]))
        for block, chunk in zip(self.blocks, chunks[1:]):
            x = block(x, torch.cat([*embedded, chunk], dim=1))
        return self.to_image(x)


def _in_conditional_norm(module: nn.Module, root: nn.Module) -> bool:
    """Whether ``module`` is a scale or shift layer of a conditional BatchNorm (those start at zero)."""
    from gen_eval.trainers.gan_tricks import ConditionalBatchNorm2d

    return any(module is m.scale or module is m.shift for m in root.modules() if isinstance(m, ConditionalBatchNorm2d))


def build_generator(kind: str, *, latent_dim: int, label_dim: int, image_shape: tuple[int, int, int],
                    width: int, cond_embed: int = 256, start_size: int = 0, res_blocks: int = 5,
                    conditional_bn: bool = False) -> ConditionalGenerator:
    """A generator of ``kind`` (one of GENERATORS); ``label_dim`` 0 makes it unconditional.

    ``start_size`` 0 picks the kind's default spatial size after the first projection (upsample 16,
    srgan 4; the dcgan body always starts at 1x1). ``cond_embed`` 0 feeds the raw condition.
    ``conditional_bn`` (upsample only): the condition also sets every BatchNorm's scale and shift
    (gen_eval.trainers.gan_tricks.ConditionalUpsampleBody); the resnet body always has them.
    """
    channels, image_size, _ = image_shape
    in_dim = latent_dim + ((cond_embed or label_dim) if label_dim else 0)
    start = start_size or DEFAULT_START_SIZE.get(kind, 0)
    if kind == "dcgan":
        doublings(image_size)
        body: nn.Module = transposed_generator(in_dim, image_size, channels, width)
        body.apply(dcgan_init)
    elif kind == "upsample" and conditional_bn and label_dim:
        from gen_eval.trainers.gan_tricks import ConditionalUpsampleBody

        body = ConditionalUpsampleBody(in_dim, label_dim, image_size, channels, width, start,
                                       _up_count(image_size, start, "upsample"))
    elif kind == "upsample":
        body = upsample_body(in_dim, image_size, channels, width, start)
        body.apply(dcgan_init)
    elif kind == "srgan":
        body = SRGANBody(in_dim, image_size, channels, width, start, res_blocks)
    elif kind == "resnet":
        body = ResNetGeneratorBody(latent_dim, label_dim, image_size, channels, width, start, cond_embed)
        return ConditionalGenerator(body, label_dim, 0)   # the body embeds the condition for every block
    else:
        raise UserError(f"unknown generator {kind!r}; choose {set_option('generator', 'NAME')} with NAME one of "
                        f"{', '.join(GENERATORS)}")
    return ConditionalGenerator(body, label_dim, cond_embed)
