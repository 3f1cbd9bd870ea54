"""Conditional GAN (Mirza & Osindero 2014) with DCGAN networks: the condition enters the generator
like ACGAN's (Linear(L, 256) + ReLU, concatenated to z) and the discriminator as an extra input channel
(Linear(L, H*W) + LeakyReLU, reshaped to 1xHxW); the discriminator has only the adversarial head.

Everything else (generator choice, optional L2 / perceptual / TV / judge generator losses, n_d / n_g)
is ACGAN's, see gen_eval.trainers.acgan.
"""

from __future__ import annotations

from typing import ClassVar

from gen_eval.trainers import register_family
from gen_eval.trainers.acgan import ACGAN, ACGANConfig
from gen_eval.trainers.config import derive_config

CGANConfig = derive_config(ACGANConfig, "CGANConfig",
                           drop=("aux_weight", "d_aux_weight", "d_aux_fake", "aux_reduction", "d_warmup_steps"),
                           generator="dcgan", d_label_channel=True)


@register_family
class CGAN(ACGAN):
    """Conditional GAN: the condition enters both networks, no auxiliary head."""

    name: ClassVar[str] = "cgan"
    Config = CGANConfig
    auxiliary_head: ClassVar[bool] = False
