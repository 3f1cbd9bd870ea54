"""`gen-eval export-classifier`: the TA's {'model': state_dict} ResNet18 file and gen-eval's classifier
checkpoint -> a classifier (or 512-d features) ONNX model that matches torch eager."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from gen_eval import contract
from gen_eval.data.labels import LabelSpace
from gen_eval.exporter.parity import compare_outputs
from gen_eval.trainers.checkpoint import save_checkpoint
from gen_eval.trainers.judge import penultimate, ta_resnet18
from helpers.cli import assert_one_line_error, run_cli_here

COLOURS = ["gray", "red", "blue", "green", "brown", "purple", "cyan", "yellow"]
NAMES = [f"{colour} {shape}" for colour in COLOURS for shape in ("cube", "sphere", "cylinder")]


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py


def trained_looking_judge(num_labels: int, seed: int = 0) -> nn.Module:
    """The TA architecture with random weights and non-trivial BatchNorm statistics."""
    torch.manual_seed(seed)
    model = ta_resnet18(num_labels)
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)
    return model.eval()


@pytest.fixture(scope="module")
def ta_file(tmp_path_factory) -> tuple[Path, nn.Module, Path]:
    """A crafted TA-format checkpoint (as the TA's evaluator loads it) and an iCLEVR-style objects.json."""
    folder = tmp_path_factory.mktemp("ta")
    model = trained_looking_judge(len(NAMES))
    path = folder / "classifier_weight.pth"
    torch.save({"model": model.state_dict()}, path)
    objects = folder / "objects.json"
    objects.write_text(json.dumps({name: i for i, name in enumerate(NAMES)}))
    return path, model, objects


def images(batch: int, seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (batch, 3, 64, 64)).astype(np.float32)


def metadata(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def test_ta_checkpoint_exports_and_matches_torch_eager(ta_file, tmp_path):
    checkpoint, model, objects = ta_file
    out = tmp_path / "classifier.onnx"
    result = run_cli_here("export-classifier", checkpoint, "--out", out, "--objects", objects)
    assert result.returncode == 0, result.stderr
    assert "(classifier" in result.stdout and "batch 8:" in result.stdout

    meta = metadata(out)
    assert meta[contract.KEY_ROLE] == "classifier"
    assert contract.parse_image_shape(meta[contract.KEY_IMAGE_SHAPE]) == (3, 64, 64)
    assert contract.parse_value_range(meta[contract.KEY_VALUE_RANGE]) == (-1.0, 1.0)
    assert LabelSpace.from_json(meta[contract.KEY_LABEL_SPACE]) == LabelSpace.multilabel(NAMES)

    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"] and [o.name for o in session.get_outputs()] == ["probs"]
    batch = images(5)
    (probs,) = session.run(None, {"image": batch})
    with torch.no_grad():
        expected = model(torch.from_numpy(batch)).numpy()
    assert probs.shape == (5, 24) and ((probs > 0) & (probs < 1)).all()
    assert all(c.passed for c in compare_outputs(model, [batch], [probs]))  # float32 parity on any CPU
    # the same top-k the TA's evaluator would take
    assert (np.argsort(-probs, axis=1)[:, :3] == np.argsort(-expected, axis=1)[:, :3]).all()


def test_features_export_is_the_penultimate_layer(ta_file, tmp_path):
    checkpoint, model, _ = ta_file
    out = tmp_path / "judge-features.onnx"
    result = run_cli_here("export-classifier", checkpoint, "--out", out, "--features")
    assert result.returncode == 0, result.stderr
    meta = metadata(out)
    assert meta[contract.KEY_ROLE] == "features"
    assert contract.parse_image_shape(meta[contract.KEY_IMAGE_SHAPE]) == (3, 64, 64)
    assert contract.parse_value_range(meta[contract.KEY_VALUE_RANGE]) == (-1.0, 1.0)
    batch = images(3, seed=8)
    (features,) = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"image": batch})
    assert features.shape == (3, 512)
    assert all(c.passed for c in compare_outputs(penultimate(model), [batch], [features]))


def test_missing_or_wrong_label_names_are_one_line_errors(ta_file, tmp_path):
    checkpoint, _, _ = ta_file
    out = tmp_path / "c.onnx"
    assert_one_line_error(run_cli_here("export-classifier", checkpoint, "--out", out), "--objects")
    small = tmp_path / "objects5.json"
    small.write_text(json.dumps({name: i for i, name in enumerate(NAMES[:5])}))
    assert_one_line_error(run_cli_here("export-classifier", checkpoint, "--out", out, "--objects", small),
                          "predicts 24 labels", "5 names")
    not_judge = tmp_path / "other.pth"
    torch.save({"model": {"conv.weight": torch.zeros(3, 3)}}, not_judge)
    assert_one_line_error(run_cli_here("export-classifier", not_judge, "--out", out, "--objects", small),
                          "not a ResNet18 judge")
    assert not out.exists()


def test_gen_eval_classifier_checkpoint_carries_its_label_space(tmp_path):
    space = LabelSpace.categorical({"hair": ["h0", "h1", "h2"], "glasses": ["no", "yes"]})
    model = trained_looking_judge(space.size, seed=1)
    checkpoint = save_checkpoint(tmp_path / "last.pt", {
        "family": "classifier", "config": {"image_size": 64, "image_channels": 3}, "label_space": space.to_dict(),
        "step": 10, "epoch": 1, "networks": {"classifier": model.state_dict()}, "optimizers": {}, "rng": {}, "extra": {}})
    out = tmp_path / "classifier.onnx"
    result = run_cli_here("export-classifier", checkpoint, "--out", out)
    assert result.returncode == 0, result.stderr
    assert LabelSpace.from_json(metadata(out)[contract.KEY_LABEL_SPACE]) == space
    batch = images(2, seed=9)
    (probs,) = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"image": batch})
    assert all(c.passed for c in compare_outputs(model, [batch], [probs]))
