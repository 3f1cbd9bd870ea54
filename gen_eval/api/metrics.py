"""`metrics`: FID, KID, IS, precision/recall/density/coverage, FID∞, per-condition FD and memorisation
from one feature pass per image set.

Each side's features pass once through the features model into a :class:`FeatureStore` (float32 on
disk, memory-mapped, removed afterwards); every requested metric then reads the stores in blocks
(:mod:`gen_eval.evaluator.metrics`). The reference must be images (a folder or data set). IS reads the
generated side's logits (the Inception from `export-inception` gives them from the same pass);
per-condition FD needs conditions on both sides (the generator's condition file, the data set's labels);
memorisation needs the training images (``train``), the reference then being the held-out real set.
With ``pictures=True`` the report also holds captioned sample grids per condition and the closest
pairs (images regenerated or re-read by index after the pass), for :meth:`MetricsReport.write_html`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gen_eval.api import inputs
from gen_eval.api.sources import GeneratorSource, ImageSource, Runtime, image_source, runtime_of
from gen_eval.errors import UserError, param, render
from gen_eval.evaluator.judges import check_judge
from gen_eval.evaluator.uncertainty import frechet_with_interval, jackknife_from

log = logging.getLogger("gen_eval")
DEFAULT_METRICS = ("fid", "kid", "prdc")
# what a gate can hold: its name -> (the metric that computes it, the result's field, higher is better)
GATED = {"fid": ("fid", "fid", False), "kid": ("kid", "mean", False), "cmmd": ("cmmd", "cmmd", False), "precision": ("prdc", "precision", True),
         "recall": ("prdc", "recall", True), "coverage": ("prdc", "coverage", True)}


@dataclass
class MetricsReport:
    """What :func:`metrics` returns: each metric's result, the intervals it has, N, provenance, warnings.

    Attributes:
        results: metric name (``fid``, ``kid``, ``prdc``, ``is``, ``fid-inf``, ``per-condition-fd``,
            ``memorisation``) -> its result dataclass (``to_dict()`` gives plain values).
        n_generated, n_reference: the images on each side.
        provenance: hashes of the inputs, features model, provider, seeds.
        warnings: what a reader should know first (small N, a judge seen in training, a collapse).
        intervals: metric name -> :class:`~gen_eval.evaluator.uncertainty.Interval` (FID's jackknife).
        pictures: title -> PIL image (``pictures=True``).

    Example:
        >>> report = gen_eval.metrics("real/", "samples/", features="inception.onnx")  # doctest: +SKIP
        >>> report.gate("fid", 30.0).passed  # doctest: +SKIP
    """
    results: dict[str, Any]
    n_generated: int
    n_reference: int
    provenance: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    pictures: dict[str, Any] = field(default_factory=dict, repr=False)
    intervals: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {"metric": "metrics", "n": self.n_generated, "reference_n": self.n_reference}
        for name, result in self.results.items():
            out[name] = result.to_dict()
            if name in self.intervals:
                out[name]["interval"] = self.intervals[name].to_dict()
        return {**out, "provenance": self.provenance, "warnings": self.warnings}

    def gate(self, name: str, threshold: float, *, strict: bool = False, use_interval: bool = True):
        """Pass/fail of one metric against ``threshold``: ``fid`` and ``kid`` at most it, ``precision``,
        ``recall`` and ``coverage`` at least it; on the interval when ``use_interval`` and the metric has
        one (FID's jackknife), else on the value.

        Args:
            name: one of ``fid``, ``kid``, ``precision``, ``recall``, ``coverage``.
            threshold: the highest acceptable distance or the lowest acceptable score.
            strict: with the interval, pass only when confidently on the right side.
            use_interval: decide on the interval where there is one.

        Returns:
            A :class:`~gen_eval.evaluator.uncertainty.Decision` carrying ``threshold``.

        Raises:
            UserError: when ``name`` is not gated or its metric was not computed.
        """
        from gen_eval.api.reports import Report

        if name not in GATED:
            raise UserError(f"no gate on {name!r}; gates: {', '.join(GATED)}")
        metric, key, higher = GATED[name]
        if metric not in self.results:
            raise UserError(f"a gate on {name} needs {metric} in {param('names')}")
        value = float(getattr(self.results[metric], key))
        one = Report(name, value, self.n_generated, interval=self.intervals.get(metric), higher_is_better=higher)
        return one.gate(threshold, strict=strict, use_interval=use_interval)

    def markdown(self, gates: list | None = None) -> str:
        """A Markdown table fit for a CI job summary, with each gate's verdict (``[(name, Decision)]``)."""
        from gen_eval.api.reports import gate_markdown

        lines = ["### gen-eval metrics", "", "| | |", "|---|---|"]
        lines += [f"| {k.strip()} | {v.replace('|', '/')} |" for k, v in self.rows()]
        for name, decision in gates or []:
            lines += ["", gate_markdown(name, decision)]
        for warning in self.warnings:
            lines += ["", f"> warning: {warning}"]
        return "\n".join(lines) + "\n"

    def table(self) -> str:
        rows = self.rows()
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)

    def rows(self) -> list[tuple[str, str]]:
        """(name, value) rows of :meth:`table`: every number, the intervals, N and the provider."""
        rows = []
        for name, result in self.results.items():
            for key, value in result.to_dict().items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    rows.append((f"{name} {key}", f"{value:.6g}" if isinstance(value, float) else str(value)))
            interval = self.intervals.get(name)
            if interval is not None and np.isfinite(interval.low):
                rows.append((f"{name} {interval.confidence:.0%} interval",
                             f"[{interval.low:.6g}, {interval.high:.6g}] ({interval.method})"))
            elif interval is not None:
                rows.append((f"{name} interval", f"none: {interval.method}"))
            for each in getattr(result, "per_label", []):
                rows.append((f"  fd {each.label}", f"{each.fd:.6g}  (n {each.n_generated} / {each.n_reference})"))
            for each in getattr(result, "skipped", []):
                rows.append((f"  fd {each.label}", f"skipped: n {each.n_generated} / {each.n_reference} "
                                                    f"< {result.min_count}"))
        rows += [("n", str(self.n_generated)), ("reference n", str(self.n_reference)),
                 ("provider", self.provenance.get("provider", ""))]
        return rows

    def write_html(self, path: str | Path, force: bool = False) -> Path:
        """One self-contained HTML file: metrics, per-condition tables, pictures (data URIs), provenance."""
        from gen_eval.evaluator.html_report import write_metrics_html

        return write_metrics_html(self, path, force=force)


@dataclass
class _Side:
    """One image set: where its images come from, so pictures can fetch them again by index."""
    description: str
    labels: np.ndarray | None = None     # [n, L] float condition vectors, in store order
    label_space: Any = None
    images: Any = None                   # an ImageSet
    generator: Any = None
    conditions: np.ndarray | None = None
    seed: int = 0
    n: int = 0

    def fetch(self, indices) -> np.ndarray:
        """uint8 NCHW images of these indices (regenerated deterministically, or read again)."""
        from gen_eval.data.images import to_uint8
        from gen_eval.evaluator.preprocess import hwc_to_nchw
        from gen_eval.evaluator.sampling import sample

        indices = [int(i) for i in indices]
        if not indices:
            return np.zeros((0, 3, 8, 8), np.uint8)
        if self.images is not None:
            return hwc_to_nchw([self.images.image(i) for i in indices])
        by_index = {}
        for batch in sample(self.generator, self.n, self.seed, conditions=self.conditions,
                            indices=np.asarray(sorted(set(indices)))):
            for i, image in zip(batch.indices, to_uint8(batch.images, self.generator.info.value_range)):
                by_index[int(i)] = image
        return np.stack([by_index[i] for i in indices])


def _image_side(source: ImageSource, what: str = "images") -> _Side:
    images = source.open(what=what)
    count = f"{len(images)} image{'s' if len(images) != 1 else ''}"
    return _Side(f"{images.source} ({count})", images.labels, images.label_space, images=images, n=len(images))


@dataclass(frozen=True)
class _Plan:
    """What :func:`metrics` computes, its arguments checked before any file is opened."""
    wanted: list[str]
    features: Any
    chunk_size: int
    runtime: Runtime
    ref: ImageSource
    train: ImageSource | None
    generated: ImageSource | GeneratorSource | None  # None: the generated side is ``gen_files``
    gen_files: list
    ref_is_file: bool
    options: dict[str, Any]  # the metrics' settings as given; a copy, so the caller's dict is never changed
    pictures: bool
    confidence: float
    ray_address: str | None

    @property
    def generator(self) -> GeneratorSource | None:
        return self.generated if isinstance(self.generated, GeneratorSource) else None

    @property
    def needs_features_model(self) -> bool:
        """False only when feature files on both sides (and no training images) hold every feature."""
        return not (self.gen_files and self.ref_is_file and self.train is None)


def _validate(ref, images, *, features, names, train, gen_stats, options, pictures, upscale, chunk_size, ray_address,
              runtime, confidence) -> _Plan:
    """The arguments of :func:`metrics` checked and turned into sources (one-line UserErrors)."""
    from gen_eval.api.fid import generated_source
    from gen_eval.api.inputs import check_types
    from gen_eval.evaluator.exact import DEFAULT_CHUNK_SIZE
    from gen_eval.evaluator.metrics.registry import canonical_name
    from gen_eval.scale.feature_files import features_path
    from gen_eval.weights.named import resolve_features

    check_types(ref=(ref, inputs.IMAGES), chunk_size=(chunk_size, int), upscale=(upscale, int),
                confidence=(confidence, float), options=(options, dict), pictures=(pictures, bool))
    if not 0 < confidence < 1:
        raise UserError(f"{param('confidence')} must be between 0 and 1, got {confidence}")
    features = resolve_features(features)
    chunk_size = DEFAULT_CHUNK_SIZE if chunk_size is None else chunk_size
    runtime = runtime_of(runtime)
    ref_source, train_source = image_source(ref), image_source(train)
    if ref_source is None:
        raise UserError(f"give the reference with {param('ref')}: images, or a statistics .npz with its features")
    if isinstance(names, str):
        names = [x.strip() for x in names.split(",") if x.strip()]
    try:
        wanted = list(dict.fromkeys(canonical_name(x) for x in names))
    except (KeyError, ValueError) as exc:
        raise UserError(f"{param('names')}: {exc.args[0]}") from None
    ref = ref_source.path
    ref_is_file = ref is not None and ref.suffix.lower() == ".npz"
    if ref_is_file and not features_path(ref).is_file():
        if set(wanted) - {"fid"}:
            raise UserError(f"{param('ref', ref)}: statistics hold no features; "
                            f"{', '.join(sorted(set(wanted) - {'fid'}))} need reference images or "
                            f"{features_path(ref).name} beside it (`gen-eval stats --save-features`)")
        raise UserError(f"{param('ref', ref)}: use `gen-eval fid` for a distance to statistics; metrics computes "
                        "from images")
    gen_files = list(gen_stats or [])
    if gen_files and images is not None:
        raise UserError("give the generated side once: shard statistics files, or images or a generator")
    source = None if gen_files else generated_source(images)
    from_files = [what for what, used in (("is", "is" in wanted), ("per-condition-fd", "per-condition-fd" in wanted),
                                          ("pictures", pictures)) if used]
    if (gen_files or ref_is_file) and from_files:
        raise UserError(f"{', '.join(from_files)} need the images themselves (logits, labels or pictures), which "
                        "feature files do not hold; compute them from a generator or image folders")
    if "memorisation" in wanted and train is None:
        raise UserError(f"{param('names', 'memorisation')} needs the training images: give them with "
                        f"{param('train', 'DIR')} ({param('ref')} is then the held-out real set)")
    if train is not None and "memorisation" not in wanted:
        raise UserError(f"{param('train')} is read only for the memorisation metric; add memorisation to "
                        f"{param('names')}")
    if "is" in wanted and ray_address is not None:
        raise UserError(f"{param('names', 'is')} reads the logits in this process; leave out {param('ray_address')}")
    return _Plan(wanted, features, chunk_size, runtime, ref_source, train_source, source, gen_files, ref_is_file,
                 dict(options or {}), pictures, confidence, ray_address)


def metrics(ref: Any, images: Any = None, *, features: str | Path | None = None,
            names: str | Sequence[str] = DEFAULT_METRICS, train: Any = None,
            gen_stats: Sequence[str | Path] | None = None, options: dict[str, Any] | None = None,
            pictures: bool = False, upscale: int = 1, chunk_size: int | None = None, ray_address: str | None = None,
            runtime: Runtime | None = None, progress: bool = False, confidence: float = 0.95,
            cache: bool = True) -> MetricsReport:
    """The metrics ``names`` of the generated ``images`` against ``ref``; ``train``: the training images, for
    memorisation. ``features``: a features .onnx or a cached extractor's name (``"inception"``, see
    :mod:`gen_eval.weights`).

    Either side may also be files that `gen-eval stats --save-features` wrote: ``gen_stats`` (the shard
    statistics files, each with its ``.features.npy`` beside it) for the generated side, and ``ref`` as
    such a statistics file. ``ray_address`` ('local' or a cluster address) computes the generated side's
    features on Ray actors. The results are those of one process computing everything, bit for bit.
    FID carries the same jackknife interval as :func:`gen_eval.fid` (10 blocks of the generated images),
    CMMD a jackknife over 10 blocks of the generated images too.

    Args:
        ref: reference images (a folder, a data set, images in memory, an :class:`gen_eval.ImageSource` for
            another split) or a statistics .npz with its features beside it.
        images: the generated side, as in :func:`gen_eval.fid`: images (a path, in memory, an
            :class:`gen_eval.ImageSource`) or a :class:`gen_eval.GeneratorSource`.
        features: the features .onnx (Inception from `export-inception`, or a judge's features model).
        names: metrics, a list or ``"fid,kid"``: ``fid`` (or ``fd``), ``cmmd`` (with
            ``features="clip-vitl14-336"``, as the CMMD paper), ``kid``, ``is``, ``prdc``, ``fid-inf``,
            ``per-condition-fd``, ``memorisation``.
        train: the training images (memorisation; a path's split "train"); ``ref`` is then the held-out set.
        options: per-metric settings, each named by its metric: ``kid_subsets``, ``kid_subset_size``,
            ``is_splits``, ``prdc_k``, ``fid_inf_points``, ``fid_inf_min_n``, ``min_count``
            (per-condition-fd: fewest images per side), ``cmmd_sigma``, ``cmmd_blocks``, ``seed`` (KID, IS,
            FID∞), ``block``; an option no
            requested metric takes is an error.
        pictures, upscale: keep captioned pictures for :meth:`MetricsReport.write_html`.
        gen_stats: shard statistics files (with features) as the generated side, instead of ``images``.
        chunk_size, ray_address: fixed index chunks; Ray actors for the generated side.
        runtime: the device, batch size and threads (:class:`gen_eval.Runtime`) [default: ``Runtime()``].
        progress: draw progress bars on stderr (kept on screen when done, with rate and total).
        confidence: the coverage of FID's interval.
        cache: reuse (and keep) the reference images' features and statistics in the cache folder, keyed
            by the features model and the files' content, as :func:`gen_eval.fid` does.

    Returns:
        A :class:`MetricsReport`; ``report.gate("fid", 30)`` decides a gate.

    Raises:
        UserError: on a bad argument or input (one line that says what to change).

    Example:
        >>> generated = gen_eval.GeneratorSource("acgan.onnx", n=5000, conditions="test.json")  # doctest: +SKIP
        >>> report = gen_eval.metrics("real/", generated, features="inception.onnx",  # doctest: +SKIP
        ...                           names="fid,kid,prdc", options={"prdc_k": 5})
        >>> print(report.table())  # doctest: +SKIP
    """
    plan = _validate(ref, images, features=features, names=names, train=train, gen_stats=gen_stats,
                     options=options, pictures=pictures, upscale=upscale, chunk_size=chunk_size,
                     ray_address=ray_address, runtime=runtime, confidence=confidence)
    opened = _open(plan)
    report = _compute(plan, opened, progress=progress, cache=cache)
    if pictures:
        from gen_eval.evaluator.report_pictures import metrics_pictures

        report.pictures = metrics_pictures(report, opened.generated, opened.training, upscale=upscale,
                                           reference=opened.reference)
    return report


@dataclass
class _Opened:
    """What :func:`_open` opened for a plan, before any feature is computed. The runtime and the features
    model are None when the plan needs no features model."""
    runtime: Any                      # the open gen_eval.evaluator.runtime.Runtime
    features_model: Any
    dim: int | None                   # the features' size
    feature_model_id: str | None
    logits_dim: int | None            # the logits' size, when IS is wanted
    reference: _Side | None           # None: the reference is a statistics file with its features
    training: _Side | None
    generated: _Side | None           # None: the generated side is the plan's feature files
    judged: Any                       # a generator's judge-in-training check, or None


def _open(plan: _Plan) -> _Opened:
    """The runtime, the features model and each side of ``plan`` opened (one-line UserErrors); no features yet."""
    from gen_eval.evaluator.features import feature_model_id, has_logits
    from gen_eval.evaluator.noise import cycle_conditions

    features, wanted = plan.features, plan.wanted
    logits = "is" in wanted
    rt = model_features = None
    dim = ident = logits_dim = None
    if plan.needs_features_model:
        if features is None:
            raise UserError("give a features model (only feature files on both sides need none)")
        rt = plan.runtime.open()
        model_features = inputs.load_features(features, rt, plan.runtime.batch_size)
        log.info("runtime: %s", rt.describe())
        dim = model_features.info.output_size
        if dim is None:
            raise UserError(f"{features}: the features output has no fixed size; export it with a static feature "
                            "dimension")
        if logits and not has_logits(model_features):
            raise UserError(f"{param('names', 'is')}: {features} has no 'logits' output; the Inception Score needs the "
                            "Inception's logits: export it again with `gen-eval export-inception` (or leave out 'is')")
        ident = feature_model_id(model_features)
        logits_dim = model_features.outputs["logits"].static(1) if logits else None
    ref_source, train_source = plan.ref, plan.train
    ref_path, train_path = ref_source.path, None if train_source is None else train_source.path
    if train_path is not None and ref_path is not None and not plan.ref_is_file \
            and train_path.resolve() == ref_path.resolve() and train_source.split == ref_source.split:
        raise UserError(f"{param('train')} and {param('ref')} are the same images ({ref_path}, split {ref_source.split}); "
                        "memorisation compares with held-out real images: give the reference a split not used in "
                        f"training (e.g. {param('ref_split', 'heldout')})")
    reference = None if plan.ref_is_file else _image_side(ref_source, param("ref"))
    training = _image_side(train_source, param("train")) if train_source is not None else None
    generated, judged = None, None
    generator_source = plan.generator
    if isinstance(plan.generated, ImageSource):
        generated = _image_side(plan.generated, param("images"))
    elif generator_source is not None:
        open_generator = generator_source.open(rt, plan.runtime.batch_size)
        generator, cond = open_generator.generator, open_generator.conditions
        judged = check_judge(generator, model_features, "features")
        n = generator_source.require_n(" (FID is usually computed on 10000+)")
        labelled = cond is not None and ("per-condition-fd" in wanted or plan.pictures)  # [n, L]: only when used
        generated = _Side(generator_source.describe(), generator=generator, conditions=cond,
                          seed=generator_source.seed, n=n, labels=cycle_conditions(cond, np.arange(n)) if labelled
                          else None, label_space=generator.info.label_space)
    return _Opened(rt, model_features, dim, ident, logits_dim, reference, training, generated, judged)


def _compute(plan: _Plan, opened: _Opened, *, progress: bool, cache: bool) -> MetricsReport:
    """One feature pass per side into a store, then every wanted metric, FID's and CMMD's intervals, the
    warnings and the provenance. The stores (the cached reference's too) close before this returns, also on
    an error."""
    from gen_eval.api.fid import JACKKNIFE_BLOCKS, remote_chunks
    from gen_eval.evaluator.features import generator_stats, imageset_stats, preprocessing_id, small_sample_warning
    from gen_eval.evaluator.metrics import FeatureStore, compute_metrics
    from gen_eval.evaluator.provenance import provenance
    from gen_eval.scale.feature_files import open_feature_shards

    wanted, chunk_size, features, gen_files = plan.wanted, plan.chunk_size, plan.features, plan.gen_files
    ref_source, generator_source = plan.ref, plan.generator
    ref_path, train_path = ref_source.path, None if plan.train is None else plan.train.path
    rt, model_features, dim, ident = opened.runtime, opened.features_model, opened.dim, opened.feature_model_id
    reference, training, generated, judged = opened.reference, opened.training, opened.generated, opened.judged
    logits = "is" in wanted
    options = dict(plan.options)
    if "per-condition-fd" in wanted:
        options.update(_condition_options(generated, reference))

    with contextlib.ExitStack() as stores:
        if plan.ref_is_file:
            ref_store, ref_stats = open_feature_shards([ref_path])
            stores.callback(ref_store.close)
        else:
            from gen_eval.evaluator import statscache

            key = statscache.reference_key(model_features, reference.images, ref_path, ref_source.split,
                                           extra={"features": True, "chunk_size": chunk_size}) \
                if cache and ref_path is not None else None
            ref_store = statscache.load_cached_features(key) if key else None
            if ref_store is not None:
                stores.callback(ref_store.close)
                ref_stats = ref_store.stats
            else:
                ref_store = stores.enter_context(FeatureStore(dim, feature_model=ident))
                ref_stats = imageset_stats(model_features, reference.images, chunk_size=chunk_size,
                                           progress=progress, sink=lambda feats, rows: ref_store.append(feats))
                if key:
                    statscache.save_cached_features(key, ref_store, ref_stats)
        if training is not None:
            train_store = stores.enter_context(FeatureStore(dim, feature_model=ident))
            imageset_stats(model_features, training.images, sink=lambda feats, rows: train_store.append(feats),
                           progress=progress)
            options["train"] = train_store
        if gen_files:
            gen_store, gen_stats_merged = open_feature_shards(gen_files)
            stores.callback(gen_store.close)
            described = f"{len(gen_files)} feature file(s) of {gen_store.n} images"
        else:
            gen_store = stores.enter_context(FeatureStore(dim, feature_model=ident, logits_dim=opened.logits_dim))
            append = (lambda feats, rows, lg: gen_store.append(feats, lg)) if logits else \
                (lambda feats, rows: gen_store.append(feats))
            described = generated.description
            remote = remote_chunks(plan.ray_address, features, plan.generated, plan.runtime)
            blocks = JACKKNIFE_BLOCKS if "fid" in wanted else 1  # block sums for FID's interval
            if generated.images is not None:
                gen_stats_merged = imageset_stats(model_features, generated.images, sink=append, with_logits=logits,
                                                  chunk_size=chunk_size, progress=progress, remote=remote,
                                                  blocks=blocks)
            else:
                gen_stats_merged = generator_stats(model_features, generated.generator, generated.n, generated.seed,
                                                   conditions=generated.conditions, sink=append, with_logits=logits,
                                                   chunk_size=chunk_size, progress=progress, remote=remote,
                                                   blocks=blocks)
        if gen_stats_merged.feature_model and ref_stats.feature_model and \
                gen_stats_merged.feature_model != ref_stats.feature_model:
            raise UserError(f"the two sides were computed with different features models "
                            f"({gen_stats_merged.feature_model} vs {ref_stats.feature_model}); use one")
        # the exact chunked sums: FID here equals `gen-eval fid` and the sharded runs bit for bit
        gen_store.stats, ref_store.stats = gen_stats_merged, ref_stats
        try:
            results = compute_metrics(wanted, gen_store, ref_store, **options)
        except TypeError as exc:
            raise UserError(f"metric options: {exc}") from None
        except ValueError as exc:
            raise UserError(f"{exc}; use more images or fewer splits/subsets") from None
        intervals = {}
        if "fid" in results:
            results["fid"].fid, intervals["fid"] = frechet_with_interval(
                gen_stats_merged, ref_stats.mu, ref_stats.sigma, plan.confidence,
                no_blocks="the generated side's statistics hold no jackknife block sums")
        if "cmmd" in results:
            intervals["cmmd"] = jackknife_from(results["cmmd"].cmmd, results["cmmd"].jackknife, plan.confidence)
        warnings = [judged.warning if judged else None]
        warnings += diagnose(results, dim)
        warnings += [small_sample_warning(store.stats, what) for store, what in
                     ((gen_store, described), (ref_store, f"reference {ref_source.describe()}"))]
        prov = provenance(inputs={"features": features, "ref": ref_path,
                                  "model": generator_source.model if generator_source else None,
                                  "conditions": generator_source.conditions if generator_source else None,
                                  "train": train_path},
                          provider=(rt.provider or "") if rt else "", device_id=rt.device_id if rt else 0,
                          preprocessing={"features": preprocessing_id(model_features) if model_features
                                         else gen_stats_merged.preprocessing,
                                         "generated": "quantised to uint8 like PNGs"},
                          seeds=[generator_source.seed] if generator_source else None, n=gen_store.n,
                          batch_size=model_features.batch_size if model_features else None)
        if rt is not None:
            prov["runtime"] = rt.describe()
        prov["images"] = described
        prov["features_model"] = ident or gen_stats_merged.feature_model
        if judged is not None:
            prov["judge_in_training"] = judged.verdict
            prov["judge_in_training_basis"] = judged.basis
        return MetricsReport(results, gen_store.n, ref_store.n, prov, [w for w in warnings if w],
                             intervals=intervals)


COLLAPSE_SHARE = 0.5   # closest pairs on one training image beyond this share: the page names a collapse
COLLAPSE_RECALL = 0.05  # recall at or below this: the generated images cover almost none of the real ones


def diagnose(results: dict[str, Any], dim: int | None) -> list[str]:
    """Warnings a reader needs before the numbers: a collapse the memorisation pairs or PRDC show, and
    per-condition FD conditions skipped for too few images, with what to change."""
    warnings = []
    memo = results.get("memorisation")
    if memo is not None and len(memo.closest) >= 4:
        targets = [t for _, t, _ in memo.closest]
        top = max(set(targets), key=targets.count)
        if targets.count(top) / len(targets) > COLLAPSE_SHARE:
            warnings.append(f"mode collapse: {targets.count(top)} of the {len(targets)} closest generated images "
                            f"have the same nearest training image (#{top}); the generator draws few distinct "
                            "images, so memorisation and the other metrics describe those few")
    prdc = results.get("prdc")
    if prdc is not None and prdc.recall <= COLLAPSE_RECALL:
        warnings.append(f"mode collapse: recall {prdc.recall:.3g} (coverage {prdc.coverage:.3g}): the generated "
                        "images cover almost none of the real ones' variety")
    per_condition = results.get("per-condition-fd")
    if per_condition is not None and per_condition.skipped:
        need = per_condition.min_count
        most = max(min(c.n_generated, c.n_reference) for c in per_condition.skipped)
        ways = [f"generate about {need * len(per_condition.per_label + per_condition.skipped)} images or more "
                f"(each condition needs {need} on both sides; the fullest skipped one has {most})"]
        if dim is not None and dim > 64:
            ways.append(f"use lower-dimensional features ({dim}-d now), such as the judge's features model")
        ways.append(f"or set {param('min_count')} lower (the fewest images per side a condition needs; "
                    "under the feature dimension + 1 the covariance is singular and the FD biased upwards)")
        warnings.append(f"per-condition-fd: {len(per_condition.skipped)} of "
                        f"{len(per_condition.skipped) + len(per_condition.per_label)} conditions skipped, fewer than "
                        f"{need} images on a side; " + "; ".join(ways))
    return [render(w) for w in warnings]  # stored as text: parameters named for this caller (flag or keyword)


def _condition_options(generated: _Side, reference: _Side) -> dict[str, Any]:
    """Label matrices and names for per-condition FD; one-line errors when a side has no conditions."""
    from gen_eval.evaluator.metrics.per_condition import condition_columns

    if generated.labels is None:
        raise UserError(f"{param('names', 'per-condition-fd')} needs conditions for the generated images: a "
                        f"conditional {param('model')} with {param('conditions')}, or {param('data')} with labels (a "
                        "data set, not a bare folder)")
    if reference.labels is None:
        raise UserError(f"{param('names', 'per-condition-fd')} needs the reference's labels: give {param('ref')} as a "
                        "labelled data set "
                        "(iCLEVR layout, CelebA, Cartoon Set, MNIST), not a bare folder")
    space = generated.label_space or reference.label_space
    if generated.labels.shape[1] != reference.labels.shape[1]:
        raise UserError(f"the generated conditions have {generated.labels.shape[1]} values per image, the reference's "
                        f"labels {reference.labels.shape[1]}: use one label space (the same objects.json)")
    g, names = condition_columns(generated.labels, space)
    r, _ = condition_columns(reference.labels, space)
    return {"generated_labels": g, "reference_labels": r, "label_names": names}


__all__ = ["MetricsReport", "metrics"]
