"""Fréchet distance vs pytorch-fid, streamed statistics, shard merging, and `gen-eval fid` / `stats` end to end."""

from __future__ import annotations

import contextlib
import io
import json
import types

import numpy as np
import pytest
from scipy import linalg

from gen_eval.evaluator.frechet import frechet_distance
from gen_eval.evaluator.stats import FeatureStats, load_stats, merge_stats
from helpers.cli import assert_one_line_error, run_cli, run_cli_here
from helpers.graphs import make_dense_head, make_generator


def pytorch_fid_distance(mu1, sigma1, mu2, sigma2) -> float:
    """pytorch-fid's calculate_frechet_distance, on any scipy: it calls sqrtm(..., disp=False), which
    scipy 1.18 removed, so its sqrtm gets a shim that returns (sqrtm(A), error) as the old API did."""
    from pytorch_fid import fid_score

    def sqrtm(a, disp=True):
        root = linalg.sqrtm(a)
        return (root, 0.0) if disp is False else root

    shim = types.SimpleNamespace(sqrtm=sqrtm)
    original = fid_score.linalg
    fid_score.linalg = shim
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return float(fid_score.calculate_frechet_distance(mu1, sigma1, mu2, sigma2))
    finally:
        fid_score.linalg = original


def gaussian_features(rng, n, d, shift=0.0, dead=()):
    mixing = rng.standard_normal((d, d)) / np.sqrt(d)
    x = np.maximum(rng.standard_normal((n, d)) @ mixing + shift, 0)  # ReLU-like, as pool3 features
    x[:, list(dead)] = 0.0
    return x


def stats_of(x):
    return x.mean(axis=0), np.cov(x, rowvar=False)


@pytest.mark.parametrize("n, d", [(500, 32), (1500, 256)])
def test_frechet_equals_pytorch_fid_on_random_statistics(n, d):
    rng = np.random.default_rng(d)
    s1 = stats_of(gaussian_features(rng, n, d))
    s2 = stats_of(gaussian_features(rng, n, d, shift=0.2))
    ours, ref = frechet_distance(*s1, *s2), pytorch_fid_distance(*s1, *s2)
    assert ours == pytest.approx(ref, rel=1e-9)
    assert frechet_distance(*s1, *s1) == pytest.approx(0.0, abs=1e-9 * ref)


def test_frechet_rank_deficient_dead_features_equals_pytorch_fid():
    rng = np.random.default_rng(1)
    dead = range(0, 128, 5)  # features that never fire: zero rows and columns in both covariances
    s1 = stats_of(gaussian_features(rng, 400, 128, dead=dead))
    s2 = stats_of(gaussian_features(rng, 400, 128, shift=0.3, dead=dead))
    assert np.linalg.matrix_rank(s1[1]) < 128
    ours = frechet_distance(*s1, *s2)
    assert np.isfinite(ours)
    assert ours == pytest.approx(pytorch_fid_distance(*s1, *s2), rel=1e-9)


def test_frechet_fewer_images_than_dimensions():
    """N < D: singular covariances. The exact trace term comes from the small N x N problem
    tr((S1 S2)^1/2) = sum sqrt(eig(Xc S2 Xc^T / (N-1))); pytorch-fid's sqrtm of the singular product
    is only accurate to ~1e-8 here, so it is compared at 1e-6."""
    rng = np.random.default_rng(2)
    x1 = gaussian_features(rng, 20, 64)
    s1, s2 = stats_of(x1), stats_of(gaussian_features(rng, 30, 64, shift=0.3))
    centred = x1 - s1[0]
    inner = centred @ s2[1] @ centred.T / (len(x1) - 1)
    trace = np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0, None)).sum()
    diff = s1[0] - s2[0]
    exact = diff @ diff + np.trace(s1[1]) + np.trace(s2[1]) - 2 * trace
    ours = frechet_distance(*s1, *s2)
    assert ours == pytest.approx(exact, rel=1e-9)
    assert ours == pytest.approx(pytorch_fid_distance(*s1, *s2), rel=1e-6)


