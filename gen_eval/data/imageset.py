"""What every reader returns: a sized, lazily loaded set of images with optional condition vectors."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gen_eval.data.images import load_image
from gen_eval.data.labels import LabelSpace
from gen_eval.errors import UserError

# Decoded pixels (uint8) of one batch of data-set images at most: a folder of 6000x6000 PNGs (100 KB each
# on disk) would otherwise hold batch-size x 108 MB decoded, plus its float32 copies, before any resize.
MAX_DECODED_BATCH_BYTES = 64 * 2**20


def rows_per_batch(images: "ImageSet", batch_size: int) -> int:
    """How many of ``images`` to decode at once: ``batch_size``, fewer when the images are so large that a
    batch would exceed :data:`MAX_DECODED_BATCH_BYTES` (memory is bounded by a batch, never by the size the
    files declare), and at least one."""
    c, h, w = images.image_shape
    return max(1, min(batch_size, MAX_DECODED_BATCH_BYTES // max(1, c * h * w)))


class ImageSet:
    """Base of all readers.

    ``image(i)`` is uint8 HxWxC; ``labels`` is float32 [N, L] (or None when unconditional) in
    ``label_space``; ``image_shape`` is (C, H, W) of the first image — all images must share it;
    ``source`` names the files for messages and ``format`` the reader.
    """

    format: str = "?"
    source: str = ""
    labels: np.ndarray | None = None
    label_space: LabelSpace | None = None

    def __len__(self) -> int:
        raise NotImplementedError

    def image(self, i: int) -> np.ndarray:
        raise NotImplementedError

    @property
    def image_shape(self) -> tuple[int, int, int]:
        h, w, c = self.image(0).shape
        return c, h, w

    def _check_index(self, i: int) -> int:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"image index {i} out of range for {n} images")
        return i % n

    def describe(self) -> str:
        """A few lines for ``gen-eval data check``."""
        c, h, w = self.image_shape
        lines = [
            f"format: {self.format}",
            f"source: {self.source}",
            f"images: {len(self)}",
            f"image shape: {c},{h},{w} (C,H,W)",
        ]
        if self.label_space is None:
            lines.append("labels: none (unconditional)")
        else:
            space = self.label_space
            if space.kind == "categorical":
                heads = ", ".join(f"{h} {len(v)}" for h, v in space.heads)
                lines.append(f"label space: categorical, {space.size} values in heads {heads}")
            else:
                lines.append(f"label space: {space.kind}, {space.size} name{'s' if space.size != 1 else ''} ({', '.join(space.names[:4])}{', ...' if space.size > 4 else ''})")
            if self.labels is not None and len(self.labels):
                per_image = self.labels.sum(axis=1)
                lines.append(f"labels per image: min {per_image.min():g}, mean {per_image.mean():.2f}, max {per_image.max():g}")
        return "\n".join(lines)


class FileImageSet(ImageSet):
    """Images stored one per file; loaded (and decoded) only when asked for."""

    def __init__(
        self,
        files: Sequence[Path],
        *,
        format: str,
        source: str,
        labels: np.ndarray | None = None,
        label_space: LabelSpace | None = None,
        mode: str = "RGB",
    ) -> None:
        if labels is not None and len(labels) != len(files):
            raise ValueError("labels and files differ in length")
        self.files = list(files)
        self.format, self.source, self.mode = format, source, mode
        self.labels = None if labels is None else np.asarray(labels, dtype=np.float32)
        self.label_space = label_space
        self._shape: tuple[int, int, int] | None = None

    def __len__(self) -> int:
        return len(self.files)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        if self._shape is None:
            self._shape = super().image_shape
        return self._shape

    def image(self, i: int) -> np.ndarray:
        i = self._check_index(i)
        array = load_image(self.files[i], self.mode)
        if self._shape is None:
            self._shape = (array.shape[2], array.shape[0], array.shape[1])
        elif array.shape[:2] != self._shape[1:]:
            h, w = self._shape[1:]
            raise UserError(
                f"{self.files[i]}: image is {array.shape[1]}x{array.shape[0]}, the data set's first image is "
                f"{w}x{h}; resize all images to one size"
            )
        return array


class ArrayImageSet(ImageSet):
    """Images held in one uint8 array [N, H, W, C] (or a memory map of a file)."""

    def __init__(
        self,
        images: np.ndarray,
        *,
        format: str,
        source: str,
        labels: np.ndarray | None = None,
        label_space: LabelSpace | None = None,
    ) -> None:
        if images.ndim != 4 or images.dtype != np.uint8:
            raise ValueError("images must be a uint8 array [N, H, W, C]")
        if labels is not None and len(labels) != len(images):
            raise ValueError("labels and images differ in length")
        self.images = images
        self.format, self.source = format, source
        self.labels = None if labels is None else np.asarray(labels, dtype=np.float32)
        self.label_space = label_space

    def __len__(self) -> int:
        return len(self.images)

    def image(self, i: int) -> np.ndarray:
        return np.array(self.images[self._check_index(i)])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        _, h, w, c = self.images.shape
        return c, h, w


def check_member_name(name: object, label_file: str | os.PathLike, where: str = "") -> str:
    """An image name from a label file must be a plain relative path inside the data set: no absolute
    path, no ``..``, no drive letter, no NUL. (Symbolic links are checked by :func:`check_files_exist`.)"""
    shown = where or f"{label_file}"
    if not isinstance(name, str) or not name.strip():
        raise UserError(f"{shown}: image name {name!r} is not a file name; list image file names")
    parts = name.replace("\\", "/").split("/")
    if "\x00" in name or name.startswith(("/", "\\")) or os.path.isabs(name) or ".." in parts or \
            (len(name) > 1 and name[1] == ":"):
        raise UserError(f"{shown}: image {name!r} is outside the data set's folder (absolute or '..'); "
                        "label files may only name images inside the data set")
    return name


def find_image_folder(root: Path, candidates: Sequence[str], first_file: str, label_file: str | os.PathLike) -> Path:
    """The first of ``root/<candidate>`` (``""`` = root itself) that holds ``first_file``."""
    check_member_name(first_file, label_file)
    for name in candidates:
        folder = root / name if name else root
        if (folder / first_file).is_file():
            return folder
    looked = ", ".join(str(root / c) if c else str(root) for c in candidates)
    raise UserError(f"{label_file}: image {first_file!r} not found in {looked}; put the images next to the label file")


def check_files_exist(folder: Path, names: Sequence[str], label_file: str | os.PathLike, line_of=None) -> list[Path]:
    """Paths of ``names`` in ``folder``; UserError naming the first missing one (one directory scan).

    Every name must stay inside ``folder``: absolute paths, ``..`` and symbolic links that lead out of it
    are refused, so a label file cannot make gen-eval read (or train on) files elsewhere.
    """
    for i, name in enumerate(names):
        check_member_name(name, label_file, f"{label_file}, line {line_of(i)}" if line_of else "")
    try:
        present = {entry.name for entry in os.scandir(folder) if not entry.is_dir()}
    except OSError as exc:
        raise UserError(f"{folder}: cannot list images ({exc.strerror})") from None
    first_line: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in first_line:
            where = f"{label_file}, line {line_of(i)}" if line_of else f"{label_file}"
            also = f" (also line {line_of(first_line[name])})" if line_of else ""
            raise UserError(f"{where}: image {name!r} is listed twice{also}; list each image once")
        first_line[name] = i
    for i, name in enumerate(names):
        if name not in present and not (folder / name).is_file():
            where = f"{label_file}, line {line_of(i)}" if line_of else f"{label_file}"
            missing = sum(1 for n in names if n not in present and not (folder / n).is_file())
            raise UserError(f"{where}: image {name!r} not found in {folder} ({missing} of {len(names)} missing)")
    real_folder = os.path.realpath(folder).rstrip(os.sep) + os.sep
    for i, name in enumerate(names):
        if "/" in name or "\\" in name or os.path.islink(folder / name):
            if not os.path.realpath(folder / name).startswith(real_folder):
                where = f"{label_file}, line {line_of(i)}" if line_of else f"{label_file}"
                raise UserError(f"{where}: image {name!r} is a link that leads outside {folder}; label files may "
                                "only name images inside the data set")
    return [folder / name for name in names]
