"""Files gen-eval writes: the one place for them (reading users' files is :mod:`gen_eval.inputfiles`).

Every file gen-eval writes goes through :func:`atomic_path`: the data lands in a hidden
temporary file beside the target and is renamed over it only when complete, so a crash, Ctrl-C or
SIGTERM never leaves a half-written file, and an existing file is never replaced unless the caller
passed ``force``, and never when it is not a regular file (a device, FIFO, symlink or folder), even
with ``force``. New files get ``0666 & ~umask`` like any other program's; a replaced file keeps its
mode. A full disk is one error line, and the old file stays. Temporary files are named
``.<name>.tmp-<pid>-<random>``; one whose process is gone is removed by the next write to that path.
:func:`check_outputs` refuses outputs that are one of the command's inputs, or one another.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import secrets
import stat
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gen_eval.errors import UserError, param
from gen_eval.inputfiles import file_kind


# -- outputs ---------------------------------------------------------------------------------------------
def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def check_outputs(outputs: Iterable[tuple[str, Any]], inputs: Iterable[tuple[str, Any]] = (),
                  force: bool = False) -> None:
    """Before anything is written: every output may be written (:func:`ensure_can_write`), no output
    is one of the ``inputs`` (a file, or a folder holding it), and no two outputs are one path.

    ``outputs`` and ``inputs`` are (flag, path) pairs; None paths are skipped.
    """
    outs = [(flag, Path(p)) for flag, p in outputs if p is not None]
    ins = [(flag, Path(p)) for flag, p in inputs if p is not None]
    for flag, out in outs:
        for in_flag, source in ins:
            if not source.exists():
                continue
            if _same_file(out, source):
                raise UserError(f"{flag} {out} is the {in_flag} input {source}; writing it would destroy the input, "
                                "choose another output path")
    seen: dict[str, str] = {}
    for flag, out in outs:
        key = os.path.realpath(out)
        if key in seen:
            raise UserError(f"{flag} and {seen[key]} are both {out}; give each output its own path")
        seen[key] = flag
    for _, out in outs:
        ensure_can_write(out, force)


def check_output_folder(flag: str, folder: str | os.PathLike, in_flag: str, source: str | os.PathLike) -> None:
    """An output folder must not be the input ``source`` nor hold it (``train --data D --out D``)."""
    folder, source = Path(folder), Path(source)
    if not folder.exists() or not source.exists():
        return
    real_folder, real_source = os.path.realpath(folder), os.path.realpath(source)
    if real_folder == real_source or real_source.startswith(real_folder.rstrip(os.sep) + os.sep):
        raise UserError(f"{flag} {folder} is or holds the {in_flag} input {source}; the run would write among "
                        f"(and {param('force', True)} would delete) its files: choose another {flag} folder")


def ensure_can_write(path: str | os.PathLike, force: bool = False) -> Path:
    """Check that ``path`` may be written: absent (or a regular file and ``force``), in a writable folder.

    Something that is not a regular file (a device, FIFO, socket, symbolic link, folder) is never
    replaced, with or without ``force``: renaming over it would destroy it (``/dev/null`` as root).
    """
    path = Path(path)
    try:
        info = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        info = None  # (a file in the way is named below)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror}; choose another output path") from None
    if info is not None:
        if stat.S_ISDIR(info.st_mode):
            raise UserError(f"{path} is a folder; give a file path")
        if not stat.S_ISREG(info.st_mode):
            raise UserError(f"{path} is {file_kind(info.st_mode)}, not a regular file; gen-eval never replaces it "
                            f"(not even with {param('force', True)}): choose another output path")
        if not force:
            raise UserError(f"{path} already exists; pass {param('force', True)} to overwrite it")
    parent = path.parent if str(path.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise UserError(f"cannot write {path}: {parent} is not a folder; choose another output path")
    if parent.exists() and not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"cannot write {path}: folder {parent} is not writable; choose another output path")
    return path


def check_append_target(flag: str, path: str | os.PathLike | None,
                        inputs: Iterable[tuple[str, Any]] = ()) -> None:
    """Before anything runs: a file that is appended to (a CI job summary) must be absent or a regular file
    (not a FIFO, device, folder or symbolic link) and none of the command's ``inputs``."""
    if path is None:
        return
    path = Path(path)
    try:
        info = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        info = None
    except OSError as exc:
        raise UserError(f"cannot append to {flag} {path}: {exc.strerror}; choose another path") from None
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise UserError(f"{flag} {path} is {file_kind(info.st_mode)}, not a regular file; gen-eval appends only to "
                        "regular files: choose another path")
    for in_flag, source in inputs:
        if source is not None and info is not None and Path(source).exists() and _same_file(path, Path(source)):
            raise UserError(f"{flag} {path} is the {in_flag} input {source}; appending to it would change the input, "
                            "choose another path")