def test_frechet_degenerate_and_asymmetric_inputs():
    d = 16
    zero = np.zeros((d, d))
    mu = np.ones(d)
    rng = np.random.default_rng(3)
    s2 = stats_of(gaussian_features(rng, 100, d))[1]
    assert frechet_distance(mu, zero, np.zeros(d), s2) == pytest.approx(d + np.trace(s2), rel=1e-12)
    asym = s2 + np.triu(np.full((d, d), 1e-4), 1)  # not symmetric: pytorch-fid's sqrtm route
    assert frechet_distance(mu, asym, np.zeros(d), s2) == pytest.approx(
        pytorch_fid_distance(mu, asym, np.zeros(d), s2), rel=1e-9)


def test_frechet_works_on_scipy_without_sqrtm_disp(monkeypatch):
    """scipy 1.18 removed sqrtm(disp=): our sqrtm route must not pass it."""
    real = linalg.sqrtm

    def sqrtm_without_disp(a, **kwargs):
        if "disp" in kwargs:
            raise TypeError("sqrtm() got an unexpected keyword argument 'disp'")
        return real(a, **kwargs)

    monkeypatch.setattr(linalg, "sqrtm", sqrtm_without_disp)
    rng = np.random.default_rng(4)
    s1 = stats_of(gaussian_features(rng, 200, 12))
    asym = s1[1] + np.triu(np.full((12, 12), 1e-4), 1)
    assert np.isfinite(frechet_distance(s1[0], asym, s1[0] + 1, s1[1]))


def test_streamed_statistics_equal_numpy_and_merge_exactly(tmp_path):
    rng = np.random.default_rng(5)
    x = (rng.random((1000, 48)) * 3 + 1).astype(np.float32)
    whole = FeatureStats(48)
    for start in range(0, 1000, 64):
        whole.update(x[start : start + 64])
    np.testing.assert_allclose(whole.mu, x.astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(whole.sigma, np.cov(x.astype(np.float64), rowvar=False), rtol=1e-9, atol=1e-12)
    paths = []
    for k, (a, b) in enumerate([(0, 333), (333, 334), (334, 1000)]):
        part = FeatureStats(48, "feat")
        part.update(x[a:b])
        paths.append(part.save(tmp_path / f"part{k}.npz"))
    merged = merge_stats(paths)
    assert merged.n == 1000
    np.testing.assert_allclose(merged.mu, whole.mu, rtol=1e-13)
    np.testing.assert_allclose(merged.sigma, whole.sigma, rtol=1e-11, atol=1e-14)
    loaded = load_stats(paths[0])
    assert loaded.n == 333 and loaded.feature_model == "feat"


def test_pytorch_fid_files_load_but_do_not_merge(tmp_path):
    rng = np.random.default_rng(6)
    mu, sigma = stats_of(rng.random((50, 8)))
    path = tmp_path / "pytorch_fid.npz"
    np.savez(path, mu=mu, sigma=sigma)  # what pytorch-fid's --save-stats writes
    loaded = load_stats(path)
    np.testing.assert_array_equal(loaded.mu, mu)
    assert loaded.stats is None
    from gen_eval.errors import UserError

    with pytest.raises(UserError, match="cannot be merged"):
        merge_stats([path])
    one = FeatureStats(8)
    one.update(rng.random((1, 8)))
    with pytest.raises(UserError, match="at least 2"):
        one.sigma


# -- end to end -----------------------------------------------------------------------------------
def _features_reference(features_path, folder) -> tuple[np.ndarray, np.ndarray]:
    """Features of a folder's PNGs by plain onnxruntime and Pillow, pytorch-fid style statistics."""
    import onnxruntime as ort
    from PIL import Image

    session = ort.InferenceSession(str(features_path), providers=["CPUExecutionProvider"])
    files = sorted(folder.glob("*.png"))
    images = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files]).transpose(0, 3, 1, 2)
    feats = session.run(None, {"image": images.astype(np.float32) / 255})[0]
    return stats_of(feats.astype(np.float64))


