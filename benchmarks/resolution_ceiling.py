"""The best score a recipe can reach at the resolution it generates at: judges' accuracy on real held-out images
taken through the same round trip (bicubic down to the recipe's size, then the evaluator's own resize to the
judge's input, as generated images are).

    python benchmarks/resolution_ceiling.py DATA --judge classifier.onnx --judge independent_judge.onnx \
        --sizes 64,32 [--split heldout]

A generator at 32 px scored by a 64 px judge can at most reach the judge's accuracy on real images that went
64 -> 32 -> 64; a recipe whose ceiling is below its target is not a candidate. Prints one row per (judge, size):
the TA top-k accuracy (the score's rule) with its interval. Uses the public API (``gen_eval.accuracy``) on a
copy of the split written at each size.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from PIL import Image

import gen_eval


def resized_copy(data: Path, split: str, size: int, out: Path) -> Path:
    """The data set's ``split`` with every image resized to size x size (bicubic), in the same layout."""
    (out / "images").mkdir(parents=True)
    for name in ("objects.json", f"{split}.json"):
        shutil.copy(data / name, out / name)
    for name in json.loads((data / f"{split}.json").read_text()):
        with Image.open(data / "images" / name) as image:
            image.convert("RGB").resize((size, size), Image.BICUBIC).save(out / "images" / name)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--judge", action="append", required=True)
    parser.add_argument("--sizes", default="64,32")
    parser.add_argument("--split", default="heldout")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            copy = resized_copy(args.data, args.split, size, Path(tmp) / str(size))
            for judge in args.judge:
                report = gen_eval.accuracy(judge, copy, split=args.split, runtime=gen_eval.Runtime("cpu", threads=1))
                print(f"judge {Path(judge).name}, generated at {size} px: accuracy {report.value:.4f} "
                      f"[{report.interval.low:.4f}, {report.interval.high:.4f}] on {args.split}", flush=True)


if __name__ == "__main__":
    main()
