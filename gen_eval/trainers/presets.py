"""Named training recipes: ``gen-eval train --preset NAME`` is one family with its settings, length and batch.

A preset is data, not code: the family's ``--set`` keys, the run length and the batch size a report (or a
measured recipe of ours) used, with where they come from. ``--set``, ``--epochs``/``--steps`` and
``--batch-size`` given on the command line override the preset's. No torch import here (``--help`` lists
the presets).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gen_eval.errors import UserError


@dataclass(frozen=True)
class Preset:
    """One recipe: ``family`` trained with ``settings`` for ``epochs`` (or ``steps``) at ``batch_size``."""

    name: str
    family: str
    summary: str                      # one line for ``train --help``
    source: str                       # where the numbers come from (a seed report's section, or a measured run)
    settings: Mapping[str, Any] = field(default_factory=dict)
    epochs: int | None = None
    steps: int | None = None
    batch_size: int | None = None
    data_hint: str = ""               # the data set it expects, e.g. "MNIST: gen-eval data mnist --out mnist"

    def overrides(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """The preset's settings updated by the ones given on the command line (``--set`` wins)."""
        return {**{key: _as_text(value) for key, value in self.settings.items()}, **given}


def _as_text(value: Any) -> Any:
    """Settings travel as ``--set`` strings would, so the family config parses and checks them the same way."""
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return str(value)


PRESETS: dict[str, Preset] = {}


def register_preset(preset: Preset) -> Preset:
    if preset.name in PRESETS:
        raise RuntimeError(f"two presets are called {preset.name!r}")
    PRESETS[preset.name] = preset
    return preset


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}; choose one of: {', '.join(sorted(PRESETS))} "
                        "('gen-eval train --help' lists them)")
    return PRESETS[name]


def preset_names() -> list[str]:
    return sorted(PRESETS)


# -- the seed reports' configurations (../shared/seeds; one preset per report's model) ----------------------


# -- recipes of ours, measured on the data they name (numbers in benchmarks/RESULTS.md) ---------------------
register_preset(Preset(
    name="shapes-acgan-32",
    family="acgan",
    summary="conditional GAN on the shapes set at 32 px with no judge in its loss (the demo's ACGAN)",
    source=("measured on the 3000-image shapes set, 2 CPU cores (gen_eval.demo; benchmarks/RESULTS.md): hinge "
            "loss, spectrally normalised projection discriminator with an auxiliary head on real images, "
            "conditional BatchNorm, EMA generator; it does not reach the demo's 0.8 target"),
    settings={"data.resize": True, "image_size": 32, "generator": "upsample", "g_start_size": 8, "ngf": 32,
              "ndf": 32, "d_batch_norm": False, "adv_loss": "hinge", "d_spectral_norm": True, "d_projection": True,
              "g_conditional_bn": True, "d_aux_pool": True, "d_aux_fake": False, "d_aux_prior": True,
              "aux_weight": 3.0, "ema_decay": 0.999, "beta1": 0.0, "beta2": 0.9, "lr_g": 5e-4, "lr_d": 1e-3},
    steps=800,
    batch_size=32,
    data_hint="the shapes set: gen-eval data shapes --out shapes --train 3000 --heldout 500",
))

register_preset(Preset(
    name="shapes-judge",
    family="classifier",
    summary="the ResNet18 judge on the shapes set, the demo's recipe (465 steps of 32 = 5 epochs of 3000 images)",
    source="measured on the 3000-image shapes set, 2 CPU cores (gen_eval.demo; benchmarks/RESULTS.md)",
    settings={"lr": 2e-3},
    steps=465,
    batch_size=32,
    data_hint="the shapes set: gen-eval data shapes --out shapes --train 3000 --heldout 500",
))
