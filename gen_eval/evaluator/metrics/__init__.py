"""The metric suite: many metrics from one feature pass, on features kept on disk.

One pass of the features model fills a ``FeatureStore`` per image set (float32 memory-mapped .npy,
running mean/covariance, optional logits); ``compute_metrics(["kid", "prdc", ...], gen, ref, **options)``
then computes any registered metric from the stores, reading rows in blocks. Metrics register with
``@register_metric(name)``; each returns a small dataclass with ``to_dict()``.

Registered: ``fid`` (alias ``fd``: the same Fréchet distance on any extractor), ``cmmd``, ``kid``, ``is``, ``prdc``, ``fid-inf``, ``per-condition-fd``, ``memorisation`` (one
spelling in help, errors, reports and the API; aliases still read: ``isc``, ``fid_inf``, ``intra_fid``,
``fd_per_condition``, ``memorization``, ...). Options go to the metrics whose
signatures name them (``seed`` to KID, IS and FID∞; ``block`` to PRDC and memorisation; ``train`` to
memorisation; ``generated_labels`` / ``reference_labels`` to ``per-condition-fd``; the rest are
prefixed by their metric: ``kid_subsets``, ``is_splits``, ``prdc_k``, ``fid_inf_points``, ...).

No torch here, nor anywhere under gen_eval.evaluator.
"""

from __future__ import annotations

from gen_eval.evaluator.metrics import cmmd as _cmmd  # noqa: F401
from gen_eval.evaluator.metrics import fid as _fid  # noqa: F401  (registers fid, fid_inf)
from gen_eval.evaluator.metrics import isc as _isc  # noqa: F401
from gen_eval.evaluator.metrics import kid as _kid  # noqa: F401
from gen_eval.evaluator.metrics import memorisation as _memorisation  # noqa: F401
from gen_eval.evaluator.metrics import per_condition as _per_condition  # noqa: F401
from gen_eval.evaluator.metrics import prdc as _prdc  # noqa: F401
from gen_eval.evaluator.metrics.cmmd import CMMDResult, cmmd
from gen_eval.evaluator.metrics.fid import FIDInfResult, FIDResult, fid, fid_infinity
from gen_eval.evaluator.metrics.isc import ISResult, inception_score
from gen_eval.evaluator.metrics.kid import KIDResult, kid
from gen_eval.evaluator.metrics.memorisation import MemorisationResult, memorisation
from gen_eval.evaluator.metrics.per_condition import PerConditionResult, fd_per_condition
from gen_eval.evaluator.metrics.prdc import PRDCResult, prdc
from gen_eval.evaluator.metrics.registry import (
    canonical_name,
    get_metric,
    keyword_names,
    list_metrics,
    options_for,
    register_metric,
)
from gen_eval.evaluator.metrics.store import FeatureStore


def compute_metrics(names, generated_store, reference_store, **options) -> dict:
    """``{name: result}`` for each metric in ``names`` (a list or "kid,prdc"), all from the same stores.

    An option no requested metric takes is an error (a typo would otherwise be silently ignored).
    """
    if isinstance(names, str):
        names = [n for n in names.split(",") if n.strip()]
    wanted = []
    for name in names:
        key = canonical_name(name)
        if key not in wanted:
            wanted.append(key)
    taken = set().union(*(keyword_names(get_metric(k)) for k in wanted)) if wanted else set()
    unknown = sorted(set(options) - taken)
    if unknown:
        raise TypeError(f"option(s) {', '.join(unknown)} are taken by none of the metrics {', '.join(wanted)}")
    return {key: get_metric(key)(generated_store, reference_store, **options_for(get_metric(key), options))
            for key in wanted}


__all__ = [
    "CMMDResult", "FIDInfResult", "FIDResult", "cmmd", "FeatureStore", "ISResult", "KIDResult", "MemorisationResult",
    "PRDCResult", "PerConditionResult", "compute_metrics", "fd_per_condition", "fid", "fid_infinity",
    "get_metric", "inception_score", "kid", "list_metrics", "memorisation", "prdc", "register_metric",
]
