"""`gen-eval metrics` (and gen_eval.metrics): one feature pass, every metric, the same numbers as the
reference implementations on the same features; bad requests are one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from gen_eval.cli import cli
from helpers.graphs import make_dense_head


def folder(path, seed: int, shift: int = 0, count: int = 60):
    path.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(np.clip(rng.integers(0, 256, (8, 8, 3)) + shift, 0, 255).astype(np.uint8)).save(path / f"{i:03d}.png")
    return path


def features_of(model_path, images_dir):
    from gen_eval.data.datasets import open_dataset
    from gen_eval.evaluator.features import features_of_uint8
    from gen_eval.evaluator.model import load_model

    model = load_model(model_path, role="features", device="cpu")
    images = open_dataset(images_dir, fmt="folder")
    return features_of_uint8(model, np.stack([images.image(i) for i in range(len(images))]).transpose(0, 3, 1, 2))


def test_metrics_equal_prdc_and_frechet_on_the_same_features(tmp_path):
    import prdc as prdc_package

    from gen_eval.evaluator.frechet import frechet_distance

    feats = make_dense_head(tmp_path / "f.onnx", role="features", out_dim=16, activation="Relu")
    gen, ref = folder(tmp_path / "gen", 1, shift=40), folder(tmp_path / "ref", 2)
    report = tmp_path / "m.json"
    result = CliRunner().invoke(cli, ["metrics", "--features", str(feats), "--data", str(gen), "--ref", str(ref),
                                      "--metrics", "fid,kid,prdc", "--prdc-k", "3", "--device", "cpu",
                                      "--report", str(report)])
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    g, r = features_of(feats, gen).astype(np.float64), features_of(feats, ref).astype(np.float64)
    expected = prdc_package.compute_prdc(real_features=r.astype(np.float32), fake_features=g.astype(np.float32),
                                         nearest_k=3)
    for key in ("precision", "recall", "density", "coverage"):
        assert data["prdc"][key] == pytest.approx(expected[key], abs=1e-12), key
    fd = frechet_distance(g.mean(0), np.cov(g, rowvar=False), r.mean(0), np.cov(r, rowvar=False))
    assert data["fid"]["fid"] == pytest.approx(fd, rel=1e-6)
    assert data["kid"]["subset_size"] == 60 and np.isfinite(data["kid"]["mean"])
    assert data["n"] == 60 and data["reference_n"] == 60 and len(data["provenance"]["inputs"]["features"]["sha256"]) == 64


@pytest.mark.parametrize("args, says", [
    (["--metrics", "kid,sharpness"], "unknown metric 'sharpness'"),
    (["--metrics", "is"], "logits"),
])
def test_bad_metric_requests_are_one_line(tmp_path, args, says):
    feats = make_dense_head(tmp_path / "f.onnx", role="features", out_dim=16, activation="Relu")
    gen, ref = folder(tmp_path / "gen", 1, count=8), folder(tmp_path / "ref", 2, count=8)
    result = CliRunner().invoke(cli, ["metrics", "--features", str(feats), "--data", str(gen), "--ref", str(ref),
                                      "--device", "cpu", *args])
    assert result.exit_code == 2 and says in result.stderr and "Traceback" not in result.output + result.stderr
