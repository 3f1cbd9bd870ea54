"""Paired comparison of two score reports: is the new model confidently worse than the baseline?

Both reports must come from the same judge, condition file, preprocessing and noise seeds (their
provenance says so); then every generated image of one has a twin in the other, and the paired
bootstrap of :func:`gen_eval.evaluator.uncertainty.paired_difference` tests the difference with the
noise they share cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gen_eval.errors import UserError, param
from gen_eval.evaluator.uncertainty import Interval, by_condition_row, paired_difference

# provenance fields that must agree, in words for the message
MUST_MATCH = {
    "inputs.classifier.sha256": "judge (classifier file)",
    "inputs.test.sha256": "condition file",
    "inputs.objects.sha256": "label names file",
    "preprocessing": "preprocessing",
    "seeds": "noise seeds",
}


def _field(report: dict, dotted: str):
    value = report.get("provenance", {})
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


@dataclass
class Comparison:
    new_value: float
    base_value: float
    difference: Interval
    max_drop: float
    regression: bool

    def message(self) -> str:
        verdict = "REGRESSION" if self.regression else "no confident regression"
        return (f"{verdict}: new {self.new_value:.4f} vs baseline {self.base_value:.4f}, difference "
                f"{self.difference.describe()}; a regression is a difference confidently below -{self.max_drop:g}")

    def to_dict(self) -> dict:
        return {"new": self.new_value, "baseline": self.base_value, "difference": self.difference.to_dict(),
                "max_drop": self.max_drop, "regression": self.regression}

    def markdown(self) -> str:
        d = self.difference
        return ("| | score |\n|---|---|\n"
                f"| new | {self.new_value:.4f} |\n| baseline | {self.base_value:.4f} |\n"
                f"| difference ({d.confidence:.0%}) | {d.estimate:+.4f} [{d.low:+.4f}, {d.high:+.4f}] |\n"
                f"| verdict | {'**regression**' if self.regression else 'no confident regression'} |\n")


def compare_reports(new: dict, base: dict, *, max_drop: float = 0.0, confidence: float = 0.95,
                    allow: frozenset[str] = frozenset(), over_conditions: bool = True) -> Comparison:
    """Test score(new) - score(base) on the shared seeds and conditions. ``allow``: provenance fields
    (keys of :data:`MUST_MATCH`) that may differ, e.g. to compare two judges on purpose."""
    for report, which in ((new, "new"), (base, "baseline")):
        if report.get("metric") != "classifier_score":
            raise UserError(f"the {which} report is a {report.get('metric')!r} report; compare takes classifier_score "
                            "reports from `gen-eval score --report`")
        if "hits" not in report or "ks" not in report:
            raise UserError(f"the {which} report has no per-image hits (made by an older gen-eval?); score it again")
    for dotted, words in MUST_MATCH.items():
        if dotted in allow:
            continue
        a, b = _field(new, dotted), _field(base, dotted)
        if a != b:
            raise UserError(f"the reports differ in {words} ({dotted}: {a!r} vs {b!r}); a paired comparison needs the "
                            f"same; pass {param('allow', dotted)} to compare anyway")
    if not 0 < confidence < 1 or not np.isfinite(max_drop) or max_drop < 0:
        raise UserError(f"{param('confidence')} must be in (0, 1) and {param('max_drop')} >= 0; got {confidence}, {max_drop}")
    ks = np.asarray(new["ks"])
    if not np.array_equal(ks, np.asarray(base["ks"])):
        raise UserError("the reports scored different conditions; a paired comparison needs the same condition file")
    new_hits, base_hits = np.asarray(new["hits"]), np.asarray(base["hits"])
    if new_hits.shape != base_hits.shape:
        raise UserError(f"the reports have {new_hits.shape[0]} and {base_hits.shape[0]} seeds; score both with the "
                        f"same {param('seed')} and {param('repeats')}")
    rows = new.get("condition_rows")
    if rows is not None and rows == base.get("condition_rows"):  # --n cycled the rows: resample rows, not images
        new_hits, ks_rows = by_condition_row(new_hits, ks, int(rows))
        base_hits, ks = by_condition_row(base_hits, ks, int(rows))[0], ks_rows
    difference = paired_difference(new_hits, base_hits, ks, confidence=confidence, over_conditions=over_conditions)
    return Comparison(float(new["value"]), float(base["value"]), difference, max_drop, difference.high < -max_drop)


__all__ = ["Comparison", "MUST_MATCH", "compare_reports"]
