"""Seconds per training step of `gen-eval train classifier`, idle and beside one CPU-bound neighbour.

Usage (from the repository root; DATA from `gen-eval data shapes --out DATA --train 640 --heldout 64`):

    python benchmarks/bench_train_threads.py DATA [--tree PATH] [--env KEY=VALUE ...] [--threads N]

``--tree`` is the source tree put on PYTHONPATH (default: this checkout), so a commit before a change
can be measured beside it. Each condition trains 20 steps of the judge (ResNet18) at 32x32, batch 32,
on CPU, and reports the mean seconds per step over steps 11-20 (log.csv's ``time`` column), so start-up
and the first steps do not count. The neighbour is ``python -c 'while True: pass'``.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def seconds_per_step(data: str, tree: str, env_extra: dict[str, str], threads: int | None) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "gen_eval.cli", "train", "classifier", "--data", data, "--out", str(run),
               "--steps", "20", "--batch-size", "32", "--device", "cpu", "--workers", "0", "--no-progress",
               "--set", "image_size=32", "--set", "data.resize=true"]
        if threads:
            cmd += ["--threads", str(threads)]
        env = {**os.environ, "PYTHONPATH": tree, **env_extra}
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        rows = list(csv.DictReader((run / "log.csv").open()))
        times = {int(r["step"]): float(r["time"]) for r in rows}
        return (times[20] - times[10]) / 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("--tree", default=str(REPO))
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()
    env_extra = dict(item.split("=", 1) for item in args.env)
    idle = seconds_per_step(args.data, args.tree, env_extra, args.threads)
    neighbour = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1)
        busy = seconds_per_step(args.data, args.tree, env_extra, args.threads)
    finally:
        neighbour.kill()
        neighbour.wait()
    print(f"tree={args.tree} env={env_extra or '-'} threads={args.threads or 'default'}: "
          f"idle {idle:.3f} s/step, one busy neighbour {busy:.3f} s/step ({busy / idle:.1f}x)")


if __name__ == "__main__":
    main()
