"""Score every kept checkpoint of a training run with a judge the run never saw: the data of a score-vs-time curve.

    python benchmarks/score_checkpoints.py RUN --judge judge.onnx --conditions digits.json \
        --recipe mnist-diffusion --out benchmarks/curves/mnist-diffusion.csv [--repeats 2] [--threads 1]

For each ``RUN/checkpoints/step_NNNNNN.pt`` (``train --keep-checkpoints``) and ``last.pt``, the checkpoint is
exported to ONNX (parity-checked, as ``gen-eval export`` does) and scored on the conditions over ``--repeats``
noise seeds (the classifier score with its interval over seeds and conditions). One CSV row per checkpoint:
recipe, step, the run's training seconds at that step (``loop.elapsed_s``, wall clock of the training loop),
the score and its interval, and the load average while scoring. Rows already in ``--out`` are kept, so the
script can be rerun as a run goes on. Uses the public API only (``gen_eval.export``, ``gen_eval.score``).
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
from pathlib import Path

import torch

import gen_eval

FIELDS = ("recipe", "step", "train_seconds", "score", "low", "high", "repeats", "conditions", "judge", "load")


def checkpoints(run: Path) -> list[Path]:
    folder = run / "checkpoints"
    kept = sorted(folder.glob("step_*.pt"))
    last = folder / "last.pt"
    return kept + ([last] if last.exists() else [])


def read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--judge", required=True)
    parser.add_argument("--conditions", required=True)
    parser.add_argument("--recipe", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--objects", default=None)
    args = parser.parse_args()

    rows = read_rows(args.out)
    done = {(r["recipe"], int(r["step"])) for r in rows}
    for path in checkpoints(args.run):
        payload = torch.load(path, map_location="cpu", weights_only=False)
        step, seconds = int(payload["step"]), float(payload["loop"]["elapsed_s"])
        if (args.recipe, step) in done:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            model = Path(tmp) / "model.onnx"
            gen_eval.export(path, model)
            report = gen_eval.score(model, args.conditions, classifier=args.judge, objects=args.objects,
                                    repeats=args.repeats, runtime=gen_eval.Runtime("cpu", threads=args.threads))
        low, high = (report.interval.low, report.interval.high) if report.interval else (float("nan"), float("nan"))
        row = {"recipe": args.recipe, "step": step, "train_seconds": round(seconds, 1), "score": round(report.value, 4),
               "low": round(low, 4), "high": round(high, 4), "repeats": args.repeats,
               "conditions": Path(args.conditions).name, "judge": Path(args.judge).name,
               "load": round(os.getloadavg()[0], 2)}
        print(", ".join(f"{k} {v}" for k, v in row.items()), flush=True)
        rows.append(row)
        done.add((args.recipe, step))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=FIELDS)
            writer.writeheader()
            writer.writerows(sorted(rows, key=lambda r: (r["recipe"], int(r["step"]))))


if __name__ == "__main__":
    main()
