"""The demo's report: report.json, the summary table, the loss curves, the judge-in-the-loss disclosure."""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from gen_eval.demo.recipe import (
    ENFORCED_CHECKS,
    INDEPENDENT_SEED_OFFSET,
    JUDGE_TERMS,
    SCORE_FILES,
    TARGETS,
    Paths,
    Recipe,
)
from gen_eval.demo.runner import StepRecord, machine_load
from gen_eval.fileio import atomic_path


def save_loss_curves(paths: Paths) -> Path:
    """Every logged loss of the judge's and the generator's runs, one panel each (their scales differ)."""
    import math

    from matplotlib.figure import Figure

    from gen_eval.trainers.logs import read_log_rows

    panels = []
    for title, run in (("judge", paths.classifier_run), ("generator", paths.generator_run)):
        rows = read_log_rows(run / "log.csv")
        keys = [k for k in (rows[0] if rows else {}) if k not in ("step", "epoch", "time")]
        panels += [(f"{title}: {key}", [(row["step"], row[key]) for row in rows if key in row]) for key in keys]
    columns = min(4, max(1, len(panels)))
    fig = Figure(figsize=(3.6 * columns, 2.8 * math.ceil(max(1, len(panels)) / columns)), dpi=100)
    for index, (title, points) in enumerate(panels):
        ax = fig.add_subplot(math.ceil(len(panels) / columns), columns, index + 1)
        if points:
            ax.plot(*zip(*points), linewidth=1)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(paths.loss_curves, force=True) as tmp:
        fig.savefig(tmp, format="png")
    return paths.loss_curves


def build_report(paths: Paths, recipe: Recipe, seed: int, device: str, records: Mapping[str, StepRecord],
                 load_before: tuple[float, ...], total_this_run: float) -> dict[str, Any]:
    evaluation = records["evaluate"].results
    total = sum(r.seconds for r in records.values())
    accuracy = evaluation["classifier_accuracy"]
    independent_accuracy = evaluation["independent_judge_accuracy"]
    score_test = evaluation["scores"]["test"]["mean"]
    checks = {
        "classifier_accuracy": {"value": accuracy, "target": f">= {TARGETS['classifier_accuracy']}",
                                "met": accuracy >= TARGETS["classifier_accuracy"]},
        "independent_judge_accuracy": {"value": independent_accuracy,
                                       "target": f">= {TARGETS['independent_judge_accuracy']}",
                                       "met": independent_accuracy >= TARGETS["independent_judge_accuracy"]},
        "score_test": {"value": score_test, "target": f">= {TARGETS['score_test']}",
                       "met": score_test >= TARGETS["score_test"]},
        "minutes": {"value": round(total / 60, 2), "target": f"<= {TARGETS['minutes']}",
                    "met": total / 60 <= TARGETS["minutes"]},
    }
    for name, check in checks.items():
        check["enforced"] = recipe.enforce_targets and name in ENFORCED_CHECKS
    import torch

    return {
        "recipe": {**asdict(recipe), "classifier_settings": dict(recipe.classifier_settings),
                   "generator_family": recipe.generator_family,
                   "generator_settings": dict(recipe.generator_settings)},
        "seed": seed, "device": device,
        "targets_enforced": recipe.enforce_targets,
        "checks": checks,
        "classifier_accuracy": accuracy,
        "independent_judge_accuracy": independent_accuracy,
        "scores": evaluation["scores"],
        "scores_by_judge": evaluation["scores_by_judge"],
        "judges": {
            "independent": {"file": paths.independent_onnx.name, "seed": seed + INDEPENDENT_SEED_OFFSET,
                            "role": "scores[] (the headline): the same recipe as the judge, another seed; "
                                    "never part of any generator loss"},
            "judge": {"file": paths.classifier_onnx.name, "seed": seed,
                      "role": "scores_by_judge[], the held-out accuracy and the Frechet features; in the "
                              "generator's loss: " + ("yes, see judge_in_generator_loss" if judge_disclosure(recipe)
                                                      else "no")},
        },
        "frechet": evaluation["frechet"],
        "judge_in_generator_loss": judge_disclosure(recipe),
        "steps": {name: {"seconds": r.seconds, "skipped_this_run": r.skipped, "load_average_at_end": r.load_average,
                         **_public(r.results)}
                  for name, r in records.items()},
        "total_seconds": round(total, 1),
        "this_run_seconds": round(total_this_run, 1),
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "load_average_at_start_of_this_run": load_before, "load_average_at_end": machine_load(),
                    "platform": platform.platform(), "python": platform.python_version(),
                    "torch": torch.__version__, "onnxruntime_provider": evaluation["provider"]},
        "files": {"models": [paths.classifier_onnx.name, paths.features_onnx.name, paths.generator_onnx.name],
                  "grids": [paths.grid(w).name for w in SCORE_FILES], "loss_curves": paths.loss_curves.name,
                  "data": paths.data.name},
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }


