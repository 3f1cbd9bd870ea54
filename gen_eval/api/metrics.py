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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gen_eval.api import inputs
from gen_eval.errors import UserError

log = logging.getLogger("gen_eval")
DEFAULT_METRICS = ("fid", "kid", "prdc")


@dataclass
class MetricsReport:
    results: dict[str, Any]              # metric name -> its result (to_dict())
    n_generated: int
    n_reference: int
    provenance: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    pictures: dict[str, Any] = field(default_factory=dict, repr=False)  # title -> PIL image (pictures=True)

    def to_dict(self) -> dict[str, Any]:
        return {"metric": "metrics", "n": self.n_generated, "reference_n": self.n_reference,
                **{name: result.to_dict() for name, result in self.results.items()},
                "provenance": self.provenance, "warnings": self.warnings}

    def table(self) -> str:
        rows = []
        for name, result in self.results.items():
            for key, value in result.to_dict().items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    rows.append((f"{name} {key}", f"{value:.6g}" if isinstance(value, float) else str(value)))
            for each in getattr(result, "per_label", []):
                rows.append((f"  fd {each.label}", f"{each.fd:.6g}  (n {each.n_generated} / {each.n_reference})"))
            for each in getattr(result, "skipped", []):
                rows.append((f"  fd {each.label}", f"skipped: n {each.n_generated} / {each.n_reference} "
                                                    f"< {result.min_count}"))
        rows += [("n", str(self.n_generated)), ("reference n", str(self.n_reference)),
                 ("provider", self.provenance.get("provider", ""))]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)

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


def _image_side(path, split: str) -> _Side:
    images = inputs.image_set(path, split)
    count = f"{len(images)} image{'s' if len(images) != 1 else ''}"
    return _Side(f"{images.source} ({count})", images.labels, images.label_space, images=images, n=len(images))