def test_fid_and_stats_cli(no_torch_env, tmp_path):
    feats = make_dense_head(tmp_path / "f.onnx", role="features", out_dim=6, activation="Relu", value_range="0,1",
                            extra_meta={"gen_eval.family": "testfeat"})
    gen_a = make_generator(tmp_path / "a.onnx", seed=0)
    gen_b = make_generator(tmp_path / "b.onnx", seed=1)
    folder_a, folder_b = tmp_path / "A", tmp_path / "B"
    for gen, folder in ((gen_a, folder_a), (gen_b, folder_b)):
        result = run_cli(no_torch_env, "sample", "--model", gen, "--n", 40, "--seed", 2, "--out", folder)
        assert result.returncode == 0, result.stderr
    expected = pytorch_fid_distance(*_features_reference(feats, folder_a), *_features_reference(feats, folder_b))

    # stats of B in two shards, merged
    for k in (1, 2):
        result = run_cli(no_torch_env, "stats", "--features", feats, "--data", folder_b, "--shard", f"{k}/2",
                         "--out", tmp_path / f"b{k}.npz", "--batch-size", 7, "--chunk-size", 8)
        assert result.returncode == 0, result.stderr
    merged = run_cli(no_torch_env, "stats", "merge", tmp_path / "b1.npz", tmp_path / "b2.npz", "--out", tmp_path / "b.npz")
    assert merged.returncode == 0, merged.stderr
    report = tmp_path / "fid.json"
    # generated images straight from generator A (quantised like PNGs) against B's statistics
    result = run_cli(no_torch_env, "fid", "--features", feats, "--model", gen_a, "--n", 40, "--seed", 2,
                     "--ref", tmp_path / "b.npz", "--report", report, "--max-fid", 1e9)
    assert result.returncode == 0, result.stderr
    data = json.loads(report.read_text())
    assert data["metric"] == "fid" and data["n"] == 40 and data["gate"]["passed"]
    assert data["value"] == pytest.approx(expected, rel=1e-9)
    # folder against folder gives the same number
    folders = run_cli(no_torch_env, "fid", "--features", feats, "--data", folder_a, "--ref", folder_b,
                      "--report", tmp_path / "f2.json")
    assert folders.returncode == 0, folders.stderr
    assert json.loads((tmp_path / "f2.json").read_text())["value"] == pytest.approx(expected, rel=1e-9)
    # gate
    gated = run_cli(no_torch_env, "fid", "--features", feats, "--data", folder_a, "--ref", tmp_path / "b.npz",
                    "--max-fid", expected / 2)
    assert gated.returncode == 1 and "gate missed: fid" in gated.stderr


def test_fid_warnings_and_errors(no_torch_env, tmp_path):
    feats = make_dense_head(tmp_path / "f.onnx", role="features", out_dim=64, activation="Relu")
    gen = make_generator(tmp_path / "g.onnx")
    ref = tmp_path / "ref.npz"
    result = run_cli(no_torch_env, "stats", "--features", feats, "--model", gen, "--n", 10, "--out", ref)
    assert result.returncode == 0, result.stderr
    assert "fewer than the 64 feature dimensions" in result.stderr
    assert_one_line_error(run_cli_here("stats", "--features", feats, "--model", gen, "--n", 1,
                                  "--out", tmp_path / "one.npz"), "at least 2", "more images")
    assert not (tmp_path / "one.npz").exists()
    other = make_dense_head(tmp_path / "f8.onnx", role="features", out_dim=8, activation="Relu")
    assert_one_line_error(run_cli_here("fid", "--features", other, "--model", gen, "--n", 10, "--ref", ref),
                          "64-d", "8-d")
    assert_one_line_error(run_cli_here("fid", "--features", feats, "--ref", ref), "--data", "--model")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    assert_one_line_error(run_cli_here("fid", "--features", feats, "--model", gen, "--n", 4, "--ref", bad),
                          "bad.npz")
    assert_one_line_error(run_cli_here("stats", "merge", ref, "--out", ref), "would destroy the input")


def test_sample_npz_and_png_folder_give_the_same_statistics(tmp_path):
    feats = make_dense_head(tmp_path / "f.onnx", role="features", out_dim=6, activation="Relu", value_range="0,1")
    gen = make_generator(tmp_path / "g.onnx")
    for out in (tmp_path / "s.npz", tmp_path / "s"):
        result = run_cli_here("sample", "--model", gen, "--n", 30, "--seed", 3, "--out", out)
        assert result.returncode == 0, result.stderr
    for name, data in (("npz", tmp_path / "s.npz"), ("png", tmp_path / "s")):
        result = run_cli_here("stats", "--features", feats, "--data", data, "--out", tmp_path / f"{name}.npz")
        assert result.returncode == 0, result.stderr
    a, b = load_stats(tmp_path / "npz.npz"), load_stats(tmp_path / "png.npz")
    np.testing.assert_array_equal(a.stats.sum_outer, b.stats.sum_outer)
    assert a.n == b.n == 30
