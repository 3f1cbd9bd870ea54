"""The metric suite (gen_eval.evaluator.metrics) against its references on the same features:
torch-fidelity 0.4.0 (KID, IS), prdc 0.2 (precision, recall, density, coverage), scikit-learn
(distances); FID∞ on Gaussians with a known distance; planted copies for memorisation; memory.

Tolerances: IS and KID on float64 features, 1e-10 relative (the same float64 arithmetic, summed in a
different order); KID against torch-fidelity on float32 features, 1e-4 relative (torch-fidelity sums
its float32 kernels in float32; ours is exactly its float64 value, checked too); PRDC and blocked
distances exact (==).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from gen_eval.evaluator.frechet import frechet_distance
from gen_eval.evaluator.metrics import (
    FeatureStore,
    compute_metrics,
    distances,
    fd_per_condition,
    fid_infinity,
    inception_score,
    kid,
    list_metrics,
    memorisation,
    prdc,
    register_metric,
)

REPO = Path(__file__).resolve().parents[1]

torch = pytest.importorskip("torch")
tf_kid = pytest.importorskip("torch_fidelity.metric_kid")
tf_isc = pytest.importorskip("torch_fidelity.metric_isc")
prdc_ref = pytest.importorskip("prdc")
skm = pytest.importorskip("sklearn.metrics")


def gaussian_pair(seed=0, n1=600, n2=700, dim=64):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n1, dim)).astype(np.float32)
    b = (rng.normal(size=(n2, dim)) * 1.1 + 0.1).astype(np.float32)
    return a, b


def tied_pair(seed=1, n1=500, n2=450, dim=8):
    """Integer features on a small grid: many exactly equal distances, duplicated rows within and
    across the two sets (prdc's strict < decides the ties)."""
    rng = np.random.default_rng(seed)
    real = rng.integers(0, 3, size=(n1, dim)).astype(np.float32)
    fake = rng.integers(0, 3, size=(n2, dim)).astype(np.float32)
    fake[:60] = real[rng.choice(n1, 60, replace=False)]
    real[-40:] = real[:40]
    return real, fake


def reference_kid(a, b, **kw):
    out = tf_kid.kid_features_to_metric(torch.from_numpy(a), torch.from_numpy(b), verbose=False, **kw)
    return out[tf_kid.KEY_METRIC_KID_MEAN], out[tf_kid.KEY_METRIC_KID_STD]


# ----------------------------------------------------------------------------------------- store

def test_store_appends_to_a_memory_mapped_npy_and_cleans_up(tmp_path):
    rng = np.random.default_rng(0)
    batches = [rng.normal(size=(b, 5)).astype(np.float32) for b in (7, 1, 30, 0, 12)]
    logits = [rng.normal(size=(len(b), 3)) for b in batches]
    with FeatureStore(5, logits_dim=3) as store:
        temp = store.path
        for f, lg in zip(batches, logits):
            store.append(f, lg)
        expected = np.concatenate(batches)
        assert isinstance(store.features, np.memmap) and store.features.dtype == np.float32
        np.testing.assert_array_equal(store.features, expected)
        np.testing.assert_array_equal(np.load(temp), expected)  # a plain .npy at every point
        np.testing.assert_array_equal(store.logits, np.concatenate(logits).astype(np.float32))
        np.testing.assert_allclose(store.stats.mu, expected.astype(np.float64).mean(0), rtol=1e-12)
        np.testing.assert_allclose(store.stats.sigma, np.cov(expected.astype(np.float64), rowvar=False), rtol=1e-10)
    assert not temp.exists() and not temp.with_name(temp.stem + ".logits.npy").exists()

    kept = tmp_path / "gen.npy"
    store = FeatureStore.from_array(expected, path=kept, block=8)
    store.close()
    assert kept.exists()
    again = FeatureStore.open(kept)
    np.testing.assert_array_equal(again.features, expected)
    assert again.stats.n == len(expected)
    again.close()
    assert kept.exists()


# ------------------------------------------------------------------------------------- distances

@pytest.mark.parametrize("block", [7, 37, 128, 10**6])
def test_blocked_distances_equal_unblocked_and_sklearn(block):
    a, b = gaussian_pair(n1=300, n2=211, dim=32)
    whole = distances.pairwise_distances(a, b, block=10**6)
    np.testing.assert_array_equal(distances.pairwise_distances(a, b, block=block), whole)
    np.testing.assert_array_equal(whole, skm.pairwise_distances(a, b, metric="euclidean", n_jobs=8))
    self_whole = skm.pairwise_distances(a, metric="euclidean", n_jobs=8)
    np.testing.assert_array_equal(distances.pairwise_distances(a, block=block), self_whole)
    np.testing.assert_array_equal(distances.kth_nearest(a, 6, block),
                                  prdc_ref.prdc.compute_nearest_neighbour_distances(a, 5))
    d, j = distances.nearest(b, a, block)
    np.testing.assert_array_equal(d, whole.T.min(axis=1))
    np.testing.assert_array_equal(j, whole.T.argmin(axis=1))


# ------------------------------------------------------------------------------------------- KID

def test_kid_matches_torch_fidelity_on_float64_features():
    a, b = gaussian_pair()
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    ours = kid(a, b, kid_subset_size=500)
    mean, std = reference_kid(a64, b64, kid_subset_size=500)
    assert ours.mean == pytest.approx(mean, rel=1e-10) and ours.std == pytest.approx(std, rel=1e-10)
    assert (ours.subset_size, ours.subsets) == (500, 100)


def test_kid_against_torch_fidelity_float32_within_its_rounding():
    a, b = gaussian_pair(seed=3)
    ours = kid(a, b, kid_subsets=30)  # subsets of min(1000, 600, 700) = 600
    assert ours.subset_size == 600
    mean32, std32 = reference_kid(a, b, kid_subset_size=600, kid_subsets=30)
    assert ours.mean == pytest.approx(mean32, rel=1e-4) and ours.std == pytest.approx(std32, rel=1e-4)
    mean64, std64 = reference_kid(a.astype(np.float64), b.astype(np.float64), kid_subset_size=600, kid_subsets=30)
    assert ours.mean == pytest.approx(mean64, rel=1e-10) and ours.std == pytest.approx(std64, rel=1e-10)


def test_kid_other_seed_and_kernel_options():
    a, b = gaussian_pair(seed=4, n1=300, n2=260, dim=16)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    ours = kid(a, b, kid_subsets=20, kid_subset_size=200, seed=7, kid_degree=2, kid_gamma=0.5, kid_coef0=0.3)
    mean, std = reference_kid(a64, b64, kid_subsets=20, kid_subset_size=200, rng_seed=7, kid_kernel_poly_degree=2,
                              kid_kernel_poly_gamma=0.5, kid_kernel_poly_coef0=0.3)
    assert ours.mean == pytest.approx(mean, rel=1e-10) and ours.std == pytest.approx(std, rel=1e-10)


# -------------------------------------------------------------------------------------------- IS

@pytest.mark.parametrize("n, splits, shuffle, seed", [(1000, 10, True, 2020), (1003, 10, True, 5), (257, 4, False, 0)])
def test_is_matches_torch_fidelity(n, splits, shuffle, seed):
    rng = np.random.default_rng(n)
    logits = (rng.normal(size=(n, 1008)) * 3 + rng.normal(size=1008)).astype(np.float32)
    store = FeatureStore.from_array(rng.normal(size=(n, 4)).astype(np.float32), logits, block=100)
    ours = inception_score(store, is_splits=splits, is_shuffle=shuffle, seed=seed)
    ref = tf_isc.isc_features_to_metric(torch.from_numpy(logits), splits, shuffle, seed)
    assert ours.mean == pytest.approx(ref[tf_isc.KEY_METRIC_ISC_MEAN], rel=1e-10)
    assert ours.std == pytest.approx(ref[tf_isc.KEY_METRIC_ISC_STD], rel=1e-8)
    store.close()


# ------------------------------------------------------------------------------------------ PRDC

@pytest.mark.parametrize("case", ["gaussian", "ties"])
@pytest.mark.parametrize("k", [5, 3])
def test_prdc_equals_prdc_package(case, k, capsys):
    real, fake = gaussian_pair() if case == "gaussian" else tied_pair()
    expected = prdc_ref.compute_prdc(real, fake, k)
    for block in (64, 1024):
        got = prdc(fake, real, prdc_k=k, block=block)
        assert {name: getattr(got, name) for name in expected} == {n: float(v) for n, v in expected.items()}
    assert 0 < got.precision < 1 and 0 < got.recall <= 1


# ------------------------------------------------------------------------------------------ FID∞

class _Gaussian:
    def __init__(self, mu, sigma):
        self.mu, self.sigma, self.n = mu, sigma, None


def test_fid_infinity_recovers_the_distance_of_gaussians():
    """Generated N(0, 1.5² I), reference exactly N(0, I), D = 64: the distance is 64 (1.5 − 1)² = 16.
    FID_N is biased upwards (≈ +0.7 at N = 2000); the intercept over 4 seeds is within 0.1 of 16
    (single seeds within 0.25)."""
    dim = 64
    truth = frechet_distance(np.zeros(dim), 2.25 * np.eye(dim), np.zeros(dim), np.eye(dim))
    assert truth == pytest.approx(16.0)
    estimates, smallest = [], []
    for seed in range(4):
        x = (np.random.default_rng(seed).normal(size=(20000, dim)) * 1.5).astype(np.float32)
        result = fid_infinity(x, _Gaussian(np.zeros(dim), np.eye(dim)), fid_inf_min_n=2000, seed=seed)
        assert result.n_values[0] == 2000 and result.n_values[-1] == 20000 and len(result.n_values) == 15
        assert abs(result.fid_inf - truth) < 0.25
        estimates.append(result.fid_inf)
        smallest.append(result.fid_values[0])
    assert abs(np.mean(estimates) - truth) < 0.1
    assert np.mean(smallest) - truth > 0.5


# -------------------------------------------------------------------------------- per condition

def test_fd_per_condition_categorical_and_multilabel():
    rng = np.random.default_rng(0)
    dim, classes = 4, 3
    means = rng.normal(size=(classes, dim)) * 3
    g_lab, r_lab = rng.integers(0, classes, 900), rng.integers(0, classes, 800)
    g_lab[g_lab == 2] = 1
    g_lab[:3] = 2  # class 2: 3 generated images, below D + 1 = 5: skipped and reported
    x = (means[g_lab] + rng.normal(size=(900, dim))).astype(np.float32)
    y = (means[r_lab] + 1.2 * rng.normal(size=(800, dim))).astype(np.float32)
    result = fd_per_condition(x, y, generated_labels=g_lab, reference_labels=r_lab)
    assert result.min_count == dim + 1
    assert [c.label for c in result.per_label] == ["0", "1"]
    assert [(c.label, c.n_generated, c.n_reference) for c in result.skipped] == [("2", 3, int((r_lab == 2).sum()))]
    for c in result.per_label:
        a = x[g_lab == int(c.label)].astype(np.float64)
        b = y[r_lab == int(c.label)].astype(np.float64)
        direct = frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
        assert c.fd == pytest.approx(direct, rel=1e-9)
        assert (c.n_generated, c.n_reference) == (len(a), len(b))
    assert result.mean_fd == pytest.approx(np.mean([c.fd for c in result.per_label]))
    # multilabel: a 0/1 matrix; an image counts for every label it carries
    g_multi = np.stack([g_lab == 0, g_lab <= 1], axis=1).astype(np.uint8)
    r_multi = np.stack([r_lab == 0, r_lab <= 1], axis=1).astype(np.uint8)
    multi = fd_per_condition(x, y, generated_labels=g_multi, reference_labels=r_multi, label_names=["a", "b"],
                             min_count=2)
    assert multi.per_label[0].fd == pytest.approx(result.per_label[0].fd, rel=1e-12)
    assert multi.per_label[1].n_generated == int((g_lab <= 1).sum())
    json.dumps(multi.to_dict())


# -------------------------------------------------------------------------------- memorisation

def test_memorisation_flags_planted_copies():
    rng = np.random.default_rng(0)
    dim = 32
    train = rng.normal(size=(3000, dim)).astype(np.float32)
    heldout = rng.normal(size=(1000, dim)).astype(np.float32)
    generated = rng.normal(size=(1000, dim)).astype(np.float32)
    copies = rng.choice(1000, 50, replace=False)
    sources = rng.choice(3000, 50, replace=False)
    generated[copies] = train[sources] + 1e-3 * rng.normal(size=(50, dim)).astype(np.float32)
    result = memorisation(generated, heldout, train=train, mem_pairs=50, block=300)
    fresh = np.setdiff1d(np.arange(1000), copies)
    # the fresh samples fall under the held-out 5th percentile at about its rate; the copies all do
    assert set(copies) <= set(np.flatnonzero(result.distances < result.threshold))
    assert 0.05 < result.fraction_closer < 0.05 + 0.05 + 0.04
    assert abs((result.distances[fresh] < result.threshold).mean() - 0.05) < 0.03
    pairs = {(g, t) for g, t, _ in result.closest}
    assert pairs == set(zip(copies.tolist(), sources.tolist()))
    assert [d for _, _, d in result.closest] == sorted(d for _, _, d in result.closest)
    d_h = distances.pairwise_distances(heldout, train).min(axis=1)
    assert result.threshold == pytest.approx(float(np.percentile(d_h.astype(np.float64), 5)), rel=1e-12)
    assert result.median == pytest.approx(float(np.median(distances.pairwise_distances(generated, train).min(1))))
    assert "distances" not in result.to_dict()


# ----------------------------------------------------------------------------- one pass, registry

def test_compute_metrics_from_one_pass_of_stores():
    a, b = gaussian_pair(n1=1200, n2=1100, dim=16)
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(1200, 10)) * 2
    with FeatureStore.from_array(a, logits, block=100) as gen, FeatureStore.from_array(b, block=100) as ref:
        results = compute_metrics("fid,kid,is,prdc,fid-inf", gen, ref, kid_subsets=10, prdc_k=4, block=256,
                                  fid_inf_min_n=300)
        assert list(results) == ["fid", "kid", "is", "prdc", "fid-inf"]
        assert results["kid"].to_dict() == kid(a, b, kid_subsets=10, block=256).to_dict()  # `block` reaches KID too
        assert results["prdc"].to_dict() == prdc(a, b, prdc_k=4).to_dict()
        direct = frechet_distance(a.astype(np.float64).mean(0), np.cov(a.astype(np.float64), rowvar=False),
                                  b.astype(np.float64).mean(0), np.cov(b.astype(np.float64), rowvar=False))
        assert results["fid"].fid == pytest.approx(direct, rel=1e-9)
        json.dumps({name: r.to_dict() for name, r in results.items()})
        with pytest.raises(TypeError, match="kid_subset"):
            compute_metrics(["kid"], gen, ref, kid_subset=10)
        with pytest.raises(KeyError, match="unknown metric"):
            compute_metrics(["kdi"], gen, ref)
    assert {"fid", "kid", "is", "prdc", "fid-inf", "per-condition-fd", "memorisation"} <= set(list_metrics())
    with pytest.raises(ValueError, match="twice"):
        register_metric("kid")(lambda g, r: None)


