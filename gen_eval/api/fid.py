"""`statistics` and `fid`: feature statistics of images or a generator, and the Fréchet distance with its interval.

The interval is a delete-a-group jackknife over ``jackknife_blocks`` fixed index blocks of the
generated side: statistics are sums, so leaving a block out is exact and cheap, and the
distance is recomputed for each. It measures how much the distance moves with the images drawn (the
sampling noise of this side); it does not remove FID's upward bias at small N, which the report warns
about. The block sums are exact integer digit sums (gen_eval.evaluator.exact), so shards and Ray actors
give the same bits; memory: 3 int64 arrays of D(D+1)/2 per block (10 blocks of Inception's 2048-d: 480 MiB), flat in N.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any

from gen_eval.api import inputs
from gen_eval.api.reports import Report
from gen_eval.api.sources import GeneratorSource, ImageSource, Runtime, image_source, path_or_none, runtime_of
from gen_eval.errors import UserError, param
from gen_eval.evaluator.exact import DEFAULT_CHUNK_SIZE
from gen_eval.evaluator.judges import check_judge
from gen_eval.evaluator.stats import FeatureStats
from gen_eval.evaluator.uncertainty import Interval, frechet_with_interval

log = logging.getLogger("gen_eval")
JACKKNIFE_BLOCKS = 10
DEFAULT_FEATURES = "inception"  # pytorch-fid's habit: FID means the FID Inception unless told otherwise


def generated_source(images: Any) -> ImageSource | GeneratorSource:
    """A job's generated side as a source: a GeneratorSource is kept, anything else is images (a generator
    .onnx given as a path is refused: its images need ``n`` and a seed, which a GeneratorSource carries)."""
    if images is None:
        raise UserError(f"give the generated images with {param('images')}: a folder, a data set, images in memory "
                        f"or a gen_eval.GeneratorSource")
    if isinstance(images, GeneratorSource):
        return images
    source = image_source(images)
    if source.path is not None and source.path.suffix.lower() == ".onnx":
        raise UserError(f"{source.path} is a model: give its images as gen_eval.GeneratorSource({str(source.path)!r}, "
                        f"n=...) (the number of images and their seed)")
    return source


def remote_chunks(ray_address: str | None, features, source, runtime: Runtime):
    """A ``remote(chunks)`` that computes the chunks on Ray actors (gen_eval.scale.ray_runner), or None."""
    if ray_address is None:
        return None
    if isinstance(source, ImageSource) and source.in_memory:
        raise UserError(f"{param('ray_address')}: images in memory cannot be sent to Ray actors; write them to a "
                        f"folder and give its path, or leave out {param('ray_address')}")
    from gen_eval.scale.ray_runner import ChunkJob, run_chunks

    job = ChunkJob(features=None if features is None else str(features), source=source, runtime=runtime)
    return lambda chunks: run_chunks(job, chunks, ray_address)


def _side(features, sessions, source, runtime: Runtime, *, shard=None, blocks: int = 1,
          chunk_size: int = DEFAULT_CHUNK_SIZE, progress: bool = False, sink=None, ray_address: str | None = None,
          features_path=None, checkpoint=None):
    """Statistics of ``source`` (with ``blocks`` jackknife block sums) and a description, and for a generator
    whether ``features`` took part in its training (JudgeCheck; None for images). ``sink`` also receives
    every chunk of features (one pass feeds other metrics); with ``ray_address`` the chunks are computed by
    Ray actors (gen_eval.scale.ray_runner)."""
    from gen_eval.evaluator.features import generator_stats, imageset_stats
    from gen_eval.evaluator.provenance import image_set_listing

    common = dict(shard=shard, sink=sink, progress=progress, chunk_size=chunk_size, blocks=blocks,
                  checkpoint=checkpoint, remote=remote_chunks(ray_address, features_path, source, runtime))
    if isinstance(source, ImageSource):
        images = source.open(what=param("images"))
        count = f"{len(images)} image{'s' if len(images) != 1 else ''}"
        stats = imageset_stats(features, images, **common)
        stats.listing = image_set_listing(images) or getattr(images, "sha256", None)
        return stats, f"{images.source} ({count})", None
    opened = source.open(sessions, runtime.batch_size)
    n = source.require_n(" (FID is usually computed on 10000+)")
    stats = generator_stats(features, opened.generator, n, source.seed, conditions=opened.conditions, **common)
    return stats, source.describe(), check_judge(opened.generator, features, "features")


def statistics(images: Any, *, features: str | Path | None = None, shard: tuple[int, int] | None = None,
               jackknife_blocks: int | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE,
               ray_address: str | None = None, checkpoint: str | Path | None = None,
               features_out: str | Path | None = None, runtime: Runtime | None = None,
               progress: bool = False) -> FeatureStats:
    """Feature statistics (n, sums; mu and sigma) of ``images``.

    Shards (``shard=(k, N)``) are whole chunks of ``chunk_size`` images; `stats merge` of all N gives the
    unsharded statistics bit for bit. The statistics are sums over fixed index chunks, so the same seed gives
    the same bits for any shard count, worker count or Ray pool.

    Args:
        images: a folder, a data set (``gen_eval.ImageSource(path, split="test")`` picks a split), a
            `gen-eval sample` .npz, images in memory (an array, a tensor, an iterable of batches), or a
            :class:`gen_eval.GeneratorSource` (its ``n`` samples).
        features: the features .onnx (role features, e.g. Inception pool3 or a classifier's penultimate layer)
            or a cached extractor's name [default: ``"inception"``].
        shard: ``(k, N)``: only part k of N of the run (1-based).
        jackknife_blocks: block sums kept for FID's interval (``fid(gen_stats=...)``) [default: 10 for a
            generator, none for images].
        chunk_size: images per fixed index chunk (the unit of shards, workers and checkpoints).
        ray_address: 'local' or a Ray cluster address: compute the chunks on Ray actors.
        checkpoint: an .npz path: the sums so far are saved there every minute and a rerun continues from
            them (delete it once the statistics are saved).
        features_out: a .npy path that also keeps the features, rows in index order, for metrics beyond FID
            (then a killed run starts again rather than resuming).
        runtime: the device, batch size and threads (:class:`gen_eval.Runtime`) [default: ``Runtime()``].
        progress: draw a progress bar on stderr (kept on screen when done, with rate and total).

    Returns:
        A :class:`~gen_eval.evaluator.stats.FeatureStats` (``.n``, ``.mu``, ``.sigma``; ``.save(path)``).

    Raises:
        UserError: on a bad argument or input file (one line that says what to change).

    Example:
        >>> stats = gen_eval.statistics("real/", features="inception.onnx", progress=True)  # doctest: +SKIP
        >>> stats.save("real_stats.npz")  # doctest: +SKIP
    """
    from gen_eval.weights.named import resolve_features

    inputs.check_types(features=(features, inputs.PATH), jackknife_blocks=(jackknife_blocks, int),
                       chunk_size=(chunk_size, int), ray_address=(ray_address, str),
                       checkpoint=(checkpoint, inputs.PATH), features_out=(features_out, inputs.PATH),
                       progress=(progress, bool))
    source, runtime = generated_source(images), runtime_of(runtime)
    features = resolve_features(DEFAULT_FEATURES if features is None else features)
    if jackknife_blocks is None:
        jackknife_blocks = JACKKNIFE_BLOCKS if isinstance(source, GeneratorSource) else 1
    sessions = runtime.open()
    model_features = inputs.load_features(features, sessions, runtime.batch_size)
    log.info("runtime: %s", sessions.describe())
    with _kept_features(features_out, model_features) as sink:
        stats, described, _ = _side(model_features, sessions, source, runtime, shard=shard, progress=progress,
                                    blocks=jackknife_blocks, chunk_size=chunk_size, ray_address=ray_address,
                                    features_path=features, checkpoint=None if sink else checkpoint, sink=sink)
    stats.description = described
    return stats


@contextlib.contextmanager
def _kept_features(path, model_features):
    """A sink writing features to ``path`` (a temporary name, renamed once every row is there), or None."""
    if path is None:
        yield None
        return
    from gen_eval.evaluator.metrics import FeatureStore

    path = Path(path)
    temp = path.with_name(f".{path.name}.tmp-{os.getpid()}.npy")
    store = FeatureStore(model_features.info.output_size, temp)
    try:
        yield lambda feats, rows: store.append(feats)
        store.close()
        os.replace(temp, path)
    finally:
        store.close()
        temp.unlink(missing_ok=True)


def reference_statistics(ref, model_features, *, allow_other_features: bool, progress: bool,
                         against=None, cache: bool = True):
    """(mu, sigma, n, warnings) of ``ref``; ``against``: the other side's recorded features (a statistics
    file) when there is no features model. Images' statistics are cached (``cache``, see
    :mod:`gen_eval.evaluator.statscache`)."""
    from gen_eval.evaluator.features import check_same_features, imageset_stats, new_stats, small_sample_warning
    from gen_eval.evaluator.stats import load_stats

    warnings = []
    ref_source = image_source(ref)
    if ref_source is None:
        raise UserError(f"give the reference with {param('ref')}: a statistics .npz, images, or an array")
    if ref_source.path is not None and ref_source.path.suffix.lower() == ".npz":
        ref = ref_source.path
        reference = load_stats(ref)
        if reference.n is not None and reference.n < 2:
            raise UserError(f"{ref}: statistics of {reference.n} image; a distance needs at least 2 (merge the shards first)")
        other = against if model_features is None else new_stats(model_features)
        dim, source = (len(against.mu), against.path) if model_features is None else (other.dim, model_features.path)
        if len(reference.mu) != dim:
            raise UserError(f"{ref}: statistics are {len(reference.mu)}-d but {source} gives {dim}-d features; "
                            "use the feature model the statistics were made with")
        warning = check_same_features(reference, other, str(ref), allow_other_features)
        if warning:
            warnings.append(warning.removeprefix("warning: "))
        return reference.mu, reference.sigma, reference.n, warnings
    if model_features is None:
        raise UserError(f"{ref_source.describe()} is images: their statistics need a features model; give one, or give a statistics .npz")
    from gen_eval.evaluator import statscache

    images = ref_source.open(what=param("ref"))
    key = statscache.reference_key(model_features, images, ref_source.path, ref_source.split) if cache and ref_source.path else None
    ref_stats = statscache.load_cached(key) if key else None
    if ref_stats is None:
        ref_stats = imageset_stats(model_features, images, progress=progress)
        if key:
            statscache.save_cached(key, ref_stats)
    ref_stats.require_covariance(f"reference {ref_source.describe()}")
    small = small_sample_warning(ref_stats, f"reference {ref_source.describe()}")
    return ref_stats.mu, ref_stats.sigma, ref_stats.n, warnings + ([small] if small else [])


def fid(ref: Any, images: Any = None, *, features: str | Path | None = None, gen_stats: str | Path | None = None,
        allow_other_features: bool = False, confidence: float = 0.95, jackknife_blocks: int = JACKKNIFE_BLOCKS,
        chunk_size: int = DEFAULT_CHUNK_SIZE, ray_address: str | None = None, runtime: Runtime | None = None,
        progress: bool = False, cache: bool = True) -> Report:
    """Fréchet distance of the generated ``images`` (or of the statistics file ``gen_stats``, e.g. merged
    shards) to ``ref``, with a jackknife interval over the generated side. ``report.stats`` holds that
    side's statistics (to save them).

    pytorch-fid's definition: images quantised to uint8 as saved to PNG, statistics in float64,
    ||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^1/2). The interval is a delete-a-block jackknife over
    ``jackknife_blocks`` fixed blocks of the generated images: how much the distance moves with the images
    drawn (it does not remove FID's upward bias at small N, which the report warns about).

    Args:
        ref: the reference: a statistics .npz (pytorch-fid's load as they are) or images (as ``images``).
        images: the generated side: a folder, a data set (``gen_eval.ImageSource(path, split="test")`` picks a
            split), a `gen-eval sample` .npz, images in memory (a uint8 or float array or tensor, NHWC or
            NCHW, or an iterable of such batches; ``gen_eval.ImageSource(array, value_range=(-1, 1))`` for
            another float range), or a :class:`gen_eval.GeneratorSource` (``n`` samples of a generator .onnx).
        features: the features .onnx or a cached extractor's name [default: ``"inception"``, pytorch-fid's
            FID Inception, `gen-eval weights get inception`]. With ``gen_stats`` and a statistics ``ref``
            none is needed.
        gen_stats: the generated side as a statistics .npz (e.g. `gen-eval stats merge` of shards), instead
            of ``images``.
        allow_other_features: compare statistics made with another features model (a warning, not an error).
        confidence: the interval's coverage, between 0 and 1.
        jackknife_blocks: blocks of the jackknife.
        chunk_size: images per fixed index chunk (the unit of workers and Ray actors).
        ray_address: 'local' or a Ray cluster address: compute the chunks on Ray actors.
        runtime: the device, batch size and threads (:class:`gen_eval.Runtime`) [default: ``Runtime()``].
        progress: draw progress bars on stderr (kept on screen when done, with rate and total).
        cache: reuse (and keep) the statistics of reference images in the cache folder, keyed by the features
            model and the files' content.

    Returns:
        A :class:`~gen_eval.api.reports.Report` with metric ``fid`` (lower is better; ``report.gate(30)``
        passes at most 30) and ``report.stats``.

    Raises:
        UserError: on a bad argument or input file (one line that says what to change).

    Example:
        >>> generated = gen_eval.GeneratorSource("acgan.onnx", n=10000, conditions="test.json")  # doctest: +SKIP
        >>> report = gen_eval.fid("real_stats.npz", generated, features="inception.onnx")  # doctest: +SKIP
        >>> report.value, report.interval  # doctest: +SKIP
    """
    from gen_eval.evaluator.features import feature_model_id, small_sample_warning
    from gen_eval.evaluator.provenance import provenance
    from gen_eval.weights.named import resolve_features

    inputs.check_types(features=(features, inputs.PATH), ref=(ref, inputs.IMAGES), gen_stats=(gen_stats, inputs.PATH),
                       allow_other_features=(allow_other_features, bool), confidence=(confidence, float),
                       jackknife_blocks=(jackknife_blocks, int), chunk_size=(chunk_size, int),
                       ray_address=(ray_address, str), progress=(progress, bool))
    if not 0 < confidence < 1:
        raise UserError(f"{param('confidence')} must be between 0 and 1, got {confidence}")
    runtime = runtime_of(runtime)
    if gen_stats is not None:
        if images is not None:
            raise UserError("give the generated side once: a statistics file, or images or a generator")
        return _fid_of_stats(features, ref, gen_stats, confidence=confidence, runtime=runtime,
                             allow_other_features=allow_other_features, progress=progress, cache=cache)
    source = generated_source(images)
    features = resolve_features(DEFAULT_FEATURES if features is None else features)
    sessions = runtime.open()
    model_features = inputs.load_features(features, sessions, runtime.batch_size)
    log.info("runtime: %s", sessions.describe())
    ref_mu, ref_sigma, ref_n, warnings = reference_statistics(ref, model_features, cache=cache,
                                                              allow_other_features=allow_other_features,
                                                              progress=progress)
    stats, described, judged = _side(model_features, sessions, source, runtime, blocks=jackknife_blocks,
                                     chunk_size=chunk_size, progress=progress, ray_address=ray_address,
                                     features_path=features)
    stats.require_covariance(described)
    small = small_sample_warning(stats, described)
    value, interval = frechet_with_interval(stats, ref_mu, ref_sigma, confidence)
    details = {"images": described, "reference": image_source(ref).describe(), "reference_n": ref_n,
               "features": feature_model_id(model_features), "feature_dim": stats.dim}
    if judged is not None:
        details["judge_in_training"] = judged.verdict
        details["judge_in_training_basis"] = judged.basis
        if judged.warning:
            warnings = [judged.warning, *warnings]
    generator = source if isinstance(source, GeneratorSource) else None
    model = generator.model if generator else None
    prov = provenance(inputs={"features": features, "ref": path_or_none(ref), "model": model,
                              "conditions": generator.conditions if generator else None,
                              "objects": generator.objects if generator else None},
                      provider=sessions.provider or "", device_id=sessions.device_id,
                      preprocessing={"features": stats.preprocessing, "generated": "quantised to uint8 like PNGs"},
                      seeds=[generator.seed] if generator else None, n=stats.n, batch_size=model_features.batch_size,
                      data_listing=getattr(stats, "listing", None))
    prov["runtime"] = sessions.describe()
    if ray_address is not None:
        prov["engine"] = f"ray ({ray_address})"
    seed = generator.seed if generator else 0
    report = Report("fid", value, stats.n, model=str(model) if model else None, seed=seed if model else None,
                    interval=interval, details=details, provenance=prov, higher_is_better=False,
                    settings={"n": generator.n if generator else None, "seed": seed, "confidence": confidence,
                              "jackknife_blocks": jackknife_blocks, "chunk_size": chunk_size},
                    warnings=warnings + ([small] if small else []))
    report.stats = stats
    return report


def _fid_of_stats(features, ref, gen_stats, *, confidence, allow_other_features, runtime: Runtime, progress,
                  cache: bool = True) -> Report:
    from gen_eval.evaluator.provenance import provenance
    from gen_eval.evaluator.stats import load_stats
    from gen_eval.weights.named import resolve_features

    if Path(gen_stats).suffix.lower() != ".npz":
        raise UserError(f"{gen_stats}: statistics files end in .npz; write one with `gen-eval stats`")
    generated = load_stats(gen_stats)
    if generated.n is not None and generated.n < 2:
        raise UserError(f"{gen_stats}: statistics of {generated.n} image; a distance needs at least 2 "
                        "(merge the shards first)")
    model_features = None
    ref_path = path_or_none(ref)
    if features is None and (ref_path is None or ref_path.suffix.lower() != ".npz"):
        features = DEFAULT_FEATURES  # images on the reference side need a features model
    features = resolve_features(features)
    if features is not None:
        model_features = inputs.load_features(features, runtime.open(), runtime.batch_size)
        from gen_eval.evaluator.features import check_same_features, new_stats

        check_same_features(generated, new_stats(model_features), str(gen_stats), allow_other_features)
    ref_mu, ref_sigma, ref_n, warnings = reference_statistics(ref, model_features, progress=progress,
                                                              cache=cache, against=generated,
                                                              allow_other_features=allow_other_features)
    no_blocks = "none: the statistics file holds no jackknife block sums"
    if generated.stats is not None:
        value, interval = frechet_with_interval(generated.stats, ref_mu, ref_sigma, confidence, no_blocks=no_blocks)
    else:
        from gen_eval.evaluator.frechet import frechet_distance

        value = frechet_distance(generated.mu, generated.sigma, ref_mu, ref_sigma)
        interval = Interval(value, float("nan"), float("nan"), confidence, no_blocks)
    n = generated.n or 0
    details = {"images": f"{gen_stats} (statistics of {n} images)", "reference": image_source(ref).describe(),
               "reference_n": ref_n,
               "features": generated.feature_model, "feature_dim": len(generated.mu)}
    prov = provenance(inputs={"gen_stats": gen_stats, "ref": ref_path, "features": features}, provider="", device_id=0,
                      preprocessing={"features": generated.preprocessing}, seeds=None, n=n, batch_size=None)
    report = Report("fid", value, n, interval=interval, details=details, provenance=prov, higher_is_better=False,
                    settings={"confidence": confidence}, warnings=warnings)
    report.stats = generated.stats
    return report


def merge_statistics(paths: list[str | Path], out: str | Path | None = None, *, force: bool = False) -> FeatureStats:
    """The statistics of shards combined exactly (sums of n, sum, sum_outer): `stats merge` of all N shards of
    one run is the unsharded run bit for bit. ``out``: also save them there (an .npz; ``force`` overwrites).

    Raises:
        UserError: when the files do not merge (other features, overlapping or missing chunks) or ``out`` is
            not a new .npz (one line).

    Example:
        >>> gen_eval.merge_statistics(["part1.npz", "part2.npz"], "generated.npz")  # doctest: +SKIP
    """
    from gen_eval.evaluator.stats import merge_stats

    if isinstance(paths, (str, os.PathLike)):
        raise UserError(f"{param('paths')} must be a list of statistics files, got one path ({paths})")
    inputs.check_types(out=(out, inputs.PATH), force=(force, bool))
    if out is not None:
        if Path(out).suffix != ".npz":
            raise UserError(f"{param('out', out)}: statistics files end in .npz")
        inputs.check_outputs(force, {param("out"): out}, {f"merged (argument {i + 1})": p for i, p in enumerate(paths)})
    merged = merge_stats(list(paths))
    if out is not None:
        merged.save(out, force=force)
    return merged


__all__ = ["fid", "generated_source", "merge_statistics", "reference_statistics", "remote_chunks", "statistics"]
