"""`metrics`: FID, KID, precision/recall/density/coverage, FID∞ and memorisation from one feature pass.

Each side's features pass once through the features model into a :class:`FeatureStore` (float32 on
disk, memory-mapped, removed afterwards); every requested metric then reads the stores in blocks
(:mod:`gen_eval.evaluator.metrics`). The reference must be images (a folder or data set) for any metric
but ``fid``, which also takes a statistics .npz.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gen_eval.api import inputs
from gen_eval.errors import UserError, param

log = logging.getLogger("gen_eval")
DEFAULT_METRICS = ("fid", "kid", "prdc")


@dataclass
class MetricsReport:
    results: dict[str, Any]              # metric name -> its result (to_dict())
    n_generated: int
    n_reference: int
    provenance: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

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
        rows += [("n", str(self.n_generated)), ("reference n", str(self.n_reference)),
                 ("provider", self.provenance.get("provider", ""))]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def metrics(features: str | Path | None, ref: str | Path, *, names=DEFAULT_METRICS, data: str | Path | None = None,
            model: str | Path | None = None, n: int | None = None, seed: int = 0,
            conditions: str | Path | None = None, split: str = "train", ref_split: str = "train",
            objects=None, latent_dim=None, value_range=None, options: dict[str, Any] | None = None,
            gen_stats=None, chunk_size: int | None = None, ray_address: str | None = None, device: str = "auto", batch_size: int | None = None,
            threads: int | None = None, progress: bool = False) -> MetricsReport:
    """The metrics ``names`` of ``n`` samples of generator ``model`` (or of ``data``) against ``ref``.

    Either side may also be files that `gen-eval stats --save-features` wrote: ``gen_stats`` (the shard
    statistics files, each with its ``.features.npy`` beside it) for the generated side, and ``ref`` as
    such a statistics file. ``ray_address`` ('local' or a cluster address) computes the generated side's
    features on Ray actors. The results are those of one process computing everything, bit for bit."""
    from gen_eval.api.fid import _side
    from gen_eval.evaluator.features import feature_model_id, imageset_stats, preprocessing_id, small_sample_warning
    from gen_eval.evaluator.metrics import FeatureStore, compute_metrics
    from gen_eval.evaluator.metrics.registry import canonical_name
    from gen_eval.evaluator.noise import check_seed
    from gen_eval.evaluator.provenance import provenance
    from gen_eval.evaluator.exact import DEFAULT_CHUNK_SIZE
    from gen_eval.scale.feature_files import features_path, open_feature_shards

    chunk_size = DEFAULT_CHUNK_SIZE if chunk_size is None else chunk_size

    check_seed(seed)
    if isinstance(names, str):
        names = [x.strip() for x in names.split(",") if x.strip()]
    try:
        wanted = [canonical_name(x) for x in names]
    except (KeyError, ValueError) as exc:
        raise UserError(f"{param('names')}: {exc.args[0]}") from None
    if "is" in wanted:
        raise UserError(f"{param('names', 'is')}: the Inception Score needs the Inception's logits, which the exported "
                        "features model does not give yet; leave out 'is'")
    ref_is_file = Path(ref).suffix.lower() == ".npz"
    if ref_is_file and not features_path(ref).is_file():
        if set(wanted) - {"fid"}:
            raise UserError(f"{param('ref', ref)}: statistics hold no features; {', '.join(sorted(set(wanted) - {'fid'}))} "
                            f"need reference images or {features_path(ref).name} beside it "
                            "(`gen-eval stats --save-features`)")
        raise UserError(f"{param('ref', ref)}: use `gen-eval fid` for a distance to statistics; metrics computes from images")
    gen_files = list(gen_stats or [])
    if gen_files and (data is not None or model is not None):
        raise UserError("give the generated side once: shard statistics files, or images or a generator")
    rt = model_features = None
    if not (gen_files and ref_is_file):
        if features is None:
            raise UserError("give a features model (only feature files on both sides need none)")
        rt = inputs.runtime(device, threads)
        model_features = inputs.load_features(features, rt, batch_size)
        log.info("runtime: %s", rt.describe())
        dim = model_features.info.output_size
        if dim is None:
            raise UserError(f"{features}: the features output has no fixed size; export it with a static feature "
                            "dimension")
        ident = feature_model_id(model_features)
    with contextlib.ExitStack() as stack:
        if ref_is_file:
            reference, ref_stats = open_feature_shards([ref])
        else:
            reference = FeatureStore(dim, feature_model=ident)
            ref_stats = imageset_stats(model_features, inputs.image_set(ref, ref_split), chunk_size=chunk_size,
                                       sink=lambda feats, rows: reference.append(feats), progress=progress)
        stack.callback(reference.close)
        if gen_files:
            generated, gen_stats_merged = open_feature_shards(gen_files)
            described = f"{len(gen_files)} feature file(s) of {generated.n} images"
        else:
            generated = FeatureStore(dim, feature_model=ident)
            gen_stats_merged, described = _side(model_features, rt, data=data, split=split, model=model, n=n,
                                                seed=seed, conditions=conditions, shard=None, batch_size=batch_size,
                                                latent_dim=latent_dim, value_range=value_range, objects=objects,
                                                progress=progress, sink=lambda feats, rows: generated.append(feats),
                                                ray_address=ray_address, features_path=features, device=device,
                                                threads=threads, chunk_size=chunk_size)
        stack.callback(generated.close)
        if gen_stats_merged.feature_model and ref_stats.feature_model and \
                gen_stats_merged.feature_model != ref_stats.feature_model:
            raise UserError(f"the two sides were computed with different features models "
                            f"({gen_stats_merged.feature_model} vs {ref_stats.feature_model}); use one")
        # the exact chunked sums: FID here equals `gen-eval fid` and the sharded runs bit for bit
        generated.stats, reference.stats = gen_stats_merged, ref_stats
        try:
            results = compute_metrics(wanted, generated, reference, **(options or {}))
        except TypeError as exc:
            raise UserError(f"metric options: {exc}") from None
        warnings = [small_sample_warning(store.stats, what) for store, what in
                    ((generated, described), (reference, f"reference {ref}"))]
        prov = provenance(inputs={"features": features, "ref": ref, "model": model, "conditions": conditions},
                          provider=(rt.provider or "") if rt else "", device_id=rt.device_id if rt else 0,
                          preprocessing={"features": preprocessing_id(model_features) if model_features
                                         else gen_stats_merged.preprocessing,
                                         "generated": "quantised to uint8 like PNGs"},
                          seeds=[seed] if model else None, n=generated.n,
                          batch_size=model_features.batch_size if model_features else None)
        if rt is not None:
            prov["runtime"] = rt.describe()
        prov["images"] = described
        return MetricsReport(results, generated.n, reference.n, prov, [w for w in warnings if w])


__all__ = ["MetricsReport", "metrics"]
