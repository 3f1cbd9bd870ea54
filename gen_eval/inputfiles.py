"""Reading files users give gen-eval: the one place that opens them.

:func:`read_input_bytes` / :func:`open_input` open an untrusted file without following it into a FIFO
or device (``O_NONBLOCK``, then ``fstat``: only regular files), and refuse files over a size cap before
reading them, so ``/dev/zero`` or a FIFO given as a condition, objects, model or statistics file is one
error line instead of a hang or an exhausted memory. :func:`read_npz` reads arrays without pickles and
without inflating a compression bomb. Writing outputs is :mod:`gen_eval.fileio`'s job.
"""

from __future__ import annotations

import math
import os
import stat
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from gen_eval.devices import available_memory
from gen_eval.errors import UserError

_KIND = {stat.S_IFDIR: "a folder", stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device",
         stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket", stat.S_IFLNK: "a symbolic link"}


def file_kind(mode: int) -> str:
    return _KIND.get(stat.S_IFMT(mode), "not a regular file")


def _size_text(size: int) -> str:
    return f"{size / 2**20:.0f} MiB" if size >= 2**20 else f"{size} bytes"


@contextmanager
def open_input(path: str | os.PathLike, what: str = "file", limit: int | None = None) -> Iterator[BinaryIO]:
    """Open ``path`` for reading, refusing anything but a regular file of at most ``limit`` bytes.

    Missing files, folders, FIFOs, devices and sockets are one-line UserErrors naming ``what``; a FIFO
    is opened with ``O_NONBLOCK`` so that the check itself never blocks.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise UserError(f"{path}: {what} not found; check the path") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, expected a {what}") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read {what} ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = file_kind(info.st_mode)
            raise UserError(f"{path}: is {kind}, not a regular file; give the {what} as a regular file")
        if limit is not None and info.st_size > limit:
            raise UserError(f"{path}: {what} is {_size_text(info.st_size)}, over the {_size_text(limit)} limit; "
                            "is this the right file? Give a smaller one")
        os.set_blocking(fd, True)
        handle = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with handle:
        yield handle


def read_input_bytes(path: str | os.PathLike, what: str = "file", limit: int | None = None) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (see :func:`open_input`)."""
    with open_input(path, what, limit) as handle:
        try:
            data = handle.read() if limit is None else handle.read(limit + 1)
        except OSError as exc:
            raise UserError(f"{path}: cannot read {what} ({exc.strerror})") from None
    if limit is not None and len(data) > limit:  # grew while being read
        raise UserError(f"{path}: {what} is over the {_size_text(limit)} limit; is this the right file?")
    return data


def require_regular_file(path: str | os.PathLike, what: str = "file", limit: int | None = None) -> Path:
    """Check (without reading) that ``path`` is a regular file of at most ``limit`` bytes."""
    with open_input(path, what, limit):
        pass
    return Path(path)




def read_npz(path: str | os.PathLike, what: str, member_limit: int, keys: Iterable[str] | None = None,
             hint: str = "") -> dict[str, Any]:
    """Arrays of an ``.npz`` without pickles and without inflating more than ``member_limit`` bytes each.

    Each member's ``.npy`` header is read first: an object array (a pickle, which would run code) is
    refused, and so is a member whose declared shape needs more than ``member_limit`` bytes or more
    than the member holds (a compression bomb, or a header that lies). ``keys`` limits what is read.
    """
    import zipfile

    import numpy as np

    fmt = np.lib.format
    fix = f"; {hint}" if hint else ""
    wanted = None if keys is None else set(keys)
    arrays: dict[str, Any] = {}
    with open_input(path, what) as handle:
        try:
            archive = zipfile.ZipFile(handle)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError):
            raise UserError(f"{path}: not a readable .npz {what}{fix}") from None
        with archive:
            for info in archive.infolist():
                key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                if wanted is not None and key not in wanted:
                    continue
                if info.file_size > member_limit + 4096:
                    raise UserError(f"{path}: member {key!r} inflates to {_size_text(info.file_size)}, over the "
                                    f"{_size_text(member_limit)} limit for {what}s{fix}")
                try:
                    with archive.open(info) as member:
                        version = fmt.read_magic(member)
                        if version == (1, 0):
                            shape, _, dtype = fmt.read_array_header_1_0(member)
                        elif version == (2, 0):
                            shape, _, dtype = fmt.read_array_header_2_0(member)
                        else:
                            raise ValueError(f"unsupported .npy version {version}")
                    if dtype.hasobject:
                        raise UserError(f"{path}: member {key!r} holds Python objects (a pickle, which could run "
                                        f"code), never loaded: not a {what}{fix}")
                    nbytes = math.prod(shape) * dtype.itemsize
                    if nbytes > member_limit or nbytes > info.file_size:
                        raise UserError(f"{path}: member {key!r} declares {_size_text(nbytes)} of data "
                                        f"(shape {shape}), over the limit or more than it holds{fix}")
                    available = available_memory()
                    if available is not None and nbytes > available:
                        raise UserError(f"{path}: member {key!r} declares {_size_text(nbytes)} of data (shape "
                                        f"{shape}), more than the {_size_text(available)} of memory this process "
                                        f"may still use; free some memory or give a smaller file{fix}")
                    with archive.open(info) as member:
                        try:
                            arrays[key] = fmt.read_array(member, allow_pickle=False)
                        except MemoryError:
                            raise UserError(f"{path}: member {key!r} ({_size_text(nbytes)}, shape {shape}) does not "
                                            f"fit in the memory this process may use; free some memory or give a smaller file"
                                            f"{fix}"
                                            ) from None
                except UserError:
                    raise
                except (OSError, ValueError, EOFError, zipfile.BadZipFile, RuntimeError, zlib.error):
                    raise UserError(f"{path}: not a readable .npz {what} (member {key!r} is damaged){fix}") from None
    return arrays
