"""Feature statistics of image sets and generators through a ``features`` ONNX model.

Images reach the features model as uint8 first (generated images are quantised exactly as when
saved to PNG, docs/metrics.md), then as float32 in the model's value range ([0, 1] unless its metadata
says otherwise; the exported Inception resizes to 299 and scales to [-1, 1] inside its graph). A
features model with a fixed input size gets images resized bilinearly (align_corners=False).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gen_eval import contract
from gen_eval.data.images import from_uint8, to_uint8
from gen_eval.data.imageset import ImageSet, rows_per_batch
from gen_eval.errors import UserError, param, render
from gen_eval.evaluator.exact import DEFAULT_CHUNK_SIZE, ChunkedStats, chunk_ranges
from gen_eval.evaluator.model import OnnxModel
from gen_eval.evaluator.preprocess import hwc_to_nchw, to_model_input
from gen_eval.evaluator.sampling import check_count, sample
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
        return f"warning: {what}; distances between different features are meaningless ({render(param('allow_other_features', True))})"
    raise UserError(f"{what}: the distance would be meaningless; use the features model the statistics were made "
                    f"with, recompute them, or pass {param('allow_other_features', True)}")


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


def generator_run_id(generator: OnnxModel, n: int, seed: int, conditions: np.ndarray | None) -> str:
    """What identifies generated images in statistics files (shards of one run must agree)."""
    cond = hashlib.sha256(conditions.tobytes()).hexdigest()[:12] if conditions is not None else "none"
    return f"generator {generator.sha256[:12]}, n {n}, seed {seed}, conditions {cond}"


def imageset_run_id(images: ImageSet) -> str:
    return f"{images.source} ({len(images)} images)"


def generator_chunk_features(features: OnnxModel, generator: OnnxModel, n: int, seed: int, chunk: range,
                             conditions: np.ndarray | None = None, with_logits: bool = False):
    """Features [len(chunk), D] of the generated samples ``chunk`` (batches start at the chunk's start, so
    a chunk's features do not depend on which shard or worker computes it); ``with_logits``: (features,
    logits)."""
    value_range = generator.info.value_range
    out: list[np.ndarray] = []
    pending: list[np.ndarray] = []
    for batch in sample(generator, n, seed, conditions=conditions, indices=chunk):
        pending.append(to_uint8(batch.images, value_range))
        if sum(len(p) for p in pending) >= features.batch_size:
            out.append(features_of_uint8(features, np.concatenate(pending), with_logits))
            pending.clear()
    if pending:
        out.append(features_of_uint8(features, np.concatenate(pending), with_logits))
    return _joined(out, with_logits)


def _joined(parts: list, with_logits: bool):
    """Batches' features (or (features, logits) pairs) joined into one array (or one pair of arrays)."""
    if with_logits:
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    return np.concatenate(parts)


def _pair(out) -> tuple:
    return out if isinstance(out, tuple) else (out,)


def imageset_chunk_features(features: OnnxModel, images: ImageSet, chunk: range) -> np.ndarray:
    """Features [len(chunk), D] of images ``chunk`` of a data set (decoded in this thread)."""
    step = rows_per_batch(images, features.batch_size)
    return np.concatenate([features_of_uint8(features, hwc_to_nchw([images.image(i) for i in chunk[k : k + step]]))
                           for k in range(0, len(chunk), step)])


def chunked_stats(features: OnnxModel, total: int, chunks: list[range], compute, *, run: str = "",
                  chunk_size: int, blocks: int = 1, progress: bool = False, sink: FeatureSink | None = None,
                  checkpoint: str | os.PathLike | None = None, checkpoint_seconds: float | None = None) -> FeatureStats:
    """Statistics of ``chunks`` of ``range(total)``; ``compute(chunks)`` yields (chunk, features) pairs in
    index order (from this process or from workers) and ``sink`` receives them in that order.

    With ``checkpoint`` (a statistics .npz path) the sums so far are saved there every
    ``checkpoint_seconds`` (default: $GEN_EVAL_CHECKPOINT_SECONDS, else 60), and a run that finds one of the same run continues after its chunks: exact
    sums and covered index ranges make the resumed result the same bits, with no chunk twice or missed."""
    stats = new_stats(features)
    chunked = ChunkedStats(stats.dim, total, chunk_size, blocks, run)
    if checkpoint_seconds is None:
        checkpoint_seconds = _checkpoint_seconds()
    if checkpoint is not None and Path(checkpoint).exists():
        chunked = _resume(checkpoint, chunked, chunks)
    todo = [c for c in chunks if not any(lo <= c.start < hi for lo, hi in chunked.ranges)]
    if len(todo) < len(chunks):
        log.info("resuming from %s: %d of %d chunks already done", checkpoint, len(chunks) - len(todo), len(chunks))

    def result() -> FeatureStats:
        return FeatureStats.from_chunked(chunked, stats.feature_model, stats.preprocessing, stats.model_sha256)

    saved = time.monotonic()
    with tqdm(total=sum(len(c) for c in chunks), initial=sum(len(c) for c in chunks) - sum(len(c) for c in todo),
              unit="img", desc="features", disable=not progress or None, leave=True) as bar:
        for chunk, feats, *logits in compute(todo):
            chunked.add(chunk.start, feats)
            if sink is not None:
                sink(feats, np.arange(chunk.start, chunk.stop), *logits)
            bar.update(len(chunk))
            if checkpoint is not None and time.monotonic() - saved >= checkpoint_seconds and chunk is not todo[-1]:
                result().save(checkpoint, force=True)
                saved = time.monotonic()
    return result()


