"""`gen-eval demo --quick`: the whole chain on the shapes set, its report against references, and reruns."""

from __future__ import annotations

import json
import math

import numpy as np
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from gen_eval.cli import cli
from gen_eval.data.conditions import read_condition_file, read_objects
from gen_eval.data.datasets import open_dataset
from gen_eval.demo import QUICK, SCORE_FILES, STEPS
from gen_eval.demo.report import summary_table
from gen_eval.evaluator.noise import latent_noise
from gen_eval.evaluator.sample_outputs import read_grid_captions
from gen_eval.trainers.judge import load_judge
from helpers.ta_reference import tie_slack

torch.set_num_threads(2)


def invoke(*args: str):
    return CliRunner().invoke(cli, ["demo", *args], catch_exceptions=False)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    result = invoke("--quick", "--out", str(out), "--device", "cpu")
    assert result.exit_code == 0, result.output
    # the summary is the command's output (stdout, e.g. `gen-eval demo > summary.txt`); progress is on stderr
    assert "diffusion score, test.json (5 seeds)" in result.stdout and "[1/" not in result.stdout
    return out, result.output


def ta_score(probs: np.ndarray, labels: np.ndarray) -> float:
    """The TA's evaluator written out: per image top-k (k = true labels) hits, pooled over the set."""
    correct = total = 0
    for p, truth in zip(probs, labels):
        k = int(truth.sum())
        top = np.argsort(-p, kind="stable")[:k]
        correct += int(truth[top].sum())
        total += k
    return correct / total


def test_quick_demo_writes_every_artefact(demo):
    out, output = demo
    for name in ("classifier.onnx", "classifier.features.onnx", "independent_judge.onnx", "generator.onnx",
                 "loss_curves.png", "report.json", "shapes/test.json", "shapes/new_test.json",
                 "classifier/classifier_ta.pth", "independent_judge/classifier_ta.pth",
                 "generator/checkpoints/last.pt"):
        assert (out / name).is_file(), name
    for which in SCORE_FILES:
        grid = Image.open(out / f"{which}_grid.png")
        conditions = json.loads((out / "shapes" / f"{which}.json").read_text())
        # every condition twice (generated, then a real scene of the same objects), captioned with its objects,
        # in cells of 128 px: 8 per row, rows of generated images alternating with rows of real ones
        captions = read_grid_captions(out / f"{which}_grid.png")["captions"]
        assert len(captions) == 2 * len(conditions)
        for i, names in enumerate(conditions):
            assert f"#{i} generated: " + ", ".join(names) in captions
            assert f"#{i} real: " + ", ".join(names) in captions
        assert grid.size[0] >= 8 * 128 and grid.size[1] >= 2 * math.ceil(len(conditions) / 8) * 128
    for step in STEPS:
        assert f"[{STEPS.index(step) + 1}/{len(STEPS)}]" in output
    assert "diffusion score, test.json (5 seeds)" in output
    assert output.count("runtime: onnxruntime") == 1, "one runtime line for the evaluation's dozen API calls"
    report = json.loads((out / "report.json").read_text())
    table = summary_table(report).splitlines()
    header = next(line for line in table if line.startswith("step "))
    column_end = header.index("seconds") + len("seconds")
    for name, step in report["steps"].items():  # "independent_judge" is longer than the old 12 columns
        row = next(line for line in table if line.split()[:1] == [name])
        assert row[:column_end].endswith(f"{step['seconds']:.1f}"), (header, row)


def test_report_holds_the_measurements(demo):
    out, _ = demo
    report = json.loads((out / "report.json").read_text())
    assert report["recipe"]["name"] == "quick" and report["targets_enforced"] is False
    for which in SCORE_FILES:
        s = report["scores"][which]
        assert len(s["scores"]) == QUICK.score_repeats == 5
        assert s["mean"] == pytest.approx(np.mean(s["scores"]))
        assert s["std"] == pytest.approx(np.std(s["scores"]))
        assert s["min"] == min(s["scores"]) and s["max"] == max(s["scores"])
        assert all(0.0 <= v <= 1.0 for v in s["scores"])
    assert 0.0 <= report["classifier_accuracy"] <= 1.0
    assert math.isfinite(report["frechet"]["value"]) and report["frechet"]["value"] >= 0
    assert report["frechet"]["generated"] == QUICK.fid_samples
    assert report["frechet"]["reference"] == QUICK.n_train
    assert set(report["checks"]) == {"classifier_accuracy", "independent_judge_accuracy", "score_test", "minutes"}
    assert report["judges"]["independent"]["seed"] != report["judges"]["judge"]["seed"]
    assert not any(check["enforced"] for check in report["checks"].values())     # --quick enforces nothing
    assert 0.0 <= report["independent_judge_accuracy"] <= 1.0
    assert report["total_seconds"] == pytest.approx(sum(s["seconds"] for s in report["steps"].values()), abs=0.5)
    uses_judge = bool(QUICK.generator_settings.get("perceptual_weight") or QUICK.generator_settings.get("judge_weight"))
    assert bool(report["judge_in_generator_loss"]) == uses_judge


