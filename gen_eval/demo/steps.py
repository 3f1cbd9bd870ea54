"""The demo's steps: data, the judges, the generator, export, and evaluation through the public API."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gen_eval.demo.recipe import SCORE_FILES, Paths, Recipe

log = logging.getLogger("gen_eval.demo")


def write_data(paths: Paths, recipe: Recipe, seed: int) -> dict[str, Any]:
    from gen_eval.data.shapes import write_shapes

    write_shapes(paths.data, n_train=recipe.n_train, n_heldout=recipe.n_heldout, seed=seed, force=True,
                 progress=True)
    return {"n_train": recipe.n_train, "n_heldout": recipe.n_heldout, "folder": str(paths.data)}


def _train(family: str, paths: Paths, run: Path, *, steps: int | None, epochs: int | None, batch_size: int,
           settings: Mapping[str, Any], device: str, seed: int, may_resume: bool) -> dict[str, Any]:
    """Train with the shared loop; an interrupted run in ``run`` resumes (when ``may_resume``), anything
    else there is replaced."""
    from gen_eval.trainers.loop import train

    last = run / "checkpoints" / "last.pt"
    resume = may_resume and last.is_file()
    if resume:
        log.info(f"  resuming the interrupted {family} run in {run}")
    train(family, paths.data, run, steps=steps, epochs=epochs, batch_size=batch_size, device=device, seed=seed,
          resume=resume, force=not resume, config_overrides=dict(settings), progress=True)
    return _run_summary(run)


def _run_summary(run: Path) -> dict[str, Any]:
    """Steps and training time from a run's last checkpoint, and its final logged losses."""
    from gen_eval.trainers.checkpoint import load_checkpoint
    from gen_eval.trainers.logs import read_log_rows

    checkpoint = load_checkpoint(run / "checkpoints" / "last.pt")
    loop = checkpoint.get("loop") or {}
    rows = read_log_rows(run / "log.csv")
    summary = {"steps": int(checkpoint["step"]), "train_seconds": round(float(loop.get("elapsed_s", 0.0)), 1),
               "batch_size": loop.get("batch_size"), "final_losses": rows[-1] if rows else {},
               "config": checkpoint["config"]}
    seen = (checkpoint.get("extra") or {}).get("bn_recalibration_images")
    if seen is not None:   # the classifier family's BatchNorm re-estimation (Family.finish_training)
        summary["bn_recalibration_images"] = seen
    return summary


def train_classifier(paths: Paths, recipe: Recipe, seed: int, device: str, may_resume: bool,
                     run: Path | None = None) -> dict[str, Any]:
    """Train a judge in ``run`` (default: the demo's judge); the independent judge is the same recipe in
    another run folder with another seed."""
    # Held-out accuracy is measured once at the end with the exported ONNX judge (step "evaluate"),
    # not every epoch by the loop: that saves a torch pass over the held-out split per epoch.
    # The classifier family re-estimates its BatchNorm statistics when training ends (bn_images).
    run = run or paths.classifier_run
    settings = {**recipe.classifier_settings, "bn_images": recipe.bn_recalibration_images, "data.eval_split": ""}
    summary = _train("classifier", paths, run, steps=None, epochs=recipe.classifier_epochs,
                     batch_size=recipe.classifier_batch_size, settings=settings, device=device, seed=seed,
                     may_resume=may_resume)
    summary["seed"] = seed
    summary.setdefault("bn_recalibration_images", 0)
    log.info("  BatchNorm statistics re-estimated on %d training images: %s, %s",
             summary["bn_recalibration_images"], run / "checkpoints" / "last.pt", run / "classifier_ta.pth")
    return summary


def train_generator(paths: Paths, recipe: Recipe, seed: int, device: str, may_resume: bool) -> dict[str, Any]:
    settings = dict(recipe.generator_settings)
    if settings.get("perceptual_weight") or settings.get("judge_weight"):   # a GAN recipe with a judge term
        settings["judge"] = str(paths.judge_ta)
    return _train(recipe.generator_family, paths, paths.generator_run, steps=recipe.generator_steps, epochs=None,
                  batch_size=recipe.generator_batch_size, settings=settings, device=device, seed=seed,
                  may_resume=may_resume)


def export_models(paths: Paths) -> dict[str, Any]:
    from gen_eval.exporter import export_checkpoint

    results = {}
    jobs = ((paths.judge_checkpoint, paths.classifier_onnx), (paths.independent_judge_checkpoint,
                                                               paths.independent_onnx),
            (paths.generator_checkpoint, paths.generator_onnx))
    for checkpoint, out in jobs:
        for result in export_checkpoint(checkpoint, out, force=True):
            log.info("  " + result.describe())
            parity = result.parity
            results[result.path.name] = {"role": result.role,
                                         "parity_error": parity.error if parity else None,
                                         "parity_tolerance": parity.tolerance if parity else None,
                                         "megabytes": round(result.size_bytes / 1e6, 2)}
    return results


