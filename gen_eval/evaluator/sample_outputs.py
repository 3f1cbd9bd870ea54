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
    """uint8 NCHW samples as one grid PNG, each captioned with its index and condition names."""
    captions = condition_captions(conditions, label_space, indices)
    grid = captioned_grid(images_u8, captions, columns=columns, upscale=upscale, resample=resample)
    return save_png(np.asarray(grid), path, force=force)
