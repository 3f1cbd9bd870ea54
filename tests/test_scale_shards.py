"""Sharded statistics: merged shards are the unsharded run bit for bit (sums, mu, sigma, FID and its
interval), a killed shard resumes from its checkpoint, bad merges are one-line errors, and `fid`
computes from two statistics files."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from gen_eval.api.fid import fid, statistics
from gen_eval.api.sources import GeneratorSource, Runtime
from gen_eval.evaluator.exact import ExactSum
from gen_eval.evaluator.stats import load_stats, merge_stats
from helpers.cli import assert_one_line_error, process_env, run_cli_here
from helpers.graphs import make_dense_head, make_generator

N, CHUNK = 50, 8
CPU = Runtime("cpu")


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    features = make_dense_head(root / "f.onnx", role="features", out_dim=6, activation="Relu", value_range="0,1",
                               extra_meta={"gen_eval.family": "testfeat"})
    generator = make_generator(root / "g.onnx", seed=3)
    ref = root / "ref.npz"
    statistics(GeneratorSource(make_generator(root / "r.onnx", seed=4), n=40, seed=1), features=features, chunk_size=CHUNK,
               runtime=CPU).save(ref)
    whole = statistics(GeneratorSource(generator, n=N, seed=5), features=features, chunk_size=CHUNK, runtime=CPU)
    whole.save(root / "whole.npz")
    return root, features, generator, ref, whole


def shard_files(root, features, generator, count, tag):
    paths = []
    for k in range(1, count + 1):
        path = root / f"{tag}-{k}of{count}.npz"
        statistics(GeneratorSource(generator, n=N, seed=5), features=features, chunk_size=CHUNK, shard=(k, count), runtime=CPU).save(path)
        paths.append(path)
    return paths


def test_exact_sum_is_order_free_and_exact():
    rng = np.random.default_rng(0)
    values = [rng.standard_normal((4, 3)) * 10.0 ** rng.integers(-12, 12) for _ in range(40)]
    forward, backward, halves = ExactSum((4, 3)), ExactSum((4, 3)), ExactSum((4, 3))
    other = ExactSum((4, 3))
    for v in values:
        forward.add(v)
    for v in reversed(values):
        backward.add(v)
    for v in values[:17]:
        halves.add(v)
    for v in values[17:]:
        other.add(v)
    halves.merge(other)
    exact = np.array([[math.fsum(v[i, j] for v in values) for j in range(3)] for i in range(4)])
    assert np.array_equal(forward.value(), backward.value()) and np.array_equal(forward.value(), halves.value())
    # digits are kept to 2**-64 of the largest value (below: truncated), then rounded once to float64
    peak = max(np.abs(v).max() for v in values)
    bound = np.abs(exact) * 2.0**-52 + len(values) * peak * 2.0**-63
    assert (np.abs(forward.value() - exact) <= bound).all()


@pytest.mark.parametrize("count", [1, 2, 3])
def test_merged_shards_are_the_unsharded_run_bit_for_bit(assets, count):
    root, features, generator, ref, whole = assets
    merged = merge_stats(shard_files(root, features, generator, count, "bits"))
    assert merged.n == whole.n == N
    for name in ("sum", "sum_outer", "mu", "sigma"):
        assert np.array_equal(getattr(merged, name), getattr(whole, name)), name
    merged.save(root / f"merged{count}.npz")
    direct = fid(ref, GeneratorSource(generator, n=N, seed=5), features=features, chunk_size=CHUNK, runtime=CPU)
    from_files = fid(ref, gen_stats=root / f"merged{count}.npz")
    assert from_files.value == direct.value
    assert (from_files.interval.low, from_files.interval.high) == (direct.interval.low, direct.interval.high)
    assert math.isfinite(direct.interval.low)


def test_cli_fid_from_two_statistics_files(assets, tmp_path):
    root, features, generator, ref, whole = assets
    direct = fid(ref, GeneratorSource(generator, n=N, seed=5), features=features, chunk_size=CHUNK, runtime=CPU)
    for args in (["--gen-stats", root / "whole.npz", "--ref", ref], [root / "whole.npz", ref]):
        result = run_cli_here("fid", *args, "--report", "-")
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout[result.stdout.index("{"):])
        assert report["value"] == direct.value and report["n"] == N


def test_killed_shard_resumes_from_its_checkpoint(assets, tmp_path):
    root, features, generator, ref, whole = assets
    n, out = 20_000, tmp_path / "part.npz"
    partial = tmp_path / ".part.partial.npz"
    args = [sys.executable, "-m", "gen_eval.cli", "stats", "--features", features, "--model", generator, "--n", n,
            "--seed", 5, "--chunk-size", 64, "--shard", "2/3", "--device", "cpu", "--out", out]
    env = dict(process_env(), GEN_EVAL_CHECKPOINT_SECONDS="0")
    process = subprocess.Popen([str(a) for a in args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not partial.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert process.poll() is None, "the shard ended before it could be killed"
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    assert not out.exists() and partial.exists()
    done = load_stats(partial).n
    assert 0 < done < n // 3
    resumed = subprocess.run([str(a) for a in args], env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr and not partial.exists()
    fresh = statistics(GeneratorSource(generator, n=n, seed=5), features=features, chunk_size=64, shard=(2, 3), runtime=CPU)
    again = load_stats(out).stats
    assert again.n == fresh.n
    for name in ("sum", "sum_outer"):
        assert np.array_equal(getattr(again, name), getattr(fresh, name)), name


def test_bad_merges_are_one_line_errors(assets, tmp_path):
    root, features, generator, ref, whole = assets
    thirds = shard_files(root, features, generator, 3, "bad")
    halves = shard_files(root, features, generator, 2, "badhalf")
    out = tmp_path / "m.npz"
    assert_one_line_error(run_cli_here("stats", "merge", thirds[0], thirds[2], "--out", out), "none of the files",
                          "missing shards")
    assert_one_line_error(run_cli_here("stats", "merge", halves[0], thirds[0], thirds[1], thirds[2], "--out", out),
                          "overlapping shards")
    other_seed = tmp_path / "seed6.npz"
    statistics(GeneratorSource(generator, n=N, seed=6), features=features, chunk_size=CHUNK, shard=(2, 2), runtime=CPU).save(other_seed)
    assert_one_line_error(run_cli_here("stats", "merge", halves[0], other_seed, "--out", out), "another run")
    other_chunks = tmp_path / "chunk5.npz"
    statistics(GeneratorSource(generator, n=N, seed=5), features=features, chunk_size=5, shard=(2, 2), runtime=CPU).save(other_chunks)
    assert_one_line_error(run_cli_here("stats", "merge", halves[0], other_chunks, "--out", out), "chunk size")
    assert_one_line_error(run_cli_here("stats", "--features", features, "--model", generator, "--n", N,
                                       "--chunk-size", CHUNK, "--shard", "1/8", "--out", out), "no images")
    assert not out.exists()
    # images on the reference side need a features model: by default the cached inception, named with its fetch
    assert_one_line_error(run_cli_here("fid", "--gen-stats", thirds[0], "--ref", root / "nowhere"),
                          "gen-eval weights get inception")


def test_metrics_from_feature_shards_equal_the_single_process_run(assets, tmp_path):
    from gen_eval.api.metrics import metrics
    from helpers.images import write_images

    root, features, generator, ref, whole = assets
    folder = write_images(tmp_path / "real", 30)
    ref_file = tmp_path / "real.npz"
    statistics(folder, features=features, chunk_size=CHUNK, features_out=tmp_path / "real.features.npy",
               runtime=CPU).save(ref_file)
    parts = []
    for k in (1, 2, 3):
        path = tmp_path / f"g{k}.npz"
        statistics(GeneratorSource(generator, n=N, seed=5), features=features, chunk_size=CHUNK, shard=(k, 3),
                   features_out=tmp_path / f"g{k}.features.npy", runtime=CPU).save(path)
        parts.append(path)
    names = ["fid", "kid", "prdc"]
    options = {"prdc_k": 3}
    direct = metrics(folder, GeneratorSource(generator, n=N, seed=5), features=features, names=names,
                     chunk_size=CHUNK, options=options, runtime=CPU)
    from_files = metrics(ref_file, names=names, gen_stats=list(reversed(parts)), options=options)
    assert from_files.to_dict()["fid"] == direct.to_dict()["fid"]
    assert from_files.results.keys() == direct.results.keys()
    for name in names:
        assert from_files.results[name].to_dict() == direct.results[name].to_dict(), name
    assert from_files.n_generated == N and from_files.n_reference == 30
    # the FID of `metrics` is the FID of `fid` (the same exact sums)
    assert direct.results["fid"].to_dict()["fid"] == fid(ref_file, GeneratorSource(generator, n=N, seed=5),
                                                             features=features, chunk_size=CHUNK, runtime=CPU).value
    (tmp_path / "g2.features.npy").unlink()
    assert_one_line_error(run_cli_here("metrics", "--gen-stats", parts[0], "--gen-stats", parts[1], "--gen-stats",
                                       parts[2], "--ref", ref_file), "g2.features.npy", "--save-features")