@pytest.mark.parametrize("judge_file, key", [("independent_judge.onnx", "scores"), ("classifier.onnx", "scores_by_judge")])
def test_score_matches_the_ta_semantics_on_the_exported_models(demo, judge_file, key):
    """Seed 0 of test.json, recomputed with bare onnxruntime, torch's resize and the TA's top-k rule; the
    headline ("scores") is the independent judge's, the demo's judge's is beside it."""
    out, _ = demo
    report = json.loads((out / "report.json").read_text())
    space = read_objects(out / "shapes" / "objects.json")
    conditions = read_condition_file(out / "shapes" / "test.json", space)
    generator = ort.InferenceSession(str(out / "generator.onnx"), providers=["CPUExecutionProvider"])
    judge = ort.InferenceSession(str(out / judge_file), providers=["CPUExecutionProvider"])
    latent_dim = generator.get_inputs()[0].shape[1]
    z = latent_noise(0, np.arange(len(conditions)), latent_dim)
    images = generator.run(None, {"z": z, "labels": conditions})[0]     # [-1, 1], the judge's range
    # the judge takes 64x64: torch's bilinear resize (align_corners=False), as the TA's code would do it
    images = torch.nn.functional.interpolate(torch.from_numpy(images), size=(64, 64), mode="bilinear",
                                             align_corners=False).numpy()
    probs = judge.run(None, {"image": images})[0]
    # exact unless a top-k decision lies within float32 noise of a tie (then either CPU's answer is right)
    slack = tie_slack(probs, conditions)
    assert report[key]["test"]["scores"][0] == pytest.approx(ta_score(probs, conditions), abs=slack + 1e-12)


def test_heldout_accuracy_matches_torch_on_the_ta_checkpoint(demo):
    """The judge's held-out accuracy, recomputed in torch from the TA-format judge file."""
    out, _ = demo
    report = json.loads((out / "report.json").read_text())
    model, _ = load_judge(out / "classifier" / "classifier_ta.pth")
    heldout = open_dataset(out / "shapes", split="heldout")
    images = np.stack([heldout.image(i) for i in range(len(heldout))]).transpose(0, 3, 1, 2)
    with torch.no_grad():
        probs = model(torch.from_numpy(images).float() / 127.5 - 1).numpy()
    slack = tie_slack(probs, np.asarray(heldout.labels))  # torch and onnxruntime round differently
    assert report["classifier_accuracy"] == pytest.approx(ta_score(probs, np.asarray(heldout.labels)), abs=slack + 1e-12)


def test_rerun_skips_finished_steps_and_redoes_missing_ones(demo):
    out, _ = demo
    trained = (out / "generator" / "checkpoints" / "last.pt").stat().st_mtime_ns
    result = invoke("--quick", "--out", str(out), "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert result.output.count("done already") == len(STEPS)

    (out / "test_grid.png").unlink()          # an artefact of the last step is missing: only that step reruns
    result = invoke("--quick", "--out", str(out), "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert result.output.count("done already") == len(STEPS) - 1
    assert (out / "test_grid.png").is_file()
    assert (out / "generator" / "checkpoints" / "last.pt").stat().st_mtime_ns == trained


def test_an_interrupted_training_step_resumes_from_its_checkpoint(demo):
    out, _ = demo
    (out / ".demo" / "generator.json").unlink()    # as if killed after the last checkpoint, before the marker
    result = invoke("--quick", "--out", str(out), "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "resuming the interrupted diffusion run" in result.output
    assert result.output.count("done already") == 3     # data and both judges; export, evaluate follow
    report = json.loads((out / "report.json").read_text())
    assert report["steps"]["generator"]["steps"] == QUICK.generator_steps


def test_other_settings_in_the_same_folder_need_force(demo):
    out, _ = demo
    result = invoke("--quick", "--out", str(out), "--seed", "1")
    assert result.exit_code == 2
    assert "--force" in result.output and len(result.output.strip().splitlines()) == 1


def test_bad_output_folders_are_refused(tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    result = invoke("--quick", "--out", str(a_file))
    assert result.exit_code == 2 and "is a file" in result.output

    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    result = invoke("--quick", "--out", str(tmp_path / "other"))
    assert result.exit_code == 2 and "holds no demo" in result.output
    assert sorted(p.name for p in (tmp_path / "other").iterdir()) == ["notes.txt"]


def test_force_redoes_every_step(demo):
    out, _ = demo
    result = invoke("--quick", "--out", str(out), "--device", "cpu", "--force")
    assert result.exit_code == 0, result.output
    assert "done already" not in result.output and "resuming" not in result.output
    report = json.loads((out / "report.json").read_text())
    assert not any(step["skipped_this_run"] for step in report["steps"].values())
