"""Images from memory (arrays, tensors, iterables of batches) and gen_eval.FrechetDistance, against the
same images written to PNG folders."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from scipy import stats as scipy_stats

import gen_eval
from gen_eval.errors import UserError
from gen_eval.evaluator.accumulator import Accumulator
from gen_eval.evaluator.stats import FeatureStats
from helpers.graphs import make_dense_head

N = 40
CPU = gen_eval.Runtime("cpu")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """(features.onnx, real uint8 NHWC, generated uint8 NHWC, real PNG folder, generated PNG folder)."""
    root = tmp_path_factory.mktemp("in_memory")
    features = make_dense_head(root / "features.onnx", role="features", image_shape=(3, 16, 16), out_dim=8,
                               activation="Relu")
    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, (N, 16, 16, 3), dtype=np.uint8)
    generated = np.clip(real.astype(int) + rng.integers(-60, 60, real.shape), 0, 255).astype(np.uint8)
    folders = []
    for name, array in (("real", real), ("generated", generated)):
        folder = root / name
        folder.mkdir()
        for i, image in enumerate(array):
            Image.fromarray(image).save(folder / f"{i:06d}.png")
        folders.append(folder)
    return features, real, generated, *folders


def _on_disk(images):
    features, _, _, real_dir, gen_dir = images
    return gen_eval.fid(real_dir, gen_dir, features=features, runtime=CPU, cache=False)


def _as_float(array, value_range=(0.0, 1.0)):
    lo, hi = value_range
    return (array.astype(np.float32) / np.float32(255)) * np.float32(hi - lo) + np.float32(lo)


@pytest.mark.parametrize("form", ["uint8 NHWC", "uint8 NCHW", "float [0, 1]", "float [-1, 1] source", "batches",
                                  "torch float NCHW"])
def test_fid_of_arrays_equals_fid_of_png_folders(images, form):
    """The same pixels in memory give the same FID and interval as their PNG folders, bit for bit (one code
    path from uint8 pixels on)."""
    features, real, generated, _, _ = images
    if form == "uint8 NHWC":
        given = generated
    elif form == "uint8 NCHW":
        given = generated.transpose(0, 3, 1, 2)
    elif form == "float [0, 1]":
        given = _as_float(generated)
    elif form == "float [-1, 1] source":
        given = gen_eval.ImageSource(_as_float(generated, (-1.0, 1.0)), value_range=(-1, 1))
    elif form == "batches":
        given = (generated[k : k + 7] for k in range(0, N, 7))
    else:
        torch = pytest.importorskip("torch")
        given = torch.from_numpy(_as_float(generated).transpose(0, 3, 1, 2).copy())
    expected = _on_disk(images)
    report = gen_eval.fid(real, given, features=features, runtime=CPU)
    assert report.value == expected.value
    assert (report.interval.low, report.interval.high) == (expected.interval.low, expected.interval.high)
    assert report.n == expected.n == N


def test_statistics_and_metrics_of_arrays_equal_png_folders(images):
    features, real, generated, real_dir, gen_dir = images
    on_disk = gen_eval.statistics(gen_dir, features=features, runtime=CPU)
    in_memory = gen_eval.statistics(generated, features=features, runtime=CPU)
    assert np.array_equal(on_disk.mu, in_memory.mu) and np.array_equal(on_disk.sigma, in_memory.sigma)
    names = "fid,kid,prdc"
    from_disk = gen_eval.metrics(real_dir, gen_dir, features=features, names=names, runtime=CPU).to_dict()
    from_memory = gen_eval.metrics(real, [generated[:10], generated[10:]], features=features, names=names,
                                   runtime=CPU).to_dict()
    for name in ("fid", "kid", "prdc", "n", "reference_n"):
        assert from_memory[name] == from_disk[name], name


@pytest.mark.parametrize("given, message", [
    (lambda g: _as_float(g, (-1, 1)), r"outside the value range \[0, 1\].*value_range"),
    (lambda g: g[:, :3, :, :3], r"could be \[N, H, W, C\] or \[N, C, H, W\]"),
    (lambda g: g.astype(np.int32), "dtype int32"),
    (lambda g: g[0], r"shape \(16, 16, 3\).*image\[None\]"),
    (lambda g: g[:0], "no images"),
    (lambda g: g[..., :2], "no axis of 1 or 3 channels"),
    (lambda g: [g[:5, :8], g[5:]], "batches of different image shapes"),
    (lambda g: np.where(g > 128, np.nan, 0.5).astype(np.float32), "NaN or Inf"),
    (lambda g: gen_eval.ImageSource(g, value_range=(0, 1)), "uint8 images are 0..255"),
    (lambda g: {"images": g}, "dict is not images"),
])
def test_bad_images_in_memory_are_one_line_errors(images, given, message):
    features, real, generated, _, _ = images
    with pytest.raises(UserError, match=message) as caught:
        gen_eval.fid(real, given(generated), features=features, runtime=CPU)
    assert "\n" not in str(caught.value)


def test_images_in_memory_are_not_sent_to_ray(images):
    features, real, generated, _, _ = images
    with pytest.raises(UserError, match="cannot be sent to Ray actors"):
        gen_eval.fid(real, generated, features=features, runtime=CPU, ray_address="local")


def test_arrays_do_not_import_torch(images, tmp_path):
    """A numpy user never pays for torch: tensors are recognised only when torch is already imported."""
    features, real, generated, _, _ = images
    np.save(tmp_path / "real.npy", real)
    np.save(tmp_path / "generated.npy", generated)
    code = (f"import sys, numpy as np, gen_eval\n"
            f"real, gen = np.load({str(tmp_path / 'real.npy')!r}), np.load({str(tmp_path / 'generated.npy')!r})\n"
            f"gen_eval.fid(real, gen, features={str(features)!r}, runtime=gen_eval.Runtime('cpu'))\n"
            f"m = gen_eval.FrechetDistance({str(features)!r}, real, runtime=gen_eval.Runtime('cpu'))\n"
            f"m.update(gen); m.compute()\n"
            f"assert 'torch' not in sys.modules\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_frechet_distance_updated_in_batches_equals_fid(images):
    """Batches of any form and size give fid's value; the interval is the delete-a-block jackknife over
    interleaved blocks (image i in block i % 10), checked against fid on each leave-one-block-out subset."""
    torch = pytest.importorskip("torch")
    features, real, generated, real_dir, _ = images
    metric = gen_eval.FrechetDistance(features, real_dir, runtime=CPU, cache=False)
    metric.update(generated[:7])
    metric.update(torch.from_numpy(_as_float(generated[7:23]).transpose(0, 3, 1, 2).copy()))
    metric.update([generated[23:30], generated[30:]])
    report = metric.compute()
    expected = _on_disk(images)
    # the features are float32 runs of the model on batches of other sizes: equal up to their rounding
    assert report.value == pytest.approx(expected.value, rel=1e-6)
    assert (report.metric, report.n, report.higher_is_better) == ("fid", N, False)
    assert report.details["reference_n"] == N and report.stats.n == N

    blocks = np.arange(N) % 10
    left_out = np.array([gen_eval.fid(real, generated[blocks != b], features=features, runtime=CPU).value
                         for b in range(10)])
    se = np.sqrt(9 / 10 * np.sum((left_out - left_out.mean()) ** 2))
    half = scipy_stats.t.ppf(0.975, 9) * se
    assert report.interval.low == pytest.approx(report.value - half, rel=1e-6)
    assert report.interval.high == pytest.approx(report.value + half, rel=1e-6)
    assert "interleaved" in report.interval.method


def test_frechet_distance_reference_forms_merge_and_reset(images, tmp_path):
    features, real, generated, real_dir, _ = images
    stats_path = tmp_path / "real.npz"
    gen_eval.statistics(real_dir, features=features, runtime=CPU).save(stats_path)
    values = []
    for ref in (real, real_dir, stats_path):
        metric = gen_eval.FrechetDistance(features, ref, runtime=CPU, cache=False)
        metric.update(generated)
        values.append(metric.compute().value)
    assert values == pytest.approx([values[0]] * 3, rel=1e-9)

    first = gen_eval.FrechetDistance(features, stats_path, runtime=CPU)
    second = gen_eval.FrechetDistance(features, stats_path, runtime=CPU)
    first.update(generated[:25])
    second.update(generated[25:])
    merged = first.merge(second).compute()
    assert merged.n == N and merged.value == pytest.approx(values[2], rel=1e-9)

    first.reset()
    assert first.n == 0
    with pytest.raises(UserError, match="statistics need at least 2"):
        first.compute()
    other_ref = gen_eval.FrechetDistance(features, generated, runtime=CPU)
    with pytest.raises(UserError, match="different references"):
        first.merge(other_ref)
    assert isinstance(first, Accumulator) and isinstance(FeatureStats(3), Accumulator)


def test_feature_stats_follow_the_accumulator_protocol():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((30, 4))
    stats, part = FeatureStats(4), FeatureStats(4)
    stats.update(x)
    part.update(x[:10])
    mu, sigma = stats.without(part).compute()
    assert np.allclose(mu, x[10:].mean(axis=0)) and np.allclose(sigma, np.cov(x[10:], rowvar=False))
    stats.reset()
    assert stats.n == 0 and not stats.sum.any() and not stats.sum_outer.any()
