"""What a person reads beside sampled images: a captioned grid PNG and a ``labels.json`` in a PNG folder.

``labels.json`` maps each PNG of the run to the names of its condition, in iCLEVR's ``train.json``
layout (``{"000000.png": ["red cube", "blue sphere"], ...}``), so a sample folder is matched to its
conditions by file name, not by position in test.json. It is written entry by entry (memory flat in
``n``) to a temporary file and renamed; every shard writes the same whole file (the conditions of
sample i are row i mod len(conditions), whatever the shard).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from gen_eval.data.images import save_png
from gen_eval.evaluator.pictures import captioned_grid, condition_captions, condition_names
from gen_eval.fileio import atomic_path

LABELS_FILE = "labels.json"
CAPTIONS_KEY = "gen_eval.captions"  # the PNG text chunk of a grid's captions


def write_labels_json(folder: str | os.PathLike, n: int, conditions: np.ndarray, label_space) -> Path:
    from gen_eval.evaluator.sampling import png_name

    path = Path(folder) / LABELS_FILE
    with atomic_path(path, force=True) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        handle.write("{")
        for i in range(n):
            names = condition_names(conditions[i % len(conditions)], label_space)
            handle.write(("," if i else "") + f"\n  {json.dumps(png_name(i, n))}: {json.dumps(names)}")
        handle.write("\n}\n")
    return path


def write_sample_grid(path: str | os.PathLike, images_u8: np.ndarray, indices, conditions: np.ndarray | None,
                      label_space, *, columns: int = 8, upscale: int = 1, resample: str = "nearest",
                      force: bool = False) -> Path:
    """uint8 NCHW samples as one grid PNG, each captioned with its index and condition names. The captions
    are also in the PNG's text chunk ``gen_eval.captions`` (JSON, cells in reading order; see
    :func:`read_grid_captions`), so a program, a screen reader or a search reads what the picture says."""
    captions = condition_captions(conditions, label_space, indices)
    grid = captioned_grid(images_u8, captions, columns=columns, upscale=upscale, resample=resample)
    cols = min(columns, len(captions))
    text = {CAPTIONS_KEY: json.dumps({"columns": cols, "indices": [int(i) for i in indices], "captions": captions},
                                     ensure_ascii=False),
            "Description": f"{len(captions)} samples, {cols} per row, each captioned '#index: condition'"}
    return save_png(np.asarray(grid), path, force=force, text=text)


def read_grid_captions(path: str | os.PathLike) -> dict:
    """The captions a grid PNG of :func:`write_sample_grid` carries: ``{"columns": int, "indices": [...],
    "captions": [...]}``, cells in reading order (row by row).

    Raises:
        UserError: when the file is not a PNG or carries no gen-eval captions.

    Example:
        >>> read_grid_captions("grid.png")["captions"][0]  # doctest: +SKIP
        '#0: gray cylinder, green cylinder, brown cylinder'
    """
    from PIL import Image, UnidentifiedImageError

    from gen_eval.errors import UserError

    try:
        with Image.open(path) as image:
            image.load()
            text = getattr(image, "text", {}).get(CAPTIONS_KEY)
    except (OSError, UnidentifiedImageError) as exc:
        raise UserError(f"{path}: not a readable PNG ({exc})") from None
    try:
        data = json.loads(text) if text is not None else None
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("captions"), list):
        raise UserError(f"{path}: no gen-eval captions in this PNG; grids written by `gen-eval sample --out x.png` "
                        "or `gen-eval score --grid` carry them")
    return data
