"""PyTorch trainers: one module per family and one shared training loop.

Each family module defines ``FAMILY``, a :class:`gen_eval.trainers.base.Family` subclass. Modules are
imported lazily so ``gen-eval`` starts fast and a broken family does not break the others.
"""

from __future__ import annotations

import importlib

from gen_eval.errors import UserError

FAMILY_MODULES: dict[str, str] = {
    "mlp-vae": "gen_eval.trainers.mlp_vae",
    "mlp-gan": "gen_eval.trainers.mlp_gan",
    "vae": "gen_eval.trainers.vae",
    "dcgan": "gen_eval.trainers.dcgan",
    "acgan": "gen_eval.trainers.acgan",
    "cgan": "gen_eval.trainers.cgan",
    "wgan-gp": "gen_eval.trainers.wgan_gp",
    "vae-gan": "gen_eval.trainers.vae_gan",
    "classifier": "gen_eval.trainers.classifier",
}


def family_names() -> list[str]:
    return list(FAMILY_MODULES)


def get_family(name: str):
    """The Family class registered under ``name`` (e.g. 'acgan')."""
    if name not in FAMILY_MODULES:
        raise UserError(f"unknown model family {name!r}; choose one of: {', '.join(FAMILY_MODULES)}")
    return importlib.import_module(FAMILY_MODULES[name]).FAMILY
