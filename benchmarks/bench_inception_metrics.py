"""IS and KID end to end through the Inception: gen-eval vs torch-fidelity on the same weights and images.

Side by side in one run, for each N: torch-fidelity 0.4.0 ``calculate_metrics(isc=True, kid=True)`` on
two PNG folders (its own Inception in torch, CPU), and ``gen_eval.metrics(names="is,kid")`` on the same
folders through the exported ONNX Inception with ``--preprocessing torch-fidelity`` (same numbers
expected) and with the default ``--preprocessing pytorch-fid`` (the IS a pytorch-fid-style pipeline
gives: it differs by the resize). The weights are random stand-ins in pytorch-fid's format
(``random_fid_weights``): the published file cannot be downloaded here, and the cost does not depend on
the values (the IS difference between the two preprocessings does; it is shown for these weights only).
Images: the shapes set's 64x64 scenes. KID subsets of min(1000, N), 100 of them, both sides.

Each side runs in a fresh subprocess with 2 threads; time is the wall time of the whole call (feature
extraction included), peak is the subprocess's peak RSS (``ru_maxrss``, so it includes the libraries).

    PYTHONPATH=. .venv/bin/python benchmarks/bench_inception_metrics.py [--sizes 100,200,400]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def child(job: dict) -> dict:
    start = time.perf_counter()
    subset = min(1000, job["n"])
    if job["side"] == "torch-fidelity":
        import torch
        import torch_fidelity

        torch.set_num_threads(2)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            out = torch_fidelity.calculate_metrics(input1=job["gen"], input2=job["ref"], isc=True, kid=True,
                                                   cuda=False, cache=False, verbose=False, save_cpu_ram=True,
                                                   batch_size=50, kid_subset_size=subset,
                                                   feature_extractor_weights_path=job["weights"])
        values = {"is_mean": out["inception_score_mean"], "is_std": out["inception_score_std"],
                  "kid_mean": out["kernel_inception_distance_mean"], "kid_std": out["kernel_inception_distance_std"]}
    else:
        import gen_eval

        report = gen_eval.metrics(job["ref"], job["gen"], features=job["onnx"], names="is,kid",
                                  runtime=gen_eval.Runtime("cpu", batch_size=50, threads=2),
                                  options={"kid_subset_size": subset})
        values = {"is_mean": report.results["is"].mean, "is_std": report.results["is"].std,
                  "kid_mean": report.results["kid"].mean, "kid_std": report.results["kid"].std}
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, **values}


def run_child(job: dict) -> dict:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="2", OMP_NUM_THREADS="2", PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, __file__, "--child", json.dumps(job)], env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child")
    parser.add_argument("--sizes", default="100,200,400")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    import torch

    from gen_eval.data.shapes import write_shapes
    from gen_eval.exporter.inception import export_inception, random_fid_weights

    print(f"# {os.cpu_count()} CPUs, load {os.getloadavg()}", flush=True)
    sizes = [int(v) for v in args.sizes.split(",") if v]
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp, "inception-random.pth")
        torch.save(random_fid_weights(seed=0), weights)
        onnx = {}
        for preprocessing in ("torch-fidelity", "pytorch-fid"):
            onnx[preprocessing] = Path(tmp, f"{preprocessing}.onnx")
            export_inception(weights, onnx[preprocessing], verify=False, preprocessing=preprocessing)
        for n in sizes:
            gen = write_shapes(Path(tmp, f"gen{n}"), n_train=n, n_heldout=0, seed=1) / "images"
            ref = write_shapes(Path(tmp, f"ref{n}"), n_train=n, n_heldout=0, seed=2) / "images"
            common = {"n": n, "gen": str(gen), "ref": str(ref), "weights": str(weights)}
            row = {"n": n, "load": os.getloadavg()[0]}
            row["torch-fidelity"] = run_child({**common, "side": "torch-fidelity"})
            for preprocessing, path in onnx.items():
                row[f"gen-eval {preprocessing}"] = run_child({**common, "side": "gen-eval", "onnx": str(path)})
            print(json.dumps(row), flush=True)
    print(f"# load at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
