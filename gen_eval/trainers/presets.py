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

MNIST_HINT = "real MNIST: the four idx files (gzipped or not), e.g. ../shared/data/mnist"

register_preset(Preset(
    name="mnist-mlp-vae", family="mlp-vae",
    summary="S2's MLP VAE on real MNIST, held-out loss per epoch on the test split (15-40 s/epoch, 2 busy cores)",
    source="S2 (seed report 002) settings; measured in benchmarks/RESULTS.md ('Real MNIST'): train 107.1, "
           "test 104.8 after 49 epochs (1943 s at load 1-12), not S2's 82.75",
    settings={"data.eval_split": "test"}, epochs=50, batch_size=64, data_hint=MNIST_HINT))

register_preset(Preset(
    name="mnist-cnn-classifier", family="cnn-classifier",
    summary="small CNN judge of the ten digits, scored on the test split each epoch (1 epoch: 203 s, 2 busy cores)",
    source="ours; measured in benchmarks/RESULTS.md ('Real MNIST'): test accuracy 0.979 after 1 epoch "
           "(203 s at load 9-13)",
    settings={"data.eval_split": "test"}, epochs=1, batch_size=64, data_hint=MNIST_HINT))

register_preset(Preset(
    name="mnist-acgan", family="acgan",
    summary="ACGAN on the ten digits at 32x32, no judge in the loss (1000 steps: 28 min, 2 busy cores)",
    source="ours; measured in benchmarks/RESULTS.md ('Real MNIST'): 0.777 judge accuracy, FD 21.6 on the judge's "
           "features after 1000 steps (1692 s at load 6-12; goal 0.95 not reached). With generator=dcgan it collapsed: "
           "one image per digit whatever z, 0.25-0.68 accuracy at steps 500-750",
    settings={"data.resize": True, "image_size": 32, "generator": "upsample", "g_start_size": 8, "ngf": 32,
              "ndf": 32, "lr_g": 2e-4, "lr_d": 2e-4, "d_dropout": 0.25}, steps=1000, batch_size=64,
    data_hint=MNIST_HINT))
