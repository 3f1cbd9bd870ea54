"""Reports (JSON and a readable table) and quality gates shared by every metric command."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from gen_eval.errors import GateFailed
from gen_eval.fileio import atomic_write_json

PACKAGES = ("gen-eval", "onnxruntime-gpu", "onnxruntime", "numpy", "scipy", "pillow")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


@dataclass
class Gate:
    """``value`` must be >= ``threshold`` (kind "min") or <= it (kind "max")."""

    flag: str  # e.g. "--min-score"
    threshold: float
    kind: str  # "min" | "max"

    def passed(self, value: float) -> bool:
        return value >= self.threshold if self.kind == "min" else value <= self.threshold

    def verdict(self, metric: str, value: float) -> str:
        if self.passed(value):
            return f"gate passed: {metric} {value:.6g} meets {self.flag} {self.threshold:g}"
        side = "below" if self.kind == "min" else "above"
        return f"gate failed: {metric} {value:.6g} is {side} {self.flag} {self.threshold:g}"


@dataclass
class Report:
    metric: str
    value: float
    model: str | None
    provider: str
    seed: int | None
    n: int
    details: dict[str, Any] = field(default_factory=dict)
    gate: Gate | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "metric": self.metric,
            "value": self.value,
            "model": self.model,
            "provider": self.provider,
            "seed": self.seed,
            "n": self.n,
            **self.details,
        }
        if self.gate is not None:
            out["gate"] = {"flag": self.gate.flag, "threshold": self.gate.threshold,
                           "passed": self.gate.passed(self.value)}
        out["versions"] = package_versions()
        out["command"] = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
        out["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        out["host"] = platform.node() or os.environ.get("HOSTNAME", "")
        return out

    def table(self) -> str:
        rows = [("metric", self.metric), ("value", _fmt(self.value))]
        rows += [(key, _fmt(value)) for key, value in self.details.items() if not isinstance(value, (list, dict))]
        for key, value in self.details.items():
            if isinstance(value, dict):
                rows += [(f"{key} {k}", _fmt(v)) for k, v in value.items()]
        rows += [("n", str(self.n)), ("seed", "-" if self.seed is None else str(self.seed)),
                 ("model", self.model or "-"), ("provider", self.provider)]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def finish(report: Report, report_path: str | os.PathLike | None, force: bool, echo=print) -> None:
    """Print the table, write the JSON report, then enforce the gate (GateFailed -> exit 1)."""
    echo(report.table())
    if report_path is not None:
        atomic_write_json(report_path, report.to_dict(), force=force)
        echo(f"report: {report_path}")
    if report.gate is not None:
        verdict = report.gate.verdict(report.metric, report.value)
        if not report.gate.passed(report.value):
            raise GateFailed(verdict)
        echo(verdict)
