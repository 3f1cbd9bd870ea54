"""The iCLEVR layout: ``objects.json`` + ``<split>.json`` ({file: [names]}) + an image folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from gen_eval.data.conditions import encode_names, read_objects
from gen_eval.data.imageset import FileImageSet, check_files_exist, find_image_folder
from gen_eval.data.textfiles import read_json
from gen_eval.errors import UserError, param

IMAGE_FOLDERS = ("images", "iclevr", "")  # ours, the iCLEVR zip's, or next to the json files


def is_iclevr(path: Path) -> bool:
    return path.is_dir() and (path / "objects.json").is_file()


def open_iclevr(path: str | os.PathLike, split: str = "train", image_dir: str | os.PathLike | None = None) -> FileImageSet:
    """Open ``path/<split>.json`` with labels from ``path/objects.json``.

    Images are looked up in ``image_dir`` if given, else in ``images/``, ``iclevr/`` or ``path``.
    """
    root = Path(path)
    space = read_objects(root / "objects.json")
    label_file = root / f"{split}.json"
    if not label_file.is_file():
        have = sorted(p.stem for p in root.glob("*.json") if p.stem != "objects")
        raise UserError(f"{label_file}: split {split!r} not found; this data set has splits {', '.join(have) or 'none'}")
    entries = read_json(label_file, "label file")
    if isinstance(entries, list):
        raise UserError(
            f"{label_file}: is a list of conditions (test.json style), not {{file: [names]}}; "
            f"use it with {param('test')}, or pick a labelled split such as train"
        )
    if not isinstance(entries, dict):
        raise UserError(f'{label_file}: expected a JSON object {{"image.png": ["red cube", ...], ...}}')
    if not entries:
        raise UserError(f"{label_file}: lists no images")
    names = list(entries)
    labels = np.stack([encode_names(entries[name], space, f"{label_file}, entry {name!r}") for name in names])
    folder = Path(image_dir) if image_dir is not None else find_image_folder(root, IMAGE_FOLDERS, names[0], label_file)
    files = check_files_exist(folder, names, label_file)
    return FileImageSet(files, format="iclevr", source=str(label_file), labels=labels, label_space=space)
