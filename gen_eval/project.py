"""Project settings: defaults for a project's judge, objects, features model, reference statistics, device.

A CI job should not repeat the judge and its objects on every line. Settings come from, lowest
precedence first: gen-eval's built-in defaults, a project file, ``GEN_EVAL_*`` environment
variables, and what the caller passes (on the command line: the options).

The project file is the nearest ``gen-eval.toml`` (top-level keys) or ``pyproject.toml`` with a
``[tool.gen-eval]`` table, found upward from the working directory; ``GEN_EVAL_CONFIG`` names one
explicitly. Keys are the long option names (``classifier = "judge.onnx"``); relative paths are
relative to the file that names them. Environment variables are the key in capitals with ``_``
for ``-`` (``GEN_EVAL_CLASSIFIER``, ``GEN_EVAL_BATCH_SIZE``); relative paths there are relative to
the working directory.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gen_eval.data.textfiles import read_text
from gen_eval.errors import UserError, printable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

FILE_NAMES = ("gen-eval.toml", "pyproject.toml")
ENV_PREFIX = "GEN_EVAL_"
CONFIG_ENV = ENV_PREFIX + "CONFIG"
MAX_CONFIG_BYTES = 1 * 2**20

# key -> (type, what it is); only what is a project-wide default, nothing that names one run's output
SETTINGS: dict[str, tuple[type, str]] = {
    "classifier": (Path, "the judge .onnx that scores generators"),
    "objects": (Path, "label names (objects.json or a label-space JSON)"),
    "features": (Path, "the features .onnx for FID and the other distances, or a cached extractor's name"),
    "ref": (Path, "reference statistics (.npz) or images for FID"),
    "cache": (Path, "folder of the named feature models and cached reference statistics"),
    "device": (str, "auto, cpu, cuda or cuda:N"),
    "threads": (int, "CPU threads for onnxruntime"),
    "batch-size": (int, "images per model run"),
    "seed": (int, "first noise seed"),
    "repeats": (int, "noise seeds per score"),
    "quantize": (bool, "round images through uint8 before the classifier"),
    "min-score": (float, "score gate"),
    "max-fid": (float, "FID gate"),
    "max-mse": (float, "MSE gate"),
}


@dataclass(frozen=True)
class Setting:
    key: str
    value: object
    source: str  # the file, the environment variable, or "built-in"


def find_project_file(start: Path, environ: Mapping[str, str] | None = None) -> Path | None:
    """``GEN_EVAL_CONFIG``, else the nearest gen-eval.toml or pyproject.toml with [tool.gen-eval] upward."""
    environ = os.environ if environ is None else environ
    explicit = environ.get(CONFIG_ENV)
    if explicit:
        path = (start / explicit).resolve()
        if not path.is_file():
            raise UserError(f"{CONFIG_ENV}={explicit}: no such file; point it at a gen-eval.toml or unset it")
        return path
    for folder in (start.resolve(), *start.resolve().parents):
        for name in FILE_NAMES:
            candidate = folder / name
            if candidate.is_file() and (name == "gen-eval.toml" or _has_table(candidate)):
                _check_trusted(candidate)
                return candidate
    return None


def _check_trusted(path: Path) -> None:
    """A project file found upward may sit in a folder others write to (``/tmp/gen-eval.toml`` would set the
    judge of every run below ``/tmp``): like git's safe.directory, use only a file owned by this user (or
    root) that not every user may write; name it with ``GEN_EVAL_CONFIG`` to use it anyway."""
    try:
        info = path.stat()
    except OSError:
        return
    owner_ok = info.st_uid in (os.geteuid(), 0)
    if owner_ok and not info.st_mode & 0o002:
        return
    why = f"is owned by user {info.st_uid}, not you" if not owner_ok else "may be written by every user"
    raise UserError(f"{path}: the project file found upward from here {why}; gen-eval takes no settings from it: "
                    f"check it and name it with {CONFIG_ENV}={path} to use it, or remove it")


def _has_table(pyproject: Path) -> bool:
    try:
        with open(pyproject, "rb") as handle:
            head = handle.read(MAX_CONFIG_BYTES)
    except OSError:
        return False
    return b"[tool.gen-eval]" in head


def _parse(path: Path) -> dict:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise UserError(f"{path}: cannot read the project file ({exc.strerror}); check the path") from None
    if not path.is_file():
        raise UserError(f"{path}: not a regular file; give a gen-eval.toml or pyproject.toml")
    if size > MAX_CONFIG_BYTES:
        raise UserError(f"{path}: project file is {size} bytes, over the 1 MiB limit; is this the right file?")
    try:
        data = tomllib.loads(read_text(path, "project file"))
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: invalid TOML ({exc}); fix the file or set {CONFIG_ENV} to another") from None
    if path.name == "pyproject.toml":
        tool = data.get("tool", {})
        if not isinstance(tool, dict):
            raise UserError(f"{path}: 'tool' is {type(tool).__name__}, not a table; [tool.gen-eval] must be a table of "
                            "settings")
        data = tool.get("gen-eval", {})
    if not isinstance(data, dict):
        raise UserError(f"{path}: [tool.gen-eval] must be a table of settings")
    return data


def _convert(key: str, raw: object, source: str, base: Path) -> object:
    kind, _ = SETTINGS[key]
    wanted = {int: "an integer", float: "a number", bool: "true or false", str: "a string", Path: "a path"}[kind]
    if isinstance(raw, str) and "\x00" in raw:
        raise UserError(f"{source}: {key} holds a NUL character; give {wanted} without it")
    if isinstance(raw, str) and kind is not str and kind is not Path:
        text = raw.strip()
        if not text.isascii():  # int() and float() read other scripts' digits ('٣' is 3)
            raise UserError(f"{source}: {key} = {printable(raw)!r} is not {wanted} in ASCII digits; give e.g. "
                            f"{ {int: '4', float: '0.8', bool: 'true'}[kind]}")
        try:
            raw = {"true": True, "1": True, "false": False, "0": False}[text.lower()] if kind is bool else kind(text)
        except (KeyError, ValueError):
            raise UserError(f"{source}: {key} = {raw!r} is not {wanted}; give e.g. "
                            f"{ {int: '4', float: '0.8', bool: 'true'}[kind]}") from None
    if kind is Path:
        if not isinstance(raw, str) or not raw.strip():
            raise UserError(f"{source}: {key} must be a non-empty path string, got {raw!r}")
        if key == "features":
            from gen_eval.weights.named import is_name

            if is_name(raw):
                return raw  # a cached extractor's name, not a path
        return (base / raw).resolve()
    if kind is float and isinstance(raw, int) and not isinstance(raw, bool):
        raw = float(raw)
    if not isinstance(raw, kind) or (kind is int and isinstance(raw, bool)):
        raise UserError(f"{source}: {key} must be {wanted}, got {raw!r}")
    if kind is float and not math.isfinite(raw):
        raise UserError(f"{source}: {key} must be a finite number, got {raw!r}")
    return raw


def project_settings(start: Path | None = None, environ: Mapping[str, str] | None = None, *,
                     file: Path | None = None) -> dict[str, Setting]:
    """The settings the file (``file``, else the one found) and the environment give, environment winning."""
    start = Path.cwd() if start is None else Path(start)
    environ = os.environ if environ is None else environ
    settings: dict[str, Setting] = {}
    path = Path(file).resolve() if file is not None else find_project_file(start, environ)
    if path is not None:
        for key, raw in _parse(path).items():
            if key not in SETTINGS:
                raise UserError(f"{path}: unknown setting {key!r}; valid: {', '.join(SETTINGS)}")
            settings[key] = Setting(key, _convert(key, raw, f"{path}", path.parent), str(path))
    for key in SETTINGS:
        name = ENV_PREFIX + key.upper().replace("-", "_")
        if environ.get(name, "") != "":
            settings[key] = Setting(key, _convert(key, environ[name], name, start), name)
    return settings


__all__ = ["SETTINGS", "Setting", "find_project_file", "project_settings"]