class _FirstRuntimeLineOnly(logging.Filter):
    """Every API call logs the runtime it opened; the demo's dozen calls open the same one."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if not message.startswith("runtime: "):
            return True
        first = message not in self.seen
        self.seen.add(message)
        return first


def evaluate(paths: Paths, recipe: Recipe, seed: int, device: str) -> dict[str, Any]:
    """Torch-free: the public API (gen_eval.api) on the exported ONNX files, as a user would call it."""
    api_log, once = logging.getLogger("gen_eval"), _FirstRuntimeLineOnly()
    api_log.addFilter(once)
    try:
        return _evaluate(paths, recipe, seed, device)
    finally:
        api_log.removeFilter(once)


def _evaluate(paths: Paths, recipe: Recipe, seed: int, device: str) -> dict[str, Any]:
    import gen_eval
    from gen_eval.evaluator.score import MAX_KEPT_IMAGES

    runtime = gen_eval.Runtime(device)
    judged = gen_eval.accuracy(paths.classifier_onnx, paths.data, split="heldout", runtime=runtime)
    log.info(f"  judge accuracy on the held-out split ({judged.n} images, pooled top-k): {judged.value:.4f}")
    independent = gen_eval.accuracy(paths.independent_onnx, paths.data, split="heldout", runtime=runtime)
    log.info(f"  independent judge accuracy on the held-out split: {independent.value:.4f}")

    # The headline is the independent judge's (never in any generator loss); the demo's judge beside it.
    scores: dict[str, Any] = {}
    scores_by_judge: dict[str, Any] = {}
    for which in SCORE_FILES:
        for judge, table, label in ((paths.independent_onnx, scores, "independent judge"),
                                    (paths.classifier_onnx, scores_by_judge, "judge")):
            report = gen_eval.score(paths.generator_onnx, paths.data / f"{which}.json", classifier=judge,
                                    repeats=recipe.score_repeats, seed=seed, keep_images=MAX_KEPT_IMAGES,
                                    breakdown=False, runtime=runtime)
            if table is scores:
                write_condition_grid(paths.grid(which), report.images, paths.data / f"{which}.json", which, seed)
            table[which] = _score_summary(report, recipe, seed, paths.grid(which).name)
            s = table[which]
            log.info(f"  score on {which}.json by the {label}, {recipe.score_repeats} seeds: mean {s['mean']:.4f} "
                 f"(std {s['std']:.4f}, min {s['min']:.4f}, max {s['max']:.4f})")

    # the generator conditioned on the training set's labels, in order (train.json read as a condition file)
    train_set = gen_eval.ImageSource(paths.data, split="train")
    generated = gen_eval.GeneratorSource(paths.generator_onnx, n=recipe.fid_samples, seed=seed,
                                         conditions=paths.data / "train.json")
    log.info(f"  Frechet distance on the judge's features: the training images vs {recipe.fid_samples} generated")
    fid = gen_eval.fid(train_set, generated, features=paths.features_onnx, runtime=runtime, cache=False)
    real = gen_eval.fid(train_set, gen_eval.ImageSource(paths.data, split="heldout"), features=paths.features_onnx,
                        jackknife_blocks=1, runtime=runtime, cache=False)  # a yardstick: no interval needed
    fd, fd_real = fid.value, real.value
    reference_n = fid.details["reference_n"]
    log.info(f"  Frechet distance {fd:.4f} (held-out real images vs training images: {fd_real:.4f})")
    return {"provider": fid.provenance["runtime"], "classifier_accuracy": judged.value, "heldout_images": judged.n,
            "classifier_accuracy_interval": judged.interval.to_dict(), "scores": scores,
            "independent_judge_accuracy": independent.value, "scores_by_judge": scores_by_judge,
            "frechet": {"value": fd, "generated": fid.n, "reference": reference_n,
                        "features": "judge penultimate (512-d)",
                        "generated_conditions": "the training set's labels, in order",
                        "real_heldout_vs_train": fd_real, "real_heldout_images": real.n}}


def _score_summary(report: Any, recipe: Recipe, seed: int, grid: str) -> dict[str, Any]:
    import numpy as np

    values = np.array(report.details.get("scores", [report.value]))
    return {"mean": float(values.mean()), "std": float(values.std()), "min": float(values.min()),
            "max": float(values.max()), "scores": [float(v) for v in values],
            "seeds": list(range(seed, seed + recipe.score_repeats)), "conditions": report.n,
            "interval": report.interval.to_dict(), "grid": grid}


GRID_UPSCALE = 2      # 128 px cells: a person can name the objects
GRID_COLUMNS = 8


def write_condition_grid(path: Path, generated: Any, conditions_file: Path, which: str, seed: int) -> Path:
    """The generated images of one condition file, each row of them above a row of real scenes of the same
    conditions (drawn by the shapes set's own renderer), every cell captioned with its objects."""
    import json

    import numpy as np

    from gen_eval.data.images import save_png
    from gen_eval.data.shapes import render_scene
    from gen_eval.evaluator.pictures import captioned_grid
    from gen_eval.evaluator.sample_outputs import CAPTIONS_KEY

    conditions = json.loads(conditions_file.read_text())[:len(generated)]
    real = [render_scene(names, np.random.default_rng([seed, 7, i])).transpose(2, 0, 1)
            for i, names in enumerate(conditions)]
    images, captions, indices = [], [], []
    for start in range(0, len(conditions), GRID_COLUMNS):
        rows = range(start, min(start + GRID_COLUMNS, len(conditions)))
        images += [generated[i] for i in rows] + [real[i] for i in rows]
        captions += [f"#{i} generated: " + ", ".join(conditions[i]) for i in rows]
        captions += [f"#{i} real: " + ", ".join(conditions[i]) for i in rows]
        indices += [*rows, *rows]
    grid = captioned_grid(images, captions, columns=GRID_COLUMNS, upscale=GRID_UPSCALE,
                          title=f"{which}.json: each row of generated images (noise seed {seed}) above real scenes "
                                "of the same objects")
    # what each cell shows, in the chunk every gen-eval grid carries (gen_eval.evaluator.sample_outputs)
    text = {CAPTIONS_KEY: json.dumps({"columns": GRID_COLUMNS, "indices": indices, "captions": captions},
                                     ensure_ascii=False)}
    return save_png(np.asarray(grid), path, force=True, text=text)