def metrics(features: str | Path, ref: str | Path, *, names=DEFAULT_METRICS, data: str | Path | None = None,
            model: str | Path | None = None, n: int | None = None, seed: int = 0,
            conditions: str | Path | None = None, split: str = "train", ref_split: str = "train",
            train: str | Path | None = None, train_split: str = "train", objects=None, latent_dim=None,
            value_range=None, options: dict[str, Any] | None = None, pictures: bool = False,
            upscale: int = 1, device: str = "auto", batch_size: int | None = None, threads: int | None = None,
            progress: bool = False) -> MetricsReport:
    """The metrics ``names`` of ``n`` samples of generator ``model`` (or of ``data``) against ``ref``;
    ``train``: the training images, for memorisation."""
    from gen_eval.evaluator.features import (feature_model_id, generator_stats, has_logits, imageset_stats,
                                             preprocessing_id, small_sample_warning)
    from gen_eval.evaluator.metrics import FeatureStore, compute_metrics
    from gen_eval.evaluator.metrics.registry import canonical_name
    from gen_eval.evaluator.noise import check_seed, cycle_conditions
    from gen_eval.evaluator.provenance import provenance

    check_seed(seed)
    if isinstance(names, str):
        names = [x.strip() for x in names.split(",") if x.strip()]
    try:
        wanted = list(dict.fromkeys(canonical_name(x) for x in names))
    except (KeyError, ValueError) as exc:
        raise UserError(f"--metrics: {exc.args[0]}") from None
    if Path(ref).suffix.lower() == ".npz":
        raise UserError(f"--ref {ref}: statistics hold no features; use `gen-eval fid` for a distance to statistics "
                        "(metrics computes from reference images: a folder or data set)")
    if "memorisation" in wanted and train is None:
        raise UserError("--metrics memorisation needs the training images: give them with --train DIR "
                        "(--ref is then the held-out real set)")
    if train is not None and "memorisation" not in wanted:
        raise UserError("--train is read only for the memorisation metric; add memorisation to --metrics")
    if (data is None) == (model is None):
        raise UserError("give the images with exactly one of --data DIR or --model G.onnx")
    rt = inputs.runtime(device, threads)
    model_features = inputs.load_features(features, rt, batch_size)
    log.info("runtime: %s", rt.describe())
    dim = model_features.info.output_size
    if dim is None:
        raise UserError(f"{features}: the features output has no fixed size; export it with a static feature dimension")
    logits = "is" in wanted
    if logits and not has_logits(model_features):
        raise UserError(f"--metrics is: {features} has no 'logits' output; the Inception Score needs the "
                        "Inception's logits: export it again with `gen-eval export-inception` (or leave out 'is')")
    if train is not None and Path(train).resolve() == Path(ref).resolve() and train_split == ref_split:
        raise UserError(f"--train and --ref are the same images ({ref}, split {ref_split}); memorisation compares with "
                        "held-out real images: give --ref a split not used in training (e.g. --ref-split heldout)")
    reference = _image_side(ref, ref_split)
    training = _image_side(train, train_split) if train is not None else None
    if data is not None:
        if n is not None or conditions is not None:
            raise UserError("--n and --conditions go with --model, not --data")
        generated = _image_side(data, split)
    else:
        generator = inputs.load_generator(model, rt, batch_size=batch_size, latent_dim=latent_dim,
                                          value_range_text=value_range, objects=objects)
        cond = inputs.conditions_for(generator, conditions)
        if n is None:
            raise UserError("give the number of images to generate with --n (FID is usually computed on 10000+)")
        labelled = cond is not None and ("fd_per_condition" in wanted or pictures)  # [n, L]: only when used
        generated = _Side(f"{model} ({n} samples, seed {seed})", generator=generator, conditions=cond, seed=seed, n=n,
                          labels=cycle_conditions(cond, np.arange(n)) if labelled else None,
                          label_space=generator.info.label_space)
    options = dict(options or {})
    if "fd_per_condition" in wanted:
        options.update(_condition_options(generated, reference))

    ident = feature_model_id(model_features)
    logits_dim = model_features.outputs["logits"].static(1) if logits else None
    with contextlib.ExitStack() as stores:
        gen_store = stores.enter_context(FeatureStore(dim, feature_model=ident, logits_dim=logits_dim))
        ref_store = stores.enter_context(FeatureStore(dim, feature_model=ident))
        imageset_stats(model_features, reference.images, sink=lambda feats, rows: ref_store.append(feats),
                       progress=progress)
        if training is not None:
            train_store = stores.enter_context(FeatureStore(dim, feature_model=ident))
            imageset_stats(model_features, training.images, sink=lambda feats, rows: train_store.append(feats),
                           progress=progress)
            options["train"] = train_store
        append = (lambda feats, rows, lg: gen_store.append(feats, lg)) if logits else \
            (lambda feats, rows: gen_store.append(feats))
        if generated.images is not None:
            imageset_stats(model_features, generated.images, sink=append, with_logits=logits, progress=progress)
        else:
            generator_stats(model_features, generated.generator, n, seed, conditions=generated.conditions,
                            sink=append, with_logits=logits, progress=progress)
        try:
            results = compute_metrics(wanted, gen_store, ref_store, **options)
        except TypeError as exc:
            raise UserError(f"metric options: {exc}") from None
        except ValueError as exc:
            raise UserError(f"{exc}; use more images or fewer splits/subsets") from None
        warnings = [small_sample_warning(store.stats, what) for store, what in
                    ((gen_store, generated.description), (ref_store, f"reference {ref}"))]
        prov = provenance(inputs={"features": features, "ref": ref, "model": model, "conditions": conditions,
                                  "train": train},
                          provider=rt.provider or "", device_id=rt.device_id,
                          preprocessing={"features": preprocessing_id(model_features),
                                         "generated": "quantised to uint8 like PNGs"},
                          seeds=[seed] if model else None, n=gen_store.n, batch_size=model_features.batch_size)
        prov["runtime"] = rt.describe()
        prov["images"] = generated.description
        prov["features_model"] = ident
        report = MetricsReport(results, gen_store.n, ref_store.n, prov, [w for w in warnings if w])
    if pictures:
        from gen_eval.evaluator.report_pictures import metrics_pictures

        report.pictures = metrics_pictures(report, generated, training, upscale=upscale)
    return report


def _condition_options(generated: _Side, reference: _Side) -> dict[str, Any]:
    """Label matrices and names for per-condition FD; one-line errors when a side has no conditions."""
    from gen_eval.evaluator.metrics.per_condition import condition_columns

    if generated.labels is None:
        raise UserError("--metrics per-condition-fd needs conditions for the generated images: a conditional "
                        "--model with --conditions, or --data with labels (a data set, not a bare folder)")
    if reference.labels is None:
        raise UserError("--metrics per-condition-fd needs the reference's labels: give --ref as a labelled data set "
                        "(iCLEVR layout, CelebA, Cartoon Set, MNIST), not a bare folder")
    space = generated.label_space or reference.label_space
    if generated.labels.shape[1] != reference.labels.shape[1]:
        raise UserError(f"the generated conditions have {generated.labels.shape[1]} values per image, the reference's "
                        f"labels {reference.labels.shape[1]}: use one label space (the same objects.json)")
    g, names = condition_columns(generated.labels, space)
    r, _ = condition_columns(reference.labels, space)
    return {"generated_labels": g, "reference_labels": r, "label_names": names}


__all__ = ["MetricsReport", "metrics"]
