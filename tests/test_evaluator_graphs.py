"""Small ONNX graphs for the evaluator tests (onnx.helper, no torch), and tests of model loading.

Other ``test_evaluator_*`` files import the builders from here. Each graph is a few dense layers
with fixed random weights, so outputs depend on every input value and on nothing else.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from gen_eval.data.labels import LabelSpace

REPO = Path(__file__).resolve().parents[1]
ICLEVR_NAMES = [f"{c} {s}" for s in ("cube", "sphere", "cylinder")
                for c in ("gray", "red", "blue", "green", "brown", "purple", "cyan", "yellow")]
ICLEVR_SPACE = LabelSpace.multilabel(ICLEVR_NAMES)


def _save(model: onnx.ModelProto, path: Path, metadata: dict | None) -> Path:
    if metadata:
        for key, value in metadata.items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, str(value)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _model(nodes, inputs, outputs, initializers) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return model


def _dims(batch, *rest):
    return [batch, *rest]


def make_generator(path: Path, *, latent_dim=8, image_shape=(3, 8, 8), labels=0, seed=0, metadata=True,
                   value_range="-1,1", z_name="z", labels_name="labels", out_name="image", dynamic_z=False,
                   z_rank4=False, static_batch=None, nan=False, label_space: LabelSpace | None = None) -> Path:
    """z [B, latent] (+ labels [B, L]) -> tanh(dense) -> image [B, C, H, W]."""
    rng = np.random.default_rng(seed)
    c, h, w = image_shape
    size = c * h * w
    batch = static_batch or "B"
    zdim = "Z" if dynamic_z else latent_dim
    z_shape = _dims(batch, zdim, 1, 1) if z_rank4 else _dims(batch, zdim)
    inputs = [helper.make_tensor_value_info(z_name, TensorProto.FLOAT, z_shape)]
    nodes, init = [], []
    flat_z = z_name
    if z_rank4:
        init.append(numpy_helper.from_array(np.array([0, -1], dtype=np.int64), "flat2"))
        nodes.append(helper.make_node("Reshape", [z_name, "flat2"], ["zflat"]))
        flat_z = "zflat"
    width = latent_dim + labels
    if labels:
        inputs.append(helper.make_tensor_value_info(labels_name, TensorProto.FLOAT, _dims(batch, labels)))
        nodes.append(helper.make_node("Concat", [flat_z, labels_name], ["zl"], axis=1))
        flat_z = "zl"
    weight = (rng.standard_normal((width, size)) / np.sqrt(width)).astype(np.float32)
    init += [numpy_helper.from_array(weight, "W"),
             numpy_helper.from_array(np.array([-1, c, h, w], dtype=np.int64), "shape")]
    nodes += [helper.make_node("MatMul", [flat_z, "W"], ["lin"])]
    if nan:  # log of a negative number -> NaN
        nodes += [helper.make_node("Log", ["lin"], ["act"])]
    else:
        nodes += [helper.make_node("Tanh", ["lin"], ["act"])]
    if value_range == "0,1":
        init.append(numpy_helper.from_array(np.array(0.5, dtype=np.float32), "half"))
        nodes += [helper.make_node("Mul", ["act", "half"], ["m"]), helper.make_node("Add", ["m", "half"], ["act01"])]
        last = "act01"
    else:
        last = "act"
    nodes.append(helper.make_node("Reshape", [last, "shape"], [out_name]))
    outputs = [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, _dims(batch, c, h, w))]
    meta = None
    if metadata:
        meta = {"gen_eval.role": "generator", "gen_eval.family": "test", "gen_eval.latent_dim": latent_dim,
                "gen_eval.image_shape": f"{c},{h},{w}", "gen_eval.value_range": value_range, "gen_eval.contract": "1"}
        if labels:
            meta["gen_eval.label_space"] = (label_space or ICLEVR_SPACE).to_json()
    return _save(_model(nodes, inputs, outputs, init), path, meta)


def make_dense_head(path: Path, *, role: str, image_shape=(3, 8, 8), out_dim=24, seed=1, metadata=True,
                    value_range="-1,1", activation="Sigmoid", in_name="image", out_name=None,
                    dynamic_hw=False, label_space: LabelSpace | None = None, extra_meta=None) -> Path:
    """image [B, C, H, W] -> activation(dense(flatten)) -> [B, out_dim] (classifier / features)."""
    rng = np.random.default_rng(seed)
    c, h, w = image_shape
    out_name = out_name or {"classifier": "probs", "features": "features"}[role]
    weight = (rng.standard_normal((c * h * w, out_dim)) / np.sqrt(c * h * w) * 3).astype(np.float32)
    in_shape = ["B", c, "H", "W"] if dynamic_hw else ["B", c, h, w]
    nodes = [helper.make_node("Flatten", [in_name], ["flat"], axis=1), helper.make_node("MatMul", ["flat", "W"], ["lin"])]
    if dynamic_hw:  # average-pool to a fixed size first so any H, W works
        nodes = [helper.make_node("GlobalAveragePool", [in_name], ["pooled"]),
                 helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
                 helper.make_node("MatMul", ["flat", "W"], ["lin"])]
        weight = rng.standard_normal((c, out_dim)).astype(np.float32)
    nodes.append(helper.make_node(activation, ["lin"], [out_name]))
    model = _model(nodes, [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, in_shape)],
                   [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, ["B", out_dim])],
                   [numpy_helper.from_array(weight, "W")])
    meta = None
    if metadata:
        meta = {"gen_eval.role": role, "gen_eval.value_range": value_range, "gen_eval.contract": "1"}
        if not dynamic_hw:
            meta["gen_eval.image_shape"] = f"{c},{h},{w}"
        if role == "classifier":
            meta["gen_eval.label_space"] = (label_space or ICLEVR_SPACE).to_json()
        meta.update(extra_meta or {})
    return _save(model, path, meta)


def make_oracle_classifier(path: Path, table: np.ndarray, *, image_shape=(3, 8, 8), metadata=True) -> Path:
    """probs = table[row] where row is encoded in the image's first pixel (value row / 100 in [-1, 1])."""
    # probs = sum_r onehot_r(pixel) * table[r]; the one-hot is built with Equal on a rounded index.
    c, h, w = image_shape
    rows = len(table)
    nodes = [
        helper.make_node("Slice", ["image", "starts", "ends", "axes"], ["px"]),  # [B,1,1,1]
        helper.make_node("Reshape", ["px", "flat2"], ["pxf"]),  # [B,1]
        helper.make_node("Mul", ["pxf", "hundred"], ["scaled"]),
        helper.make_node("Round", ["scaled"], ["idx"]),
        helper.make_node("Equal", ["idx", "range"], ["eq"]),  # [B, rows]
        helper.make_node("Cast", ["eq"], ["onehot"], to=TensorProto.FLOAT),
        helper.make_node("MatMul", ["onehot", "table"], ["probs"]),
    ]
    init = [
        numpy_helper.from_array(np.array([0, 0, 0, 0], dtype=np.int64), "starts"),
        numpy_helper.from_array(np.array([2**62, 1, 1, 1], dtype=np.int64), "ends"),
        numpy_helper.from_array(np.array([0, 1, 2, 3], dtype=np.int64), "axes"),
        numpy_helper.from_array(np.array([0, 1], dtype=np.int64), "flat2"),
        numpy_helper.from_array(np.array(100.0, dtype=np.float32), "hundred"),
        numpy_helper.from_array(np.arange(rows, dtype=np.float32)[None, :], "range"),
        numpy_helper.from_array(np.asarray(table, dtype=np.float32), "table"),
    ]
    model = _model(nodes, [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["B", c, h, w])],
                   [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["B", table.shape[1]])], init)
    meta = {"gen_eval.role": "classifier", "gen_eval.value_range": "-1,1",
            "gen_eval.image_shape": f"{c},{h},{w}"} if metadata else None
    return _save(model, path, meta)


