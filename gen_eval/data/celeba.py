"""CelebA attributes: the DLCV csv and the official ``list_attr_celeba.txt``.

- DLCV csv (``<split>.csv``): header ``image_name,Bangs,Big_Lips,...``, then one row per image with
  0/1 values (``1.0``/``0.0`` accepted); images in ``<split>/``, ``images/`` or next to the csv.
  A csv with -1/1 values (Kaggle's ``list_attr_celeba.csv``, first column ``image_id``) reads too.
- official ``list_attr_celeba.txt``: a count line, a header of the attribute names, then
  ``file v1 ... vK`` with -1/1, whitespace-separated; images in ``img_align_celeba/`` (or ``images/``,
  or next to the file). ``list_eval_partition.txt`` (``file 0|1|2``), when present, gives the
  splits train / valid / test; without it the only split is train.

``attribute="Smiling"`` keeps one binary attribute (label space ``binary``); without it every
attribute is kept as a multilabel space (an image may then have no attribute set).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from gen_eval.data.imageset import FileImageSet, check_files_exist, find_image_folder
from gen_eval.data.labels import LabelSpace
from gen_eval.data.textfiles import read_lines
from gen_eval.errors import UserError, param

OFFICIAL_FILE = "list_attr_celeba.txt"
PARTITION_FILES = ("list_eval_partition.txt", "list_eval_partition.csv")
PARTITIONS = {"train": "0", "valid": "1", "val": "1", "test": "2"}
CSV_FILE_COLUMNS = ("image_name", "image_id")
OFFICIAL_IMAGE_FOLDERS = ("img_align_celeba", "img_align_celeba/img_align_celeba", "img_align_celeba_png", "images", "")


def _csv_header_ok(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8-sig") as handle:
            first = handle.readline()
    except (OSError, UnicodeDecodeError):
        return False
    return first.split(",")[0].strip() in CSV_FILE_COLUMNS


def _label_file(path: Path, split: str) -> Path | None:
    if path.is_file():
        if path.name == OFFICIAL_FILE or (path.suffix == ".csv" and _csv_header_ok(path)):
            return path
        return None
    if path.is_dir():
        if (path / f"{split}.csv").is_file() and _csv_header_ok(path / f"{split}.csv"):
            return path / f"{split}.csv"
        for name in (OFFICIAL_FILE, "list_attr_celeba.csv"):
            if (path / name).is_file():
                return path / name
    return None


def is_celeba(path: Path, split: str = "train") -> bool:
    return _label_file(path, split) is not None


def _parse_value(token: str, minus_one_encoding: bool) -> float | None:
    allowed = {"-1": 0.0, "1": 1.0} if minus_one_encoding else {"0": 0.0, "1": 1.0, "0.0": 0.0, "1.0": 1.0}
    return allowed.get(token.strip())


def read_celeba_attributes(path: str | os.PathLike) -> tuple[list[str], list[str], np.ndarray, list[int]]:
    """File names, attribute names, 0/1 matrix [N, K] and each entry's line number, validated."""
    path = Path(path)
    lines = read_lines(path, "CelebA attribute file")
    is_csv = path.suffix == ".csv"
    if is_csv:
        header = [t.strip() for t in lines[0].split(",")]
        if header[0] not in CSV_FILE_COLUMNS:
            raise UserError(f"{path}, line 1: header must start with image_name, got {header[0]!r}")
        attributes, first_data = header[1:], 2
    else:
        try:
            declared = int(lines[0].strip())
        except ValueError:
            raise UserError(f"{path}, line 1: expected the number of images, got {lines[0][:40]!r}") from None
        if len(lines) < 2:
            raise UserError(f"{path}, line 2: header line of attribute names missing")
        attributes, first_data = lines[1].split(), 3
    if not attributes or any(not a for a in attributes):
        raise UserError(f"{path}, line {first_data - 1}: empty attribute name in the header")
    if len(set(attributes)) != len(attributes):
        dup = next(a for a in attributes if attributes.count(a) > 1)
        raise UserError(f"{path}, line {first_data - 1}: attribute {dup!r} appears twice in the header")
    body = lines[first_data - 1 :]
    minus_one = not is_csv or any(",-1" in line or line.startswith("-1") for line in body[:200])
    expected = "-1 or 1" if minus_one else "0 or 1"
    files, rows, line_numbers = [], [], []
    for number, line in enumerate(body, start=first_data):
        if not line.strip():
            continue
        parts = [t.strip() for t in line.split(",")] if is_csv else line.split()
        if len(parts) != len(attributes) + 1:
            raise UserError(
                f"{path}, line {number}: expected a file name and {len(attributes)} values, got {len(parts) - 1} values"
            )
        row = []
        for name, token in zip(attributes, parts[1:]):
            value = _parse_value(token, minus_one)
            if value is None:
                raise UserError(f"{path}, line {number}: {name} is {token!r}, expected {expected}")
            row.append(value)
        files.append(parts[0])
        rows.append(row)
        line_numbers.append(number)
    if not files:
        raise UserError(f"{path}: lists no images after the header")
    if not is_csv and declared != len(files):
        raise UserError(f"{path}, line 1: says {declared} images but {len(files)} are listed; fix the count line")
    return files, attributes, np.asarray(rows, dtype=np.float32), line_numbers