def test_metrics_package_never_imports_torch():
    code = ("import sys, gen_eval.evaluator.metrics as m; "
            "assert 'torch' not in sys.modules, [k for k in sys.modules if 'torch' in k]; print(m.list_metrics())")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


# ---------------------------------------------------------------------------------------- memory

def test_metrics_on_a_large_store_stay_far_below_its_size():
    """50,000 x 64 float32 (12.8 MB) in a store: every metric's peak of Python/numpy allocations
    (tracemalloc; the memory map's pages are the page cache, not allocations) stays under a quarter
    of it. PRDC on 4,000 of them against 1,000 (its radii need all 4,000² distances, in tiles). Fewer KID
    subsets and generated samples than defaults keep it short: the peak does not depend on either.
    Distance tiles of 256 x 256 and KID kernel rows 64 at a time here; the defaults (1024 x 1024 tiles,
    whole 1000 x 1000 kernels) cost about 13 MB and 24 MB whatever N is."""
    rng = np.random.default_rng(0)
    n, dim = 50_000, 64
    size = n * dim * 4
    with FeatureStore(dim, logits_dim=10) as big:
        for start in range(0, n, 2500):
            big.append(rng.normal(size=(2500, dim)).astype(np.float32), rng.normal(size=(2500, 10)))
        small = rng.normal(size=(1000, dim)).astype(np.float32) + 0.2
        with FeatureStore(dim, path=big.path.with_name(big.path.stem + "-part.npy")) as part:
            part.keep = False
            for start in range(0, 4_000, 2000):
                part.append(big.features[start : start + 2000])
            runs = {
                "kid": lambda: kid(big, small, kid_subsets=10, block=64),
                "is": lambda: inception_score(big),
                "fid_inf": lambda: fid_infinity(big, small, fid_inf_points=5, fid_inf_min_n=10_000),
                "memorisation": lambda: memorisation(small[:256], small[256:512], train=big, block=256),
                "prdc": lambda: prdc(part, small, block=256),
            }
            peaks = {}
            for name, run in runs.items():
                tracemalloc.start()
                run()
                peaks[name] = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
    print({name: f"{peak / 1e6:.2f} MB" for name, peak in peaks.items()})
    assert max(peaks.values()) < size / 4, (peaks, size)


