"""Feature statistics of image sets and generators through a ``features`` ONNX model.

Images reach the features model as uint8 first (generated images are quantised exactly as when
saved to PNG, shared/DESIGN.md), then as float32 in the model's value range ([0, 1] unless its metadata
says otherwise; the exported Inception resizes to 299 and scales to [-1, 1] inside its graph). A
features model with a fixed input size gets images resized bilinearly (align_corners=False).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from tqdm import tqdm

from gen_eval import contract
from gen_eval.data.images import from_uint8, to_uint8
from gen_eval.data.imageset import ImageSet
from gen_eval.errors import UserError
from gen_eval.evaluator.model import OnnxModel
from gen_eval.evaluator.preprocess import hwc_to_nchw, to_model_input
from gen_eval.evaluator.sampling import sample, shard_indices
from gen_eval.evaluator.stats import FeatureStats

log = logging.getLogger("gen_eval")
WEIGHTS_KEY = getattr(contract, "KEY_WEIGHTS_SHA256", contract.PREFIX + "weights_sha256")


def feature_model_id(model: OnnxModel) -> str:
    """Names the features in statistics files: family (or file stem) and a hash of the weights file the
    exporter recorded (``gen_eval.weights_sha256``), else of the ONNX file."""
    weights = model.info.metadata.get(WEIGHTS_KEY)
    digest = f"weights-{weights[:12]}" if weights else model.sha256[:12]
    return f"{model.info.family or model.path.stem}-{digest}"


def preprocessing_id(model: OnnxModel) -> str:
    """How images reach ``model`` (recorded in statistics files, compared by ``fid``)."""
    info = model.info
    lo, hi = info.value_range or (0.0, 1.0)
    size = f"bilinear resize to {info.image_shape[1]}x{info.image_shape[2]}" if info.image_shape else "native size"
    return f"uint8 -> float32 [{lo:g}, {hi:g}], {size}"


def new_stats(model: OnnxModel) -> FeatureStats:
    if model.info.output_size is None:
        raise UserError(f"{model.path}: the features output has no fixed size; export it with a static feature dimension")
    return FeatureStats(model.info.output_size, feature_model_id(model), preprocessing_id(model), model.sha256)


def check_same_features(reference, stats: FeatureStats, ref_name: str, allow_other: bool) -> str | None:
    """An error (or with ``allow_other`` a warning, returned) when reference statistics were made with
    another features model or preprocessing than ``stats``; statistics without a record pass."""
    problems = []
    if reference.feature_model and reference.feature_model != stats.feature_model:
        problems.append(f"features model {reference.feature_model}, this run uses {stats.feature_model}")
    ref_pre = getattr(reference, "preprocessing", "")
    if ref_pre and stats.preprocessing and ref_pre != stats.preprocessing:
        problems.append(f"preprocessing {ref_pre!r}, this run uses {stats.preprocessing!r}")
    if not problems:
        return None
    what = f"{ref_name} was computed with " + "; and ".join(problems)
    if allow_other:
        return f"warning: {what}; distances between different features are meaningless (--allow-other-features)"
    raise UserError(f"{what}: the distance would be meaningless; use the features model the statistics were made "
                    "with, recompute them, or pass --allow-other-features")


def features_of_uint8(model: OnnxModel, images_u8: np.ndarray, with_logits: bool = False):
    """Features [B, D] of uint8 NCHW images (float images are refused: their scale is unknown here);
    ``with_logits``: (features, logits) from the same run (a features model with a ``logits`` output)."""
    images_u8 = np.asarray(images_u8)
    if images_u8.dtype != np.uint8:
        raise ValueError(f"features_of_uint8 takes uint8 images [B, C, H, W] in 0..255, got {images_u8.dtype}; "
                         "convert float images with gen_eval.data.images.to_uint8(images, value_range) first")
    info = model.info
    images = from_uint8(images_u8, (0.0, 1.0))
    try:
        batch = to_model_input(images, (0.0, 1.0), info.value_range, info.image_shape)
    except ValueError as exc:
        raise UserError(f"{model.path}: {exc}; give images with the channels the feature model takes") from None
    outputs = model.run(image=batch)
    return (outputs["features"], outputs[contract.OUTPUT_LOGITS]) if with_logits else outputs["features"]


def has_logits(model: OnnxModel) -> bool:
    return contract.OUTPUT_LOGITS in model.outputs


# (features [B, D], their global indices [B]); with_logits=True adds a third argument, logits [B, K]
FeatureSink = Callable[..., None]


def generator_stats(features: OnnxModel, generator: OnnxModel, n: int, seed: int, *,
                    conditions: np.ndarray | None = None, shard: tuple[int, int] | None = None,
                    progress: bool = False, sink: FeatureSink | None = None,
                    with_logits: bool = False) -> FeatureStats:
    """Statistics of ``n`` generated samples (this shard's part), quantised to uint8 like PNGs.

    ``sink`` also receives every batch of features with its sample indices (one feature pass feeds
    other metrics and interval estimates), and with ``with_logits`` the batch's logits too."""
    stats = new_stats(features)
    value_range = generator.info.value_range
    indices = shard_indices(n, shard)
    pending: list[np.ndarray] = []
    pending_rows: list[np.ndarray] = []

    def flush() -> None:
        out = features_of_uint8(features, np.concatenate(pending), with_logits)
        feats = out[0] if with_logits else out
        stats.update(feats)
        if sink is not None:
            sink(feats, np.concatenate(pending_rows), *out[1:] if with_logits else ())
        pending.clear()
        pending_rows.clear()

    for batch in sample(generator, n, seed, conditions=conditions, indices=indices, progress=progress):
        pending.append(to_uint8(batch.images, value_range))
        pending_rows.append(np.asarray(batch.indices))
        if sum(len(p) for p in pending) >= features.batch_size:
            flush()
    if pending:
        flush()
    return stats


def imageset_stats(features: OnnxModel, images: ImageSet, *, shard: tuple[int, int] | None = None,
                   progress: bool = False, workers: int = 4, sink: FeatureSink | None = None,
                   with_logits: bool = False) -> FeatureStats:
    """Statistics of a data set's images (this shard's part); decoding runs in a few threads.
    ``sink`` also receives every batch of features with its image indices (and logits, ``with_logits``)."""
    stats = new_stats(features)
    indices = shard_indices(len(images), shard)
    step = features.batch_size
    chunks = [indices[i : i + step] for i in range(0, len(indices), step)]

    def load(chunk: range) -> np.ndarray:
        return hwc_to_nchw([images.image(i) for i in chunk])

    with ThreadPoolExecutor(max_workers=workers) as pool, tqdm(
        total=len(indices), unit="img", desc="features", disable=not progress or None, leave=False
    ) as bar:
        # at most `workers` chunks decoded ahead, so memory stays flat in the number of images
        futures = [pool.submit(load, c) for c in chunks[:workers]]
        for k in range(len(chunks)):
            batch = futures[k].result()
            if k + workers < len(chunks):
                futures.append(pool.submit(load, chunks[k + workers]))
            futures[k] = None
            out = features_of_uint8(features, batch, with_logits)
            feats = out[0] if with_logits else out
            stats.update(feats)
            if sink is not None:
                sink(feats, np.asarray(chunks[k]), *out[1:] if with_logits else ())
            bar.update(len(batch))
    return stats


def small_sample_warning(stats: FeatureStats, what: str) -> str | None:
    """Why a distance on these statistics is biased, or None."""
    if stats.n < stats.dim:
        return (f"{what} has {stats.n} images, fewer than the {stats.dim} feature dimensions: its covariance is "
                "singular and the distance is biased upwards; use more images to compare with published numbers")
    return None


def warn_small(stats: FeatureStats, what: str) -> None:
    message = small_sample_warning(stats, what)
    if message:
        log.warning(message)
