"""The one device grammar (``auto|cpu|cuda[:N]``) and CPU thread policy, shared by trainers and evaluator.

No torch or onnxruntime import here: the trainers must set the OpenMP wait policy before torch is
imported (:func:`prefer_passive_waits`), and the evaluator must not pull torch in.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from gen_eval.errors import UserError

DEVICES = ("auto", "cuda", "cpu")


def parse_device(device: str) -> tuple[str, int]:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` -> (kind, device id); anything else is a UserError."""
    text = str(device).strip().lower()
    kind, _, index = text.partition(":")
    if kind not in DEVICES or (index and (kind != "cuda" or not index.isdigit())):
        raise UserError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")
    return kind, int(index or 0)


def default_threads() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup v2 CPU quota (containers)."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        count = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            count = min(count, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, count)


def prefer_passive_waits() -> bool:
    """Make OpenMP threads sleep instead of spin while they wait (``OMP_WAIT_POLICY=PASSIVE``).

    torch's OpenMP threads spin by default between parallel regions; next to one CPU-bound process on
    a 2-core machine that made a training step 16x slower (benchmarks/RESULTS.md). Takes effect only
    when called before torch is imported, and never overrides a policy the user set. Returns whether
    it set the policy.
    """
    if "OMP_WAIT_POLICY" in os.environ:
        return False
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return True
