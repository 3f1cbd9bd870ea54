"""Evaluator benchmarks, side by side in one run on the same inputs (not tests; no assertions).

    .venv/bin/python benchmarks/bench_evaluator.py [--threads 2] [--repeats 3] [--only score,sampling,frechet,memory]

1. classifier score: gen-eval (onnxruntime) vs the TA-style torch eager evaluation (ResNet18 judge,
   random weights, eval mode, torch.no_grad, batches of 32, the TA's compute_acc) on the same images;
2. sampling: a DCGAN-size generator (z 100 -> 64x64x3), gen-eval sampling (noise included) vs torch eager;
3. the Fréchet distance of two 2048-d statistics: gen-eval vs pytorch-fid's sqrtm route (same value?);
4. peak memory (RSS) of FID statistics as N grows, each N in a fresh process.

Both sides get the same number of threads (torch.set_num_threads / onnxruntime intra-op threads).
Times are the best of ``--repeats`` runs after one warm-up; ratios are baseline time / gen-eval time.
"""

from __future__ import annotations

import os
import sys

# BLAS threads must be fixed before numpy loads: --blas-threads N sets OPENBLAS/OMP/MKL_NUM_THREADS.
if "--blas-threads" in sys.argv:
    _n = sys.argv[sys.argv.index("--blas-threads") + 1]
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = _n

import argparse
import contextlib
import io
import json
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # for helpers.ta_reference: the TA's compute_acc, one copy shared with the tests


def best_time(func, repeats: int) -> float:
    func()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def machine() -> str:
    model = "?"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    return (f"{model}, {os.cpu_count()} CPUs visible, load average {load[0]:.2f} at start, "
            f"python {platform.python_version()}")


def export(graph, path: Path, family: str) -> Path:
    from gen_eval.exporter import export_graph

    export_graph(graph, path, family=family, verify=False, force=True)
    return path


# -- 1. classifier score ------------------------------------------------------------------------
def bench_score(tmp: Path, threads: int, repeats: int, n: int = 512) -> dict:
    import torch

    from gen_eval.contract import ExportGraph
    from gen_eval.data.labels import LabelSpace
    from gen_eval.evaluator import Runtime, load_model
    from gen_eval.evaluator.score import classify_generated, multilabel_score
    from gen_eval.trainers.judge import ta_resnet18
    from helpers.ta_reference import ta_compute_acc

    torch.manual_seed(0)
    model = ta_resnet18(24).eval()
    space = LabelSpace.multilabel([f"label{i}" for i in range(24)])
    graph = ExportGraph("classifier", model, ["image"], [(3, 64, 64)], ["probs"], image_shape=(3, 64, 64),
                        value_range=(-1.0, 1.0), label_space=space)
    path = export(graph, tmp / "judge.onnx", "classifier")
    rng = np.random.default_rng(0)
    images = np.tanh(rng.standard_normal((n, 3, 64, 64))).astype(np.float32)  # "generator output" in [-1, 1]
    conditions = np.zeros((n, 24), np.float32)
    for row in conditions:
        row[rng.choice(24, rng.integers(1, 4), replace=False)] = 1

    def torch_eager():
        acc = total = 0
        with torch.no_grad():
            for start in range(0, n, 32):  # the TA scores its 32 test conditions as one batch
                out = model(torch.from_numpy(images[start : start + 32]))
                a, t = ta_compute_acc(out, torch.from_numpy(conditions[start : start + 32]))
                acc, total = acc + a, total + t
        return acc / total

    results = {"images": n}
    torch_time = best_time(torch_eager, repeats)
    results["torch eager (TA style, batch 32)"] = n / torch_time
    torch_score = torch_eager()
    for batch in (32, 64, 128):
        judge = load_model(path, role="classifier", runtime=Runtime("cpu", threads), batch_size=batch)
        holder = {}

        def ours():
            holder["score"] = multilabel_score(classify_generated(judge, images, (-1.0, 1.0)), conditions).value

        t = best_time(ours, repeats)
        results[f"gen-eval onnxruntime (batch {batch})"] = n / t
        results[f"ratio at batch {batch}"] = torch_time / t
        results["same score"] = bool(abs(holder["score"] - torch_score) < 1e-12)
    return results


# -- 2. sampling ----------------------------------------------------------------------------------
def bench_sampling(tmp: Path, threads: int, repeats: int, n: int = 512) -> dict:
    import torch

    from gen_eval.contract import ExportGraph
    from gen_eval.evaluator import Runtime, load_model, sample
    from gen_eval.evaluator.noise import latent_noise
    from gen_eval.trainers.networks import dcgan_init, transposed_generator

    torch.manual_seed(0)
    generator = transposed_generator(100, 64, 3, 64)  # Radford's 64x64 DCGAN: widths 512-256-128-64
    generator.apply(dcgan_init)
    generator.eval()
    graph = ExportGraph("generator", generator, ["z"], [(100,)], ["image"], image_shape=(3, 64, 64),
                        value_range=(-1.0, 1.0), latent_dim=100)
    path = export(graph, tmp / "dcgan.onnx", "dcgan")
    results = {"images": n}
    for batch in (64, 128):
        def torch_eager():
            out = []
            with torch.no_grad():
                for start in range(0, n, batch):
                    z = torch.from_numpy(latent_noise(0, range(start, min(start + batch, n)), 100))
                    out.append(generator(z).numpy())
            return out

        model = load_model(path, role="generator", runtime=Runtime("cpu", threads), batch_size=batch)

        def ours():
            return [b.images for b in sample(model, n, 0)]

        torch_time = best_time(torch_eager, repeats)
        ours_time = best_time(ours, repeats)
        same = max(float(np.abs(a - b).max()) for a, b in zip(torch_eager(), ours()))
        results[f"torch eager (batch {batch})"] = n / torch_time
        results[f"gen-eval onnxruntime (batch {batch})"] = n / ours_time
        results[f"ratio at batch {batch}"] = torch_time / ours_time
        results[f"max |ORT - torch| (batch {batch})"] = same
    return results


