"""The FID Inception: our graph against pytorch-fid's own InceptionV3 with the same (random) weights,
`gen-eval fid` against pytorch-fid's calculate_fid_given_paths, the weights checksum, and
fetch-inception's failure paths (no network here).

Random weights stand in for pt_inception-2015-12-05-6726825d.pth (not downloadable here); they are
made once per session. pytorch-fid gets them by replacing its download function.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from PIL import Image

from gen_eval import contract
from gen_eval.errors import UserError
from gen_eval.exporter.fid_weights import FID_WEIGHTS_NAME, FID_WEIGHTS_SHA256, check_weights_file, fetch_inception
from gen_eval.exporter.inception import build_fid_features, random_fid_weights
from gen_eval.exporter.parity import OutputError, float32_tolerance
from helpers.cli import assert_one_line_error, run_cli_here

pytestmark = pytest.mark.usefixtures("two_torch_threads")  # conftest.py


@pytest.fixture(scope="session")
def fid_weights(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    path = tmp_path_factory.mktemp("inception") / "inception-random.pth"
    state_dict = random_fid_weights(seed=0)
    torch.save(state_dict, path)
    return path, state_dict


@pytest.fixture(scope="session")
def inception_onnx(fid_weights) -> Path:
    """Exported through the command line once. --no-verify: the tests below compare with pytorch-fid itself."""
    weights, _ = fid_weights
    out = weights.parent / "inception.onnx"
    result = run_cli_here("export-inception", weights, "--out", out, "--no-verify")
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture()
def pytorch_fid_with(monkeypatch):
    """pytorch-fid's InceptionV3 / calculate_fid_given_paths, loading the given state dict instead of downloading."""
    import pytorch_fid.inception

    def use(state_dict):
        monkeypatch.setattr(pytorch_fid.inception, "load_state_dict_from_url", lambda *args, **kwargs: state_dict)
        return pytorch_fid.inception.InceptionV3([pytorch_fid.inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()

    return use


def uint8_images(count: int, seed: int, size: int = 64) -> np.ndarray:
    """Smooth random scenes (blocks of colour plus noise), uint8 HWC, as a PNG would hold them."""
    rng = np.random.default_rng(seed)
    block = -(-size // 8)
    coarse = rng.integers(0, 256, size=(count, 8, 8, 3)).astype(np.float64)
    blocks = coarse.repeat(block, axis=1).repeat(block, axis=2)[:, :size, :size]
    images = blocks + rng.normal(0, 20, (count, size, size, 3))
    return np.clip(images, 0, 255).astype(np.uint8)


def as_model_input(images_u8: np.ndarray) -> np.ndarray:
    """What pytorch-fid feeds its model: ToTensor of the uint8 image (x / 255, NCHW float32)."""
    return (images_u8.astype(np.float32) / 255.0).transpose(0, 3, 1, 2).copy()


def float64_features(state_dict, images: np.ndarray) -> np.ndarray:
    """The same network and images in float64: the truth both float32 runs are measured against."""
    exact = build_fid_features({k: v.double() if v.is_floating_point() else v for k, v in state_dict.items()}).double()
    with torch.no_grad():
        return exact(torch.from_numpy(images).double()).numpy()


def test_onnx_features_match_pytorch_fid(fid_weights, inception_onnx, pytorch_fid_with):
    """Same weights, same images: our torch module is bit-identical to pytorch-fid's InceptionV3, and
    the ONNX graph matches it to float32 rounding."""
    _, state_dict = fid_weights
    reference = pytorch_fid_with(state_dict)
    ours = build_fid_features(state_dict)
    session = ort.InferenceSession(str(inception_onnx), providers=["CPUExecutionProvider"])
    for count, size in ((2, 64), (1, 37)):  # any input size: the graph resizes to 299 as pytorch-fid does
        images = as_model_input(uint8_images(count, seed=size, size=size))
        with torch.no_grad():
            expected = reference(torch.from_numpy(images))[0].flatten(1)
            assert torch.equal(ours(torch.from_numpy(images)), expected)
        expected = expected.numpy()
        (features,) = session.run(["features"], {"image": images})
        assert features.shape == (count, 2048) and features.dtype == np.float32
        # the export gate's own rule: as close to float64 as float32 arithmetic allows on any CPU
        exact = float64_features(state_dict, images)
        error, tolerance = OutputError.between(features, exact), float32_tolerance(exact, OutputError.between(expected, exact))
        assert error.max <= tolerance.max and error.rms <= tolerance.rms, (error, tolerance)


def test_exported_inception_contract(fid_weights, inception_onnx):
    weights, _ = fid_weights
    model = onnx.load(str(inception_onnx))
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta[contract.KEY_ROLE] == "features"
    assert contract.parse_value_range(meta[contract.KEY_VALUE_RANGE]) == (0.0, 1.0)
    assert contract.KEY_IMAGE_SHAPE not in meta  # any size: the evaluator must not resize first
    assert meta[contract.KEY_WEIGHTS_SHA256] == hashlib.sha256(weights.read_bytes()).hexdigest()
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert model.graph.input[0].name == "image" and dims[1] == 3 and all(isinstance(d, str) for d in dims[::2])
    assert dims[3] and isinstance(dims[3], str)
    out_dims = [d.dim_param or d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
    assert model.graph.output[0].name == "features" and out_dims[1] == 2048
    logit_dims = [d.dim_param or d.dim_value for d in model.graph.output[1].type.tensor_type.shape.dim]
    assert model.graph.output[1].name == "logits" and logit_dims[1] == 1008
    # random weights are not the published file: never exported under its name
    assert meta[contract.KEY_FAMILY] == "pytorch-fid-inception-v3-other-weights"
    assert all(t.data_location != onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    assert sorted(p.name for p in inception_onnx.parent.iterdir() if "inception" in p.name) == [
        "inception-random.pth", "inception.onnx"]


def write_pngs(folder: Path, images_u8: np.ndarray) -> Path:
    folder.mkdir()
    for i, image in enumerate(images_u8):
        Image.fromarray(image).save(folder / f"{i:03d}.png")
    return folder


@pytest.mark.slow  # pytorch-fid's scipy sqrtm of a 2048x2048 product: ~50 s of CPU on this machine
@pytest.mark.filterwarnings("ignore:The `disp` argument is deprecated", "ignore:Matrix is singular")
def test_gen_eval_fid_equals_pytorch_fid_on_two_png_folders(fid_weights, inception_onnx, pytorch_fid_with, tmp_path):
    from pytorch_fid.fid_score import calculate_fid_given_paths

    _, state_dict = fid_weights
    pytorch_fid_with(state_dict)
    first = write_pngs(tmp_path / "a", uint8_images(6, seed=3))
    second = write_pngs(tmp_path / "b", uint8_images(6, seed=4))
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        expected = float(calculate_fid_given_paths([str(first), str(second)], batch_size=6, device="cpu",
                                                   dims=2048, num_workers=0))
    report = tmp_path / "fid.json"
    result = run_cli_here("fid", "--features", inception_onnx, "--ref", first, "--data", second,
                          "--report", report, "--device", "cpu")
    assert result.returncode == 0, result.stderr
    value = json.loads(report.read_text())["value"]
    assert expected > 1.0
    # features within the export gate's float32 bound of torch's (up to 16x torch's own rounding) move FID by far less than 1e-3
    assert value == pytest.approx(expected, rel=1e-3)


# -- logits and IS: torch-fidelity's network on torch-fidelity's input handling ------------------------

@pytest.fixture(scope="session")
def fidelity_inception_onnx(fid_weights) -> Path:
    """The same weights with torch-fidelity's preprocessing (TF1 resize, (x-128)/128) built in."""
    weights, _ = fid_weights
    out = weights.parent / "inception-torch-fidelity.onnx"
    result = run_cli_here("export-inception", weights, "--out", out, "--no-verify", "--preprocessing", "torch-fidelity")
    assert result.returncode == 0, result.stderr
    return out


def torch_fidelity_extractor(weights: Path, dtype: str = "float32"):
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    return FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                       feature_extractor_weights_path=str(weights),
                                       feature_extractor_internal_dtype=dtype)


def test_features_and_logits_match_torch_fidelity(fid_weights, fidelity_inception_onnx):
    """pytorch-fid's weights file loads into torch-fidelity's Inception unchanged (same keys); with
    torch-fidelity's input handling our graph gives its pool3 features and its IS logits
    (``logits_unbiased``: pool3 @ fc.weight.T) to float32 rounding: judged, as the export gate does,
    against torch-fidelity run in float64 (its own float32 run sets the scale of rounding)."""
    weights, _ = fid_weights
    ours = ort.InferenceSession(str(fidelity_inception_onnx), providers=["CPUExecutionProvider"])
    assert [o.name for o in ours.get_outputs()] == ["features", "logits"]
    single, double = torch_fidelity_extractor(weights), torch_fidelity_extractor(weights, "float64")
    for count, size in ((2, 64), (1, 37)):  # downscaling and upscaling both go through the TF1 resize
        images_u8 = uint8_images(count, seed=size, size=size).transpose(0, 3, 1, 2).copy()
        got = ours.run(["features", "logits"], {"image": images_u8.astype(np.float32) / 255})
        with torch.no_grad():
            exact = [t.double().numpy() for t in double(torch.from_numpy(images_u8))]
            torch32 = [t.numpy() for t in single(torch.from_numpy(images_u8))]
        for name, value, truth, theirs in zip(("features", "logits"), got, exact, torch32):
            error = OutputError.between(value, truth)
            tolerance = float32_tolerance(truth, OutputError.between(theirs, truth))
            assert error.max <= tolerance.max and error.rms <= tolerance.rms, (name, error, tolerance)


def test_inception_score_equals_torch_fidelity_on_a_png_folder(fid_weights, fidelity_inception_onnx, tmp_path):
    """`gen-eval metrics --metrics is` against torch_fidelity.calculate_metrics(isc=True) on the same PNGs
    and weights. Tolerance rel 1e-4: the logits agree to float32 rounding (~1e-5 of their scale, test
    above), which moves IS by at most a few 1e-5 (IS takes exp of a mean of softmax KL terms)."""
    import torch_fidelity

    weights, _ = fid_weights
    folder = write_pngs(tmp_path / "images", uint8_images(20, seed=7))
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        expected = torch_fidelity.calculate_metrics(input1=str(folder), isc=True, cuda=False, cache=False,
                                                    verbose=False, batch_size=10, isc_splits=10, save_cpu_ram=True,
                                                    feature_extractor_weights_path=str(weights))
    report = tmp_path / "is.json"
    result = run_cli_here("metrics", "--features", fidelity_inception_onnx, "--data", folder, "--ref", folder,
                          "--metrics", "is", "--report", report, "--device", "cpu")
    assert result.returncode == 0, result.stderr
    ours = json.loads(report.read_text())["is"]
    assert ours["n"] == 20 and ours["splits"] == 10
    assert ours["mean"] == pytest.approx(expected["inception_score_mean"], rel=1e-4)
    assert ours["std"] == pytest.approx(expected["inception_score_std"], rel=1e-2, abs=1e-6)


# -- the weights file: checksum, errors ---------------------------------------------------------------

def test_known_file_name_with_wrong_checksum_is_refused(fid_weights, tmp_path):
    weights, _ = fid_weights
    impostor = tmp_path / FID_WEIGHTS_NAME
    impostor.write_bytes(weights.read_bytes())
    result = run_cli_here("export-inception", impostor, "--out", tmp_path / "inception.onnx")
    assert_one_line_error(result, "SHA-256", FID_WEIGHTS_SHA256[:16], "fetch-inception")
    assert not (tmp_path / "inception.onnx").exists()


def test_hub_style_hash_prefix_is_checked(tmp_path):
    data = b"not really weights"
    digest = hashlib.sha256(data).hexdigest()
    good = tmp_path / f"weights-{digest[:8]}.pth"
    good.write_bytes(data)
    assert check_weights_file(good) == digest
    bad = tmp_path / "weights-0badc0de.pth"
    bad.write_bytes(data)
    with pytest.raises(UserError, match="promises a SHA-256 starting 0badc0de"):
        check_weights_file(bad)


def test_weights_that_do_not_fit_are_a_one_line_error(fid_weights, tmp_path):
    _, state_dict = fid_weights
    partial = {k: v for k, v in state_dict.items() if not k.startswith("Mixed_7c")}
    path = tmp_path / "partial.pth"
    torch.save(partial, path)
    assert_one_line_error(run_cli_here("export-inception", path, "--out", tmp_path / "i.onnx"),
                          "do not fit pytorch-fid's Inception-v3", "Mixed_7c")
    assert_one_line_error(run_cli_here("export-inception", tmp_path / "absent.pth", "--out", tmp_path / "i.onnx"),
                          "absent.pth")
    assert not (tmp_path / "i.onnx").exists()


# -- fetch-inception: the only download, never implicit -------------------------------------------------

def test_fetch_inception_without_network_is_a_one_line_error(tmp_path):
    out = tmp_path / FID_WEIGHTS_NAME
    result = run_cli_here("fetch-inception", "--out", out, "--url", "http://127.0.0.1:9/pt_inception.pth")
    assert_one_line_error(result, "cannot download", "export-inception")
    assert list(tmp_path.iterdir()) == []


def test_fetch_inception_checks_the_checksum_and_writes_atomically(tmp_path):
    source = tmp_path / "mirror.pth"
    source.write_bytes(b"weights" * 1000)
    out = tmp_path / "downloads" / FID_WEIGHTS_NAME
    with pytest.raises(UserError, match="nothing was written"):
        fetch_inception(out, url=source.as_uri(), progress=False)  # not the published file
    assert not out.parent.exists() or list(out.parent.iterdir()) == []

    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    assert fetch_inception(out, url=source.as_uri(), sha256=digest, progress=False) == out
    assert out.read_bytes() == source.read_bytes()
    with pytest.raises(UserError, match="already exists"):
        fetch_inception(out, url=source.as_uri(), sha256=digest, progress=False)
