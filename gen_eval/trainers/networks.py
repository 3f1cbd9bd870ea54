"""Network building blocks shared by several families (no family logic here).

- the DCGAN pieces (Radford et al. 2016): :func:`transposed_generator` (vector -> image through
  transposed convolutions from 1x1), :func:`strided_features` (image -> 4x4 feature map through stride-2
  convolutions), :func:`dcgan_init`, and :func:`doublings`, the image-size rule they share. Used by
  dcgan, wgan-gp (its generator is DCGAN one block deeper), the selectable generators and the conditional
  discriminators of acgan/cgan.
- :func:`mlp_to_image`: a vector -> image MLP (the mlp-gan generator and the mlp-vae decoder).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from torch import nn

from gen_eval.errors import UserError
from gen_eval.trainers.config import set_option


def doublings(image_size: int, smallest: int = 8) -> int:
    """Number of stride-2 stages between 4x4 and ``image_size`` (a power of two >= ``smallest``)."""
    n = int(math.log2(image_size)) if image_size > 0 else 0
    if image_size < smallest or 2 ** n != image_size:
        raise UserError(f"image_size must be a power of two >= {smallest} (e.g. 64), got {image_size}; "
                        f"set it with {set_option('image_size', 64)}")
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


def mlp_to_image(in_dim: int, hidden: list[int], image_shape: tuple[int, int, int],
                 block: Callable[[int, int], list[nn.Module]]) -> nn.Sequential:
    """``[B, in_dim]`` -> ``[B, *image_shape]`` in [0, 1]: ``block(width, h)`` per hidden width, then
    Linear to the pixels, Sigmoid and Unflatten."""
    layers: list[nn.Module] = []
    width = in_dim
    for h in hidden:
        layers += block(width, h)
        width = h
    c, hh, ww = image_shape
    layers += [nn.Linear(width, c * hh * ww), nn.Sigmoid(), nn.Unflatten(1, image_shape)]
    return nn.Sequential(*layers)
