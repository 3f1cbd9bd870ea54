"""Reconstruction MSE (encoder mu -> decoder, all pixels and channels, [0, 1] scale) and its gate/report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gen_eval.data.images import save_png
from helpers.cli import assert_one_line_error, run_cli, run_cli_here
from helpers.graphs import make_encoder, make_linear_decoder

SHAPE = (3, 8, 8)
DIM = 3 * 8 * 8


@pytest.fixture()
def image_folder(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (10, 8, 8, 3), dtype=np.uint8)
    folder = tmp_path / "data"
    for i, image in enumerate(images):
        save_png(image, folder / f"{i:03d}.png")
    return folder, images.transpose(0, 3, 1, 2).reshape(10, -1).astype(np.float64) / 255


def test_mse_of_a_linear_autoencoder_equals_numpy(no_torch_env, tmp_path, image_folder):
    folder, x = image_folder
    rng = np.random.default_rng(1)
    weight = rng.standard_normal((16, DIM)).astype(np.float32)  # decoder: z [16] -> image
    encoder_weight = np.linalg.pinv(weight.astype(np.float64)).astype(np.float32)  # image -> mu
    dec = make_linear_decoder(tmp_path / "dec.onnx", weight, value_range="0,1")
    enc = make_encoder(tmp_path / "enc.onnx", encoder_weight, latent_dim=16, value_range="0,1")
    expected = np.mean((x @ encoder_weight.astype(np.float64) @ weight.astype(np.float64) - x) ** 2)
    report = tmp_path / "mse.json"
    result = run_cli(no_torch_env, "mse", "--model", dec, "--encoder", enc, "--data", folder, "--report", report,
                     "--batch-size", 4)
    assert result.returncode == 0, result.stderr
    data = json.loads(report.read_text())
    assert data["metric"] == "reconstruction_mse" and data["scale"] == "[0, 1]" and data["n"] == 10
    assert data["value"] == pytest.approx(expected, rel=1e-5)
    assert data["values"] == 10 * DIM


def test_mse_is_reported_on_the_0_1_scale_whatever_the_model_range(no_torch_env, tmp_path, image_folder):
    folder, x = image_folder
    zero = np.zeros((4, DIM), np.float32)  # decoder outputs 0 in [-1, 1] = 0.5 on the [0, 1] scale
    dec = make_linear_decoder(tmp_path / "dec.onnx", zero, value_range="-1,1")
    enc = make_encoder(tmp_path / "enc.onnx", latent_dim=4, value_range="-1,1")
    expected = np.mean((x - 0.5) ** 2)
    report = tmp_path / "mse.json"
    ok = run_cli(no_torch_env, "mse", "--model", dec, "--encoder", enc, "--data", folder, "--report", report,
                 "--max-mse", 1.0)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(report.read_text())["value"] == pytest.approx(expected, rel=1e-6)
    assert "gate passed" in ok.stdout and "scale" in ok.stdout
    failed = run_cli(no_torch_env, "mse", "--model", dec, "--encoder", enc, "--data", folder, "--max-mse", 0.01)
    assert failed.returncode == 1 and "gate missed: reconstruction_mse" in failed.stderr


def test_mse_models_without_metadata_and_mismatches(no_torch_env, tmp_path, image_folder):
    folder, _ = image_folder
    weight = np.zeros((4, DIM), np.float32)
    dec = make_linear_decoder(tmp_path / "dec.onnx", weight, metadata=False)
    enc = make_encoder(tmp_path / "enc.onnx", latent_dim=4, metadata=False)
    assert_one_line_error(run_cli_here("mse", "--model", dec, "--encoder", enc, "--data", folder),
                          "--value-range")
    ok = run_cli(no_torch_env, "mse", "--model", dec, "--encoder", enc, "--data", folder, "--value-range", "0,1")
    assert ok.returncode == 0, ok.stderr
    enc8 = make_encoder(tmp_path / "enc8.onnx", latent_dim=8)
    assert_one_line_error(run_cli_here("mse", "--model", dec, "--encoder", enc8, "--data", folder,
                                  "--value-range", "0,1"), "8-d mu", "4-d z")
    big = make_encoder(tmp_path / "big.onnx", latent_dim=4, image_shape=(3, 16, 16))
    assert_one_line_error(run_cli_here("mse", "--model", dec, "--encoder", big, "--data", folder,
                                  "--value-range", "0,1"), "resolution")
    assert_one_line_error(run_cli_here("mse", "--model", dec, "--encoder", enc, "--data",
                                  tmp_path / "nowhere", "--value-range", "0,1"), "nowhere")