def _checkpoint_seconds() -> float:
    text = os.environ.get("GEN_EVAL_CHECKPOINT_SECONDS", "60")
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        raise UserError(f"GEN_EVAL_CHECKPOINT_SECONDS={text!r} is not a number of seconds >= 0; unset it or fix it")
    return seconds


def _resume(checkpoint, fresh: ChunkedStats, chunks: list[range]) -> ChunkedStats:
    from gen_eval.evaluator.stats import load_stats

    saved = load_stats(checkpoint).stats
    done = saved.chunked if saved is not None else None
    mine = {(c.start, c.stop) for c in chunks}
    if done is None or any((getattr(done, k) != getattr(fresh, k)) for k in ("run", "total", "chunk_size", "blocks",
                                                                             "dim")):
        raise UserError(f"{checkpoint}: a checkpoint of another run; delete it to start this shard afresh")
    covered = [(c.start, c.stop) for c in chunks if any(lo <= c.start < hi for lo, hi in done.ranges)]
    if sum(hi - lo for lo, hi in covered) != done.n or not set(covered) <= mine:
        raise UserError(f"{checkpoint}: a checkpoint of another shard of this run; delete it to start afresh")
    return done


def generator_stats(features: OnnxModel, generator: OnnxModel, n: int, seed: int, *,
                    conditions: np.ndarray | None = None, shard: tuple[int, int] | None = None,
                    progress: bool = False, sink: FeatureSink | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE,
                    blocks: int = 1, checkpoint=None, checkpoint_seconds: float | None = None,
                    with_logits: bool = False, remote=None) -> FeatureStats:
    """Statistics of ``n`` generated samples (this shard's chunks), quantised to uint8 like PNGs.

    ``sink`` also receives every chunk of features with its sample indices (one feature pass feeds
    other metrics), and with ``with_logits`` the chunk's logits too; ``blocks`` > 1 keeps jackknife
    block sums. ``remote(chunks)``, when given, computes the chunks elsewhere (Ray actors) instead of here."""
    chunks = chunk_ranges(check_count(n), chunk_size, shard)

    def compute(todo):
        return ((c, *_pair(generator_chunk_features(features, generator, n, seed, c, conditions, with_logits)))
                for c in todo)

    return chunked_stats(features, n, chunks, remote or compute, run=generator_run_id(generator, n, seed, conditions),
                         chunk_size=chunk_size, blocks=blocks, progress=progress, sink=sink, checkpoint=checkpoint,
                         checkpoint_seconds=checkpoint_seconds)


def imageset_stats(features: OnnxModel, images: ImageSet, *, shard: tuple[int, int] | None = None,
                   progress: bool = False, workers: int = 4, sink: FeatureSink | None = None,
                   chunk_size: int = DEFAULT_CHUNK_SIZE, blocks: int = 1, checkpoint=None,
                   checkpoint_seconds: float | None = None, with_logits: bool = False, remote=None) -> FeatureStats:
    """Statistics of a data set's images (this shard's chunks); decoding runs in a few threads.
    ``sink`` also receives every chunk of features with its image indices (and logits, ``with_logits``);
    ``remote(chunks)``, when given, computes the chunks elsewhere (Ray actors) instead of here."""
    chunks = chunk_ranges(len(images), chunk_size, shard)
    step = rows_per_batch(images, features.batch_size)

    def decode(part: range) -> np.ndarray:
        return hwc_to_nchw([images.image(i) for i in part])

    def compute(todo):
        loads = [(c, c[k : k + step]) for c in todo for k in range(0, len(c), step)]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            # at most `workers` batches decoded ahead, so memory stays flat in the number of images
            futures = [pool.submit(decode, part) for _, part in loads[:workers]]
            done: list[np.ndarray] = []
            for k, (chunk, part) in enumerate(loads):
                batch = futures[k].result()
                if k + workers < len(loads):
                    futures.append(pool.submit(decode, loads[k + workers][1]))
                futures[k] = None
                done.append(features_of_uint8(features, batch, with_logits))
                if part.stop == chunk.stop:
                    yield (chunk, *_pair(_joined(done, with_logits)))
                    done = []

    return chunked_stats(features, len(images), chunks, remote or compute, run=imageset_run_id(images),
                         chunk_size=chunk_size,
                         blocks=blocks, progress=progress, sink=sink, checkpoint=checkpoint,
                         checkpoint_seconds=checkpoint_seconds)


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
