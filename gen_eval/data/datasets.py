"""Open any supported data set by path: :func:`open_dataset` picks the reader.

Formats (``fmt=``), detected in this order when not given:
- ``iclevr``: a folder with ``objects.json`` and ``<split>.json`` (``{file: [names]}``) + images;
- ``cartoon``: a ``cartoon_attr.txt`` (or a folder holding one) + images;
- ``celeba``: the DLCV csv (``<split>.csv``, ``image_name,Bangs,...``) or ``list_attr_celeba.txt`` + images
  (``attribute="Smiling"`` keeps one binary attribute; otherwise every attribute, multilabel);
- ``mnist``: idx files, gzipped or not (a folder with ``train-images-idx3-ubyte[.gz]``, or the file);
- ``folder``: a plain folder of images, unconditional.
"""

from __future__ import annotations

import os
from pathlib import Path

from gen_eval.data.images import list_images
from gen_eval.data.imageset import ArrayImageSet, FileImageSet, ImageSet
from gen_eval.errors import UserError

__all__ = ["ImageSet", "FileImageSet", "ArrayImageSet", "FORMATS", "detect_format", "open_dataset", "open_folder"]

FORMATS = ("iclevr", "cartoon", "celeba", "mnist", "folder")


def open_folder(path: str | os.PathLike, split: str = "train", mode: str = "RGB") -> FileImageSet:
    """A plain folder of images (unconditional); ``split`` picks ``path/<split>/`` if that exists."""
    root = Path(path)
    folder = root / split if (root / split).is_dir() else root
    return FileImageSet(list_images(folder), format="folder", source=str(folder), mode=mode)


def detect_format(path: str | os.PathLike, split: str = "train") -> str:
    """The format of ``path`` (see the module docstring); UserError if none fits."""
    from gen_eval.data import cartoon, celeba, iclevr, mnist

    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: not found; give a data set folder or label file")
    if iclevr.is_iclevr(path):
        return "iclevr"
    if cartoon.is_cartoon(path):
        return "cartoon"
    if celeba.is_celeba(path, split):
        return "celeba"
    if mnist.is_mnist(path):
        return "mnist"
    if path.is_dir():
        if (path / f"{split}.json").is_file():
            raise UserError(
                f"{path}: has {split}.json but no objects.json; put the objects.json (name -> index) next to it"
            )
        return "folder"
    raise UserError(
        f"{path}: unknown data set format; give a folder (iCLEVR layout, images) or a "
        "cartoon_attr.txt / CelebA .csv / list_attr_celeba.txt / MNIST idx file"
    )


def open_dataset(path: str | os.PathLike, split: str = "train", fmt: str | None = None, **kw) -> ImageSet:
    """Open the data set at ``path`` (format auto-detected unless ``fmt``); ``kw`` go to the reader.

    Reader keywords: iclevr ``image_dir``; celeba ``attribute``, ``image_dir``; cartoon ``image_dir``;
    folder ``mode``. Label files are validated now; images are decoded lazily by ``image(i)``.
    """
    from gen_eval.data import cartoon, celeba, iclevr, mnist

    fmt = fmt or detect_format(path, split)
    readers = {
        "iclevr": iclevr.open_iclevr,
        "cartoon": cartoon.open_cartoon,
        "celeba": celeba.open_celeba,
        "mnist": mnist.open_mnist,
        "folder": open_folder,
    }
    if fmt not in readers:
        raise UserError(f"unknown data format {fmt!r}; choose one of {', '.join(FORMATS)}")
    try:
        return readers[fmt](path, split=split, **kw)
    except TypeError as exc:
        if "unexpected keyword argument" in str(exc):
            raise UserError(f"the {fmt} reader does not take that option ({exc})") from None
        raise
