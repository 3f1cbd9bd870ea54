"""`statistics` and `fid`: feature statistics of images or a generator, and the Fréchet distance with its interval.

The interval is a delete-a-group jackknife over ``jackknife_blocks`` fixed index blocks of the
generated (or ``data``) side: statistics are sums, so leaving a block out is exact and cheap, and the
distance is recomputed for each. It measures how much the distance moves with the images drawn (the
sampling noise of this side); it does not remove FID's upward bias at small N, which the report warns
about. Memory: one D x D float64 sum per block (10 blocks of Inception's 2048-d: 320 MiB), flat in N.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from gen_eval.api import inputs
from gen_eval.api.reports import Report
from gen_eval.errors import UserError, param
from gen_eval.evaluator.stats import FeatureStats
from gen_eval.evaluator.uncertainty import Interval

log = logging.getLogger("gen_eval")
JACKKNIFE_BLOCKS = 10


class JackknifeBlocks:
    """A feature sink: statistics of ``blocks`` contiguous index blocks of ``range(total)``."""

    def __init__(self, dim: int, total: int, blocks: int = JACKKNIFE_BLOCKS) -> None:
        self.total, self.count = max(1, total), max(2, blocks)
        self.stats = [FeatureStats(dim) for _ in range(self.count)]

    def __call__(self, features: np.ndarray, rows: np.ndarray) -> None:
        which = np.asarray(rows, dtype=np.int64) * self.count // self.total
        for block in np.unique(which):
            self.stats[int(block)].update(features[which == block])

    def interval(self, whole: FeatureStats, ref_mu: np.ndarray, ref_sigma: np.ndarray, value: float,
                 confidence: float) -> Interval:
        from scipy import stats as scipy_stats

        from gen_eval.evaluator.frechet import frechet_distance

        left_out = []
        for block in self.stats:
            if block.n == 0 or whole.n - block.n < 2:
                continue
            rest = FeatureStats(whole.dim)
            rest.n = whole.n - block.n
            rest.sum = whole.sum - block.sum
            rest.sum_outer = whole.sum_outer - block.sum_outer
            left_out.append(frechet_distance(rest.mu, rest.sigma, ref_mu, ref_sigma))
        g = len(left_out)
        if g < 2:
            return Interval(value, float("nan"), float("nan"), confidence, "too few images for a jackknife")
        values = np.array(left_out)
        se = float(np.sqrt((g - 1) / g * np.sum((values - values.mean()) ** 2)))
        half = float(scipy_stats.t.ppf((1 + confidence) / 2, g - 1)) * se
        return Interval(value, value - half, value + half, confidence, f"jackknife over {g} blocks of the images")


def _chain(*sinks):
    sinks = [s for s in sinks if s is not None]
    if not sinks:
        return None

    def sink(features, rows):
        for each in sinks:
            each(features, rows)

    return sink


def _side(features, rt, *, data, split, model, n, seed, conditions, shard, batch_size, latent_dim, value_range,
          objects, sink_blocks: int = 0, progress: bool = False, sink=None):
    """Statistics of ``data`` or of ``n`` images of generator ``model``, a description, and jackknife blocks.
    ``sink`` also receives every batch of features (one pass feeds other metrics)."""
    from gen_eval.evaluator.features import generator_stats, imageset_stats
    from gen_eval.evaluator.provenance import image_set_listing

    if (data is None) == (model is None):
        raise UserError(f"give the images with exactly one of {param('data', 'DIR')} or {param('model', 'G.onnx')}")
    dim = features.info.output_size
    if data is not None:
        if n is not None or conditions is not None:
            raise UserError(f"{param('n')} and {param('conditions')} go with {param('model')}, not {param('data')}")
        images = inputs.image_set(data, split)
        blocks = JackknifeBlocks(dim, len(images), sink_blocks) if sink_blocks and dim else None
        count = f"{len(images)} image{'s' if len(images) != 1 else ''}"
        stats = imageset_stats(features, images, shard=shard, sink=_chain(blocks, sink), progress=progress)
        stats.listing = image_set_listing(images)
        return stats, f"{images.source} ({count})", blocks
    generator = inputs.load_generator(model, rt, batch_size=batch_size, latent_dim=latent_dim,
                                      value_range_text=value_range, objects=objects)
    cond = inputs.conditions_for(generator, conditions)
    if n is None:
        raise UserError(f"give the number of images to generate with {param('n')} (FID is usually computed on 10000+)")
    blocks = JackknifeBlocks(dim, n, sink_blocks) if sink_blocks and dim else None
    stats = generator_stats(features, generator, n, seed, conditions=cond, shard=shard, sink=_chain(blocks, sink),
                            progress=progress)
    return stats, f"{model} ({n} samples, seed {seed})", blocks


def statistics(features: str | Path, *, data: str | Path | None = None, model: str | Path | None = None,
               n: int | None = None, seed: int = 0, conditions: str | Path | None = None, split: str = "train",
               shard: tuple[int, int] | None = None, objects=None, latent_dim=None, value_range=None,
               device: str = "auto", batch_size: int | None = None, threads: int | None = None,
               progress: bool = False) -> FeatureStats:
    """Feature statistics (n, sums; mu and sigma) of ``data`` or of ``n`` samples of generator ``model``."""
    from gen_eval.evaluator.noise import check_seed

    check_seed(seed)
    rt = inputs.runtime(device, threads)
    model_features = inputs.load_features(features, rt, batch_size)
    log.info("runtime: %s", rt.describe())
    stats, described, _ = _side(model_features, rt, data=data, split=split, model=model, n=n, seed=seed,
                                conditions=conditions, shard=shard, batch_size=batch_size, latent_dim=latent_dim,
                                value_range=value_range, objects=objects, progress=progress)
    stats.description = described
    return stats


def _reference(ref, ref_split, model_features, *, allow_other_features: bool, progress: bool):
    from gen_eval.evaluator.features import check_same_features, imageset_stats, new_stats, small_sample_warning
    from gen_eval.evaluator.stats import load_stats

    warnings = []
    if Path(ref).suffix.lower() == ".npz":
        reference = load_stats(ref)
        if reference.n is not None and reference.n < 2:
            raise UserError(f"{ref}: statistics of {reference.n} image; a distance needs at least 2 (merge the shards first)")
        if len(reference.mu) != model_features.info.output_size:
            raise UserError(
                f"{ref}: statistics are {len(reference.mu)}-d but {model_features.path} gives "
                f"{model_features.info.output_size}-d features; use the feature model the statistics were made with"
            )
        warning = check_same_features(reference, new_stats(model_features), str(ref), allow_other_features)
        if warning:
            warnings.append(warning.removeprefix("warning: "))
        return reference.mu, reference.sigma, reference.n, warnings
    ref_stats = imageset_stats(model_features, inputs.image_set(ref, ref_split), progress=progress)
    ref_stats.require_covariance(f"reference {ref}")
    small = small_sample_warning(ref_stats, f"reference {ref}")
    return ref_stats.mu, ref_stats.sigma, ref_stats.n, warnings + ([small] if small else [])


def fid(features: str | Path, ref: str | Path, *, data: str | Path | None = None, model: str | Path | None = None,
        n: int | None = None, seed: int = 0, conditions: str | Path | None = None, split: str = "train",
        ref_split: str = "train", objects=None, latent_dim=None, value_range=None,
        allow_other_features: bool = False, confidence: float = 0.95, jackknife_blocks: int = JACKKNIFE_BLOCKS,
        device: str = "auto", batch_size: int | None = None, threads: int | None = None,
        progress: bool = False) -> Report:
    """Fréchet distance of ``n`` samples of generator ``model`` (or of ``data``) to ``ref`` (statistics .npz
    or images), with a jackknife interval over the generated side. ``report.stats`` holds that side's
    statistics (to save them)."""
    from gen_eval.evaluator.features import feature_model_id, small_sample_warning
    from gen_eval.evaluator.frechet import frechet_distance
    from gen_eval.evaluator.noise import check_seed
    from gen_eval.evaluator.provenance import provenance

    check_seed(seed)
    if not 0 < confidence < 1:
        raise UserError(f"{param('confidence')} must be between 0 and 1, got {confidence}")
    rt = inputs.runtime(device, threads)
    model_features = inputs.load_features(features, rt, batch_size)
    log.info("runtime: %s", rt.describe())
    ref_mu, ref_sigma, ref_n, warnings = _reference(ref, ref_split, model_features,
                                                    allow_other_features=allow_other_features, progress=progress)
    stats, described, blocks = _side(model_features, rt, data=data, split=split, model=model, n=n, seed=seed,
                                     conditions=conditions, shard=None, batch_size=batch_size, latent_dim=latent_dim,
                                     value_range=value_range, objects=objects, sink_blocks=jackknife_blocks,
                                     progress=progress)
    stats.require_covariance(described)
    small = small_sample_warning(stats, described)
    value = frechet_distance(stats.mu, stats.sigma, ref_mu, ref_sigma)
    interval = blocks.interval(stats, ref_mu, ref_sigma, value, confidence) if blocks is not None else None
    details = {"images": described, "reference": str(ref), "reference_n": ref_n,
               "features": feature_model_id(model_features), "feature_dim": stats.dim}
    prov = provenance(inputs={"features": features, "ref": ref, "model": model, "conditions": conditions,
                              "objects": objects}, provider=rt.provider or "", device_id=rt.device_id,
                      preprocessing={"features": stats.preprocessing, "generated": "quantised to uint8 like PNGs"},
                      seeds=[seed] if model else None, n=stats.n, batch_size=model_features.batch_size,
                      data_listing=getattr(stats, "listing", None))
    prov["runtime"] = rt.describe()
    report = Report("fid", value, stats.n, model=str(model) if model else None, seed=seed if model else None,
                    interval=interval, details=details, provenance=prov, higher_is_better=False,
                    settings={"n": n, "seed": seed, "confidence": confidence, "jackknife_blocks": jackknife_blocks},
                    warnings=warnings + ([small] if small else []))
    report.stats = stats
    return report


__all__ = ["JackknifeBlocks", "fid", "statistics"]