def make_encoder(path: Path, decoder_weight: np.ndarray | None = None, *, latent_dim=8, image_shape=(3, 8, 8),
                 seed=2, metadata=True, value_range="0,1") -> Path:
    """image -> mu = flatten @ W, logvar = zeros (W: pseudo-inverse of the decoder's, when given)."""
    rng = np.random.default_rng(seed)
    c, h, w = image_shape
    weight = ((rng.standard_normal((c * h * w, latent_dim)) / np.sqrt(c * h * w)).astype(np.float32)
              if decoder_weight is None else decoder_weight.astype(np.float32))
    nodes = [helper.make_node("Flatten", ["image"], ["flat"], axis=1),
             helper.make_node("MatMul", ["flat", "W"], ["mu"]),
             helper.make_node("Mul", ["mu", "zero"], ["logvar"])]
    model = _model(nodes, [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["B", c, h, w])],
                   [helper.make_tensor_value_info("mu", TensorProto.FLOAT, ["B", latent_dim]),
                    helper.make_tensor_value_info("logvar", TensorProto.FLOAT, ["B", latent_dim])],
                   [numpy_helper.from_array(weight, "W"), numpy_helper.from_array(np.array(0, np.float32), "zero")])
    meta = {"gen_eval.role": "encoder", "gen_eval.latent_dim": latent_dim, "gen_eval.value_range": value_range,
            "gen_eval.image_shape": f"{c},{h},{w}"} if metadata else None
    return _save(model, path, meta)


