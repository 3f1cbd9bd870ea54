"""Conditional discriminators for the ACGAN and cGAN families.

A DCGAN body (stride-2 Conv + LeakyReLU(0.2), BatchNorm from the second block) down to 4x4, flattened,
then an adversarial head (one logit) and, for ACGAN, an auxiliary head (one logit per label). With
``label_channel`` the condition enters as an extra input channel: ``Linear(L, H*W) + LeakyReLU(0.01)``
reshaped to 1xHxW (the cGAN discriminator; ACGAN may use it too).
Heads return logits; the losses apply the sigmoid.
"""

from __future__ import annotations

import torch
from torch import nn

from gen_eval.trainers.networks import dcgan_init, strided_features


class ConditionalDiscriminator(nn.Module):
    """``forward(images, labels=None) -> (adversarial logits [B], auxiliary logits [B, L] or None)``."""

    def __init__(self, image_shape: tuple[int, int, int], width: int, label_dim: int = 0,
                 label_channel: bool = False, aux_head: bool = False, batch_norm: bool = True,
                 dropout: float = 0.0, aux_pool: bool = False, projection: bool = False,
                 aux_tower: bool = False) -> None:
        super().__init__()
        channels, height, width_px = image_shape
        self.label_map = (nn.Sequential(nn.Linear(label_dim, height * width_px), nn.LeakyReLU(0.01),
                                        nn.Unflatten(1, (1, height, width_px)))
                          if label_channel else None)
        self.features, ch = strided_features(height, channels + (1 if label_channel else 0), width, batch_norm)
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        flat = ch * 4 * 4
        self.adversarial = nn.Linear(flat, 1)
        # aux_pool: the auxiliary head sees globally averaged features, so it finds objects wherever they are
        self.aux_pool = aux_pool
        self.auxiliary = nn.Linear(ch if aux_pool else flat, label_dim) if aux_head else None
        # aux_tower: the label head reads a tower of its own, which sees the image only (never the condition)
        self.aux_features = strided_features(height, channels, width, False)[0] if aux_head and aux_tower else None
        self.features.apply(dcgan_init)
        if self.aux_features is not None:
            self.aux_features.apply(dcgan_init)
        # projection (Miyato & Koyama 2018): the adversarial logit also gets <embed(labels), sum-pooled features>
        self.embed = nn.Linear(label_dim, ch, bias=False) if projection else None

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        seen = images if self.label_map is None else torch.cat([images, self.label_map(labels)], dim=1)
        features = self.features(seen)
        hidden = self.dropout(features.flatten(1))
        aux = None
        if self.auxiliary is not None and self.aux_features is None:
            aux = self.auxiliary(self.dropout(features.mean(dim=(2, 3))) if self.aux_pool else hidden)
        elif self.auxiliary is not None:
            label_features = self.aux_features(images)
            aux = self.auxiliary(self.dropout(label_features.mean(dim=(2, 3)) if self.aux_pool
                                              else label_features.flatten(1)))
        adversarial = self.adversarial(hidden).squeeze(1)
        if self.embed is not None:
            adversarial = adversarial + (self.embed(labels) * features.sum(dim=(2, 3))).sum(dim=1)
        return adversarial, aux
