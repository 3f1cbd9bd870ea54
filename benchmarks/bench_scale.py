"""Scaling out, side by side in one run: generated-side FID statistics in one plain process vs Ray actor pools.

    .venv/bin/python benchmarks/bench_scale.py [--n 2048] [--chunk-size 256] [--repeats 2] [--actors 1,2]

A DCGAN-size generator (z 100 -> 3x64x64, random weights) feeds a small convolutional features model
(3x64x64 -> 512-d); every configuration computes `gen_eval.statistics` of the same ``--n`` samples:

* plain process, onnxruntime with 1 and with 2 threads;
* ``ray_address="local"`` with 1 and 2 CPU actors (one core and one onnxruntime thread each), on a Ray
  started once before the timings (its start-up is reported separately; actor start-up is in each time).

Times are the best of ``--repeats`` after one warm-up; every run's sums are checked bit-identical to
the plain process's. Not a test: no assertions beyond that check.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def machine() -> str:
    model = "?"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    return (f"{model}, {os.cpu_count()} CPUs visible, load average {os.getloadavg()[0]:.2f}, "
            f"python {platform.python_version()}")


def models(tmp: Path) -> tuple[Path, Path]:
    import torch
    from torch import nn

    from gen_eval.contract import ExportGraph
    from gen_eval.exporter import export_graph
    from gen_eval.trainers.networks import dcgan_init, transposed_generator

    torch.manual_seed(0)
    generator = transposed_generator(100, 64, 3, 64)
    generator.apply(dcgan_init)
    generator.eval()
    features = nn.Sequential(nn.Conv2d(3, 32, 4, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(),
                             nn.Conv2d(64, 128, 4, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(1),
                             nn.Linear(512, 512), nn.ReLU()).eval()
    gen_path, feat_path = tmp / "dcgan.onnx", tmp / "feats512.onnx"
    export_graph(ExportGraph("generator", generator, ["z"], [(100,)], ["image"], image_shape=(3, 64, 64),
                             value_range=(-1.0, 1.0), latent_dim=100), gen_path, family="dcgan", verify=False,
                 force=True)
    export_graph(ExportGraph("features", features, ["image"], [(3, 64, 64)], ["features"], image_shape=(3, 64, 64),
                             value_range=(0.0, 1.0)), feat_path, family="bench", verify=False, force=True)
    return gen_path, feat_path


def best_time(func, repeats: int):
    result = func()  # warm-up (and the result to compare)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2048)
    parser.add_argument("--chunk-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--actors", default="1,2")
    args = parser.parse_args()

    import ray

    from gen_eval.api import fid as fid_api
    from gen_eval.api import inputs
    from gen_eval.api.sources import GeneratorSource, Runtime
    from gen_eval.evaluator.exact import chunk_ranges
    from gen_eval.evaluator.features import chunked_stats, generator_run_id
    from gen_eval.scale.ray_runner import ChunkJob, run_chunks

    print(machine(), flush=True)
    results: dict[str, float | str | bool] = {"images": args.n, "chunk size": args.chunk_size}
    with tempfile.TemporaryDirectory() as tmp:
        gen_path, feat_path = models(Path(tmp))

        def plain(threads):
            return lambda: fid_api.statistics(GeneratorSource(gen_path, n=args.n), features=feat_path,
                                              chunk_size=args.chunk_size, runtime=Runtime("cpu", threads=threads))

        baseline = None
        for threads in (1, 2):
            seconds, stats = best_time(plain(threads), args.repeats)
            baseline = baseline if baseline is not None else stats
            results[f"plain process, {threads} thread(s): images/s"] = args.n / seconds
            results[f"plain process, {threads} thread(s): same bits"] = bool(np.array_equal(stats.sum_outer,
                                                                                             baseline.sum_outer))
            print(json.dumps(results, indent=1), flush=True)

        start = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level="ERROR", log_to_driver=False)
        results["ray.init (s)"] = time.perf_counter() - start
        rt = Runtime("cpu", threads=1).open()
        feats = inputs.load_features(feat_path, rt)
        run = generator_run_id(inputs.load_generator(gen_path, rt), args.n, 0, None)
        job = ChunkJob(features=str(feat_path), source=GeneratorSource(gen_path, n=args.n, seed=0),
                       runtime=Runtime("cpu"))
        for actors in [int(a) for a in args.actors.split(",")]:
            def on_ray():
                return chunked_stats(feats, args.n, chunk_ranges(args.n, args.chunk_size),
                                     lambda todo: run_chunks(job, todo, actors=actors), run=run,
                                     chunk_size=args.chunk_size, blocks=10)
            seconds, stats = best_time(on_ray, args.repeats)
            results[f"ray, {actors} CPU actor(s): images/s (actor start included)"] = args.n / seconds
            results[f"ray, {actors} CPU actor(s): same bits"] = bool(np.array_equal(stats.sum_outer,
                                                                                     baseline.sum_outer))
            print(json.dumps(results, indent=1), flush=True)
        ray.shutdown()
    results["load average at end"] = os.getloadavg()[0]
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
