"""`--ray` on a local Ray started here (2 CPUs, no dashboard): the single-process bits for 1 and 2 actors,
a killed actor, and a bad input found in a worker reported as the same one-line error.

Deselect with ``-m "not ray"``; skipped where Ray is not installed (it is in the ``dev`` extra)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from gen_eval.api.fid import fid, statistics
from gen_eval.api.sources import GeneratorSource, Runtime
from helpers.cli import assert_one_line_error, run_cli_here
from helpers.graphs import make_dense_head, make_generator
from helpers.images import write_images

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.ray
N, CHUNK = 120, 8
CPU = Runtime("cpu")


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
             _system_config={"health_check_period_ms": 200, "health_check_failure_threshold": 3})
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray")
    features = make_dense_head(root / "f.onnx", role="features", out_dim=6, activation="Relu", value_range="0,1")
    generator = make_generator(root / "g.onnx", seed=3)
    ref = root / "ref.npz"
    statistics(GeneratorSource(make_generator(root / "r.onnx", seed=4), n=40), features=features, chunk_size=CHUNK, runtime=CPU).save(ref)
    local = statistics(GeneratorSource(generator, n=N, seed=5), features=features, chunk_size=CHUNK, runtime=CPU)
    return root, features, generator, ref, local


def ray_stats(features, generator, actors, sink=None):
    from gen_eval.api import inputs
    from gen_eval.evaluator.exact import chunk_ranges
    from gen_eval.evaluator.features import chunked_stats, generator_run_id
    from gen_eval.scale.ray_runner import ChunkJob, run_chunks

    rt = CPU.open()
    model = inputs.load_features(features, rt)
    gen = inputs.load_generator(generator, rt)
    job = ChunkJob(features=str(features), source=GeneratorSource(generator, n=N, seed=5), runtime=CPU)
    return chunked_stats(model, N, chunk_ranges(N, CHUNK), lambda todo: run_chunks(job, todo, actors=actors),
                         run=generator_run_id(gen, N, 5, None), chunk_size=CHUNK, blocks=10, sink=sink)


@pytest.mark.parametrize("actors", [1, 2])
def test_ray_actors_give_the_single_process_bits(assets, actors):
    root, features, generator, ref, local = assets
    stats = ray_stats(features, generator, actors)
    for name in ("sum", "sum_outer", "mu", "sigma"):
        assert np.array_equal(getattr(stats, name), getattr(local, name)), name
    assert [b.n for b in stats.blocks()] == [b.n for b in local.blocks()]


def test_fid_and_stats_with_ray_option(assets, tmp_path):
    root, features, generator, ref, local = assets
    direct = fid(ref, GeneratorSource(generator, n=N, seed=5), features=features, chunk_size=CHUNK, runtime=CPU)
    on_ray = fid(ref, GeneratorSource(generator, n=N, seed=5), features=features, chunk_size=CHUNK, runtime=CPU, ray_address="local")
    assert on_ray.value == direct.value and on_ray.interval.low == direct.interval.low
    out = tmp_path / "s.npz"
    result = run_cli_here("stats", "--features", features, "--model", generator, "--n", N, "--seed", 5,
                          "--chunk-size", CHUNK, "--device", "cpu", "--ray", "--out", out)
    assert result.returncode == 0, result.stderr
    from gen_eval.evaluator.stats import load_stats

    assert np.array_equal(load_stats(out).stats.sum_outer, local.sum_outer)


def _actor_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().startswith(b"ray::ChunkWorker"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def test_a_killed_actor_is_restarted_with_no_chunk_twice_or_missed(assets):
    root, features, generator, ref, local = assets
    seen, killed = [], []

    def kill_once(feats, rows):
        seen.extend(rows.tolist())
        if not killed:
            pids = _actor_pids()
            assert pids, "no actor process found"
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    stats = ray_stats(features, generator, 2, sink=kill_once)
    assert killed and seen == list(range(N))
    for name in ("sum", "sum_outer"):
        assert np.array_equal(getattr(stats, name), getattr(local, name)), name


def test_bad_input_in_a_worker_is_the_local_one_line_error(assets, tmp_path):
    root, features, generator, ref, local = assets
    folder = write_images(tmp_path / "imgs", 20)
    broken = sorted(folder.glob("*.png"))[13]
    broken.write_bytes(broken.read_bytes()[:40])  # a truncated PNG: only decoding it (in a worker) finds out
    args = ["stats", "--features", features, "--data", folder, "--chunk-size", CHUNK, "--device", "cpu"]
    local_run = run_cli_here(*args, "--out", tmp_path / "a.npz")
    ray_run = run_cli_here(*args, "--ray", "--out", tmp_path / "b.npz")
    assert_one_line_error(ray_run, broken.name)
    assert_one_line_error(local_run, broken.name)
    assert ray_run.stderr.splitlines()[-1] == local_run.stderr.splitlines()[-1]
    assert not (tmp_path / "b.npz").exists()


def test_sample_with_ray_writes_the_same_pngs(assets, tmp_path):
    root, features, generator, ref, local = assets
    n = 1024 + 5  # two chunk-sized shards: the first here (it claims the folder), the second on an actor
    here, there = tmp_path / "here", tmp_path / "there"
    assert run_cli_here("sample", "--model", generator, "--n", n, "--device", "cpu", "--out", here).returncode == 0
    result = run_cli_here("sample", "--model", generator, "--n", n, "--device", "cpu", "--ray", "--out", there)
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in here.glob("*.png"))
    assert names == sorted(p.name for p in there.glob("*.png")) and len(names) == n
    assert all((here / name).read_bytes() == (there / name).read_bytes() for name in names[::97])
    manifest = ".gen-eval-sample.json"
    assert json.loads((there / manifest).read_text()) == json.loads((here / manifest).read_text())
