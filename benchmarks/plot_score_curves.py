"""Draw the independent judge's score against training minutes, one curve per recipe, from logged runs.

    python benchmarks/plot_score_curves.py benchmarks/curves/shapes-*.csv --out benchmarks/score_vs_minutes.png \
        --title "shapes set, test.json, independent judge"

Each CSV is what ``benchmarks/score_checkpoints.py`` writes (one row per kept checkpoint: recipe, step,
train_seconds, score, low, high, ...). The x axis is the run's own training clock (``loop.elapsed_s`` of the
checkpoint, wall seconds of the training loop on the machine and load given in benchmarks/RESULTS.md); the
bars are each score's interval.
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

from matplotlib.figure import Figure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("csv", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--title", default="")
    parser.add_argument("--target", type=float, default=0.8)
    args = parser.parse_args()

    curves: dict[str, list[dict]] = defaultdict(list)
    for path in args.csv:
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                curves[row["recipe"]].append(row)
    fig = Figure(figsize=(7.5, 4.5), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    for recipe, rows in sorted(curves.items()):
        rows.sort(key=lambda r: float(r["train_seconds"]))
        minutes = [float(r["train_seconds"]) / 60 for r in rows]
        scores = [float(r["score"]) for r in rows]
        below = [s - float(r["low"]) for s, r in zip(scores, rows)]
        above = [float(r["high"]) - s for s, r in zip(scores, rows)]
        ax.errorbar(minutes, scores, yerr=[below, above], marker="o", markersize=4, capsize=3, linewidth=1.2,
                    label=recipe)
    ax.axhline(args.target, color="grey", linestyle="--", linewidth=0.8, label=f"target {args.target:g}")
    ax.set_xlabel("training minutes (the run's own clock; machine and load in benchmarks/RESULTS.md)")
    ax.set_ylabel("classifier score (pooled top-k)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    if args.title:
        ax.set_title(args.title, fontsize=10)
    fig.tight_layout()
    fig.savefig(args.out, format="png")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
