"""PyTorch trainers: one module per family and one shared training loop.

A family registers itself where it is defined, with ``@register_family`` on its
:class:`gen_eval.trainers.base.Family` subclass (name, typed ``Config``, default epochs); that decorator is
the only registry. Family modules are imported on first use, so ``gen-eval`` starts fast and a broken
family does not break the others: :data:`BUILT_IN` names the families that ship with gen-eval, and the
family called ``x-y`` is the one registered by module ``gen_eval.trainers.x_y`` (the decorator refuses
a built-in name registered anywhere else).

Layout: ``loop`` (the step loop), ``runfolder`` (run folder, checkpoints, resume policy), ``rng``
(seeding, RNG state), ``pictures`` (grids, latent plots), ``logs`` (CSV logs, image files),
``trainingdata``/``torchdata`` (data sets to batches), ``config`` (settings and their validation),
``networks``/``generators``/``discriminators`` (building blocks shared by families), ``losses``.
"""

from __future__ import annotations

import importlib
from typing import Any

from gen_eval.errors import UserError

BUILT_IN: tuple[str, ...] = ("mlp-vae", "mlp-gan", "vae", "dcgan", "acgan", "cgan", "wgan-gp", "vae-gan",
                             "classifier", "cnn-classifier", "diffusion")

_REGISTRY: dict[str, Any] = {}


def family_module(name: str) -> str:
    """The module that defines the built-in family ``name``."""
    return f"{__name__}.{name.replace('-', '_')}"


def register_family(cls: Any) -> Any:
    """Class decorator: make ``cls`` (a Family subclass) the family called ``cls.name``."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise RuntimeError(f"two families are called {cls.name!r}: {_REGISTRY[cls.name]} and {cls}")
    if cls.name in BUILT_IN and cls.__module__ != family_module(cls.name):
        raise RuntimeError(f"the built-in family {cls.name!r} belongs in {family_module(cls.name)}, "
                           f"not {cls.__module__}")
    _REGISTRY[cls.name] = cls
    return cls


def family_names() -> list[str]:
    """The built-in families, then any other registered one."""
    return list(dict.fromkeys([*BUILT_IN, *_REGISTRY]))


def get_family(name: str):
    """The Family class registered under ``name`` (e.g. 'acgan'), importing its module on first use."""
    if name not in _REGISTRY and name in BUILT_IN:
        importlib.import_module(family_module(name))
    if name not in _REGISTRY:
        raise UserError(f"unknown model family {name!r}; choose one of: {', '.join(family_names())}")
    return _REGISTRY[name]
