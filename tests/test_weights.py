"""Named feature extractors: `gen-eval weights get/list`, the torch-free .pth reader and Inception graph,
`--features NAME`, and `fid DIR1 DIR2` defaulting to the cached Inception.

Nothing is downloaded from outside: a loopback HTTP server serves a random-weight file in pytorch-fid's
published format (a ``torch.save`` state dict) and misbehaves on request (wrong bytes, a transfer cut
short, a server error); "no network" is a closed loopback port.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from gen_eval import contract
from gen_eval.errors import UserError
from gen_eval.exporter.fid_weights import FID_WEIGHTS_NAME
from gen_eval.exporter.inception import build_fid_features, random_fid_weights
from gen_eval.exporter.parity import OutputError, float32_tolerance
from gen_eval.weights.inception_onnx import inception_model
from gen_eval.weights.torchfile import load_state_dict
from helpers.cli import assert_one_line_error, run_cli
from helpers.images import write_images

pytestmark = pytest.mark.usefixtures("two_torch_threads")  # conftest.py


@pytest.fixture(scope="session")
def random_weights(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    """pytorch-fid's format (a torch.save state dict of its Inception-v3) with random weights."""
    path = tmp_path_factory.mktemp("weights") / "inception-random.pth"
    state_dict = random_fid_weights(seed=1)
    torch.save(state_dict, path)
    return path, state_dict


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    """/good: the file; /truncated: a Content-Length of the whole file and half of it; /error: HTTP 500."""

    def do_GET(self):  # noqa: N802 - http.server's name
        self.server.requests[self.path] += 1
        data = self.server.payload
        if self.path == "/error":
            self.send_error(500, "Internal Server Error")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2] if self.path == "/truncated" else data)
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture()
def server(random_weights):
    """A loopback HTTP server serving the random weights; ``.url(path)``, ``.requests`` counts GETs."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.payload = random_weights[0].read_bytes()
    httpd.requests = Counter()
    httpd.url = lambda path: f"http://127.0.0.1:{httpd.server_address[1]}{path}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture()
def cache_env(no_torch_env, tmp_path) -> tuple[dict, Path]:
    """The torch-free environment with its own empty cache folder."""
    cache = tmp_path / "cache"
    return dict(no_torch_env, GEN_EVAL_CACHE=str(cache)), cache


def cache_files(cache: Path) -> list[str]:
    """Every file in the cache but the lock files (temporary files would show here)."""
    if not cache.exists():
        return []
    return sorted(p.name for p in cache.rglob("*") if p.is_file() and not p.name.endswith(".lock"))


# -- the torch-free reader ------------------------------------------------------------------------------

@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_reader_gives_what_torch_load_gives(tmp_path, zip_format):
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(3, 5).double())
    state = net.state_dict()
    state["strided"] = torch.arange(20.0).reshape(4, 5)[1:, ::2]  # a view: offset and strides into its storage
    state["half"] = torch.ones(3, dtype=torch.float16)
    path = tmp_path / "state.pth"
    torch.save(state, path, _use_new_zipfile_serialization=zip_format)
    got = load_state_dict(path)
    assert list(got) == list(state)
    for key, tensor in state.items():
        expected = tensor.numpy()
        assert got[key].dtype == expected.dtype and np.array_equal(got[key], expected), key


class _RunsCode:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_reader_executes_nothing_and_refuses_other_objects(tmp_path, zip_format):
    marker = tmp_path / "ran"
    path = tmp_path / "hostile.pth"
    torch.save({"w": torch.zeros(2), "payload": _RunsCode(marker)}, path, _use_new_zipfile_serialization=zip_format)
    with pytest.raises(UserError, match="which a plain state dict of tensors does not use"):
        load_state_dict(path)
    assert not marker.exists()


def test_reader_refuses_truncated_and_foreign_files(random_weights, tmp_path):
    weights, _ = random_weights
    legacy = tmp_path / "legacy.pth"
    torch.save({"w": torch.ones(1000)}, legacy, _use_new_zipfile_serialization=False)
    for source, name in ((weights, "zip.pth"), (legacy, "legacy-cut.pth")):
        cut = tmp_path / name
        cut.write_bytes(source.read_bytes()[: source.stat().st_size - 100])
        with pytest.raises(UserError, match="download it again"):
            load_state_dict(cut)
    text = tmp_path / "notes.pth"
    text.write_text("not weights")
    with pytest.raises(UserError, match="not a torch.save file|neither a zip"):
        load_state_dict(text)


# -- the torch-free Inception graph against export-inception's torch route --------------------------------

@pytest.mark.parametrize("preprocessing", ["pytorch-fid", "torch-fidelity"])
def test_torch_free_inception_equals_the_torch_route(random_weights, preprocessing):
    """Same weights file, same images: features and logits of the graph built with the onnx package are
    as close to the torch module run in float64 as float32 arithmetic allows (the export gate's rule,
    the torch module's own float32 run setting the scale of rounding)."""
    weights, state_dict = random_weights
    model = inception_model(load_state_dict(weights), sha256(weights), preprocessing=preprocessing)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    single = build_fid_features(state_dict, preprocessing=preprocessing, logits=True)
    double = build_fid_features({k: v.double() if v.is_floating_point() else v for k, v in state_dict.items()},
                                preprocessing=preprocessing, logits=True).double()
    for count, size in ((2, 64), (1, 37)):  # downscaling and upscaling through the in-graph resize
        images = np.random.default_rng(size).integers(0, 256, (count, 3, size, size)).astype(np.float32) / 255
        got = session.run(["features", "logits"], {"image": images})
        with torch.no_grad():
            exact = [t.numpy() for t in double(torch.from_numpy(images).double())]
            torch32 = [t.numpy() for t in single(torch.from_numpy(images))]
        for name, value, truth, theirs in zip(("features", "logits"), got, exact, torch32):
            assert value.shape == truth.shape and value.dtype == np.float32
            error = OutputError.between(value, truth)
            tolerance = float32_tolerance(truth, OutputError.between(theirs, truth))
            assert error.max <= tolerance.max and error.rms <= tolerance.rms, (name, error, tolerance)


def test_a_wrong_state_dict_is_one_line(random_weights):
    _, state_dict = random_weights
    arrays = {k: v.numpy() for k, v in state_dict.items() if not k.startswith("Mixed_7c")}
    with pytest.raises(UserError, match="has no Mixed_7c"):
        inception_model(arrays, "0" * 64)
    arrays = {k: v.numpy() for k, v in state_dict.items()} | {"extra.weight": np.zeros(1, np.float32)}
    with pytest.raises(UserError, match="does not use \\(extra.weight\\)"):
        inception_model(arrays, "0" * 64)


# -- weights get: downloads and their failures (loopback server) -----------------------------------------

def test_download_checks_the_stated_hash_converts_without_torch_and_caches(server, random_weights, cache_env):
    env, cache = cache_env
    weights, _ = random_weights
    digest = sha256(weights)
    result = run_cli(env, "weights", "get", "inception", "--from", server.url("/good"), "--sha256", digest)
    assert result.returncode == 0, result.stderr
    cached = cache / "weights" / f"inception-{digest[:16]}.onnx"  # another file: never under the published name
    assert cache_files(cache) == [cached.name]
    assert "NOT the published file" in result.stdout and str(cached) in result.stdout
    model = onnx.load(str(cached))
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta[contract.KEY_WEIGHTS_SHA256] == digest
    assert meta[contract.KEY_FAMILY] == "pytorch-fid-inception-v3-other-weights"
    assert meta[contract.KEY_ROLE] == "features"

    again = run_cli(env, "weights", "get", "inception", "--from", server.url("/good"), "--sha256", digest)
    assert again.returncode == 0 and "is cached" in again.stdout, again.stderr
    assert server.requests["/good"] == 1  # the cached model was not fetched again
    info = run_cli(env, "info", cached)
    assert info.returncode == 0 and digest[:12] in info.stdout and "other-weights" in info.stdout, info.stdout


def test_a_file_that_is_not_the_published_one_is_refused_without_its_hash(server, cache_env):
    env, cache = cache_env
    result = run_cli(env, "weights", "get", "inception", "--from", server.url("/good"))
    assert_one_line_error(result, "not the published 6726825d0af5f729", "--sha256")
    result = run_cli(env, "weights", "get", "inception", "--from", server.url("/good"), "--sha256", "ab" * 32)
    assert_one_line_error(result, "not the stated " + "ab" * 32)
    assert cache_files(cache) == []


@pytest.mark.parametrize(("path", "message"), [("/truncated", "broke off after"), ("/error", "HTTP 500")])
def test_a_broken_transfer_leaves_nothing_in_the_cache(server, random_weights, cache_env, path, message):
    env, cache = cache_env
    result = run_cli(env, "weights", "get", "inception", "--from", server.url(path),
                     "--sha256", sha256(random_weights[0]))
    assert_one_line_error(result, message)
    assert cache_files(cache) == []


def test_no_network_says_how_to_use_from(cache_env):
    env, cache = cache_env
    closed = "http://127.0.0.1:9/" + FID_WEIGHTS_NAME  # the discard port: nothing listens on loopback
    result = run_cli(env, "weights", "get", "inception", "--from", closed)
    assert_one_line_error(result, "cannot download", "--from " + FID_WEIGHTS_NAME)
    assert cache_files(cache) == []


def test_two_processes_fetching_at_once_download_once(server, random_weights, cache_env):
    env, cache = cache_env
    args = [sys.executable, "-m", "gen_eval.cli", "weights", "get", "inception", "--from", server.url("/good"),
            "--sha256", sha256(random_weights[0])]
    processes = [subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    assert sorted("is cached" in out for out, _ in outputs) == [False, True], outputs
    assert server.requests["/good"] == 1
    assert len(cache_files(cache)) == 1


def test_a_local_file_is_taken_with_from(random_weights, cache_env, tmp_path):
    env, cache = cache_env
    weights, _ = random_weights
    result = run_cli(env, "weights", "get", "inception-torch-fidelity", "--from", weights, "--sha256", sha256(weights))
    assert result.returncode == 0, result.stderr
    (cached,) = (cache / "weights").glob("inception-torch-fidelity-*.onnx")
    meta = {p.key: p.value for p in onnx.load(str(cached)).metadata_props}
    assert meta[contract.KEY_FAMILY] == "torch-fidelity-inception-v3-other-weights"
    assert_one_line_error(run_cli(env, "weights", "get", "resnet"), "no feature extractor is named 'resnet'",
                          "inception")
    assert_one_line_error(run_cli(env, "weights", "get", "inception", "--sha256", "xyz"), "--sha256 xyz", "64 hex")


def test_weights_list_shows_source_hash_size_and_cache(cache_env):
    env, cache = cache_env
    listed = run_cli(env, "weights", "list")
    assert listed.returncode == 0, listed.stderr
    assert "inception: not cached" in listed.stdout
    assert "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2" in listed.stdout
    assert "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + FID_WEIGHTS_NAME in listed.stdout
    assert "95.6 MB" in listed.stdout and "no torch" in listed.stdout
    (cache / "weights").mkdir(parents=True)
    (cache / "weights" / "inception.onnx").write_bytes(b"placeholder")
    assert f"inception: cached {cache / 'weights' / 'inception.onnx'}" in run_cli(env, "weights", "list").stdout


def test_cache_folder_follows_gen_eval_cache_then_xdg(monkeypatch, tmp_path):
    from gen_eval.weights.cache import cache_folder

    monkeypatch.chdir(tmp_path)  # no project file upward
    monkeypatch.delenv("GEN_EVAL_CONFIG", raising=False)
    monkeypatch.delenv("GEN_EVAL_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_folder() == tmp_path / "xdg" / "gen-eval"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")  # the XDG rule: a relative path is ignored
    assert cache_folder() == Path.home() / ".cache" / "gen-eval"
    (tmp_path / "gen-eval.toml").write_text('cache = "project-cache"\nfeatures = "inception"\n')
    assert cache_folder() == tmp_path / "project-cache"
    monkeypatch.setenv("GEN_EVAL_CACHE", str(tmp_path / "env"))
    assert cache_folder() == tmp_path / "env"
    from gen_eval.project import project_settings

    assert project_settings()["features"].value == "inception"  # a name, not a path beside the file


# -- names where paths go ----------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def converted(random_weights, tmp_path_factory) -> Path:
    weights, _ = random_weights
    out = tmp_path_factory.mktemp("converted") / "inception.onnx"
    out.write_bytes(inception_model(load_state_dict(weights), sha256(weights)).SerializeToString())
    return out


@pytest.mark.filterwarnings("ignore")
def test_fid_of_two_folders_uses_the_cached_inception_by_default(converted, cache_env, tmp_path):
    env, cache = cache_env
    first, second = write_images(tmp_path / "a", 6, size=16, seed=1), write_images(tmp_path / "b", 6, size=16, seed=2)
    missing = run_cli(env, "fid", first, second)
    assert_one_line_error(missing, "'inception' is not in the cache", "gen-eval weights get inception")

    (cache / "weights").mkdir(parents=True)
    shutil.copy(converted, cache / "weights" / "inception.onnx")
    values = {}
    for label, extra in (("default", []), ("name", ["--features", "inception"]), ("path", ["--features", converted])):
        report = tmp_path / f"{label}.json"
        result = run_cli(env, "fid", first, second, "--report", report, "--device", "cpu", *extra)
        assert result.returncode == 0, result.stderr
        values[label] = json.loads(report.read_text())["value"]
    assert values["default"] > 0 and values["default"] == values["name"] == values["path"]

    stats = tmp_path / "a.npz"
    result = run_cli(env, "stats", "--features", "inception", "--data", first, "--out", stats, "--device", "cpu")
    assert result.returncode == 0, result.stderr
    report = tmp_path / "from-stats.json"
    result = run_cli(env, "fid", "--ref", stats, "--data", second, "--report", report, "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert json.loads(report.read_text())["value"] == pytest.approx(values["default"], rel=1e-9)


def test_the_python_api_takes_names(converted, monkeypatch, tmp_path):
    from gen_eval.api.fid import statistics

    monkeypatch.setenv("GEN_EVAL_CACHE", str(tmp_path / "cache"))
    (tmp_path / "cache" / "weights").mkdir(parents=True)
    shutil.copy(converted, tmp_path / "cache" / "weights" / "inception.onnx")
    images = write_images(tmp_path / "images", 3, size=16)
    from gen_eval.api.sources import Runtime

    by_name = statistics(images, features="inception", runtime=Runtime("cpu"))
    by_path = statistics(images, features=converted, runtime=Runtime("cpu"))
    assert np.array_equal(by_name.mu, by_path.mu) and by_name.feature_model == by_path.feature_model
    assert os.fspath(converted) not in by_name.feature_model  # named by family and weights hash, not by path


# -- reference statistics cached ---------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore")
def test_reference_statistics_are_cached_by_content(converted, cache_env, tmp_path):
    env, cache = cache_env
    generated, reference = write_images(tmp_path / "g", 5, size=16, seed=3), write_images(tmp_path / "r", 5, size=16, seed=4)

    def fid(*extra) -> tuple[float, str]:
        report = tmp_path / "fid.json"
        result = run_cli(env, "fid", generated, reference, "--features", converted, "--report", report, "--force",
                         "--device", "cpu", *extra)
        assert result.returncode == 0, result.stderr
        return json.loads(report.read_text())["value"], result.stderr

    first, said = fid()
    assert "from the cache" not in said
    (entry,) = (cache / "stats").glob("*.npz")
    again, said = fid()
    assert again == first and "reference statistics from the cache" in said
    fresh, said = fid("--no-cache")
    assert fresh == first and "from the cache" not in said
    # one file's content changes under the same name: a new key, recomputed
    write_images(tmp_path / "other", 1, size=16, seed=9)
    shutil.copy(tmp_path / "other" / "000.png", reference / "000.png")
    moved, said = fid()
    assert moved != first and "from the cache" not in said
    (newest,) = set((cache / "stats").glob("*.npz")) - {entry}
    newest.write_bytes(b"damaged")  # a damaged entry is recomputed, never used
    recomputed, said = fid()
    assert recomputed == moved and "ignoring the damaged cached statistics" in said
    result = run_cli(env, "stats", "clear-cache")
    assert result.returncode == 0 and "removed 2 cached statistics/features files" in result.stdout
    assert list((cache / "stats").glob("*.npz")) == []
