"""Read the state dict in a ``torch.save`` file as numpy arrays, without torch and without running its code.

A ``.pth`` file is a pickle, and unpickling executes whatever callables the file names. This reader
unpickles with :class:`_StateDictUnpickler`, whose ``find_class`` answers only the few names a plain
state dict uses (``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2``,
``torch._utils._rebuild_parameter``, the typed storage classes) with stand-ins that build numpy
arrays; any other name is refused, so a hostile file can build dicts, lists and arrays, nothing else.

Both layouts ``torch.save`` has used are read: the zip archive (torch >= 1.6: ``<root>/data.pkl`` and
one ``<root>/data/<key>`` entry per storage) and the legacy stream (a magic number, protocol and
system-information pickles, the object pickle, the list of storage keys, then each storage as an
int64 element count and its little-endian bytes).
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np

from gen_eval.errors import UserError

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
MAX_PICKLE_BYTES = 64 * 2**20  # a state dict's structure; the weights themselves are in the storages

_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16, "CharStorage": np.int8,
    "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class _StorageType:
    """Stands in for ``torch.FloatStorage`` and the like: only its element type matters."""

    def __init__(self, name: str) -> None:
        self.dtype = np.dtype(_STORAGE_DTYPES[name]).newbyteorder("<")


class _Call:
    """A stand-in callable; a new one per name the pickle asks for, so nothing the file does to it
    (the BUILD opcode sets attributes) outlives the file."""

    def __init__(self, function) -> None:
        self._function = function

    def __call__(self, *args):
        return self._function(*args)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None) -> np.ndarray:
    if not isinstance(storage, np.ndarray):
        raise _Refused("a tensor whose storage is not a storage record")
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if len(size) != len(stride) or any(s < 0 for s in size) or any(s < 0 for s in stride) or storage_offset < 0:
        raise _Refused(f"a tensor with shape {size} and strides {stride}")
    if any(s == 0 for s in size):
        return np.zeros(size, dtype=storage.dtype)
    last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= storage.size:
        raise _Refused(f"a tensor of shape {size} reaching past its storage of {storage.size} elements")
    view = np.lib.stride_tricks.as_strided(storage[storage_offset:], shape=size,
                                           strides=tuple(s * storage.itemsize for s in stride), writeable=False)
    return np.array(view, dtype=storage.dtype.newbyteorder("="))


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None) -> np.ndarray:
    if not isinstance(data, np.ndarray):
        raise _Refused("a parameter that is not a tensor")
    return data


class _Refused(Exception):
    """Something a plain state dict does not contain."""


# name -> a factory of its stand-in; the only names a pickle here may use
_ALLOWED = {
    ("collections", "OrderedDict"): lambda: collections.OrderedDict,  # a type: attributes cannot be set on it
    ("torch._utils", "_rebuild_tensor_v2"): lambda: _Call(_rebuild_tensor_v2),
    ("torch._utils", "_rebuild_parameter"): lambda: _Call(_rebuild_parameter),
    **{("torch", name): (lambda name=name: _StorageType(name)) for name in _STORAGE_DTYPES},
}


class _StateDictUnpickler(pickle.Unpickler):
    """Builds only what ``names`` allows (default: a state dict's names); storages come from ``load_storage``."""

    def __init__(self, handle, load_storage, names=None) -> None:
        super().__init__(handle)
        self._load_storage = load_storage
        self._names = _ALLOWED if names is None else names
        self._loaded: dict[str, np.ndarray] = {}

    def find_class(self, module: str, name: str):
        try:
            factory = self._names[(module, name)]
        except KeyError:
            raise _Refused(f"{module}.{name}, which a plain state dict of tensors does not use") from None
        return factory()

    def persistent_load(self, pid):
        if self._load_storage is None or not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and isinstance(pid[2], str) and isinstance(pid[4], int)):
            raise _Refused(f"a persistent object {str(pid)[:60]}")
        storage_type, key, numel = pid[1], pid[2], pid[4]
        if key not in self._loaded:
            self._loaded[key] = self._load_storage(key, storage_type.dtype, numel)
        return self._loaded[key]