# -- 3. Fréchet distance ------------------------------------------------------------------------------
def bench_frechet(repeats: int, dim: int = 2048, n: int = 5000) -> dict:
    from scipy import linalg

    from gen_eval.evaluator.frechet import frechet_distance

    rng = np.random.default_rng(0)

    def stats(shift):
        mixing = rng.standard_normal((dim, dim)) / np.sqrt(dim)
        x = np.maximum(rng.standard_normal((n, dim)) @ mixing + shift, 0)  # ReLU features, N > D: well conditioned
        return x.mean(0), np.cov(x, rowvar=False)

    mu1, s1 = stats(0.0)
    mu2, s2 = stats(0.1)

    def pytorch_fid_route():
        from pytorch_fid import fid_score

        def sqrtm(a, disp=True):  # scipy >= 1.18 has no disp; pytorch-fid passes disp=False
            root = linalg.sqrtm(a)
            return (root, 0.0) if disp is False else root

        original, fid_score.linalg = fid_score.linalg, type("shim", (), {"sqrtm": staticmethod(sqrtm)})
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                return float(fid_score.calculate_frechet_distance(mu1, s1, mu2, s2))
        finally:
            fid_score.linalg = original

    start = time.perf_counter()
    reference = pytorch_fid_route()  # one run: it takes tens of seconds
    ref_time = time.perf_counter() - start
    ours_value = frechet_distance(mu1, s1, mu2, s2)
    ours_time = best_time(lambda: frechet_distance(mu1, s1, mu2, s2), repeats)
    return {"dimension": dim, "pytorch-fid sqrtm route (s)": ref_time, "gen-eval (s)": ours_time,
            "ratio": ref_time / ours_time, "pytorch-fid value": reference, "gen-eval value": ours_value,
            "relative difference": abs(ours_value - reference) / abs(reference)}


# -- 4. peak memory of FID statistics ----------------------------------------------------------------
MEMORY_CHILD = r"""
import sys, time
from gen_eval.evaluator import Runtime, load_model
from gen_eval.evaluator.features import generator_stats
n = int(sys.argv[3])
runtime = Runtime("cpu", int(sys.argv[4]))
gen = load_model(sys.argv[1], role="generator", runtime=runtime)
feats = load_model(sys.argv[2], role="features", runtime=runtime)
start = time.perf_counter()
stats = generator_stats(feats, gen, n, 0, progress=False)
stats.sigma
# VmHWM: this process image's peak RSS (ru_maxrss would include the parent's, inherited across exec)
peak_kib = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(peak_kib, time.perf_counter() - start)
"""


def bench_memory(tmp: Path, threads: int, sizes=(1000, 4000, 16000)) -> dict:
    import torch
    from torch import nn

    from gen_eval.contract import ExportGraph

    torch.manual_seed(0)
    tiny_gen = nn.Sequential(nn.Linear(16, 3 * 32 * 32), nn.Tanh(), nn.Unflatten(1, (3, 32, 32)))
    feats = nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Flatten(1), nn.Linear(48, 2048), nn.ReLU())
    gen_path = export(ExportGraph("generator", tiny_gen, ["z"], [(16,)], ["image"], image_shape=(3, 32, 32),
                                  value_range=(-1.0, 1.0), latent_dim=16), tmp / "tiny_gen.onnx", "bench")
    feat_path = export(ExportGraph("features", feats, ["image"], [(3, 32, 32)], ["features"], image_shape=(3, 32, 32),
                                   value_range=(0.0, 1.0)), tmp / "feats2048.onnx", "bench")
    results = {"feature dimension": 2048}
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for n in sizes:
        out = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(gen_path), str(feat_path), str(n), str(threads)],
                             capture_output=True, text=True, env=env, check=True)
        peak_kib, seconds = out.stdout.split()
        results[f"N={n}: peak RSS (MiB)"] = int(peak_kib) / 1024
        results[f"N={n}: seconds"] = float(seconds)
        results[f"N={n}: all activations as float32 (MiB, what keeping them would add)"] = n * 2048 * 4 / 2**20
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default="score,sampling,frechet,memory")
    parser.add_argument("--json", type=Path, default=None, help="Also write the numbers here.")
    parser.add_argument("--blas-threads", default=None,
                        help="Threads of numpy/scipy's BLAS (set before numpy loads; default: the library's).")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    print(f"machine: {machine()}")
    print(f"threads: {args.threads} (torch and onnxruntime); BLAS threads: {args.blas_threads or 'default'}; "
          f"repeats: best of {args.repeats}")
    wanted = args.only.split(",")
    everything = {}
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        for name, run in (("score", lambda: bench_score(tmp, args.threads, args.repeats)),
                          ("sampling", lambda: bench_sampling(tmp, args.threads, args.repeats)),
                          ("frechet", lambda: bench_frechet(args.repeats)),
                          ("memory", lambda: bench_memory(tmp, args.threads))):
            if name not in wanted:
                continue
            results = run()
            everything[name] = results
            print(f"\n[{name}]")
            for key, value in results.items():
                print(f"  {key}: {value:.4g}" if isinstance(value, float) else f"  {key}: {value}")
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps(everything, indent=2))


if __name__ == "__main__":
    main()
