"""Metric suite vs its references, side by side in one run, on the same features.

KID and IS: gen-eval (``gen_eval.evaluator.metrics``, features in a memory-mapped ``FeatureStore``)
vs torch-fidelity 0.4.0 (``kid_features_to_metric`` / ``isc_features_to_metric`` on tensors held in
RAM, as torch-fidelity holds its extracted features) as N grows. PRDC: gen-eval (blocked distances)
vs ``prdc.compute_prdc`` 0.2 (full N x N matrices). Features are seeded Gaussians of Inception's
sizes (2048-d pool features, 1008 logits): no Inception weights can be downloaded here, and none of
these metrics' cost depends on the values.

Each measurement runs in a fresh subprocess: wall time of the metric call, and peak *anonymous*
resident memory above the process's baseline after imports (``RssAnon`` plus ``VmSwap`` from
/proc/self/status, sampled every 5 ms in a thread) — heap and BLAS buffers, not the page cache behind a memory map;
torch-fidelity's side includes loading its features into RAM, which is how it works. Both sides
get the same 2 threads (OpenBLAS / torch).

    PYTHONPATH=. .venv/bin/python benchmarks/bench_metrics.py [--sizes 5000,10000,20000] [--prdc 10000]
        [--metrics kid,is,prdc] [--dim 2048] [--classes 1008]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def anon_memory() -> int:
    """Anonymous memory in RAM plus what of it is swapped out (VmSwap): prdc at 50,000 needs swap here."""
    total = 0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("RssAnon:", "VmSwap:")):
            total += int(line.split()[1]) * 1024
    return total


class PeakAnon:
    def __enter__(self):
        self.base = anon_memory()
        self.peak = self.base
        self.stop = False
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        return self

    def _watch(self):
        while not self.stop:
            self.peak = max(self.peak, anon_memory())
            time.sleep(0.005)

    def __exit__(self, *exc):
        self.stop = True
        self.thread.join()
        self.peak = max(self.peak, anon_memory())


def child(job: dict) -> dict:
    """One measurement in this (fresh) process."""
    side, metric, path = job["side"], job["metric"], job["path"]
    if side == "torch-fidelity" or metric == "prdc-ref":
        import torch

        torch.set_num_threads(2)
    if side == "torch-fidelity":
        import torch_fidelity.metric_isc as tf_isc
        import torch_fidelity.metric_kid as tf_kid
    elif metric.startswith("prdc") and side == "prdc":
        import prdc as prdc_ref
    else:
        from gen_eval.evaluator.metrics import FeatureStore, inception_score, kid, prdc
    with PeakAnon() as mem:
        start = time.perf_counter()
        if side == "torch-fidelity" and metric == "kid":
            a, b = torch.from_numpy(np.load(path[0])), torch.from_numpy(np.load(path[1]))
            out = tf_kid.kid_features_to_metric(a, b, verbose=False)
            value = [out[tf_kid.KEY_METRIC_KID_MEAN], out[tf_kid.KEY_METRIC_KID_STD]]
        elif side == "torch-fidelity" and metric == "is":
            out = tf_isc.isc_features_to_metric(torch.from_numpy(np.load(path[0])))
            value = [out[tf_isc.KEY_METRIC_ISC_MEAN], out[tf_isc.KEY_METRIC_ISC_STD]]
        elif side == "prdc":
            out = prdc_ref.compute_prdc(np.load(path[1]), np.load(path[0]), 5)
            value = [float(out[k]) for k in ("precision", "recall", "density", "coverage")]
        else:
            gen, ref = FeatureStore.open(path[0]), FeatureStore.open(path[1]) if len(path) > 1 else None
            if metric == "kid":
                r = kid(gen, ref)
                value = [r.mean, r.std]
            elif metric == "is":
                r = inception_score(gen.features)  # the logits file opened as a store
                value = [r.mean, r.std]
            else:
                r = prdc(gen, ref)
                value = [r.precision, r.recall, r.density, r.coverage]
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_mb": (mem.peak - mem.base) / 2**20, "value": value}


def run_child(job: dict) -> dict:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="2", OMP_NUM_THREADS="2", PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, __file__, "--child", json.dumps(job)], env=env, capture_output=True,
                          text=True)
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child")
    parser.add_argument("--sizes", default="5000,10000,20000")
    parser.add_argument("--prdc", default="10000")
    parser.add_argument("--metrics", default="kid,is,prdc")
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--classes", type=int, default=1008)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    print(f"# {cpu_name()}, {os.cpu_count()} CPUs, load {os.getloadavg()}, numpy {np.__version__}", flush=True)
    sizes = [int(v) for v in args.sizes.split(",") if v]
    prdc_sizes = [int(v) for v in args.prdc.split(",") if v]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        for n in sorted(set(sizes + prdc_sizes)):
            gen = Path(tmp, f"gen{n}.npy")
            ref = Path(tmp, f"ref{n}.npy")
            logits = Path(tmp, f"logits{n}.npy")
            np.save(gen, rng.normal(size=(n, args.dim)).astype(np.float32))
            np.save(ref, (rng.normal(size=(n, args.dim)) * 1.05 + 0.02).astype(np.float32))
            np.save(logits, (rng.normal(size=(n, args.classes)) * 3).astype(np.float32))
            # gen-eval reads the same arrays as stores (an np.save'd float32 .npy with a 128-byte header
            # opens directly; re-save through FeatureStore to get its header layout)
            from gen_eval.evaluator.metrics import FeatureStore

            for src in (gen, ref, logits):
                data = np.load(src, mmap_mode="r")
                store = FeatureStore.from_array(data, path=Path(tmp, "store-" + src.name))
                store.close()
            jobs = []
            if n in sizes:
                jobs += [("kid", [gen, ref]), ("is", [logits])]
            if n in prdc_sizes:
                jobs += [("prdc", [gen, ref])]
            jobs = [job for job in jobs if job[0] in args.metrics.split(",")]
            for metric, paths in jobs:
                ours = run_child({"side": "gen-eval", "metric": metric,
                                  "path": [str(Path(tmp, "store-" + p.name)) for p in paths]})
                theirs = run_child({"side": "prdc" if metric == "prdc" else "torch-fidelity", "metric": metric,
                                    "path": [str(p) for p in paths]})
                row = {"metric": metric, "n": n, "ours": ours, "reference": theirs, "load": os.getloadavg()[0]}
                rows.append(row)
                print(json.dumps(row), flush=True)
    print(f"# load at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
