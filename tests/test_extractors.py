"""The ViT extractors (dinov2-vitl14, clip-vitl14-336) and the CMMD metric.

Parity: random weights in each published format (a ``torch.save`` state dict with DINOv2's hub key
names; OpenAI's ``torch.jit`` archive of a whole CLIP in float16), reduced to 2 blocks of width 128
(2 heads), converted without torch, against torch references written from the published
architectures and preprocessing (tests/helpers/vit_reference.py) run in float64. CMMD against a
transcription of the reference code's ``mmd`` (google-research cmmd/distance.py).
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F

from gen_eval import contract
from gen_eval.errors import UserError
from gen_eval.evaluator.metrics import compute_metrics
from gen_eval.evaluator.metrics.cmmd import cmmd
from gen_eval.weights.named import EXTRACTORS
from gen_eval.weights.torchfile import load_script_state_dict
from helpers.cli import assert_one_line_error, run_cli, run_cli_here
from helpers.images import write_images
from helpers.vit_reference import random_clip, random_dinov2, save_clip_archive

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def dinov2_file(tmp_path_factory):
    model = random_dinov2(seed=1)
    path = tmp_path_factory.mktemp("dinov2") / "dinov2_vitl14_pretrain.pth"
    torch.save(model.state_dict(), path)
    return path, model.double()


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory):
    model = random_clip(seed=2)
    path = tmp_path_factory.mktemp("clip") / "ViT-L-14-336px.pt"
    save_clip_archive(model, path)
    return path, model.half().double()  # the archive holds float16 weights, as OpenAI's


def session(name: str, path: Path) -> ort.InferenceSession:
    data = EXTRACTORS[name].convert(path, sha256(path))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def images(size: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((2, 3, size, size), dtype=np.float32)


def assert_float32_close(out: np.ndarray, ref: np.ndarray) -> None:
    """float32 against float64: the observed error is ~2e-7 of the largest value; 2e-5 leaves room for
    other CPUs, while a wrong resize, weight or token is above 1e-3 (see the tests' negative controls)."""
    np.testing.assert_allclose(out, ref, rtol=0, atol=2e-5 * np.abs(ref).max())


@pytest.mark.parametrize("size", [64, 300], ids=["upsampled", "downsampled"])
def test_dinov2_matches_the_reference_on_random_weights(dinov2_file, size):
    path, model = dinov2_file
    x = images(size, seed=size)
    with torch.no_grad():
        ref = model(torch.from_numpy(x).double()).numpy()
    out = session("dinov2-vitl14", path).run(["features"], {"image": x})[0]
    assert out.shape == (2, 128)
    assert_float32_close(out, ref)
    # the same network without EDM2's antialiased resize is told apart (the test can fail)
    with torch.no_grad():
        plain = F.interpolate(torch.from_numpy(x).double(), size=(224, 224), mode="bicubic")
        other = model.norm(model.blocks[1](model.blocks[0](torch.cat(
            (model.cls_token.expand(2, -1, -1), model.patch_embed.proj(
                (plain - torch.tensor([0.485, 0.456, 0.406]).reshape(1, -1, 1, 1).double())
                / torch.tensor([0.229, 0.224, 0.225]).reshape(1, -1, 1, 1).double()).flatten(2).transpose(1, 2)),
            dim=1) + model.positions(224, 224))))[:, 0].numpy()
    if size > 224:
        assert np.abs(other - out).max() > 1e-3 * np.abs(ref).max()


@pytest.mark.parametrize("size", [64, 400], ids=["upsampled", "downsampled"])
def test_clip_matches_the_reference_on_random_weights(clip_file, size):
    path, model = clip_file
    x = images(size, seed=size)
    with torch.no_grad():
        ref = model.embed(torch.from_numpy(x).double()).numpy()
    out = session("clip-vitl14-336", path).run(["features"], {"image": x})[0]
    assert out.shape == (2, 96)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert_float32_close(out, ref)


def test_script_archive_reader_gives_the_state_dict_and_runs_nothing(clip_file, tmp_path):
    path, _ = clip_file
    ours = load_script_state_dict(path)
    theirs = torch.jit.load(str(path)).state_dict()
    assert sorted(ours) == sorted(theirs)
    for key, value in theirs.items():
        assert ours[key].dtype == np.float16 and np.array_equal(ours[key], value.numpy()), key
    hostile = tmp_path / "hostile.pt"
    marker = tmp_path / "ran"
    payload = b"\x80\x02cos\nsystem\nX" + len(f"touch {marker}").to_bytes(4, "little") + \
        f"touch {marker}".encode() + b"\x85R."
    with zipfile.ZipFile(hostile, "w") as archive:
        archive.writestr("hostile/data.pkl", payload)
    with pytest.raises(UserError, match="os.system"):
        load_script_state_dict(hostile)
    assert not marker.exists()


def test_converters_refuse_the_other_format(dinov2_file, clip_file):
    with pytest.raises(UserError, match="does not hold a TorchScript module"):
        EXTRACTORS["clip-vitl14-336"].convert(dinov2_file[0], "0" * 64)
    with pytest.raises(UserError, match="not a DINOv2|plain state dict"):
        EXTRACTORS["dinov2-vitl14"].convert(clip_file[0], "0" * 64)


def test_weights_get_list_and_features_by_name_without_torch(dinov2_file, clip_file, no_torch_env, tmp_path):
    env = dict(no_torch_env, GEN_EVAL_CACHE=str(tmp_path / "cache"))
    listing = run_cli(env, "weights", "list")
    assert listing.returncode == 0, listing.stderr
    for name in ("dinov2-vitl14", "clip-vitl14-336"):
        assert f"{name}: not cached" in listing.stdout
    assert "dinov2_vitl14_pretrain.pth (torch.save state dict" in listing.stdout
    assert "ViT-L-14-336px.pt (TorchScript archive (openai/CLIP), size not pinned)" in listing.stdout
    assert "converts with no torch" in listing.stdout
    for name, (path, _) in (("dinov2-vitl14", dinov2_file), ("clip-vitl14-336", clip_file)):
        refused = run_cli(env, "weights", "get", name, "--from", path)
        assert_one_line_error(refused, "not the published", "--sha256")
        digest = sha256(path)
        got = run_cli(env, "weights", "get", name, "--from", path, "--sha256", digest)
        assert got.returncode == 0, got.stderr
        cached = tmp_path / "cache" / "weights" / f"{name}-{digest[:16]}.onnx"
        meta = {p.key: p.value for p in onnx.load(cached, load_external_data=False).metadata_props}
        assert meta[contract.KEY_FAMILY] == f"{name}-other-weights"
        assert meta[contract.KEY_WEIGHTS_SHA256] == digest
    # metrics by features file: cmmd and fd with their intervals, torch-free
    gen, ref = write_images(tmp_path / "gen", 12, size=16, seed=1), write_images(tmp_path / "ref", 12, size=16, seed=2)
    clip_onnx = tmp_path / "cache" / "weights" / f"clip-vitl14-336-{sha256(clip_file[0])[:16]}.onnx"
    result = run_cli(env, "metrics", "--features", clip_onnx, "--data", gen, "--ref", ref, "--metrics", "cmmd,fd",
                     "--report", "-")
    assert result.returncode == 0, result.stderr
    assert "cmmd 95% interval" in result.stdout and "fid fid" in result.stdout
    report = json.loads(result.stdout[result.stdout.index("{"):])
    assert report["cmmd"]["interval"]["method"] == "jackknife over 10 blocks of the images"
    assert report["cmmd"]["sigma"] == 10 and report["cmmd"]["scale"] == 1000


def test_features_name_not_cached_says_the_command(tmp_path):
    gen = write_images(tmp_path / "gen", 4, size=8)
    result = run_cli_here("metrics", "--features", "dinov2-vitl14", "--data", gen, "--ref", gen, "--metrics", "fd")
    assert_one_line_error(result, "gen-eval weights get dinov2-vitl14")


def _reference_cmmd(x: np.ndarray, y: np.ndarray, sigma: float = 10.0, scale: float = 1000.0) -> float:
    """google-research cmmd/distance.py ``mmd``, in numpy."""
    x_sq, y_sq = np.diag(x @ x.T), np.diag(y @ y.T)
    gamma = 1 / (2 * sigma**2)
    k_xx = np.mean(np.exp(-gamma * (-2 * x @ x.T + x_sq[:, None] + x_sq[None, :])))
    k_xy = np.mean(np.exp(-gamma * (-2 * x @ y.T + x_sq[:, None] + y_sq[None, :])))
    k_yy = np.mean(np.exp(-gamma * (-2 * y @ y.T + y_sq[:, None] + y_sq[None, :])))
    return scale * (k_xx + k_yy - 2 * k_xy)


def test_cmmd_is_the_reference_codes_estimator_with_a_jackknife():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(53, 8))
    y = rng.normal(size=(41, 8)) + 0.3
    result = cmmd(x, y, block=7)  # blocks smaller than either side: the sums are assembled from pieces
    assert result.cmmd == pytest.approx(_reference_cmmd(x, y), rel=1e-12)
    assert (result.n_generated, result.n_reference, len(result.jackknife)) == (53, 41, 10)
    first_block = (np.arange(53) * 10) // 53 == 0
    assert result.jackknife[0] == pytest.approx(_reference_cmmd(x[~first_block], y), rel=1e-12)
    assert cmmd(x, x).cmmd == pytest.approx(0.0, abs=1e-9)
    far = cmmd(x, y + 3.0).cmmd
    assert far > result.cmmd  # a set further away is further away


def test_fd_is_fid_by_another_name():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(40, 4)), rng.normal(size=(30, 4)) + 1
    both = compute_metrics(["fd", "fid"], x, y)
    assert list(both) == ["fid"]
