"""iCLEVR ``objects.json`` and condition files (``test.json`` style) -> label spaces and vectors."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gen_eval.data.labels import LabelSpace
from gen_eval.data.textfiles import read_json
from gen_eval.errors import UserError


def read_objects(path: str | os.PathLike) -> LabelSpace:
    """The multilabel space of an iCLEVR ``objects.json`` (``{name: index}``, indices 0..N-1)."""
    mapping = read_json(path, "objects.json")
    if not isinstance(mapping, dict) or not mapping:
        raise UserError(f'{path}: expected a JSON object {{"name": index, ...}} such as iCLEVR\'s objects.json')
    for name, index in mapping.items():
        if not name.strip():
            raise UserError(f"{path}: empty label name; every name must be non-empty")
        if not isinstance(index, int) or isinstance(index, bool):
            raise UserError(f"{path}: index of {name!r} is {index!r}, expected an integer")
    indices = sorted(mapping.values())
    if indices != list(range(len(mapping))):
        raise UserError(f"{path}: indices must be 0..{len(mapping) - 1}, each used once; got {indices[:6]}...")
    return LabelSpace.from_objects(mapping)


def _few(names: Sequence[str], count: int = 4) -> str:
    shown = ", ".join(repr(n) for n in names[:count])
    return shown + (", ..." if len(names) > count else "")


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def encode_names(names: object, label_space: LabelSpace, where: str) -> np.ndarray:
    """One condition (a list of label names) as a vector; UserError prefixed by ``where`` if invalid.

    Multilabel: a non-empty list of distinct names. Categorical: one ``"head:value"`` per head.
    Binary: ``[]`` / ``[name]``, or the number 0 / 1.
    """
    if label_space.kind == "binary" and isinstance(names, (int, float)) and not isinstance(names, bool):
        if names not in (0, 1):
            raise UserError(f"{where}: binary condition must be 0 or 1, got {names!r}")
        return np.full(1, float(names), dtype=np.float32)
    if not isinstance(names, list):
        raise UserError(f"{where}: expected a list of label names, got {type(names).__name__} {_short(names)}")
    if not names and label_space.kind != "binary":
        raise UserError(f"{where}: empty list; each condition needs at least one label name")
    index = label_space.index
    seen: set[str] = set()
    for name in names:  # linear in the condition's length (a 480 KB condition line once took 30 s)
        if not isinstance(name, str):
            raise UserError(f"{where}: label names must be strings, got {_short(name)}")
        if name not in index:
            raise UserError(f"{where}: unknown label {_short(name)}; valid names include {_few(label_space.names)}")
        if name in seen:
            raise UserError(f"{where}: label {name!r} appears twice; list each label once")
        seen.add(name)
    vector = label_space.encode(names)
    problem = label_space.validate_vector(vector) if label_space.kind == "categorical" else None
    if problem:
        raise UserError(f"{where}: condition {problem}; give one 'head:value' per head")
    return vector


def read_condition_file(path: str | os.PathLike, label_space: LabelSpace) -> np.ndarray:
    """Condition vectors float32 [N, L] from a JSON list of conditions (iCLEVR ``test.json`` style).

    Multilabel: ``[["red cube", "blue sphere"], ...]``; categorical: ``[["hair:0", "eye:2", ...], ...]``;
    binary: ``[0, 1, ...]`` or ``[[], ["Smiling"], ...]``. A labelled split (iCLEVR ``train.json``:
    ``{"image.png": [names], ...}``) gives its labels in file order. Errors name the file, the item and
    the problem.
    """
    items = read_json(path, "condition file")
    if isinstance(items, dict) and items and all(isinstance(v, list) for v in items.values()):
        items = list(items.values())  # a labelled split: condition on its labels, in file order
    if not isinstance(items, list):
        raise UserError(f"{path}: expected a JSON list of conditions such as [[\"red cube\"], ...], got {type(items).__name__}")
    if not items:
        raise UserError(f"{path}: holds no conditions; add at least one")
    vectors = [encode_names(item, label_space, f"{Path(path)}, item {i}") for i, item in enumerate(items)]
    return np.stack(vectors).astype(np.float32)
