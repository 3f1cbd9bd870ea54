"""`metrics`: FID, KID, precision/recall/density/coverage, FID∞ and memorisation from one feature pass.

Each side's features pass once through the features model into a :class:`FeatureStore` (float32 on
disk, memory-mapped, removed afterwards); every requested metric then reads the stores in blocks
(:mod:`gen_eval.evaluator.metrics`). The reference must be images (a folder or data set) for any metric
but ``fid``, which also takes a statistics .npz.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


def metrics(features: str | Path, ref: str | Path, *, names=DEFAULT_METRICS, data: str | Path | None = None,
            model: str | Path | None = None, n: int | None = None, seed: int = 0,
            conditions: str | Path | None = None, split: str = "train", ref_split: str = "train",
            objects=None, latent_dim=None, value_range=None, options: dict[str, Any] | None = None,
            ray_address: str | None = None, device: str = "auto", batch_size: int | None = None, threads: int | None = None,
            progress: bool = False) -> MetricsReport:
    """The metrics ``names`` of ``n`` samples of generator ``model`` (or of ``data``) against ``ref``.
    ``ray_address`` ('local' or a cluster address) computes the generated side's features on Ray actors."""
    from gen_eval.api.fid import _side
    from gen_eval.evaluator.features import feature_model_id, imageset_stats, preprocessing_id, small_sample_warning
    from gen_eval.evaluator.metrics import FeatureStore, compute_metrics
    from gen_eval.evaluator.metrics.registry import canonical_name
    from gen_eval.evaluator.noise import check_seed
    from gen_eval.evaluator.provenance import provenance

    check_seed(seed)
    if isinstance(names, str):
        names = [x.strip() for x in names.split(",") if x.strip()]
    try:
        wanted = [canonical_name(x) for x in names]
    except (KeyError, ValueError) as exc:
        raise UserError(f"--metrics: {exc.args[0]}") from None
    if "is" in wanted:
        raise UserError("--metrics is: the Inception Score needs the Inception's logits, which the exported "
                        "features model does not give yet; leave out 'is'")
    if Path(ref).suffix.lower() == ".npz" and set(wanted) - {"fid"}:
        raise UserError(f"--ref {ref}: statistics hold no features; {', '.join(sorted(set(wanted) - {'fid'}))} need "
                        "reference images (a folder or data set)")
    if Path(ref).suffix.lower() == ".npz":
        raise UserError(f"--ref {ref}: use `gen-eval fid` for a distance to statistics; metrics computes from images")
    rt = inputs.runtime(device, threads)
    model_features = inputs.load_features(features, rt, batch_size)
    log.info("runtime: %s", rt.describe())
    dim = model_features.info.output_size
    if dim is None:
        raise UserError(f"{features}: the features output has no fixed size; export it with a static feature dimension")
    ident = feature_model_id(model_features)
    with FeatureStore(dim, feature_model=ident) as generated, FeatureStore(dim, feature_model=ident) as reference:
        imageset_stats(model_features, inputs.image_set(ref, ref_split),
                       sink=lambda feats, rows: reference.append(feats), progress=progress)
        _, described = _side(model_features, rt, data=data, split=split, model=model, n=n, seed=seed,
                             conditions=conditions, shard=None, batch_size=batch_size, latent_dim=latent_dim,
                             value_range=value_range, objects=objects, progress=progress,
                             sink=lambda feats, rows: generated.append(feats), ray_address=ray_address,
                             features_path=features, device=device, threads=threads)
        try:
            results = compute_metrics(wanted, generated, reference, **(options or {}))
        except TypeError as exc:
            raise UserError(f"metric options: {exc}") from None
        warnings = [small_sample_warning(store.stats, what) for store, what in
                    ((generated, described), (reference, f"reference {ref}"))]
        prov = provenance(inputs={"features": features, "ref": ref, "model": model, "conditions": conditions},
                          provider=rt.provider or "", device_id=rt.device_id,
                          preprocessing={"features": preprocessing_id(model_features),
                                         "generated": "quantised to uint8 like PNGs"},
                          seeds=[seed] if model else None, n=generated.n, batch_size=model_features.batch_size)
        prov["runtime"] = rt.describe()
        prov["images"] = described
        return MetricsReport(results, generated.n, reference.n, prov, [w for w in warnings if w])


__all__ = ["MetricsReport", "metrics"]
