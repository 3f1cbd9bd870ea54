"""Paired comparison of two score reports: is the new model confidently worse than the baseline?

Both reports must come from the same judge, condition file, preprocessing and noise seeds (their
provenance says so); then every generated image of one has a twin in the other, and the paired
bootstrap of :func:`gen_eval.evaluator.uncertainty.paired_difference` tests the difference with the
noise they share cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gen_eval.errors import UserError, param, printable
from gen_eval.evaluator.uncertainty import Interval, by_condition_row, paired_difference

# provenance fields that must agree, in words for the message
MUST_MATCH = {
    "inputs.classifier.sha256": "judge (classifier file)",
    "inputs.test.sha256": "condition file",
    "inputs.objects.sha256": "label names file",
    "preprocessing": "preprocessing",
    "seeds": "noise seeds",
}
# of those, the ones every score report records (a label names file is optional)
REQUIRED = {key: words for key, words in MUST_MATCH.items() if key != "inputs.objects.sha256"}


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


def _metric_named(report: dict) -> str:
    metric = report.get("metric")
    if metric is None:
        return "has no metric field"
    if isinstance(metric, float) and not np.isfinite(metric):
        return f"has metric {metric} (a number, not a name)"
    return f"is a {printable(str(metric))[:60]!r} report"


def _whole_numbers(value, what: str, which: str, depth: int) -> np.ndarray:
    """A JSON array of integers (no bools, fractions, NaN or strings) of ``depth`` dimensions, as int64."""
    def bad(why: str) -> UserError:
        return UserError(f"the {which} report's {what!r} {why}; it was not written by `gen-eval score --report` "
                         "(edited by hand?): score the model again")
    if not isinstance(value, list):
        raise bad("is not a list")
    rows = value if depth == 2 else [value]
    if not rows or not all(isinstance(row, list) and row for row in rows):
        raise bad("is empty or not a list of lists" if depth == 2 else "is empty")
    if len({len(row) for row in rows}) != 1:
        raise bad("has rows of different lengths")
    for row in rows:
        for item in row:
            if isinstance(item, bool) or not isinstance(item, int) or abs(item) > 2**31:
                raise bad(f"holds {printable(repr(item))[:40]}, not a whole number")
    array = np.asarray(rows, dtype=np.int64)
    return array if depth == 2 else array[0]


def _checked_scores(report: dict, which: str) -> tuple[np.ndarray, np.ndarray, float]:
    """(hits [seeds, conditions], ks [conditions], value) of a score report, each checked against the others:
    whole numbers, 0 <= hits <= k, k >= 1, one row per seed, and the value the hits give."""
    ks = _whole_numbers(report.get("ks"), "ks", which, 1)
    hits = _whole_numbers(report.get("hits"), "hits", which, 2)
    forged = (f"the {which} report does not hold together ({{}}); it was not written as `gen-eval score --report` "
              "writes it (edited by hand?): score the model again")
    if hits.shape[1] != len(ks):
        raise UserError(forged.format(f"{hits.shape[1]} hits per seed for {len(ks)} conditions"))
    if (ks < 1).any() or ((hits < 0) | (hits > ks)).any():
        raise UserError(forged.format("hits outside 0..k or a condition with k < 1"))
    seeds = _field(report, "seeds")
    if isinstance(seeds, list) and len(seeds) != len(hits):
        raise UserError(forged.format(f"{len(hits)} rows of hits for {len(seeds)} seeds"))
    value = report.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise UserError(forged.format(f"its value is {printable(repr(value))[:40]}, not a finite number"))
    from_hits = float(np.mean(hits.sum(axis=1) / ks.sum()))
    if abs(from_hits - value) > 1e-9:
        raise UserError(forged.format(f"its value {value:.6g} is not the {from_hits:.6g} its per-image hits give"))
    return hits, ks, float(value)


def compare_reports(new: dict, base: dict, *, max_drop: float = 0.0, confidence: float = 0.95,
                    allow: frozenset[str] = frozenset(), over_conditions: bool = True) -> Comparison:
    """Test score(new) - score(base) on the shared seeds and conditions. ``allow``: provenance fields
    (keys of :data:`MUST_MATCH`) that may differ, e.g. to compare two judges on purpose.

    A report is a file anyone can edit: its hits, conditions and value must agree with one another, and
    the provenance fields must be present (two reports without provenance do not match by both lacking it)."""
    for report, which in ((new, "new"), (base, "baseline")):
        if report.get("metric") != "classifier_score":
            raise UserError(f"the {which} report {_metric_named(report)}; compare takes classifier_score "
                            "reports from `gen-eval score --report`")
        if "hits" not in report or "ks" not in report:
            raise UserError(f"the {which} report has no per-image hits (made by an older gen-eval?); score it again")
    checked = {which: _checked_scores(report, which) for report, which in ((new, "new"), (base, "baseline"))}
    for dotted, words in REQUIRED.items():
        for report, which in ((new, "new"), (base, "baseline")):
            if dotted not in allow and _field(report, dotted) is None:
                raise UserError(f"the {which} report records no {words} ({dotted}); a paired comparison needs it: "
                                "score the model again with `gen-eval score --report`")
    for dotted, words in MUST_MATCH.items():
        if dotted in allow:
            continue
        a, b = _field(new, dotted), _field(base, dotted)
        if a != b:
            raise UserError(f"the reports differ in {words} ({dotted}: {a!r} vs {b!r}); a paired comparison needs the "
                            f"same; pass {param('allow', dotted)} to compare anyway")
    if not 0 < confidence < 1 or not np.isfinite(max_drop) or max_drop < 0:
        raise UserError(f"{param('confidence')} must be in (0, 1) and {param('max_drop')} >= 0; got {confidence}, {max_drop}")
    (new_hits, ks, new_value), (base_hits, base_ks, base_value) = checked["new"], checked["baseline"]
    if not np.array_equal(ks, base_ks):
        raise UserError("the reports scored different conditions; a paired comparison needs the same condition file")
    if new_hits.shape != base_hits.shape:
        raise UserError(f"the reports have {new_hits.shape[0]} and {base_hits.shape[0]} seeds; score both with the "
                        f"same {param('seed')} and {param('repeats')}")
    rows = new.get("condition_rows")
    if rows is not None and rows == base.get("condition_rows"):  # --n cycled the rows: resample rows, not images
        new_hits, ks_rows = by_condition_row(new_hits, ks, int(rows))
        base_hits, ks = by_condition_row(base_hits, ks, int(rows))[0], ks_rows
    difference = paired_difference(new_hits, base_hits, ks, confidence=confidence, over_conditions=over_conditions)
    return Comparison(new_value, base_value, difference, max_drop, difference.high < -max_drop)


__all__ = ["Comparison", "MUST_MATCH", "compare_reports"]
