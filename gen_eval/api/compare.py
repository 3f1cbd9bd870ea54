"""`compare`: is a new model confidently worse than its baseline? A paired test on two score reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gen_eval.api.reports import Report
from gen_eval.evaluator.compare import Comparison, compare_reports


def _check_report_argument(report, name: str) -> None:
    import os

    from gen_eval.errors import UserError, param

    if not isinstance(report, (Report, dict, str, os.PathLike)):
        raise UserError(f"{param(name)} must be a Report, a report dict or the path of a report JSON, got "
                        f"{type(report).__name__}")


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
    ``max_drop`` below the baseline's.

    Every generated image of one report has a twin in the other (same seed, same condition row), so a paired
    bootstrap over the shared seeds (and conditions) tests the difference with the noise they share cancelled.

    Args:
        new: the new model's report: a :class:`~gen_eval.api.reports.Report` of :func:`gen_eval.score`, its
            ``to_dict()``, or the path of the JSON `gen-eval score --report` wrote.
        baseline: the baseline's report, in the same forms.
        max_drop: the drop tolerated; a regression is a difference confidently below ``-max_drop``.
        confidence: the coverage of the difference's interval, between 0 and 1.
        allow: provenance fields that may differ (keys of
            :data:`gen_eval.evaluator.compare.MUST_MATCH`, e.g. ``"inputs.classifier.sha256"``).
        over_conditions: also resample the conditions (the test set as a sample of conditions).

    Returns:
        A :class:`~gen_eval.evaluator.compare.Comparison`: ``regression``, the ``difference`` interval,
        ``message()`` and ``markdown()``.

    Raises:
        UserError: when a report is not a classifier-score report, the two are not paired (another judge,
            condition file, preprocessing or seeds), or an argument is of the wrong type (one line).

    Example:
        >>> result = gen_eval.compare("new.json", "baseline.json", max_drop=0.02)  # doctest: +SKIP
        >>> result.regression, result.message()  # doctest: +SKIP
    """
    from gen_eval.api.inputs import check_types
    from gen_eval.errors import UserError, param

    check_types(max_drop=(max_drop, float), confidence=(confidence, float), over_conditions=(over_conditions, bool))
    if isinstance(allow, str) or not all(isinstance(name, str) for name in allow):
        raise UserError(f"{param('allow')} must be a set of provenance field names, e.g. "
                        "{'inputs.classifier.sha256'}")
    _check_report_argument(new, "new")
    _check_report_argument(baseline, "baseline")
    return compare_reports(_as_dict(new), _as_dict(baseline), max_drop=max_drop,
                           confidence=confidence, allow=frozenset(allow), over_conditions=over_conditions)


__all__ = ["compare"]
