"""Conditional GAN (Mirza & Osindero 2014) as in S4's cgan+dcgan: the condition enters the generator
like ACGAN's (Linear(L, 256) + ReLU, concatenated to z) and the discriminator as an extra input channel
(Linear(L, H*W) + LeakyReLU, reshaped to 1xHxW); the discriminator has only the adversarial head.

Everything else (generator choice, optional L2 / perceptual / TV / judge generator losses, n_d / n_g)
is ACGAN's, see gen_eval.trainers.acgan.
"""

from __future__ import annotations

from typing import Any, ClassVar

from gen_eval.trainers.acgan import ACGAN


class CGAN(ACGAN):
    name: ClassVar[str] = "cgan"
    auxiliary_head: ClassVar[bool] = False
    defaults: ClassVar[dict[str, Any]] = {
        key: value for key, value in {**ACGAN.defaults, "generator": "dcgan", "d_label_channel": True}.items()
        if key not in ("aux_weight", "d_aux_weight", "d_aux_fake")
    }


FAMILY = CGAN
