"""Tests of the no-torch blocker and of model loading, on the small graphs of ``helpers.graphs``."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from helpers.cli import assert_one_line_error, run_cli, run_cli_here
from helpers.graphs import ICLEVR_SPACE, make_dense_head, make_generator


def test_blocker_really_blocks_torch(no_torch_env):
    result = subprocess.run([sys.executable, "-c", "import torch"], env=no_torch_env, capture_output=True, text=True)
    assert result.returncode != 0 and "blocked" in result.stderr


def test_load_generator_with_metadata(tmp_path):
    from gen_eval.evaluator import load_model

    path = make_generator(tmp_path / "g.onnx", labels=24)
    model = load_model(path, role="generator", device="cpu")
    info = model.info
    assert (info.latent_dim, info.image_shape, info.value_range) == (8, (3, 8, 8), (-1.0, 1.0))
    assert info.conditional and info.label_space == ICLEVR_SPACE
    assert info.sources["latent_dim"] == "metadata"
    assert model.provider == "CPUExecutionProvider"


def test_load_generator_without_metadata_infers_from_shapes(tmp_path):
    from gen_eval.evaluator import load_model

    path = make_generator(tmp_path / "g.onnx", metadata=False, z_name="noise", out_name="out")
    model = load_model(path, role="generator", device="cpu", value_range=(-1, 1))
    assert model.info.latent_dim == 8 and model.info.sources["latent_dim"] == "input z shape"
    assert model.info.image_shape == (3, 8, 8)
    assert "noise->z" in model.info.sources["inputs"]


@pytest.mark.parametrize(
    "kwargs, load_kw, name",
    [
        (dict(metadata=False), {}, "value_range"),
        (dict(metadata=False, dynamic_z=True), dict(value_range=(-1, 1)), "latent_dim"),
        (dict(metadata=False, labels=24), dict(value_range=(-1, 1)), "objects"),
        (dict(), dict(latent_dim=16), "latent_dim"),
    ],
)
def test_missing_or_conflicting_facts_name_the_parameter(tmp_path, kwargs, load_kw, name):
    """From Python the error names the keyword; while a command runs, that command's option."""
    from gen_eval.errors import UserError, flag_style
    from gen_eval.evaluator import load_model

    path = make_generator(tmp_path / "g.onnx", **kwargs)
    with flag_style(lambda param, negative: "--" + param.replace("_", "-")):
        with pytest.raises(UserError, match="--" + name.replace("_", r"\-")):
            load_model(path, role="generator", device="cpu", **load_kw)
    with pytest.raises(UserError, match=rf"[ (]{name}\b") as caught:
        load_model(path, role="generator", device="cpu", **load_kw)
    assert "--" not in str(caught.value)


def test_role_mismatch_and_bad_files(tmp_path):
    from gen_eval.errors import UserError
    from gen_eval.evaluator import load_model

    classifier = make_dense_head(tmp_path / "c.onnx", role="classifier")
    with pytest.raises(UserError, match="is a classifier model"):
        load_model(classifier, role="generator", device="cpu")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a protobuf at all" * 10)
    with pytest.raises(UserError, match="cannot load this model"):
        load_model(junk, role="generator", device="cpu")
    with pytest.raises(UserError, match="not found"):
        load_model(tmp_path / "missing.onnx", device="cpu")


def test_dcgan_style_rank4_noise_and_static_batch(tmp_path):
    from gen_eval.evaluator import load_model
    from gen_eval.evaluator.noise import latent_noise

    rank4 = load_model(make_generator(tmp_path / "a.onnx", z_rank4=True), device="cpu")
    flat = load_model(make_generator(tmp_path / "b.onnx"), device="cpu")
    z = latent_noise(0, range(5), 8)
    # other graphs and batch shapes may round differently on another CPU: equal to float32 precision
    # (the export gate's floor, 2^-16 of these [-1, 1] images), not bit for bit
    np.testing.assert_allclose(rank4.generate(z), flat.generate(z), rtol=0, atol=2.0 ** -16)
    fixed = load_model(make_generator(tmp_path / "c.onnx", static_batch=4), device="cpu")
    assert fixed.batch_size == 4
    np.testing.assert_allclose(fixed.generate(z), flat.generate(z), rtol=0, atol=2.0 ** -16)  # padded 5 -> 2 batches of 4


def test_generator_nan_is_a_one_line_error(tmp_path):
    from gen_eval.errors import UserError
    from gen_eval.evaluator import load_model
    from gen_eval.evaluator.noise import latent_noise

    model = load_model(make_generator(tmp_path / "g.onnx", nan=True), device="cpu")
    with pytest.raises(UserError, match="NaN/Inf"):
        model.generate(latent_noise(0, range(4), 8))


def test_cuda_request_without_gpu_is_a_one_line_error(no_torch_env, tmp_path):
    from gen_eval.evaluator.runtime import cuda_problem

    path = make_generator(tmp_path / "g.onnx")
    result = run_cli(no_torch_env, "info", path, "--device", "cuda")
    if cuda_problem() is None:
        pytest.skip("this machine has a working CUDA GPU")
    assert_one_line_error(result, "--device cuda", "--device cpu")
    auto = run_cli(no_torch_env, "info", path, "--device", "auto")
    assert auto.returncode == 0, auto.stderr
    assert "on CPUExecutionProvider" in auto.stderr and "CUDA not used" in auto.stderr


def test_info_command_without_torch(no_torch_env, tmp_path):
    path = make_generator(tmp_path / "g.onnx", metadata=False, labels=24)
    result = run_cli(no_torch_env, "info", path)
    assert result.returncode == 0, result.stderr
    assert "role" in result.stdout and "generator  [guessed from the graph]" in result.stdout
    assert "needs --value-range, --objects" in result.stdout
    assert "runtime: onnxruntime" in result.stderr
    not_onnx = tmp_path / "model.pth"
    not_onnx.write_bytes(b"PK\x03\x04 zip")
    assert_one_line_error(run_cli_here("info", not_onnx), "PyTorch checkpoint")


def test_io_binding_path_matches_plain_runs(tmp_path):
    from gen_eval.evaluator import load_model
    from gen_eval.evaluator.batches import BatchRunner
    from gen_eval.evaluator.noise import latent_noise

    model = load_model(make_generator(tmp_path / "g.onnx"), device="cpu", batch_size=4)
    z = latent_noise(3, range(10), 8)
    plain = model.generate(z)
    model._runner = BatchRunner(model.session, 4, io_binding=True)
    np.testing.assert_array_equal(model.generate(z), plain)
