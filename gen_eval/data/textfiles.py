"""Reading label and condition files with one-line errors that name the file (and line)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from gen_eval.errors import UserError
from gen_eval.inputfiles import read_input_bytes

# Label, objects and condition files are read whole: a JSON file larger than this is refused before it
# is read (iCLEVR's train.json is ~1 MB; a condition file is cycled to --n, so a short one serves any N).
MAX_JSON_BYTES = 32 * 2**20
# Other text files (CelebA's list_attr_celeba.txt is 26 MB, Cartoon Set's attribute file smaller).
MAX_TEXT_BYTES = 256 * 2**20


def read_text(path: str | os.PathLike, what: str = "file", limit: int = MAX_TEXT_BYTES) -> str:
    """The UTF-8 text of ``path``; UserError if it is missing, not a regular file (a folder, FIFO or
    device), over ``limit`` bytes, empty or not text."""
    path = Path(path)
    data = read_input_bytes(path, what, limit)
    if not data.strip():
        raise UserError(f"{path}: empty {what}; regenerate or replace it")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UserError(f"{path}, line {line}: not UTF-8 text; is this the right {what}?") from None


def read_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    """Parse a JSON file; bad JSON gives the line and column of the problem.

    Files over :data:`MAX_JSON_BYTES` and JSON nested too deeply for Python's parser are refused.
    """
    text = read_text(path, what, MAX_JSON_BYTES)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}, line {exc.lineno} column {exc.colno}: invalid JSON ({exc.msg})") from None
    except RecursionError:
        raise UserError(f"{path}: {what} is nested too deeply to parse; is this the right file?") from None


def read_lines(path: str | os.PathLike, what: str = "file") -> list[str]:
    """Lines of a text file without line endings (trailing blank lines dropped)."""
    lines = read_text(path, what).splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return lines
