"""What a job returns: its value, interval, settings and provenance, and the JSON report they make.

Every report has the same spine (``metric``, ``value``, ``interval``, ``n``, ``settings``,
``provenance``); metric-specific numbers go under ``details`` (shown in the table) and the per-seed,
per-condition arrays a paired comparison needs under ``raw`` (kept out of the table).
"""

from __future__ import annotations

import math
import os
import platform
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gen_eval.evaluator.uncertainty import Decision, Interval, decide_maximum, decide_minimum, make_decision

REPORT_SCHEMA = 2


@dataclass
class Report:
    """What a job returns: one metric's value, its interval, N, settings and provenance.

    Attributes:
        metric: the metric's name (``classifier_score``, ``fid``, ``reconstruction_mse``, ...).
        value: its value.
        n: the number of images (or conditions) it rests on.
        model: the generator it judged, when there is one.
        seed: the first noise seed, when images were generated.
        interval: the :class:`Interval` (its ``method`` says how it was made and what it covers).
        details: metric-specific numbers, shown in :meth:`table`.
        settings: the arguments that shaped the number.
        provenance: SHA-256 of the inputs, versions, provider, device, preprocessing.
        breakdown: the per-condition view of a score.
        raw: per-seed, per-condition arrays a paired comparison needs (kept out of the table).
        warnings: what a reader should know before trusting the value.
        higher_is_better: True for scores, False for distances (which way a gate points).

    Example:
        >>> report = Report("classifier_score", 0.75, 32, interval=Interval(0.75, 0.7, 0.8, 0.95, "t over 5 seeds"))
        >>> report.gate(0.9).passed, report.gate(0.9).threshold
        (False, 0.9)
    """
    metric: str
    value: float
    n: int
    model: str | None = None
    seed: int | None = None
    interval: Interval | None = None
    details: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    breakdown: dict[str, Any] | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    higher_is_better: bool = True
    images: Any = field(default=None, repr=False)  # e.g. the first seed's images for a grid (uint8 NCHW)
    image_labels: Any = field(default=None, repr=False)  # their condition vectors (captions), when conditional
    label_space: Any = field(default=None, repr=False)
    stats: Any = field(default=None, repr=False)   # e.g. the generated side's feature statistics (to save)

    @property
    def provider(self) -> str:
        return self.provenance.get("provider", "")

    def gate(self, threshold: float, *, strict: bool = False, use_interval: bool = True) -> Decision:
        """Pass/fail against ``threshold`` (a minimum for scores, a maximum for distances): on the interval
        when ``use_interval`` and there is one, else on the value.

        Args:
            threshold: the lowest acceptable score, or the highest acceptable distance.
            strict: with the interval, pass only when confidently on the right side.
            use_interval: decide on the interval (lenient: fail only when confidently wrong).

        Returns:
            A :class:`Decision` that carries ``threshold`` and names the rule.
        """
        interval = self.interval
        usable = use_interval and interval is not None and math.isfinite(interval.low)
        if not usable:
            passed = self.value >= threshold if self.higher_is_better else self.value <= threshold
            shown = f"{self.value:.6g}"
            if interval is not None and math.isfinite(interval.low):
                shown += f" ({interval.confidence:.0%} interval [{interval.low:.6g}, {interval.high:.6g}])"
            rule = "on the value" if use_interval is False or interval is None else "on the value, no interval"
            return make_decision(passed, rule, shown, threshold, minimum=self.higher_is_better)
        if self.higher_is_better:
            return decide_minimum(interval, threshold, strict=strict)
        return decide_maximum(interval, self.value, threshold, strict=strict)

    def to_dict(self) -> dict[str, Any]:
        out = {"schema": REPORT_SCHEMA, "metric": self.metric, "value": self.value,
               "interval": self.interval.to_dict() if self.interval else None, "model": self.model,
               "provider": self.provider, "seed": self.seed, "n": self.n, **self.details,
               "settings": self.settings, "provenance": self.provenance}
        if self.breakdown is not None:
            out["breakdown"] = self.breakdown
        out.update(self.raw)
        if self.warnings:
            out["warnings"] = self.warnings
        out["versions"] = self.provenance.get("versions", {})
        out["command"] = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
        out["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        out["host"] = platform.node() or os.environ.get("HOSTNAME", "")
        return out

    def rows(self) -> list[tuple[str, str]]:
        rows = [("metric", self.metric), ("value", _fmt(self.value))]
        if self.interval is not None and math.isfinite(self.interval.low):
            rows.append((f"{self.interval.confidence:.0%} interval",
                         f"[{_fmt(self.interval.low)}, {_fmt(self.interval.high)}] ({self.interval.method})"))
        elif self.interval is not None:
            rows.append(("interval", f"none: {self.interval.method}"))
        rows += [(key, _fmt(value)) for key, value in self.details.items() if not isinstance(value, (list, dict))]
        for key, value in self.details.items():
            if isinstance(value, dict):
                rows += [(f"{key} {k}", _fmt(v)) for k, v in value.items() if not isinstance(v, (list, dict))]
        rows += [("n", str(self.n)), ("seed", "-" if self.seed is None else str(self.seed)),
                 ("model", self.model or "-"), ("provider", self.provider)]
        return rows

    def table(self) -> str:
        rows = self.rows()
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)

    def write_html(self, path: str | Path, *, force: bool = False, upscale: int = 1) -> Path:
        """One self-contained HTML file: warnings first, the value and its interval, a score's breakdown and
        the images it kept (``score(keep_images=...)``), captioned, and the provenance."""
        from gen_eval.evaluator.html_report import write_report_html
        from gen_eval.evaluator.report_pictures import score_pictures

        return write_report_html(self, path, score_pictures(self, upscale=upscale), force=force)

    def straddles(self, threshold: float) -> bool:
        """Whether the interval contains ``threshold`` (a point-estimate verdict may then flip with the noise)."""
        i = self.interval
        return i is not None and math.isfinite(i.low) and i.low <= threshold <= i.high

    def verdict(self, decision: Decision, flag: str, threshold: float) -> str:
        """One line: passed or missed, the metric, its value (with its interval), the threshold and the rule."""
        return gate_line(self.metric, decision, flag, threshold)

    def markdown(self, decision: Decision | None = None) -> str:
        """A Markdown table fit for a CI job summary (e.g. GitHub's $GITHUB_STEP_SUMMARY)."""
        lines = [f"### gen-eval {self.metric}", "", "| | |", "|---|---|"]
        lines += [f"| {k} | {str(v).replace('|', '/')} |" for k, v in self.rows()]
        if decision is not None:
            lines += ["", gate_markdown(self.metric, decision)]
        for warning in self.warnings:
            lines += ["", f"> warning: {warning}"]
        return "\n".join(lines) + "\n"


def gate_line(metric: str, decision: Decision, flag: str | None, threshold: float) -> str:
    """``gate missed: fid 31.2 [...] is above --max-fid 30 (rule)``: the metric, value, threshold, rule."""
    side = ("meets" if decision.passed else "is below") if decision.minimum else \
        ("meets" if decision.passed else "is above")
    named = f"{flag} {threshold:g}" if flag else f"{threshold:g}"
    return (f"gate {'passed' if decision.passed else 'missed'}: {metric} {decision.shown} {side} {named} "
            f"({decision.rule})")


def gate_markdown(metric: str, decision: Decision) -> str:
    """The gate's verdict as one Markdown line: metric, value, threshold and rule."""
    return (f"**gate {'passed' if decision.passed else 'missed'}**: {metric} {decision.shown} "
            f"{decision.comparison} ({decision.rule})")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


__all__ = ["REPORT_SCHEMA", "Report", "gate_line", "gate_markdown"]