def append_text(flag: str, path: str | os.PathLike, text: str) -> None:
    """Append ``text`` to a regular file (created when absent), never through a symbolic link or into a FIFO."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as exc:
        raise UserError(f"cannot append to {flag} {path}: {exc.strerror}; choose another path") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UserError(f"{flag} {path} is not a regular file; gen-eval appends only to regular files")
        data = memoryview(text.encode("utf-8"))
        while data:
            data = data[os.write(fd, data):]
    except OSError as exc:
        raise UserError(f"cannot append to {flag} {path}: {exc.strerror}; choose another path") from None
    finally:
        os.close(fd)


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


_TEMP = re.compile(r"^\..+\.tmp-(\d+)-[0-9a-f]{16}")


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_stale_temp_file(path: Path) -> bool:
    """A temporary file of :func:`atomic_path` whose writing process no longer exists."""
    match = _TEMP.match(path.name)
    return bool(match) and not _process_alive(int(match[1]))


def _remove_stale_temps_of(path: Path) -> None:
    try:
        candidates = list(path.parent.glob(f".{glob_escape(path.name)}.tmp-*"))
    except OSError:
        return
    for candidate in candidates:
        if is_stale_temp_file(candidate):
            try:
                if stat.S_ISREG(os.lstat(candidate).st_mode):
                    candidate.unlink()
            except OSError:
                pass


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS)

# Temporary files being written now: what a process that must end at once (the CLI's signal watchdog,
# gen_eval.cli) removes before it exits without unwinding.
_live_temporaries: set[str] = set()


def register_temporary(path: str | os.PathLike) -> None:
    _live_temporaries.add(os.fspath(path))


def forget_temporary(path: str | os.PathLike) -> None:
    _live_temporaries.discard(os.fspath(path))


def remove_live_temporaries() -> None:
    """Delete every temporary file registered and not yet forgotten (safe to call from any thread)."""
    for name in list(_live_temporaries):
        try:
            if stat.S_ISREG(os.lstat(name).st_mode):
                os.unlink(name)
        except OSError:
            pass


@contextmanager
def atomic_path(path: str | os.PathLike, force: bool = False, suffix: str = "",
                clean_stale: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` when the block succeeds.

    The temporary file is hidden (leading dot) and ends in ``suffix`` (default: the target's), so
    libraries that pick a format by extension work. ``clean_stale`` removes this target's temporary
    files left by dead processes (one scan of the folder: writers of many files in one folder, such as
    a sample folder, pass False and clean up once themselves).
    """
    path = ensure_can_write(path, force)
    make_folder(path.parent)
    if clean_stale:
        _remove_stale_temps_of(path)
    # Named here and created inside the try (not with tempfile.mkstemp), so that a Ctrl-C arriving
    # right after the file is created still removes it: signals land just after system calls.
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(8)}{suffix or path.suffix}"
    taken = False  # the name was another file's (never delete that one)
    register_temporary(tmp)
    try:
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # the umask applies
        except FileExistsError:
            taken = True
            forget_temporary(tmp)
            raise UserError(f"cannot write in {path.parent}: temporary file {tmp.name} exists; run the command again") from None
        except OSError as exc:
            raise UserError(f"cannot write in {path.parent}: {exc.strerror}; choose another output path") from None
        try:
            yield tmp
        except OSError as exc:
            if exc.errno in WRITE_ERRORS:
                raise UserError(f"cannot write {path}: {exc.strerror}; free some space or choose another output "
                                "path (nothing was replaced)") from None
            raise
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            info = None
        if info is not None:
            if not force:
                raise UserError(f"{path} appeared while writing; pass {param('force', True)} to overwrite it")
            if not stat.S_ISREG(info.st_mode):
                raise UserError(f"{path} became {file_kind(info.st_mode)} while writing; not replaced")
            os.chmod(tmp, stat.S_IMODE(info.st_mode))  # --force keeps the replaced file's mode
        os.replace(tmp, path)
    finally:
        if not taken and os.path.lexists(tmp):
            tmp.unlink()
        forget_temporary(tmp)


