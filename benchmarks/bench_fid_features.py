"""FID features: gen-eval (exported Inception, onnxruntime) vs pytorch-fid's InceptionV3 (torch eager).

Both get the same weights (random, as the real file cannot be downloaded here; speed does not depend
on the values), the same images and the same batch size. pytorch-fid runs as its ``get_activations``
does (``torch.no_grad``, ``model(batch)[0]``); gen-eval runs through the evaluator's own model loader
(``load_model(role="features")``: ORT_ENABLE_ALL, intra-op threads = usable CPUs, no spinning), which
is what ``gen-eval fid`` uses. Passes alternate between the two so load changes hit both alike; the
median pass counts. The features of both are compared, so the speed is for the same numbers.

    .venv/bin/python benchmarks/bench_fid_features.py [--n 64] [--batch-size 16] [--size 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64, help="images per pass")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--size", type=int, default=64, help="image height and width before the resize to 299")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per implementation")
    parser.add_argument("--threads", type=int, default=None, help="threads for both (default: usable CPUs)")
    args = parser.parse_args(argv)

    import onnxruntime as ort
    import pytorch_fid
    import pytorch_fid.inception
    import torch

    from gen_eval.devices import default_threads
    from gen_eval.evaluator.model import load_model
    from gen_eval.evaluator.runtime import Runtime
    from gen_eval.exporter.inception import export_inception, random_fid_weights

    threads = args.threads or default_threads()
    torch.set_num_threads(threads)
    print(f"machine: {cpu_name()}, {os.cpu_count()} CPUs, {threads} threads each; python {platform.python_version()}, "
          f"torch {torch.__version__}, onnxruntime {ort.__version__}, pytorch-fid {pytorch_fid.__version__}")
    print(f"load average before: {load_average()}")

    with tempfile.TemporaryDirectory() as tmp:
        weights_path = Path(tmp) / "inception-random.pth"
        state_dict = random_fid_weights(seed=0)
        torch.save(state_dict, weights_path)
        started = time.perf_counter()
        export_inception(weights_path, Path(tmp) / "inception.onnx", verify=False)
        print(f"export-inception (no verify): {time.perf_counter() - started:.1f} s")

        with mock.patch.object(pytorch_fid.inception, "load_state_dict_from_url", lambda *a, **k: state_dict):
            reference = pytorch_fid.inception.InceptionV3([3]).eval()
        model = load_model(Path(tmp) / "inception.onnx", role="features", runtime=Runtime("cpu", threads),
                           batch_size=args.batch_size)
        print(f"gen-eval runtime: {model.runtime.describe()}")

        rng = np.random.default_rng(0)
        images = (rng.integers(0, 256, (args.n, 3, args.size, args.size)).astype(np.float32) / 255.0)
        batches = [images[i : i + args.batch_size] for i in range(0, args.n, args.batch_size)]

        def run_pytorch_fid() -> np.ndarray:
            out = []
            with torch.no_grad():
                for batch in batches:
                    out.append(reference(torch.from_numpy(batch))[0].squeeze(3).squeeze(2).numpy())
            return np.concatenate(out)

        def run_gen_eval() -> np.ndarray:
            return model.run(image=images)["features"]

        # warm-up (first-run allocations, oneDNN primitive caches, onnxruntime's planner)
        with torch.no_grad():
            reference(torch.from_numpy(batches[0]))
        model.run(image=batches[0])

        times: dict[str, list[float]] = {"pytorch-fid": [], "gen-eval": []}
        results = {}
        for _ in range(args.repeats):
            for name, fn in (("pytorch-fid", run_pytorch_fid), ("gen-eval", run_gen_eval)):
                started = time.perf_counter()
                results[name] = fn()
                times[name].append(time.perf_counter() - started)

    diff = float(np.abs(results["gen-eval"] - results["pytorch-fid"]).max())
    scale = float(np.abs(results["pytorch-fid"]).max())
    print(f"images: {args.n} x 3x{args.size}x{args.size} uint8/255 -> resized to 299 in both; batch {args.batch_size}; "
          f"{args.repeats} alternating passes, median")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:12s} {median:7.2f} s/pass  {args.n / median:6.1f} images/s  "
              f"(passes: {', '.join(f'{v:.2f}' for v in values)})")
    ratio = statistics.median(times["pytorch-fid"]) / statistics.median(times["gen-eval"])
    print(f"speed-up gen-eval / pytorch-fid: {ratio:.2f}x (target >= 2x)")
    print(f"features max |gen-eval - pytorch-fid|: {diff:.2e} (features up to {scale:.2f})")
    print(f"load average after: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
