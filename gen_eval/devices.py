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


def check_threads(threads: int | None, name: str = "threads") -> None:
    """``threads`` (None: the default) must lie in 1 .. the CPUs this process may use: a larger count only
    makes threads wait for each other, and a hostile one (``--threads 32000``) would start that many."""
    from gen_eval.errors import param

    if threads is None:
        return
    limit = default_threads()
    if not isinstance(threads, int) or isinstance(threads, bool):
        raise UserError(f"{param(name)} must be an integer, got {threads!r}")
    if threads < 1:
        raise UserError(f"{param(name)} must be at least 1, got {threads}")
    if threads > limit:
        raise UserError(f"{param(name, threads)} is more than the {limit} CPUs this process may use; "
                        f"give at most {param(name, limit)} (or leave it out)")


def available_memory() -> int | None:
    """Bytes this process may still allocate, as far as the system says: the smallest of its address-space
    and data limits (``ulimit -v/-d``, less what it already maps), its cgroup v2 memory limit (less
    what the cgroup uses) and the machine's available memory. None when nothing can be read."""
    bounds: list[int] = []
    try:
        import resource

        for limit_name, used in (("RLIMIT_AS", "VmSize"), ("RLIMIT_DATA", "VmData")):
            soft, _ = resource.getrlimit(getattr(resource, limit_name))
            if soft != resource.RLIM_INFINITY:
                bounds.append(soft - _status_bytes(used))
    except (ImportError, OSError, ValueError, AttributeError):
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            bounds.append(int(limit) - int(Path("/sys/fs/cgroup/memory.current").read_text()))
    except (OSError, ValueError):
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                bounds.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    return max(0, min(bounds)) if bounds else None


def _status_bytes(field: str) -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0
