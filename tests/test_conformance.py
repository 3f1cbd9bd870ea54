"""The conformance suite and `gen-eval selftest`: the evaluator's numbers against float64 golden values.

The golden values ship in the package; they were computed by torch in float64 (build.py) and must
be reproducible from the seeds. Every check has a stated tolerance (README, "Same numbers on every
machine"), so the suite passes on any CPU or GPU that computes float32 correctly, and fails on one
that does not (a broken model file stands in for a broken machine here).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import gen_eval.conformance as conformance
from gen_eval.conformance import selftest
from gen_eval.evaluator.runtime import cuda_problem
from helpers.cli import assert_one_line_error, run_cli


@pytest.mark.parametrize("threads,batch_size", [(None, None), (1, 1), (2, 7)])
def test_selftest_passes_on_this_cpu_for_any_batch_size_and_thread_count(threads, batch_size):
    report = selftest("cpu", threads=threads, batch_size=batch_size)
    assert report.provider == "CPUExecutionProvider"
    assert report.passed, report.table()
    names = {c.name.split(" ")[0] for c in report.checks}
    assert names == {"noise", "generator.images", "classifier.probs", "classifier.score", "features", "fid.real",
                     "fid.generator", "encoder.mu", "mse"}
    golden = json.loads((conformance.DATA / "golden.json").read_text())["checks"]
    score = next(c for c in report.checks if c.name == "classifier.score")
    assert score.value == golden["classifier.score"]["value"]  # exact, not approximately


def test_selftest_command_runs_without_torch(no_torch_env, tmp_path):
    report = tmp_path / "selftest.json"
    result = run_cli(no_torch_env, "selftest", "--device", "cpu", "--report", report)
    assert result.returncode == 0, result.stderr
    assert "runtime: onnxruntime" in result.stderr and "on CPUExecutionProvider" in result.stderr
    header = result.stdout.splitlines()[0].split()
    assert header == ["check", "value", "golden", "tolerance", "pass"]
    assert "selftest passed: 9 checks on CPUExecutionProvider" in result.stdout
    data = json.loads(report.read_text())
    assert data["passed"] and data["provider"] == "CPUExecutionProvider" and len(data["checks"]) == 9


def _mutate_features(folder, factor: float) -> None:
    """Every weight and bias of the features model times ``factor``."""
    model = onnx.load(str(folder / "features.onnx"))
    for tensor in model.graph.initializer:
        array = numpy_helper.to_array(tensor)
        if array.dtype == np.float32:
            tensor.CopyFrom(numpy_helper.from_array(array * np.float32(factor), tensor.name))
    onnx.save(model, str(folder / "features.onnx"))


def test_selftest_fails_when_the_numbers_are_off(monkeypatch, tmp_path):
    """A 1e-3 relative error in one model is what a broken kernel would cause: exit 1, the checks named."""
    folder = tmp_path / "data"
    shutil.copytree(conformance.DATA, folder)
    _mutate_features(folder, 1 + 1e-3)
    monkeypatch.setattr(conformance, "DATA", folder)
    report = selftest("cpu")
    failed = {c.name.split(" ")[0] for c in report.checks if not c.passed}
    assert failed == {"features", "fid.real", "fid.generator"}, report.table()

    from click.testing import CliRunner

    from gen_eval.cli import cli

    result = CliRunner().invoke(cli, ["selftest", "--device", "cpu"])
    assert result.exit_code == 1
    assert "error: selftest failed on CPUExecutionProvider: features (max |diff|), fid.real, fid.generator" in result.output


def test_selftest_on_cuda_without_a_gpu_is_a_one_line_error(no_torch_env):
    if cuda_problem() is None:
        pytest.skip("this machine has a working CUDA GPU (see the gpu-marked test)")
    assert_one_line_error(run_cli(no_torch_env, "selftest", "--device", "cuda"), "--device cuda", "--device cpu")


@pytest.mark.gpu
def test_selftest_passes_on_cuda():
    problem = cuda_problem()
    if problem:
        pytest.skip(f"no CUDA here: {problem}")
    report = selftest("cuda")
    assert report.provider == "CUDAExecutionProvider" and report.passed, report.table()


def test_golden_values_are_reproducible_from_the_seeds(tmp_path):
    """Rebuilding from the seeds gives the shipped weights bit for bit and the goldens to float64 rounding."""
    from gen_eval.conformance.build import build

    build(tmp_path)
    for name in ("generator", "classifier", "features", "encoder", "decoder"):
        shipped = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(conformance.DATA / f"{name}.onnx")).graph.initializer}
        rebuilt = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(tmp_path / f"{name}.onnx")).graph.initializer}
        assert shipped.keys() == rebuilt.keys()
        for key in shipped:
            np.testing.assert_array_equal(shipped[key], rebuilt[key])
    shipped = json.loads((conformance.DATA / "golden.json").read_text())["checks"]
    rebuilt = json.loads((tmp_path / "golden.json").read_text())["checks"]
    assert shipped["noise"] == rebuilt["noise"]
    for name in ("classifier.score", "fid.real", "fid.generator", "mse"):
        assert rebuilt[name]["value"] == pytest.approx(shipped[name]["value"], rel=1e-9), name
    with np.load(conformance.DATA / "golden.npz") as a, np.load(tmp_path / "golden.npz") as b:
        assert a.files == b.files
        for key in a.files:
            np.testing.assert_allclose(b[key], a[key], rtol=1e-9, atol=1e-12)
