"""A score by a judge that was part of the generator's own training is flagged, loudly, wherever it is made.

The trainer records the judge's weights fingerprint and how it was used; the exporter writes that record
into the generator's ONNX metadata and every network's fingerprint into its own; score, fid and metrics
compare the two.
"""

from __future__ import annotations

import json
import re

import numpy as np
import onnx
import pytest
import torch
from PIL import Image

import gen_eval
from gen_eval import contract
from gen_eval.data.shapes import write_shapes
from gen_eval.exporter import export_checkpoint
from gen_eval.exporter.classifier import export_ta_classifier
from gen_eval.trainers.fingerprint import weights_fingerprint
from gen_eval.trainers.judge import ta_resnet18
from gen_eval.trainers.loop import train
from gen_eval.trainers.losses import FrozenJudge
from helpers.browser import CHROMIUM, NO_CHROMIUM, PHONE_WIDTH, chromium, console_lines, phone_layout
from helpers.cli import run_cli_here
from helpers.training import TINY_GAN

torch.set_num_threads(1)

LOUD = "JUDGE IN THE LOSS"


def metadata(path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def save_judge(path, seed: int):
    torch.manual_seed(seed)
    model = ta_resnet18(24)
    torch.save({"model": model.state_dict()}, path)
    return model


def export_judge(root, name, objects):
    for extra, suffix in (((), ""), (("--features",), ".features")):
        result = run_cli_here("export-classifier", root / f"{name}.pth", "--objects", objects, *extra,
                              "--out", root / f"{name}{suffix}.onnx", "--no-verify")
        assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two random judges, both exported; an acgan with the first in its loss, exported from last.pt and
    from the epoch checkpoint that judge picked; an acgan that only scored its epochs with it."""
    root = tmp_path_factory.mktemp("judged")
    shapes = write_shapes(root / "shapes", n_train=16, n_heldout=8, seed=0)
    for name, seed in (("judge", 1), ("other", 2)):
        save_judge(root / f"{name}.pth", seed)
        export_judge(root, name, shapes / "objects.json")
    common = dict(batch_size=8, device="cpu", progress=False)
    train("acgan", shapes, root / "lossy", steps=2, **common,
          config_overrides={**TINY_GAN, "judge": str(root / "judge.pth"), "judge_weight": "10"})
    train("acgan", shapes, root / "picked", steps=2, **common,
          config_overrides={**TINY_GAN, "judge": str(root / "judge.pth")})
    export_checkpoint(root / "lossy" / "checkpoints" / "last.pt", root / "lossy.onnx")
    export_checkpoint(root / "picked" / "checkpoints" / "last.pt", root / "picked_last.onnx")
    best = sorted((root / "picked" / "checkpoints").glob("epoch*_score*.pt"))
    assert best, "an epoch end with a judge keeps the best checkpoint"
    export_checkpoint(best[0], root / "picked_best.onnx")
    return root, shapes


def test_fingerprint_is_the_weights_not_the_file(tmp_path):
    model = save_judge(tmp_path / "judge.pth", seed=1)
    frozen = FrozenJudge(tmp_path / "judge.pth", num_labels=24)
    assert frozen.fingerprints["classifier"] == weights_fingerprint(model)
    export_ta_classifier(tmp_path / "judge.pth", tmp_path / "judge.onnx", features=True, verify=False)
    assert metadata(tmp_path / "judge.onnx")[contract.KEY_WEIGHTS_FINGERPRINT] == frozen.fingerprints["features"]
    # BatchNorm's step counter does not change what the network computes; one changed weight does
    model.bn1.num_batches_tracked += 7
    assert weights_fingerprint(model) == frozen.fingerprints["classifier"]
    with torch.no_grad():
        model.conv1.weight[0, 0, 0, 0] += 1e-6
    assert weights_fingerprint(model) != frozen.fingerprints["classifier"]


def test_generator_metadata_records_the_judge_and_its_use(runs):
    root, _ = runs
    [entry] = json.loads(metadata(root / "lossy.onnx")[contract.KEY_TRAINING_JUDGES])
    assert entry["loss_terms"] == {"judge_weight": 10.0} and entry["file"] == "judge.pth"
    assert entry["classifier"] == metadata(root / "judge.onnx")[contract.KEY_WEIGHTS_FINGERPRINT]
    assert entry["features"] == metadata(root / "judge.features.onnx")[contract.KEY_WEIGHTS_FINGERPRINT]
    [picked] = json.loads(metadata(root / "picked_best.onnx")[contract.KEY_TRAINING_JUDGES])
    [last] = json.loads(metadata(root / "picked_last.onnx")[contract.KEY_TRAINING_JUDGES])
    assert picked["loss_terms"] == {} and picked["picked_this_checkpoint"] is True
    assert last["picked_this_checkpoint"] is False and last["scores_epochs"] is True


def score(root, shapes, model, judge):
    return gen_eval.score(root / model, shapes / "test.json", classifier=root / judge, runtime=gen_eval.Runtime("cpu"))


def test_score_by_the_judge_in_the_loss_says_so_first(runs):
    root, shapes = runs
    report = score(root, shapes, "lossy.onnx", "judge.onnx")
    assert report.details["judge_in_training"] == "in the loss"
    assert report.warnings[0].startswith(LOUD) and "judge_weight=10" in report.warnings[0]
    assert report.to_dict()["warnings"][0].startswith(LOUD)
    independent = score(root, shapes, "lossy.onnx", "other.onnx")
    assert independent.details["judge_in_training"].startswith("no") and not independent.warnings


def test_score_by_the_judge_that_picked_the_checkpoint_warns(runs):
    root, shapes = runs
    best = score(root, shapes, "picked_best.onnx", "judge.onnx")
    assert best.details["judge_in_training"] == "picked this checkpoint" and "biased upward" in best.warnings[0]
    last = score(root, shapes, "picked_last.onnx", "judge.onnx")   # it only watched: nothing to warn about
    assert last.details["judge_in_training"] == "scored its epochs, in no loss" and not last.warnings


def test_cli_prints_the_warning_and_writes_it_to_the_report(runs, tmp_path):
    root, shapes = runs
    result = run_cli_here("score", "--model", root / "lossy.onnx", "--test", shapes / "test.json",
                          "--classifier", root / "judge.onnx", "--report", tmp_path / "r.json", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert f"warning: {LOUD}" in result.stderr
    assert json.loads((tmp_path / "r.json").read_text())["warnings"][0].startswith(LOUD)


def test_fid_and_metrics_on_the_judge_features_warn(runs):
    root, shapes = runs
    ref = gen_eval.ImageSource(shapes, split="heldout")
    generated = gen_eval.GeneratorSource(root / "lossy.onnx", n=16, conditions=shapes / "test.json")
    kwargs = dict(runtime=gen_eval.Runtime("cpu"))
    report = gen_eval.fid(ref, generated, features=root / "judge.features.onnx", jackknife_blocks=2, **kwargs)
    assert report.details["judge_in_training"] == "in the loss" and report.warnings[0].startswith(LOUD)
    metrics = gen_eval.metrics(ref, generated, features=root / "judge.features.onnx", names="kid", **kwargs)
    assert metrics.warnings[0].startswith(LOUD) and metrics.provenance["judge_in_training"] == "in the loss"
    other = gen_eval.metrics(ref, generated, features=root / "other.features.onnx", names="kid", **kwargs)
    assert other.provenance["judge_in_training"].startswith("no")
    assert not any(w.startswith(LOUD) for w in other.warnings)


def test_foreign_or_damaged_records_say_they_cannot_tell(runs, tmp_path):
    root, shapes = runs
    stripped = onnx.load(str(root / "judge.onnx"))     # a judge exported elsewhere: no fingerprint
    kept = [p for p in stripped.metadata_props if p.key != contract.KEY_WEIGHTS_FINGERPRINT]
    del stripped.metadata_props[:]
    stripped.metadata_props.extend(kept)
    onnx.save(stripped, str(tmp_path / "foreign.onnx"))
    report = gen_eval.score(root / "lossy.onnx", shapes / "test.json", classifier=tmp_path / "foreign.onnx",
                            runtime=gen_eval.Runtime("cpu"))
    assert report.details["judge_in_training"] == "cannot tell" and "cannot be checked" in report.warnings[0]

    damaged = onnx.load(str(root / "lossy.onnx"))
    for prop in damaged.metadata_props:
        if prop.key == contract.KEY_TRAINING_JUDGES:
            prop.value = "{not json\x1b[31m"
    onnx.save(damaged, str(tmp_path / "damaged.onnx"))
    report = gen_eval.score(tmp_path / "damaged.onnx", shapes / "test.json", classifier=root / "judge.onnx",
                            runtime=gen_eval.Runtime("cpu"))
    assert report.details["judge_in_training"] == "cannot tell" and "unreadable" in report.warnings[0]


def test_score_html_shows_the_warning_first_then_the_score_where_it_fails_and_the_images(runs, tmp_path):
    root, shapes = runs
    report = gen_eval.score(root / "lossy.onnx", shapes / "test.json", classifier=root / "judge.onnx",
                            keep_images=16, runtime=gen_eval.Runtime("cpu"))
    page = report.write_html(tmp_path / "score.html")
    text = page.read_text(encoding="utf-8")
    assert "<script" not in text and not re.search(r"""(src|href)=["']?(https?:|file:|/)""", text)
    assert text.index(LOUD) < text.index("<h2>Result</h2>") < text.index("Where it fails") < text.index("Provenance")
    assert f"<td>value</td><td>{report.value:.6g}</td>" in text and "Per label, weakest first" in text
    wrong = sum(h < k for h, k in zip(report.raw["hits"][0][:16], report.raw["ks"][:16]))
    right = 16 - wrong  # issue 25: each kept image in one grid only, read right or read wrong
    assert text.count('<img ') == (right > 0) + (wrong > 0)
    assert (f"{wrong} of the 16 kept images (noise seed 0) the judge read wrong" in text) == (wrong > 0)
    assert (f"{right} of the 16 kept images (noise seed 0) the judge read right" in text) == (right > 0)
    # the CLI refuses to write over it without --force, in one line
    args = ["score", "--model", root / "lossy.onnx", "--test", shapes / "test.json", "--classifier",
            root / "judge.onnx", "--device", "cpu", "--html", page]
    refused = run_cli_here(*args)
    assert refused.returncode == 2 and "--force" in refused.stderr and "Traceback" not in refused.stderr
    written = run_cli_here(*args, "--force")
    assert written.returncode == 0 and f"html: {page}" in written.stderr


@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
def test_score_html_renders_in_headless_chromium(runs, tmp_path):
    root, shapes = runs
    page = gen_eval.score(root / "lossy.onnx", shapes / "test.json", classifier=root / "judge.onnx", keep_images=16,
                          runtime=gen_eval.Runtime("cpu")).write_html(tmp_path / "score.html")
    dom = chromium("--dump-dom", page.as_uri(), profile=tmp_path / "profile").stdout
    assert "<title>gen-eval classifier_score report</title>" in dom and LOUD in dom
    assert dom.count('src="data:image/png;base64,') >= 1
    shot = tmp_path / "score.png"
    chromium("--window-size=1000,1600", f"--screenshot={shot}", page.as_uri(), profile=tmp_path / "profile")
    ink = np.asarray(Image.open(shot).convert("L"), dtype=np.float64) < 128
    assert ink.shape == (1600, 1000) and 0.01 < ink.mean() < 0.5 and ink[:200].any()
    # at a phone's width: no sideways scrolling, laid out at the phone's width, nothing on the console
    layout = phone_layout(page, tmp_path / "phone")
    assert layout["scrollWidth"] <= layout["clientWidth"] == PHONE_WIDTH, layout
    assert "width=device-width" in (layout["viewport"] or ""), layout
    assert console_lines(page, tmp_path / "profile") == []