def _read_partition(folder: Path) -> tuple[Path, dict[str, str]] | None:
    for name in PARTITION_FILES:
        path = folder / name
        if path.is_file():
            partition = {}
            for number, line in enumerate(read_lines(path, "partition file"), start=1):
                parts = [t.strip() for t in line.split(",")] if "," in line else line.split()
                if not parts or (number == 1 and parts[0] in CSV_FILE_COLUMNS):
                    continue
                if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                    raise UserError(f"{path}, line {number}: expected 'file 0|1|2', got {line[:60]!r}")
                partition[parts[0]] = parts[1]
            return path, partition
    return None


def open_celeba(
    path: str | os.PathLike,
    split: str = "train",
    attribute: str | None = None,
    image_dir: str | os.PathLike | None = None,
) -> FileImageSet:
    """CelebA images with attribute labels (binary with ``attribute``, else multilabel)."""
    path = Path(path)
    label_file = _label_file(path, split)
    if label_file is None:
        raise UserError(f"{path}: no CelebA attribute file for split {split!r} ({split}.csv or {OFFICIAL_FILE})")
    files, attributes, values, line_numbers = read_celeba_attributes(label_file)
    keep = np.arange(len(files))
    dlcv_split_file = label_file.suffix == ".csv" and label_file.stem == split
    if not dlcv_split_file:
        partition = _read_partition(label_file.parent)
        if partition is not None:
            part_file, table = partition
            if split not in PARTITIONS:
                raise UserError(f"{part_file}: unknown split {split!r}; choose train, valid or test")
            missing = [f for f in files if f not in table]
            if missing:
                raise UserError(f"{part_file}: image {missing[0]!r} of {label_file} has no partition entry")
            keep = np.array([i for i, f in enumerate(files) if table[f] == PARTITIONS[split]], dtype=np.int64)
            if not len(keep):
                raise UserError(f"{part_file}: split {split!r} is empty")
        elif split != "train":
            raise UserError(f"{label_file}: split {split!r} needs a list_eval_partition.txt next to it; use {param('split', 'train')}")
    if attribute is not None:
        if attribute not in attributes:
            raise UserError(
                f"{label_file}: no attribute {attribute!r}; it has {', '.join(attributes[:6])}{', ...' if len(attributes) > 6 else ''}"
            )
        labels, space = values[:, [attributes.index(attribute)]], LabelSpace.binary(attribute)
    else:
        labels, space = values, LabelSpace.multilabel(attributes)
    names = [files[i] for i in keep]
    if image_dir is not None:
        folder = Path(image_dir)
    elif label_file.suffix == ".csv":
        folder = find_image_folder(label_file.parent, (label_file.stem, "images", ""), names[0], label_file)
    else:
        folder = find_image_folder(label_file.parent, OFFICIAL_IMAGE_FOLDERS, names[0], label_file)
    paths = check_files_exist(folder, names, label_file, line_of=lambda i: line_numbers[keep[i]])
    return FileImageSet(paths, format="celeba", source=str(label_file), labels=labels[keep], label_space=space)