def _unpickle(handle, load_storage, source: Path, names=None):
    try:
        return _StateDictUnpickler(handle, load_storage, names).load()
    except _Refused as exc:
        what = "torch.jit.save archive of a module" if names is not None else "file saved with torch.save(model.state_dict())"
        raise UserError(f"{source} holds {exc}; give a {what}") from None
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - the pickle is untrusted: any failure means a damaged file
        raise UserError(f"{source} is not a readable torch.save file ({type(exc).__name__}: {str(exc)[:100]}); "
                        "download it again") from None


def _from_zip(path: Path, archive: zipfile.ZipFile, classes=None):
    names = archive.namelist()
    pickles = [name for name in names if name.endswith("/data.pkl") and name.count("/") == 1]
    if len(pickles) != 1:
        raise UserError(f"{path} is a zip archive without one <root>/data.pkl; it is not a torch.save file")
    root = pickles[0][: -len("data.pkl")]
    info = archive.getinfo(pickles[0])
    if info.file_size > MAX_PICKLE_BYTES:
        raise UserError(f"{path}: its data.pkl is {info.file_size} bytes, not a state dict's; give the weights file")
    if root + "byteorder" in names and archive.read(root + "byteorder").strip() not in (b"little", b""):
        raise UserError(f"{path} was saved on a big-endian machine; re-save it on a little-endian one")

    def load_storage(key: str, dtype: np.dtype, numel: int) -> np.ndarray:
        entry = f"{root}data/{key}"
        try:
            member = archive.getinfo(entry)
        except KeyError:
            raise _Refused(f"a reference to storage {key!r}, which is missing from the archive") from None
        if member.file_size != numel * dtype.itemsize:
            raise _Refused(f"storage {key!r} of {member.file_size} bytes where {numel} elements were promised")
        return np.frombuffer(archive.read(entry), dtype=dtype)

    return _unpickle(io.BytesIO(archive.read(pickles[0])), load_storage, path, classes)


def _from_legacy_stream(path: Path, handle):
    def plain(what: str):
        """One pickle of the stream's header, with no class allowed at all."""
        try:
            return _StateDictUnpickler(handle, None, names={}).load()
        except Exception:  # noqa: BLE001 - the file is untrusted: any failure means not this format
            raise UserError(f"{path} is neither a zip archive nor a legacy torch.save stream ({what}); "
                            "give the weights file as its authors publish it") from None

    if plain("magic number") != _LEGACY_MAGIC or plain("protocol") != _LEGACY_PROTOCOL:
        raise UserError(f"{path} is not a torch.save file; give the weights file as its authors publish it")
    system = plain("system information")
    if not isinstance(system, dict) or not system.get("little_endian", False):
        raise UserError(f"{path} was saved on a big-endian machine or is damaged; re-save it on a little-endian one")
    # The storages' bytes come after the object pickle and the key list, so the object pickle is read
    # twice: once to learn which storages it promises, once more to build the arrays from them.
    start = handle.tell()
    promised: dict[str, tuple[np.dtype, int]] = {}
    size = os.path.getsize(path)

    def promise(key: str, dtype: np.dtype, numel: int) -> np.ndarray:
        if numel < 0 or numel * dtype.itemsize > size:
            raise _Refused(f"storage {key!r} of {numel} elements, more than the file holds")
        promised[key] = (dtype, numel)
        return np.zeros(numel, dtype=dtype)

    _unpickle(handle, promise, path)
    end = handle.tell()
    if end - start > MAX_PICKLE_BYTES:
        raise UserError(f"{path}: its object pickle is {end - start} bytes, not a state dict's; give the weights file")
    keys = plain("storage keys")
    if not isinstance(keys, list) or sorted(map(str, keys)) != sorted(promised):
        raise UserError(f"{path}: its list of storages does not match its tensors; the file is damaged, download it again")
    storages = {}
    for key in keys:
        dtype, numel = promised[key]
        count = handle.read(8)
        data = handle.read(numel * dtype.itemsize)
        if len(count) != 8 or struct.unpack("<q", count)[0] != numel or len(data) != numel * dtype.itemsize:
            raise UserError(f"{path} ends inside its weights (truncated or damaged); download it again")
        storages[key] = np.frombuffer(data, dtype=dtype)
    handle.seek(start)
    return _unpickle(handle, lambda key, dtype, numel: storages[key], path)


