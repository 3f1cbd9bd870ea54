"""How well a conditional GAN's discriminator reads the labels of real images, checkpoint by checkpoint.

    python benchmarks/discriminator_label_head.py RUN --data shapes --split heldout [--out head.csv]

For each kept checkpoint of ``RUN`` (``train --keep-checkpoints``) of a family whose discriminator has an
auxiliary label head (acgan, cgan with one): the discriminator with the checkpoint's weights reads the real
images of ``--split`` (never augmented, in the family's value range) and its label logits are scored as the
classifier score scores a judge (pooled top-k for multi-label; the interval a bootstrap over the images). A
label head that cannot read real images cannot teach the generator which objects to draw; the judge reads the
same images at 0.96+.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import torch

from gen_eval.data.datasets import open_dataset
from gen_eval.evaluator.score import score_probs
from gen_eval.evaluator.uncertainty import score_interval
from gen_eval.exporter.graphs import rebuild_family
from gen_eval.trainers.torchdata import ImageSetDataset, iterate_all

FIELDS = ("step", "train_seconds", "head_score", "low", "high", "images")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split", default="heldout")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args()

    image_set = open_dataset(args.data, split=args.split)
    batches = None   # decoded once, as the training loop feeds held-out images, at the first checkpoint's shape
    rows = []
    for path in sorted((args.run / "checkpoints").glob("step_*.pt")):
        payload = torch.load(path, map_location="cpu", weights_only=False)
        family, networks = rebuild_family(payload, str(path))
        if batches is None:
            batches = list(iterate_all(ImageSetDataset(image_set, family.image_shape), args.batch_size,
                                       family.value_range, torch.device("cpu")))
        discriminator = networks["discriminator"].eval()
        with torch.no_grad():
            logits = torch.cat([discriminator(batch.images, batch.labels)[1] for batch in batches])
        labels = torch.cat([batch.labels for batch in batches]).numpy()
        result = score_probs(torch.sigmoid(logits).numpy(), labels, image_set.label_space)
        interval = score_interval(result.hits[None, :], result.ks)  # the images resampled
        row = {"step": int(payload["step"]), "train_seconds": round(float(payload["loop"]["elapsed_s"]), 1),
               "head_score": round(result.value, 4), "low": round(interval.low, 4),
               "high": round(interval.high, 4), "images": len(labels)}
        print(", ".join(f"{k} {v}" for k, v in row.items()), flush=True)
        rows.append(row)
    if args.out is not None:
        with args.out.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=FIELDS)
            writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":
    main()