def _public(results: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in results.items()
            if k not in ("scores", "scores_by_judge", "frechet", "classifier_accuracy", "independent_judge_accuracy")}


def judge_disclosure(recipe: Recipe) -> str | None:
    """What the generator's loss takes from the judge that scores it (None when nothing)."""
    terms = [f"{text} (weight {recipe.generator_settings[key]:g})" for key, text in JUDGE_TERMS.items()
             if recipe.generator_settings.get(key)]
    if not terms:
        return None
    return ("The generator's loss includes " + "; and ".join(terms) + ". The judge that scores the generator "
            "also trained it, so the classifier score measures how well the generator satisfies this judge, not "
            "an independent one; the grids and the Frechet distance show how far the images are from real ones.")


def summary_table(report: Mapping[str, Any]) -> str:
    """What the demo prints at the end: step times, then the metrics against their targets."""
    lines = [f"gen-eval demo ({report['recipe']['name']} recipe, seed {report['seed']}, device {report['device']})", ""]
    width = max([12, *(len(name) + 2 for name in report["steps"])])
    lines.append(f"{'step':<{width}}{'seconds':>9}  note")
    for name, step in report["steps"].items():
        note = "done earlier, skipped" if step["skipped_this_run"] else ""
        lines.append(f"{name:<{width}}{step['seconds']:>9.1f}  {note}")
    lines.append(f"{'total':<{width}}{report['total_seconds']:>9.1f}  ({report['total_seconds'] / 60:.1f} min)")
    lines.append("")
    enforced = "" if report["targets_enforced"] else " (targets reported, not enforced)"
    lines.append(f"{'metric':<44}{'value':>24}  target{enforced}")
    checks = report["checks"]

    def row(label: str, value: str, check: str | None = None) -> None:
        target = ""
        if check is not None:
            enforced = checks[check].get("enforced") or not report["targets_enforced"]
            missed = "MISSED" if enforced else "missed (reported)"
            target = f"{checks[check]['target']}  {'met' if checks[check]['met'] else missed}"
        lines.append(f"{label:<44}{value:>24}  {target}")

    row("judge accuracy, held-out split (pooled top-k)", f"{report['classifier_accuracy']:.4f}", "classifier_accuracy")
    row("independent judge accuracy, held-out split", f"{report['independent_judge_accuracy']:.4f}",
        "independent_judge_accuracy")
    in_loss = "in the generator's loss" if report["judge_in_generator_loss"] else "not in any loss either"
    for which in SCORE_FILES:
        s = report["scores"][which]
        n = len(s["scores"])
        row(f"{report['recipe']['generator_family']} score, {which}.json ({n} seeds)", f"{s['mean']:.4f} ± {s['std']:.4f}",
            "score_test" if which == "test" else None)
        row("  by the independent judge (never in a loss)", f"min {s['min']:.4f}  max {s['max']:.4f}")
        by_judge = report["scores_by_judge"][which]
        row(f"  by the demo's judge ({in_loss})", f"{by_judge['mean']:.4f} ± {by_judge['std']:.4f}")
    fr = report["frechet"]
    row("Frechet distance, judge features", f"{fr['value']:.4f}")
    row("  (held-out real vs training, for scale)", f"{fr['real_heldout_vs_train']:.4f}")
    row("whole demo, minutes", f"{report['total_seconds'] / 60:.1f}", "minutes")
    if report["judge_in_generator_loss"]:
        lines += ["", "note: the generator was trained against the demo's judge (its generator loss uses it); the "
                      "headline is the independent judge's; see judge_in_generator_loss in report.json"]
    return "\n".join(lines)