def _starts_like_zip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(4) == b"PK\x03\x04"


def load_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The ``{name: array}`` a ``torch.save(state_dict)`` file holds (zip or legacy layout), as numpy arrays.

    A one-line :class:`UserError` for anything else: another pickle, a damaged or truncated file, an
    object that is not a flat mapping of names to tensors.
    """
    from gen_eval.inputfiles import require_regular_file

    path = Path(path)
    require_regular_file(path, "weights file")
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                result = _from_zip(path, archive)
        elif _starts_like_zip(path):
            raise UserError(f"{path} is a zip archive without its directory (truncated or damaged); download it again")
        else:
            with open(path, "rb") as handle:
                result = _from_legacy_stream(path, handle)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise UserError(f"{path} cannot be read as a torch.save file ({exc}); download it again") from None
    if not isinstance(result, dict) or not all(isinstance(k, str) and isinstance(v, np.ndarray)
                                               for k, v in result.items()):
        raise UserError(f"{path} is not a state dict of tensors; give a file saved with torch.save(model.state_dict())")
    return dict(result)


class _ScriptModule:
    """Stands in for a TorchScript module class (``__torch__.*``): keeps the attributes its pickle sets
    (a dict of names to tensors, submodules and plain values) and does nothing else."""

    def __setstate__(self, state) -> None:
        if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
            raise _Refused("a TorchScript module whose state is not a dict of attributes")
        self.attributes = state


class _ScriptNames(dict):
    """A state dict's names, and any ``__torch__`` module class as a fresh :class:`_ScriptModule` type."""

    def __missing__(self, key):
        module, name = key
        if module == "__torch__" or module.startswith("__torch__."):
            return lambda: type(str(name), (_ScriptModule,), {})
        raise KeyError(key)


def _flatten_module(module: _ScriptModule, prefix: str, out: dict[str, np.ndarray], depth: int = 0) -> None:
    if depth > 64:
        raise UserError("the TorchScript archive nests modules more than 64 deep; it is not a model's weights")
    for name, value in getattr(module, "attributes", {}).items():
        if isinstance(value, np.ndarray):
            out[prefix + name] = value
        elif isinstance(value, _ScriptModule):
            _flatten_module(value, f"{prefix}{name}.", out, depth + 1)


def load_script_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The ``{name: array}`` of ``torch.jit.load(path).state_dict()`` (parameters and buffers, by the
    modules' attribute paths), read from the archive's data.pkl without torch and without running the
    archive's code: module classes become attribute holders, every other name is refused as in
    :func:`load_state_dict`. The archive's ``code/`` is never read."""
    from gen_eval.inputfiles import require_regular_file

    path = Path(path)
    require_regular_file(path, "weights file")
    if not zipfile.is_zipfile(path):
        if _starts_like_zip(path):
            raise UserError(f"{path} is a zip archive without its directory (truncated or damaged); download it again")
        raise UserError(f"{path} is not a TorchScript archive (a zip file); give the file as its authors publish it")
    try:
        with zipfile.ZipFile(path) as archive:
            root = _from_zip(path, archive, _ScriptNames(_ALLOWED))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise UserError(f"{path} cannot be read as a TorchScript archive ({exc}); download it again") from None
    if not isinstance(root, _ScriptModule):
        raise UserError(f"{path} does not hold a TorchScript module; give the file as its authors publish it")
    out: dict[str, np.ndarray] = {}
    _flatten_module(root, "", out)
    return out
