"""The pictures of a report: for the metrics suite, a captioned sample grid per condition (or one grid
when unconditional) and the memorisation check's closest (generated, training) pairs side by side; for a
classifier score, the first seed's images and the ones the judge read wrong, each captioned with its
condition and how many of the requested labels the judge found.

Images are fetched again by index after the feature pass (a generator's samples are regenerated from
their seed and index; a data set's images re-read), so the pass itself keeps no images.
"""

from __future__ import annotations

import math

import numpy as np

from gen_eval.evaluator.metrics.per_condition import condition_columns
from gen_eval.evaluator.pictures import captioned_grid, condition_captions

PER_CONDITION = 8        # images in each condition's grid
MAX_CONDITIONS = 32      # conditions shown (the first ones of the label space)
UNCONDITIONAL = 32       # images in the grid of an unconditional set
SCORE_IMAGES = 64        # images in each of a score report's grids
MIN_CELL = 64            # cells are upscaled (nearest) to at least this width


def _upscale_for(images: np.ndarray, upscale: int) -> int:
    return max(int(upscale), min(16, math.ceil(MIN_CELL / max(images.shape[-1], 1))))


def metrics_pictures(report, generated, training=None, *, upscale: int = 1, reference=None) -> dict:
    """{title: PIL image} for the report's HTML: per condition, generated images beside real ones of the
    same condition (the reference's, when it has labels), then the closest pairs."""
    pictures = {}
    if generated.labels is not None:
        columns, names = condition_columns(generated.labels, generated.label_space)
        real_columns = None
        if reference is not None and reference.labels is not None and \
                reference.labels.shape[1] == generated.labels.shape[1]:
            real_columns, _ = condition_columns(reference.labels, generated.label_space)
        for j, name in enumerate(names[:MAX_CONDITIONS]):
            chosen = np.flatnonzero(columns[:, j])[:PER_CONDITION]
            if not len(chosen):
                continue
            images = list(generated.fetch(chosen))
            captions = ["generated " + c for c in
                        condition_captions(generated.labels[chosen], generated.label_space, chosen)]
            title = f"{name}: {int(columns[:, j].sum())} generated images, the first {len(chosen)} in the top row"
            if real_columns is not None:
                real = np.flatnonzero(real_columns[:, j])[:PER_CONDITION]
                if len(real):
                    images += [_same_size(a, images[0]) for a in reference.fetch(real)]
                    captions += ["real " + c for c in
                                 condition_captions(reference.labels[real], generated.label_space, real)]
                    title += f"; {int(real_columns[:, j].sum())} real ones, the first {len(real)} in the bottom row"
            pictures[title] = captioned_grid(images, captions, columns=PER_CONDITION,
                                             upscale=_upscale_for(np.asarray(images[:1]), upscale))
    else:
        chosen = np.arange(min(UNCONDITIONAL, generated.n))
        images = generated.fetch(chosen)
        pictures["generated samples"] = captioned_grid(images, [f"#{i}" for i in chosen], columns=8,
                                                       upscale=_upscale_for(images, upscale))
    memo = report.results.get("memorisation")
    if memo is not None and training is not None and memo.closest:
        pairs = memo.closest
        gen_images = generated.fetch([g for g, _, _ in pairs])
        train_images = training.fetch([t for _, t, _ in pairs])
        cells, captions = [], []
        for (g, t, d), a, b in zip(pairs, gen_images, train_images):
            cells += [a, b]
            captions += [f"generated #{g}", f"train #{t} d={d:.3g}"]
        distinct = len({t for _, t, _ in pairs})
        pictures[f"closest pairs (generated, nearest training image): the {len(pairs)} generated images closest "
                 f"to a training image, {distinct} distinct training image{'s' if distinct != 1 else ''}; threshold "
                 f"{memo.threshold:.3g} ({memo.percentile:g}th percentile of held-out distances)"] = captioned_grid(
            cells, captions, columns=8, upscale=_upscale_for(gen_images, upscale))
    return pictures


def _same_size(image: np.ndarray, like: np.ndarray) -> np.ndarray:
    """``image`` (uint8 CHW) in the channels of ``like`` (the grid resizes the rest)."""
    if image.shape[0] == like.shape[0]:
        return image
    return np.repeat(image[:1], like.shape[0], axis=0) if image.shape[0] == 1 else image[: like.shape[0]]


def score_pictures(report, *, upscale: int = 1) -> dict:
    """{title: PIL image} for a classifier score's HTML, from the images the report kept (first seed)."""
    if report.images is None or not len(report.images) or "hits" not in report.raw:
        return {}
    images = np.asarray(report.images)
    count = len(images)
    hits, ks = np.asarray(report.raw["hits"][0])[:count], np.asarray(report.raw["ks"])[:count]
    labels = None if report.image_labels is None else np.asarray(report.image_labels)[:count]

    def grid(chosen):
        captions = condition_captions(None if labels is None else labels[chosen], report.label_space, chosen)
        captions = [f"{c} | found {hits[i]}/{ks[i]}" for c, i in zip(captions, chosen)]
        return captioned_grid(images[chosen], captions, columns=8, upscale=_upscale_for(images, upscale))

    # each image in one grid only: those the judge read right, then those it read wrong
    seed = report.settings.get("seed", 0)
    pictures = {}
    right, wrong = np.flatnonzero(hits >= ks), np.flatnonzero(hits < ks)
    if len(right):
        pictures[f"{len(right)} of the {count} kept images (noise seed {seed}) the judge read right (found every "
                 "requested label)" + (f"; the first {SCORE_IMAGES} shown" if len(right) > SCORE_IMAGES else "")] = \
            grid(right[:SCORE_IMAGES])
    if len(wrong):
        pictures[f"{len(wrong)} of the {count} kept images (noise seed {seed}) the judge read wrong (found fewer "
                 "labels than requested)" + (f"; the first {SCORE_IMAGES} shown" if len(wrong) > SCORE_IMAGES
                                             else "")] = grid(wrong[:SCORE_IMAGES])
    return pictures
