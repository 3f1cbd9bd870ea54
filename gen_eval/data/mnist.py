"""MNIST idx files, gzipped or not (``train-images-idx3-ubyte[.gz]`` + ``train-labels-idx1-ubyte[.gz]``).

Split ``train`` reads ``train-*``, split ``test`` reads ``t10k-*``; files are looked up in the folder,
``raw/`` and ``MNIST/raw/`` (torchvision's layout). Labels form one categorical head ``digit`` with
values ``0``..``9``; without a labels file the set is unconditional. Uncompressed files are memory
mapped; gzipped ones are decompressed once (MNIST is 47 MB).
"""

from __future__ import annotations

import gzip
import math
import os
import re
import zlib
from pathlib import Path

import numpy as np

from gen_eval.data.imageset import ArrayImageSet
from gen_eval.data.labels import LabelSpace
from gen_eval.errors import UserError
from gen_eval.inputfiles import open_input

SPLIT_PREFIX = {"train": "train", "test": "t10k"}
SUBFOLDERS = ("", "raw", "MNIST/raw")
_IDX_NAME = re.compile(r"-(images|labels)[-.]idx([13])-ubyte(\.gz)?$")
UBYTE = 0x08


def digit_label_space() -> LabelSpace:
    return LabelSpace.categorical({"digit": [str(d) for d in range(10)]})


def _find(folder: Path, prefix: str, kind: str) -> Path | None:
    dims = "3" if kind == "images" else "1"
    for sub in SUBFOLDERS:
        for sep in ("-", "."):
            for suffix in ("", ".gz"):
                candidate = folder / sub / f"{prefix}-{kind}{sep}idx{dims}-ubyte{suffix}"
                if candidate.is_file():
                    return candidate
    return None


def is_mnist(path: Path) -> bool:
    if path.is_file():
        return bool(_IDX_NAME.search(path.name))
    return path.is_dir() and any(_find(path, prefix, "images") for prefix in SPLIT_PREFIX.values())


MAX_IDX_BYTES = 2**30  # MNIST's training images are 47 MB; EMNIST's largest file about 700 MB


def read_idx(path: str | os.PathLike, ndim: int) -> np.ndarray:
    """A uint8 idx array with ``ndim`` dimensions; UserError on a wrong magic number, size or gzip data.

    The header is checked before any data is read or inflated: a gzip bomb, or a header claiming more
    than :data:`MAX_IDX_BYTES`, is refused without decompressing it.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: idx file not found")
    with open_input(path, "idx file") as raw:
        if os.fstat(raw.fileno()).st_size == 0:
            raise UserError(f"{path}: empty file (0 bytes); download it again")
        gz = path.suffix == ".gz"
        handle = gzip.GzipFile(fileobj=raw, mode="rb") if gz else raw
        try:
            header = handle.read(4 + 4 * ndim)
            shape, expected = _check_header(path, header, ndim)
            if gz:
                data = handle.read(expected - len(header) + 1)
                size = len(header) + len(data)
            else:
                data, size = None, os.fstat(raw.fileno()).st_size
        except (OSError, EOFError, zlib.error) as exc:
            raise UserError(f"{path}: not a valid gzip file ({exc}); download it again or gunzip it") from None
    if size != expected:
        raise UserError(f"{path}: header says shape {shape} ({expected} bytes) but the data has "
                        f"{'more' if size > expected else size} bytes; file is truncated or corrupt")
    if data is not None:
        return np.frombuffer(data, dtype=np.uint8).reshape(shape)
    return np.memmap(path, dtype=np.uint8, mode="r", offset=4 + 4 * ndim, shape=shape)


def _check_header(path: Path, header: bytes, ndim: int) -> tuple[tuple[int, ...], int]:
    if len(header) < 4 or header[0] != 0 or header[1] != 0:
        raise UserError(f"{path}: not an idx file (bad magic number); expected MNIST idx data")
    if header[2] != UBYTE or header[3] != ndim:
        raise UserError(
            f"{path}: idx file holds type 0x{header[2]:02x} with {header[3]} dimensions, expected unsigned bytes with {ndim}"
        )
    if len(header) < 4 + 4 * ndim:
        raise UserError(f"{path}: truncated idx header")
    shape = tuple(int.from_bytes(header[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim))
    if ndim == 3 and (shape[1] == 0 or shape[2] == 0):
        raise UserError(f"{path}: header says images of {shape[1]}x{shape[2]} pixels; an image needs at least 1x1, "
                        "download the file again")
    expected = 4 + 4 * ndim + math.prod(shape)
    if expected > MAX_IDX_BYTES:
        raise UserError(f"{path}: header says shape {shape} ({expected / 2**20:.0f} MiB), over the "
                        f"{MAX_IDX_BYTES // 2**20} MiB limit for idx files; is this the right file?")
    return shape, expected


def open_mnist(path: str | os.PathLike, split: str = "train") -> ArrayImageSet:
    """MNIST images (28x28x1 uint8) with digit labels when the labels file is present."""
    path = Path(path)
    if path.is_file():
        images_file = path
        match = _IDX_NAME.search(path.name)
        labels_file = None
        if match and match.group(1) == "images":
            sibling = path.with_name(path.name.replace("images", "labels", 1).replace("idx3", "idx1"))
            labels_file = sibling if sibling.is_file() else None
    else:
        if split not in SPLIT_PREFIX:
            raise UserError(f"{path}: MNIST has splits train and test, not {split!r}")
        images_file = _find(path, SPLIT_PREFIX[split], "images")
        if images_file is None:
            raise UserError(f"{path}: no {SPLIT_PREFIX[split]}-images-idx3-ubyte[.gz] found")
        labels_file = _find(path, SPLIT_PREFIX[split], "labels")
    images = read_idx(images_file, 3)
    labels, space = None, None
    if labels_file is not None:
        digits = np.asarray(read_idx(labels_file, 1))
        if len(digits) != len(images):
            raise UserError(f"{labels_file}: has {len(digits)} labels for {len(images)} images in {images_file}")
        if len(digits) and digits.max() > 9:
            bad = int(np.argmax(digits > 9))
            raise UserError(f"{labels_file}: label {int(digits[bad])} at item {bad} is not a digit 0-9")
        labels, space = np.eye(10, dtype=np.float32)[digits], digit_label_space()
    if len(images) == 0:
        raise UserError(f"{images_file}: holds no images")
    return ArrayImageSet(images[..., None], format="mnist", source=str(images_file), labels=labels, label_space=space)
