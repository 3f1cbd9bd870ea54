"""`compare`: is a new model confidently worse than its baseline? A paired test on two score reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gen_eval.api.reports import Report
from gen_eval.evaluator.compare import Comparison, compare_reports


def _as_dict(report: Report | dict | str | Path) -> dict[str, Any]:
    if isinstance(report, Report):
        return report.to_dict()
    if isinstance(report, dict):
        return report
    from gen_eval.data.textfiles import read_json

    data = read_json(report, "report")
    if not isinstance(data, dict):
        from gen_eval.errors import UserError

        raise UserError(f"{report}: not a gen-eval report (a JSON object); give the file `gen-eval score --report` wrote")
    return data


def compare(new: Report | dict | str | Path, baseline: Report | dict | str | Path, *, max_drop: float = 0.0,
            confidence: float = 0.95, allow: frozenset[str] | set[str] = frozenset(),
            over_conditions: bool = True) -> Comparison:
    """Paired comparison of two classifier-score reports made with the same judge, conditions,
    preprocessing and seeds; ``regression`` is True when the new score is confidently more than
    ``max_drop`` below the baseline's."""
    return compare_reports(_as_dict(new), _as_dict(baseline), max_drop=max_drop, confidence=confidence,
                           allow=frozenset(allow), over_conditions=over_conditions)


__all__ = ["compare"]
