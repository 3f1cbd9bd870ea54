"""gen-eval's per-user cache folder: named feature models (``weights/``) and reference statistics (``stats/``).

The folder is the ``cache`` project setting (``GEN_EVAL_CACHE`` in the environment, or ``cache = ...`` in
gen-eval.toml / [tool.gen-eval]), else ``$XDG_CACHE_HOME/gen-eval``, else ``~/.cache/gen-eval``: the XDG
base-directory rule that pip, torch.hub and huggingface follow. Files land there only complete
(:func:`gen_eval.fileio.atomic_path`); writers of one entry take a lock file beside it, so two
processes fetching the same name at once do the work once.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from gen_eval.errors import UserError

log = logging.getLogger("gen_eval")
LOCK_WAIT_S = 3600.0  # a conversion takes seconds, a download minutes; an hour means something is stuck


def cache_folder() -> Path:
    """Where cached files go (see the module's docstring); not created here."""
    from gen_eval.project import project_settings

    setting = project_settings().get("cache")
    if setting is not None:
        return Path(setting.value)
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"  # the XDG rule: relative is ignored
    return base / "gen-eval"


@contextlib.contextmanager
def entry_lock(path: Path) -> Iterator[None]:
    """Hold ``.<name>.lock`` beside ``path`` while the block runs; another process waits (saying so)."""
    from filelock import FileLock, Timeout

    from gen_eval.fileio import make_folder

    make_folder(path.parent, "cache folder (set GEN_EVAL_CACHE)")
    lock = FileLock(str(path.parent / f".{path.name}.lock"))
    try:
        lock.acquire(timeout=0.5)
    except Timeout:
        log.info("waiting for another gen-eval process that is writing %s", path)
        try:
            lock.acquire(timeout=LOCK_WAIT_S)
        except Timeout:
            raise UserError(f"another process has held the lock on {path} for an hour; if none is running, "
                            f"delete {lock.lock_file} and try again") from None
    except OSError as exc:
        raise UserError(f"cannot lock {path} in the cache folder ({exc.strerror or exc}); set GEN_EVAL_CACHE "
                        "to a writable folder") from None
    try:
        yield
    finally:
        lock.release()