def test_metrics_report_names_a_collapse_and_says_what_per_condition_fd_needs():
    """Issue 25: 16 closest pairs on one training image, or recall near 0, is named a mode collapse; skipped
    per-condition FD conditions come with how many images they need and what to change."""
    from gen_eval.api.metrics import diagnose
    from gen_eval.evaluator.metrics.memorisation import MemorisationResult
    from gen_eval.evaluator.metrics.per_condition import ConditionFD, PerConditionResult
    from gen_eval.evaluator.metrics.prdc import PRDCResult

    collapsed = MemorisationResult(1.0, 2.0, 0.5, 5.0, 0.9, closest=[(g, 7, 0.1) for g in range(16)])
    healthy = MemorisationResult(1.0, 2.0, 0.5, 5.0, 0.05, closest=[(g, g, 0.1) for g in range(16)])
    said = diagnose({"memorisation": collapsed}, 512)
    assert len(said) == 1 and "mode collapse: 16 of the 16 closest" in said[0] and "(#7)" in said[0]
    assert diagnose({"memorisation": healthy}, 512) == []
    assert "mode collapse: recall 0" in diagnose({"prdc": PRDCResult(0.9, 0.0, 1.0, 0.1, 5, 100, 100)}, 16)[0]
    assert diagnose({"prdc": PRDCResult(0.9, 0.6, 1.0, 0.8, 5, 100, 100)}, 16) == []
    skipped = PerConditionResult(None, 513, [], [ConditionFD(f"c{j}", None, 80, 40) for j in range(24)])
    (line,) = diagnose({"per-condition-fd": skipped}, 512)
    assert "24 of 24 conditions skipped, fewer than 513 images on a side" in line
    assert "each condition needs 513 on both sides; the fullest skipped one has 40" in line
    assert "lower-dimensional features (512-d now)" in line and "min_count lower" in line
