"""The demo: the whole chain on the embedded shapes set, offline, on a CPU.

``run_demo(out)`` writes the shapes data set, trains two ResNet18 judges (classifier family; the same recipe,
seeds ``seed`` and ``seed + 1``) and a conditional generator, exports them to ONNX (the first judge also as a
512-d ``features`` model), evaluates with the torch-free evaluator (both judges' accuracy on the held-out
split, the generator's classifier score on test.json and new_test.json over several noise seeds by both
judges, a Frechet distance on the judge's features), then writes grids (generated images above real scenes
of the same objects, captioned), loss curves and ``report.json`` and prints a summary. Layout of ``out``::

    shapes/                         the data set (gen_eval.data.shapes)
    classifier/, independent_judge/, generator/    training runs (gen_eval.trainers.loop layout)
    classifier.onnx, classifier.features.onnx, independent_judge.onnx, generator.onnx
    test_grid.png, new_test_grid.png, loss_curves.png, report.json
    .demo/                          what was run (settings) and one marker per finished step

A rerun skips every step whose marker matches the settings and whose files are all there; a training
run that was interrupted resumes from its last checkpoint; ``force`` redoes everything.

The headline score is the independent judge's: no generator loss ever sees it, so no recipe can game it.
The demo's own judge scores beside it; with the default recipe it is in no loss either, but a recipe with
a judge term (``judge_weight``/``perceptual_weight``) trains against it, and the report says so
(``judge_in_generator_loss``).

Recipes: each judge is the iCLEVR reference evaluator's ResNet18 trained with Adam 2e-3 for 8 epochs of 3000
images, then its BatchNorm statistics are re-estimated on 1024 training images (gen_eval.trainers.batchnorm; in eval mode it
otherwise loses ~0.2 accuracy after so short a run). The generator is preset ``shapes-diffusion``
(gen_eval.trainers.presets): conditional rectified-flow diffusion at 64x64 with classifier-free guidance and
EMA weights, trained for a fixed number of steps (gen_eval.demo.recipe).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from gen_eval.demo.recipe import (
    ENFORCED_CHECKS,
    FULL,
    INDEPENDENT_SEED_OFFSET,
    QUICK,
    SCORE_FILES,
    STEPS,
    Paths,
    Recipe,
)
from gen_eval.demo.report import build_report, save_loss_curves
from gen_eval.demo.runner import StepRunner, claim_folder, machine_load
from gen_eval.demo.steps import evaluate, export_models, train_classifier, train_generator, write_data
from gen_eval.errors import GateFailed, UserError, param
from gen_eval.fileio import atomic_write_json

log = logging.getLogger("gen_eval.demo")


class DemoMissed(GateFailed):
    """A full demo missed an enforced target; ``report`` is what it measured (also in report.json)."""

    def __init__(self, report: dict, message: str) -> None:
        super().__init__(message)
        self.report = report


def run_demo(out: str | os.PathLike, *, quick: bool = False, force: bool = False, device: str = "auto",
             seed: int = 0, recipe: Recipe | None = None) -> dict[str, Any]:
    """Run (or finish) the demo in ``out``; returns the report. Raises GateFailed when an enforced
    quality target is missed (after writing everything)."""
    if seed < 0:
        raise UserError(f"{param('seed')} must be a non-negative integer, got {seed}")
    from gen_eval.trainers.torchdevice import resolve_device

    resolve_device(device)   # the one device grammar; --device cuda without a GPU: one line now, not later
    recipe = recipe or (QUICK if quick else FULL)
    paths = Paths(Path(out))
    claim_folder(paths, recipe, seed, force)
    load_before = machine_load()
    started = time.perf_counter()
    runner = StepRunner(paths, recipe, seed, force)
    log.info(f"gen-eval demo in {paths.root} ({recipe.name} recipe, seed {seed}, device {device})")
    runner.run("data", f"writing the shapes data set ({recipe.n_train} training, {recipe.n_heldout} held-out images)",
               lambda _: write_data(paths, recipe, seed))
    runner.run("classifier", f"training the ResNet18 judge ({recipe.classifier_epochs} epochs, "
                             f"batch {recipe.classifier_batch_size})",
               lambda may_resume: train_classifier(paths, recipe, seed, device, may_resume))
    runner.run("independent_judge", f"training the independent judge (the same recipe, seed "
                                    f"{seed + INDEPENDENT_SEED_OFFSET}; the generator never sees it)",
               lambda may_resume: train_classifier(paths, recipe, seed + INDEPENDENT_SEED_OFFSET, device, may_resume,
                                                   run=paths.independent_run))
    runner.run("generator", f"training the generator ({recipe.generator_family}, {recipe.generator_steps} steps, "
                            f"batch {recipe.generator_batch_size})",
               lambda may_resume: train_generator(paths, recipe, seed, device, may_resume))
    runner.run("export", "exporting both judges, the judge's features and the generator to ONNX (with parity "
                         "checks)",
               lambda _: export_models(paths))
    runner.run("evaluate", "evaluating with onnxruntime (no torch)",
               lambda _: evaluate(paths, recipe, seed, device))
    save_loss_curves(paths)
    report = build_report(paths, recipe, seed, device, runner.records, load_before, time.perf_counter() - started)
    atomic_write_json(paths.report, report, force=True)
    log.info("report: %s", paths.report)
    missed = [name for name, check in report["checks"].items() if not check["met"] and name in ENFORCED_CHECKS]
    if recipe.enforce_targets and missed:
        checks = report["checks"]
        raise DemoMissed(report, "demo missed its quality target(s): " + ", ".join(
            f"{name} {checks[name]['value']:.4f} (needs {checks[name]['target']})" for name in missed))
    return report


__all__ = ["FULL", "QUICK", "SCORE_FILES", "STEPS", "Paths", "Recipe", "run_demo"]