def remove_stale_temp_files(folder: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """Delete the temporary files :func:`atomic_path` left in ``folder`` when a process was killed mid-write.

    Only for folders no other process is writing to (e.g. a run folder being resumed).
    """
    folder = Path(folder)
    found = folder.rglob(".*.tmp-*") if recursive else folder.glob(".*.tmp-*")
    stale = [path for path in found if path.is_file() and not path.is_symlink()]
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


# -- one owner per output folder -------------------------------------------------------------------------
def lock_holder(fd: int) -> int | None:
    """The PID that holds a ``flock`` on the file open as ``fd`` (Linux ``/proc/locks``), or None."""
    info = os.fstat(fd)
    inode = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 4242 fe:00:1234 0 EOF"; waiters are marked "->" and hold nothing
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == inode and fields[4].isdigit():
            return int(fields[4])
    return None


class FolderLock:
    """An exclusive ``flock`` on an output folder, taken before anything in it is read or written and
    held until the command ends, so one process at a time owns the folder.

    The folder is created for the lock when absent (with its missing parents); the folders it created
    are removed again on release when nothing was written into them. The lock is on the folder itself,
    so no lock file is left behind; whoever holds it may replace the files inside (``--force``) but
    never the folder, which keeps the lock valid for as long as its holder runs. A second process is
    refused in one line that names the holder's PID. On a file system without ``flock`` the folder is
    used unlocked.
    """

    def __init__(self, folder: str | os.PathLike, owner: str, param_name: str = "out_dir", *,
                 shared: bool = False) -> None:
        # shared: writers of disjoint parts (the shards of one sample run) may hold it together, never
        # beside an exclusive holder
        self.mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        self.folder = Path(folder)
        self.fd: int | None = None
        self.created: list[Path] = []
        if os.path.lexists(self.folder) and not self.folder.is_dir():
            raise UserError(f"{self.folder} is a file; give a folder ({param(param_name)})")
        missing = [p for p in (self.folder, *self.folder.parents) if not os.path.lexists(p)]
        make_folder(self.folder, param(param_name))
        self.created = [p for p in missing if p.is_dir()]  # innermost first
        try:
            self._lock(owner, param_name)
        except BaseException:
            self.release()
            raise

    def _lock(self, owner: str, param_name: str) -> None:
        for _ in range(5):
            try:
                fd = os.open(self.folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
            except OSError as exc:
                raise UserError(f"cannot open folder {self.folder}: {exc.strerror}; choose another "
                                f"{param(param_name)}") from None
            try:
                fcntl.flock(fd, self.mode | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = lock_holder(fd)
                os.close(fd)
                who = f"process {holder}" if holder is not None else "a process"
                raise UserError(f"{self.folder} is in use by another {owner} ({who}) running now; wait for it to "
                                f"end (or stop {who}), or give another {param(param_name)}") from None
            except OSError:
                self.fd = fd  # a file system without flock: used unlocked
                return
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.folder))
            except OSError:
                same = False
            if same:
                self.fd = fd
                return
            os.close(fd)  # the folder was replaced between open and lock: lock the one there now
        raise UserError(f"{self.folder} keeps being replaced by another process; stop it or give another "
                        f"{param(param_name)}")

    def __enter__(self) -> "FolderLock":
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

    def release(self) -> None:
        for folder in self.created:  # innermost first; a folder with files in it stays
            try:
                folder.rmdir()
            except OSError:
                break
        self.created = []
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __del__(self) -> None:
        self.release()
