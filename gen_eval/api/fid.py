"""`statistics` and `fid`: feature statistics of images or a generator, and the Fréchet distance with its interval.

The interval is a delete-a-group jackknife over ``jackknife_blocks`` fixed index blocks of the
generated (or ``data``) side: statistics are sums, so leaving a block out is exact and cheap, and the
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

import numpy as np

from gen_eval.api import inputs
from gen_eval.api.reports import Report
from gen_eval.api.sources import image_source, path_or_none
from gen_eval.data.memory import is_in_memory
from gen_eval.errors import UserError, param
from gen_eval.evaluator.exact import DEFAULT_CHUNK_SIZE
from gen_eval.evaluator.judges import check_judge
from gen_eval.evaluator.stats import FeatureStats
from gen_eval.evaluator.uncertainty import Interval, jackknife_interval

log = logging.getLogger("gen_eval")
JACKKNIFE_BLOCKS = 10
DEFAULT_FEATURES = "inception"  # pytorch-fid's habit: FID means the FID Inception unless told otherwise


def _remote(ray_address: str | None, *, features_path, data, split, model, n, seed, conditions, batch_size,
            latent_dim, value_range, objects, device: str, threads: int | None):
    """A ``remote(chunks)`` that computes the chunks on Ray actors (gen_eval.scale.ray_runner), or None."""
    if ray_address is None:
        return None
    if is_in_memory(data):
        raise UserError(f"{param('ray_address')}: images in memory cannot be sent to Ray actors; write them to a "
                        f"folder and give its path, or leave out {param('ray_address')}")
    from gen_eval.scale.ray_runner import ChunkJob, run_chunks

    def text(path):
        return None if path is None else str(path)

    job = ChunkJob(features=text(features_path), batch_size=batch_size, threads=threads, device=device,
                   data=text(data), split=split, model=text(model), n=n, seed=seed, conditions=text(conditions),
                   latent_dim=latent_dim, value_range=value_range, objects=text(objects))
    return lambda chunks: run_chunks(job, chunks, ray_address)


def _side(features, rt, *, data, split, model, n, seed, conditions, shard, batch_size, latent_dim, value_range,
          objects, blocks: int = 1, chunk_size: int = DEFAULT_CHUNK_SIZE, progress: bool = False, sink=None,
          ray_address: str | None = None, features_path=None, device: str = "auto", threads: int | None = None,
          checkpoint=None):
    """Statistics of ``data`` or of ``n`` images of generator ``model`` (with ``blocks`` jackknife block sums)
    and a description, and for a generator whether ``features`` took part in its training (JudgeCheck; None
    for images). ``sink`` also receives every chunk of features (one pass feeds other metrics);
    with ``ray_address`` the chunks are computed by Ray actors (gen_eval.scale.ray_runner)."""
    from gen_eval.evaluator.features import generator_stats, imageset_stats
    from gen_eval.evaluator.provenance import image_set_listing

    if (data is None) == (model is None):
        raise UserError(f"give the images with exactly one of {param('data', 'DIR')} or {param('model', 'G.onnx')}")
    remote = _remote(ray_address, features_path=features_path, data=data, split=split, model=model, n=n, seed=seed,
                     conditions=conditions, batch_size=batch_size, latent_dim=latent_dim, value_range=value_range,
                     objects=objects, device=device, threads=threads)
    common = dict(shard=shard, sink=sink, progress=progress, chunk_size=chunk_size, blocks=blocks,
                  checkpoint=checkpoint, remote=remote)
    if data is not None:
        if n is not None or conditions is not None:
            raise UserError(f"{param('n')} and {param('conditions')} go with {param('model')}, not {param('data')}")
        images = inputs.image_set(data, split, what=param("data"))
        count = f"{len(images)} image{'s' if len(images) != 1 else ''}"
        stats = imageset_stats(features, images, **common)
        stats.listing = image_set_listing(images) or getattr(images, "sha256", None)
        return stats, f"{images.source} ({count})", None
    generator = inputs.load_generator(model, rt, batch_size=batch_size, latent_dim=latent_dim,
                                      value_range_text=value_range, objects=objects)
    cond = inputs.conditions_for(generator, conditions)
    if n is None:
        raise UserError(f"give the number of images to generate with {param('n')} (FID is usually computed on 10000+)")
    stats = generator_stats(features, generator, n, seed, conditions=cond, **common)
    return stats, f"{model} ({n} samples, seed {seed})", check_judge(generator, features, "features")


def statistics(features: str | Path, *, data: str | Path | None = None, model: str | Path | None = None,
               n: int | None = None, seed: int = 0, conditions: str | Path | None = None, split: str = "train",
               shard: tuple[int, int] | None = None, objects: str | Path | None = None,
               latent_dim: int | None = None, value_range: str | tuple[float, float] | None = None,
               jackknife_blocks: int | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE,
               ray_address: str | None = None, checkpoint: str | Path | None = None,
               features_out: str | Path | None = None, device: str = "auto", batch_size: int | None = None,
               threads: int | None = None, progress: bool = False) -> FeatureStats:
    """Feature statistics (n, sums; mu and sigma) of ``data`` or of ``n`` samples of generator ``model``.

    Shards (``shard=(k, N)``) are whole chunks of ``chunk_size`` images; `stats merge` of all N gives the
    unsharded statistics bit for bit. The statistics are sums over fixed index chunks, so the same seed gives
    the same bits for any shard count, worker count or Ray pool.

    Args:
        features: the features .onnx (role features, e.g. Inception pool3 or a classifier's penultimate layer).
        data: images (a folder, a data set, or a `gen-eval sample` .npz); give this or ``model``.
        model: a generator .onnx whose ``n`` samples are measured; give this or ``data``.
        n: the number of samples of ``model`` (image i from the noise of (seed, i)).
        seed: the noise seed of ``model``'s samples.
        conditions: a conditional generator's condition file, its rows cycled to ``n``.
        split: the split of ``data`` when it is a data set.
        shard: ``(k, N)``: only part k of N of the run (1-based).
        objects, latent_dim, value_range: what a generator without gen-eval metadata needs.
        jackknife_blocks: block sums kept for FID's interval (``fid(gen_stats=...)``) [default: 10 for a
            generator, none for images].
        chunk_size: images per fixed index chunk (the unit of shards, workers and checkpoints).
        ray_address: 'local' or a Ray cluster address: compute the chunks on Ray actors.
        checkpoint: an .npz path: the sums so far are saved there every minute and a rerun continues from
            them (delete it once the statistics are saved).
        features_out: a .npy path that also keeps the features, rows in index order, for metrics beyond FID
            (then a killed run starts again rather than resuming).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        batch_size: images per model run.
        threads: CPU threads for onnxruntime.
        progress: draw a progress bar on stderr (kept on screen when done, with rate and total).

    Returns:
        A :class:`~gen_eval.evaluator.stats.FeatureStats` (``.n``, ``.mu``, ``.sigma``; ``.save(path)``).

    Raises:
        UserError: on a bad argument or input file (one line that says what to change).

    Example:
        >>> stats = gen_eval.statistics("inception.onnx", data="real/", progress=True)  # doctest: +SKIP
        >>> stats.save("real_stats.npz")  # doctest: +SKIP
    """
    from gen_eval.evaluator.noise import check_seed
    from gen_eval.weights.named import resolve_features

    inputs.check_types(features=(features, inputs.PATH), data=(data, inputs.IMAGES), model=(model, inputs.PATH),
                       n=(n, int), seed=(seed, int), conditions=(conditions, inputs.PATH), split=(split, str),
                       objects=(objects, inputs.PATH), latent_dim=(latent_dim, int),
                       jackknife_blocks=(jackknife_blocks, int), chunk_size=(chunk_size, int),
                       ray_address=(ray_address, str), checkpoint=(checkpoint, inputs.PATH),
                       features_out=(features_out, inputs.PATH), progress=(progress, bool))
    features = resolve_features(features)
    check_seed(seed)
    if jackknife_blocks is None:
        jackknife_blocks = JACKKNIFE_BLOCKS if model is not None else 1
    rt = inputs.runtime(device, threads, batch_size)
    model_features = inputs.load_features(features, rt, batch_size)
    log.info("runtime: %s", rt.describe())
    with _kept_features(features_out, model_features) as sink:
        stats, described, _ = _side(model_features, rt, data=data, split=split, model=model, n=n, seed=seed,
                                 conditions=conditions, shard=shard, batch_size=batch_size, latent_dim=latent_dim,
                                 value_range=value_range, objects=objects, progress=progress, blocks=jackknife_blocks,
                                 chunk_size=chunk_size, ray_address=ray_address, features_path=features,
                                 device=device, threads=threads, checkpoint=None if sink else checkpoint, sink=sink)
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


def reference_statistics(ref, ref_split, model_features, *, allow_other_features: bool, progress: bool,
                         against=None, cache: bool = True):
    """(mu, sigma, n, warnings) of ``ref``; ``against``: the other side's recorded features (a statistics
    file) when there is no features model. Images' statistics are cached (``cache``, see
    :mod:`gen_eval.evaluator.statscache`)."""
    from gen_eval.evaluator.features import check_same_features, imageset_stats, new_stats, small_sample_warning
    from gen_eval.evaluator.stats import load_stats

    warnings = []
    ref_source = image_source(ref, ref_split)
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


def fid(features: str | Path | None, ref: str | Path, *, gen_stats: str | Path | None = None,
        data: str | Path | None = None, model: str | Path | None = None,
        n: int | None = None, seed: int = 0, conditions: str | Path | None = None, split: str = "train",
        ref_split: str = "train", objects: str | Path | None = None, latent_dim: int | None = None,
        value_range: str | tuple[float, float] | None = None,
        allow_other_features: bool = False, confidence: float = 0.95, jackknife_blocks: int = JACKKNIFE_BLOCKS,
        chunk_size: int = DEFAULT_CHUNK_SIZE, ray_address: str | None = None,
        device: str = "auto", batch_size: int | None = None, threads: int | None = None,
        progress: bool = False, cache: bool = True) -> Report:
    """Fréchet distance of ``n`` samples of generator ``model`` (or of ``data``, or of the statistics file
    ``gen_stats``, e.g. merged shards) to ``ref`` (statistics .npz or images), with a jackknife interval
    over the generated side. ``report.stats`` holds that side's statistics (to save them). With
    ``gen_stats`` and a statistics ``ref`` no features model is needed (``features`` may be None); otherwise
    None means the cached ``inception`` (pytorch-fid's FID Inception, `gen-eval weights get inception`).

    pytorch-fid's definition: images quantised to uint8 as saved to PNG, statistics in float64,
    ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^1/2). The interval is a delete-a-block jackknife over
    ``jackknife_blocks`` fixed blocks of the generated images: how much the distance moves with the images
    drawn (it does not remove FID's upward bias at small N, which the report warns about).

    Args:
        features: the features .onnx or a cached extractor's name (``"inception"``, the default when None and
            a side needs features).
        ref: the reference: a statistics .npz (pytorch-fid's load as they are) or images.
        gen_stats: the generated side as a statistics .npz (e.g. `gen-eval stats merge` of shards).
        data: the generated side as images (a folder, a data set, or a `gen-eval sample` .npz).
        model: the generated side as a generator .onnx; give ``n``.
        n: the number of samples of ``model`` (image i from the noise of (seed, i)).
        seed: the noise seed of ``model``'s samples.
        conditions: a conditional generator's condition file, its rows cycled to ``n``.
        split, ref_split: the split of ``data`` / ``ref`` when they are data sets.
        objects, latent_dim, value_range: what a generator without gen-eval metadata needs.
        allow_other_features: compare statistics made with another features model (a warning, not an error).
        confidence: the interval's coverage, between 0 and 1.
        jackknife_blocks: blocks of the jackknife.
        chunk_size: images per fixed index chunk (the unit of workers and Ray actors).
        ray_address: 'local' or a Ray cluster address: compute the chunks on Ray actors.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        batch_size: images per model run.
        threads: CPU threads for onnxruntime.
        progress: draw progress bars on stderr (kept on screen when done, with rate and total).
        cache: reuse (and keep) the statistics of reference images in the cache folder, keyed by the features
            model and the files' content.

    Returns:
        A :class:`~gen_eval.api.reports.Report` with metric ``fid`` (lower is better; ``report.gate(30)``
        passes at most 30) and ``report.stats``.

    Raises:
        UserError: on a bad argument or input file (one line that says what to change).

    Example:
        >>> report = gen_eval.fid("inception.onnx", "real_stats.npz", model="acgan.onnx", n=10000,  # doctest: +SKIP
        ...                       conditions="test.json", progress=True)
        >>> report.value, report.interval  # doctest: +SKIP
    """
    from gen_eval.evaluator.features import feature_model_id, small_sample_warning
    from gen_eval.evaluator.frechet import frechet_distance
    from gen_eval.evaluator.noise import check_seed
    from gen_eval.evaluator.provenance import provenance
    from gen_eval.weights.named import resolve_features

    inputs.check_types(features=(features, inputs.PATH), ref=(ref, inputs.IMAGES), gen_stats=(gen_stats, inputs.PATH),
                       data=(data, inputs.IMAGES), model=(model, inputs.PATH), n=(n, int), seed=(seed, int),
                       conditions=(conditions, inputs.PATH), split=(split, str), ref_split=(ref_split, str),
                       objects=(objects, inputs.PATH), latent_dim=(latent_dim, int),
                       allow_other_features=(allow_other_features, bool), confidence=(confidence, float),
                       jackknife_blocks=(jackknife_blocks, int), chunk_size=(chunk_size, int),
                       ray_address=(ray_address, str), progress=(progress, bool))
    check_seed(seed)
    if not 0 < confidence < 1:
        raise UserError(f"{param('confidence')} must be between 0 and 1, got {confidence}")
    if gen_stats is not None:
        if data is not None or model is not None:
            raise UserError("give the generated side once: a statistics file, or images or a generator")
        return _fid_of_stats(features, ref, gen_stats, ref_split=ref_split, confidence=confidence,
                             allow_other_features=allow_other_features, device=device, batch_size=batch_size,
                             threads=threads, progress=progress, cache=cache)
    features = resolve_features(DEFAULT_FEATURES if features is None else features)
    rt = inputs.runtime(device, threads, batch_size)
    model_features = inputs.load_features(features, rt, batch_size)
    log.info("runtime: %s", rt.describe())
    ref_mu, ref_sigma, ref_n, warnings = reference_statistics(ref, ref_split, model_features, cache=cache,
                                                              allow_other_features=allow_other_features,
                                                              progress=progress)
    stats, described, judged = _side(model_features, rt, data=data, split=split, model=model, n=n, seed=seed,
                             conditions=conditions, shard=None, batch_size=batch_size, latent_dim=latent_dim,
                             value_range=value_range, objects=objects, blocks=jackknife_blocks,
                             chunk_size=chunk_size, progress=progress, ray_address=ray_address,
                             features_path=features, device=device, threads=threads)
    stats.require_covariance(described)
    small = small_sample_warning(stats, described)
    value = frechet_distance(stats.mu, stats.sigma, ref_mu, ref_sigma)
    interval = jackknife_interval(stats, ref_mu, ref_sigma, value, confidence)
    details = {"images": described, "reference": image_source(ref, ref_split).describe(), "reference_n": ref_n,
               "features": feature_model_id(model_features), "feature_dim": stats.dim}
    if judged is not None:
        details["judge_in_training"] = judged.verdict
        details["judge_in_training_basis"] = judged.basis
        if judged.warning:
            warnings = [judged.warning, *warnings]
    prov = provenance(inputs={"features": features, "ref": path_or_none(ref), "model": model, "conditions": conditions,
                              "objects": objects}, provider=rt.provider or "", device_id=rt.device_id,
                      preprocessing={"features": stats.preprocessing, "generated": "quantised to uint8 like PNGs"},
                      seeds=[seed] if model else None, n=stats.n, batch_size=model_features.batch_size,
                      data_listing=getattr(stats, "listing", None))
    prov["runtime"] = rt.describe()
    if ray_address is not None:
        prov["engine"] = f"ray ({ray_address})"
    report = Report("fid", value, stats.n, model=str(model) if model else None, seed=seed if model else None,
                    interval=interval, details=details, provenance=prov, higher_is_better=False,
                    settings={"n": n, "seed": seed, "confidence": confidence, "jackknife_blocks": jackknife_blocks,
                              "chunk_size": chunk_size},
                    warnings=warnings + ([small] if small else []))
    report.stats = stats
    return report


def _fid_of_stats(features, ref, gen_stats, *, ref_split, confidence, allow_other_features, device, batch_size,
                  threads, progress, cache: bool = True) -> Report:
    from gen_eval.evaluator.frechet import frechet_distance
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
        rt = inputs.runtime(device, threads, batch_size)
        model_features = inputs.load_features(features, rt, batch_size)
        from gen_eval.evaluator.features import check_same_features, new_stats

        check_same_features(generated, new_stats(model_features), str(gen_stats), allow_other_features)
    ref_mu, ref_sigma, ref_n, warnings = reference_statistics(ref, ref_split, model_features, progress=progress,
                                                              cache=cache, against=generated,
                                                              allow_other_features=allow_other_features)
    value = frechet_distance(generated.mu, generated.sigma, ref_mu, ref_sigma)
    interval = None
    if generated.stats is not None:
        interval = jackknife_interval(generated.stats, ref_mu, ref_sigma, value, confidence)
    if interval is None:
        interval = Interval(value, float("nan"), float("nan"), confidence,
                            "none: the statistics file holds no jackknife block sums")
    n = generated.n or 0
    details = {"images": f"{gen_stats} (statistics of {n} images)", "reference": image_source(ref, ref_split).describe(),
               "reference_n": ref_n,
               "features": generated.feature_model, "feature_dim": len(generated.mu)}
    prov = provenance(inputs={"gen_stats": gen_stats, "ref": ref_path, "features": features}, provider="", device_id=0,
                      preprocessing={"features": generated.preprocessing}, seeds=None, n=n, batch_size=None)
    report = Report("fid", value, n, interval=interval, details=details, provenance=prov, higher_is_better=False,
                    settings={"confidence": confidence}, warnings=warnings)
    report.stats = generated.stats
    return report


__all__ = ["fid", "reference_statistics", "statistics"]
