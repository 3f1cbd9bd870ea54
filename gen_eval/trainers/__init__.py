"""PyTorch trainers: one module per family and one shared training loop.

A family registers itself where it is defined, with ``@register_family`` on its
:class:`gen_eval.trainers.base.Family` subclass (name, typed ``Config``, default epochs). Modules are
imported lazily, so ``gen-eval`` starts fast and a broken family does not break the others:
``FAMILY_MODULES`` only says which module to import for a name.

Layout: ``loop`` (the step loop), ``runfolder`` (run folder, checkpoints, resume policy), ``rng``
(seeding, RNG state), ``pictures`` (grids, latent plots), ``logs`` (CSV logs, image files),
``trainingdata``/``torchdata`` (data sets to batches), ``config`` (settings and their validation),
``networks``/``generators``/``discriminators`` (building blocks shared by families), ``losses``.
"""

from __future__ import annotations

import importlib
from typing import Any

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
    "cnn-classifier": "gen_eval.trainers.cnn_classifier",
    "diffusion": "gen_eval.trainers.diffusion",
}

_REGISTRY: dict[str, Any] = {}


def register_family(cls: Any) -> Any:
    """Class decorator: make ``cls`` (a Family subclass) the family called ``cls.name``."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise RuntimeError(f"two families are called {cls.name!r}: {_REGISTRY[cls.name]} and {cls}")
    if cls.name not in FAMILY_MODULES:
        FAMILY_MODULES[cls.name] = cls.__module__
    _REGISTRY[cls.name] = cls
    return cls


def family_names() -> list[str]:
    return list(FAMILY_MODULES)


def get_family(name: str):
    """The Family class registered under ``name`` (e.g. 'acgan')."""
    if name not in FAMILY_MODULES:
        raise UserError(f"unknown model family {name!r}; choose one of: {', '.join(FAMILY_MODULES)}")
    module = importlib.import_module(FAMILY_MODULES[name])
    if name in _REGISTRY and _REGISTRY[name].__module__ == module.__name__:
        return _REGISTRY[name]
    return module.FAMILY  # a module that sets FAMILY instead of registering (e.g. tests' own families)