def make_linear_decoder(path: Path, weight: np.ndarray, *, image_shape=(3, 8, 8), metadata=True, value_range="0,1"):
    """z -> image = reshape(z @ W) (no activation): exact reconstructions for tests of the MSE."""
    c, h, w = image_shape
    latent = weight.shape[0]
    nodes = [helper.make_node("MatMul", ["z", "W"], ["lin"]), helper.make_node("Reshape", ["lin", "shape"], ["image"])]
    model = _model(nodes, [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["B", latent])],
                   [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["B", c, h, w])],
                   [numpy_helper.from_array(weight.astype(np.float32), "W"),
                    numpy_helper.from_array(np.array([-1, c, h, w], dtype=np.int64), "shape")])
    meta = {"gen_eval.role": "generator", "gen_eval.latent_dim": latent, "gen_eval.value_range": value_range,
            "gen_eval.image_shape": f"{c},{h},{w}"} if metadata else None
    return _save(model, path, meta)


# -- running the CLI where torch cannot be imported --------------------------------------------
BLOCKER = '''
import importlib.abc, sys
class _NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision", "pytorch_fid"):
            raise ImportError(f"{name} is blocked in this test (the evaluator must not need it)")
        return None
sys.meta_path.insert(0, _NoTorch())
'''


@pytest.fixture(scope="session")
def no_torch_env(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("no_torch")
    (folder / "sitecustomize.py").write_text(BLOCKER)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(folder), str(REPO)])
    env["NO_COLOR"] = "1"
    return env


def run_cli(env: dict, *args, cwd=None) -> subprocess.CompletedProcess:
    """``gen-eval ARGS`` in a subprocess where ``import torch`` fails."""
    return subprocess.run([sys.executable, "-m", "gen_eval.cli", *map(str, args)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def run_cli_here(*args) -> subprocess.CompletedProcess:
    """``gen-eval ARGS`` in this process (fast; for error cases — the torch-free runs use :func:`run_cli`)."""
    from click.testing import CliRunner

    from gen_eval.cli import cli

    result = CliRunner().invoke(cli, [str(a) for a in args], prog_name="gen-eval")
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("runtime:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


# -- tests of the blocker and of model loading --------------------------------------------------
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
    "kwargs, load_kw, fragment",
    [
        (dict(metadata=False), {}, "--value-range"),
        (dict(metadata=False, dynamic_z=True), dict(value_range=(-1, 1)), "--latent-dim"),
        (dict(metadata=False, labels=24), dict(value_range=(-1, 1)), "--objects"),
        (dict(), dict(latent_dim=16), "--latent-dim"),
    ],
)
def test_missing_or_conflicting_facts_name_the_flag(tmp_path, kwargs, load_kw, fragment):
    from gen_eval.errors import UserError
    from gen_eval.evaluator import load_model

    path = make_generator(tmp_path / "g.onnx", **kwargs)
    with pytest.raises(UserError, match=fragment.replace("-", r"\-")):
        load_model(path, role="generator", device="cpu", **load_kw)


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
    from gen_eval.evaluator.noise import latent_noise
    from gen_eval.evaluator.runtime import BatchRunner

    model = load_model(make_generator(tmp_path / "g.onnx"), device="cpu", batch_size=4)
    z = latent_noise(3, range(10), 8)
    plain = model.generate(z)
    model._runner = BatchRunner(model.session, 4, io_binding=True)
    np.testing.assert_array_equal(model.generate(z), plain)
