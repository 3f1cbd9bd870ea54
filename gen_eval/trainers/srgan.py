"""SRGAN's discriminator (Ledig et al. 2017), conditional, for the acgan and cgan families.

``forward(images, labels=None) -> (adversarial logits [B], auxiliary logits [B, L] or None)``, the
interface of gen_eval.trainers.discriminators.ConditionalDiscriminator, so the acgan and cgan families
take it with ``--set discriminator=srgan``.

With ``width`` 64 at 64x64 and 24 labels: the condition as an extra input channel (``Linear(24, 4096) +
LeakyReLU(0.01)`` reshaped to 1x64x64), then Conv3x3 (4 -> 64) + LeakyReLU(0.2) and seven Conv3x3 +
BatchNorm + LeakyReLU(0.2) blocks alternating stride 2 and stride 1 (64/2, 128, 128/2, 256, 256/2, 512,
512/2), global average pooling, a 1x1 Conv to 16x width (1024) + LeakyReLU and a 1x1 Conv to one logit
(the Sigmoid is folded into the loss). For ACGAN an auxiliary head, Linear(16x width, L), reads the 1024
pooled features.
"""

from __future__ import annotations

import torch
from torch import nn

DISCRIMINATORS = ("dcgan", "srgan")


class SRGANDiscriminator(nn.Module):
    def __init__(self, image_shape: tuple[int, int, int], width: int, label_dim: int = 0,
                 label_channel: bool = False, aux_head: bool = False) -> None:
        super().__init__()
        channels, height, width_px = image_shape
        self.label_map = (nn.Sequential(nn.Linear(label_dim, height * width_px), nn.LeakyReLU(0.01),
                                        nn.Unflatten(1, (1, height, width_px)))
                          if label_channel else None)
        ch = channels + (1 if label_channel else 0)
        layers: list[nn.Module] = [nn.Conv2d(ch, width, 3, 1, 1), nn.LeakyReLU(0.2)]
        ch = width
        for out, stride in ((width, 2), (width * 2, 1), (width * 2, 2), (width * 4, 1), (width * 4, 2),
                            (width * 8, 1), (width * 8, 2)):
            layers += [nn.Conv2d(ch, out, 3, stride, 1), nn.BatchNorm2d(out), nn.LeakyReLU(0.2)]
            ch = out
        hidden = width * 16
        layers += [nn.AdaptiveAvgPool2d(1), nn.Conv2d(ch, hidden, 1), nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*layers)
        self.adversarial = nn.Conv2d(hidden, 1, 1)
        self.auxiliary = nn.Linear(hidden, label_dim) if aux_head else None

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.label_map is not None:
            images = torch.cat([images, self.label_map(labels)], dim=1)
        hidden = self.net(images)
        aux = self.auxiliary(hidden.flatten(1)) if self.auxiliary is not None else None
        return self.adversarial(hidden).flatten(), aux
