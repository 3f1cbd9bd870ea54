"""Atomic, non-clobbering output files.

Every file gen-eval writes goes through :func:`atomic_path`: the data lands in a hidden temporary
file beside the target and is renamed over it only when complete, so a crash or Ctrl-C never leaves
a half-written file, and an existing file is never replaced unless the caller passed ``force``.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gen_eval.errors import UserError


def ensure_can_write(path: str | os.PathLike, force: bool = False) -> Path:
    """Check that ``path`` may be written: absent (or ``force``), with a writable parent folder."""
    path = Path(path)
    if path.exists() and not force:
        raise UserError(f"{path} already exists; pass --force to overwrite it")
    if path.is_dir():
        raise UserError(f"{path} is a folder; give a file path")
    parent = path.parent if str(path.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise UserError(f"cannot write {path}: {parent} is not a folder; choose another output path")
    if parent.exists() and not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"cannot write {path}: folder {parent} is not writable; choose another output path")
    return path


def make_folder(folder: str | os.PathLike, what: str = "output path") -> Path:
    """``mkdir -p folder`` with a one-line UserError that names a file standing in the way."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
        reason = f"{blocker} is a file, not a folder" if blocker else exc.strerror
        raise UserError(f"cannot create folder {folder}: {reason}; choose another {what}") from None
    return folder


@contextmanager
def atomic_path(path: str | os.PathLike, force: bool = False, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` when the block succeeds.

    The temporary file is hidden (leading dot) and ends in ``suffix`` (default: the target's), so
    libraries that pick a format by extension work.
    """
    path = ensure_can_write(path, force)
    make_folder(path.parent)
    # Named here and created inside the try (not with tempfile.mkstemp), so that a Ctrl-C arriving
    # right after the file is created still removes it: signals land just after system calls.
    tmp = path.parent / f".{path.name}.tmp-{secrets.token_hex(8)}{suffix or path.suffix}"
    taken = False  # the name was another file's (never delete that one)
    try:
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            taken = True
            raise UserError(f"cannot write in {path.parent}: temporary file {tmp.name} exists; run the command again") from None
        except OSError as exc:
            raise UserError(f"cannot write in {path.parent}: {exc.strerror}; choose another output path") from None
        yield tmp
        if not force and path.exists():
            raise UserError(f"{path} appeared while writing; pass --force to overwrite it")
        os.replace(tmp, path)
    finally:
        if not taken and tmp.exists():
            tmp.unlink()


def remove_stale_temp_files(folder: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """Delete the temporary files :func:`atomic_path` left in ``folder`` when a process was killed mid-write.

    Only for folders no other process is writing to (e.g. a run folder being resumed).
    """
    folder = Path(folder)
    found = folder.rglob(".*.tmp-*") if recursive else folder.glob(".*.tmp-*")
    stale = [path for path in found if path.is_file()]
    for path in stale:
        path.unlink()
    return stale


def atomic_write_bytes(path: str | os.PathLike, data: bytes, force: bool = False) -> Path:
    with atomic_path(path, force) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, force: bool = False) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), force)


def atomic_write_json(path: str | os.PathLike, obj: Any, force: bool = False) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n", force)
