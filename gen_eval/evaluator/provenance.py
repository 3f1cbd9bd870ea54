"""Provenance of a report: what was measured, with what, how, on which machine.

Every input file is named with its SHA-256, so two reports can be compared only when they were made
with the same judge, features model, conditions and preprocessing (:mod:`gen_eval.evaluator.compare`
refuses otherwise and names the field).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 2
PACKAGES = ("gen-eval", "onnxruntime-gpu", "onnxruntime", "numpy", "scipy", "pillow")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions
_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file, streamed (memory flat in its size)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_listing(names: list[str]) -> str:
    """A digest of a data set's file listing (names in order), not of its bytes: cheap for 100k images."""
    digest = hashlib.sha256()
    for name in names:
        digest.update(name.encode("utf-8", "surrogateescape") + b"\n")
    return digest.hexdigest()


def image_set_listing(images) -> str | None:
    """The digest of an image set's files (name and size of each, in order), or None when it has no files."""
    files = getattr(images, "files", None)
    if not files:
        return None
    entries = []
    for path in files:
        try:
            size = os.stat(path).st_size
        except OSError:
            size = -1
        entries.append(f"{Path(path).name}\t{size}")
    return sha256_listing(entries)


def gpu_name(device_id: int = 0) -> str | None:
    """The CUDA device's name from the driver, or None without one."""
    try:
        libcuda = ctypes.CDLL("libcuda.so.1")
        if libcuda.cuInit(0) != 0:
            return None
        device = ctypes.c_int()
        if libcuda.cuDeviceGet(ctypes.byref(device), device_id) != 0:
            return None
        name = ctypes.create_string_buffer(256)
        if libcuda.cuDeviceGetName(name, 256, device) != 0:
            return None
        return name.value.decode(errors="replace")
    except (OSError, AttributeError):
        return None


def provenance(*, inputs: Mapping[str, str | os.PathLike | None], provider: str, device_id: int = 0,
               preprocessing: Mapping[str, Any], seeds: list[int] | None, n: int, batch_size: int | None,
               data_listing: str | None = None) -> dict[str, Any]:
    """The provenance block of a report (``inputs`` maps a role such as "classifier" to its file)."""
    files = {}
    for role, path in inputs.items():
        if path is None:
            continue
        path = Path(path)
        files[role] = {"path": str(path), "sha256": sha256_file(path) if path.is_file() else None}
    out: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "inputs": files,
        "versions": package_versions(),
        "provider": provider,
        "preprocessing": dict(preprocessing),
        "seeds": list(seeds) if seeds is not None else None,
        "n": n,
        "batch_size": batch_size,
    }
    if provider.startswith("CUDA"):
        out["gpu"] = gpu_name(device_id)
    if data_listing is not None:
        out["data_listing_sha256"] = data_listing
    return out


__all__ = ["SCHEMA_VERSION", "gpu_name", "package_versions", "provenance", "sha256_file", "sha256_listing"]
