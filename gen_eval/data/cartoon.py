"""Cartoon Set ``cartoon_attr.txt``: categorical heads hair 6 / eye 4 / face 3 / glasses 2.

File layout: a count line, a header line of the 15 value names, then ``filename b0 ... b14`` with one
hot bit per head. Header names may be separated by commas or whitespace. When they are separated by
whitespace and do not split into exactly 15 names (names containing spaces), or repeat within a head,
the value names fall back to generic ``0, 1, ...`` per head (so the label space is
``hair:0 ... glasses:1``); the bits keep their meaning. Data lines may also use commas.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from gen_eval.data.imageset import FileImageSet, check_files_exist, find_image_folder
from gen_eval.data.labels import LabelSpace
from gen_eval.data.textfiles import read_lines
from gen_eval.errors import UserError, param

ATTR_FILE = "cartoon_attr.txt"
HEADS = (("hair", 6), ("eye", 4), ("face", 3), ("glasses", 2))
N_BITS = sum(n for _, n in HEADS)
IMAGE_FOLDERS = ("images", "cartoon", "")
_FILENAME_COLUMNS = {"file", "filename", "file_name", "image", "image_name", "name", "img"}


def is_cartoon(path: Path) -> bool:
    return (path.is_file() and path.name == ATTR_FILE) or (path.is_dir() and (path / ATTR_FILE).is_file())


def _split(line: str) -> list[str]:
    return [t.strip() for t in line.split(",")] if "," in line else line.split()


def cartoon_label_space(header: str) -> LabelSpace:
    """The categorical space whose value names come from the header line (see module docstring)."""
    names = _split(header)
    if len(names) == N_BITS + 1 and names[0].lower() in _FILENAME_COLUMNS:
        names = names[1:]
    if len(names) != N_BITS and "," in header:
        raise ValueError(f"header has {len(names)} comma-separated names, expected {N_BITS}")
    heads: dict[str, list[str]] = {}
    start = 0
    for head, count in HEADS:
        values = names[start : start + count] if len(names) == N_BITS else []
        if len(values) != count or len(set(values)) != count or not all(values):
            values = [str(v) for v in range(count)]
        heads[head] = values
        start += count
    return LabelSpace.categorical(heads)


def read_cartoon_attr(path: str | os.PathLike) -> tuple[list[str], np.ndarray, LabelSpace, list[int]]:
    """File names, one-hot labels [N, 15], label space and the line number of each entry."""
    path = Path(path)
    lines = read_lines(path, ATTR_FILE)
    try:
        declared = int(lines[0].strip())
    except ValueError:
        raise UserError(f"{path}, line 1: expected the number of images, got {lines[0][:40]!r}") from None
    if len(lines) < 2:
        raise UserError(f"{path}, line 2: header line of {N_BITS} attribute names missing")
    try:
        space = cartoon_label_space(lines[1])
    except ValueError as exc:
        raise UserError(f"{path}, line 2: {exc}") from None
    files, rows, line_numbers = [], [], []
    for number, line in enumerate(lines[2:], start=3):
        if not line.strip():
            continue
        parts = _split(line)
        if len(parts) != N_BITS + 1:
            raise UserError(f"{path}, line {number}: expected a file name and {N_BITS} bits, got {len(parts) - 1} bits")
        bits = parts[1:]
        if any(b not in ("0", "1") for b in bits):
            bad = next(b for b in bits if b not in ("0", "1"))
            raise UserError(f"{path}, line {number}: bits must be 0 or 1, got {bad!r}")
        vector = np.array([float(b) for b in bits], dtype=np.float32)
        for head, sl in space.head_slices():
            hot = int(vector[sl].sum())
            if hot != 1:
                raise UserError(
                    f"{path}, line {number}: group {head!r} (bits {sl.start}-{sl.stop - 1}) has {hot} hot bits, needs exactly 1"
                )
        files.append(parts[0])
        rows.append(vector)
        line_numbers.append(number)
    if not files:
        raise UserError(f"{path}: lists no images after the header")
    if declared != len(files):
        raise UserError(f"{path}, line 1: says {declared} images but {len(files)} are listed; fix the count line")
    return files, np.stack(rows), space, line_numbers


def open_cartoon(path: str | os.PathLike, split: str = "train", image_dir: str | os.PathLike | None = None) -> FileImageSet:
    """Cartoon Set images with categorical labels; images next to the file, in ``images/`` or ``cartoon/``."""
    path = Path(path)
    attr = path / ATTR_FILE if path.is_dir() else path
    if split != "train":
        raise UserError(f"{attr}: Cartoon Set has a single split; use {param('split', 'train')}")
    files, labels, space, line_numbers = read_cartoon_attr(attr)
    folder = Path(image_dir) if image_dir is not None else find_image_folder(attr.parent, IMAGE_FOLDERS, files[0], attr)
    paths = check_files_exist(folder, files, attr, line_of=lambda i: line_numbers[i])
    return FileImageSet(paths, format="cartoon", source=str(attr), labels=labels, label_space=space)
