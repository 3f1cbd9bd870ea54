"""The data a run trains on: the ImageSet for a split, its fit with the family, the held-out split.

``--set data.KEY=VALUE`` options (gen_eval.trainers.config.DATA_OPTIONS) choose the splits, the
reader format and resizing; other ``data.*`` keys go to gen_eval.data.open_dataset.
"""

from __future__ import annotations

import logging
from typing import Any

from gen_eval.data.labels import LabelSpace
from gen_eval.errors import UserError, param, render
from gen_eval.trainers.base import Family
from gen_eval.trainers.config import DATA_OPTIONS, set_option
from gen_eval.trainers.torchdata import ImageSetDataset

log = logging.getLogger("gen_eval.train")


def is_image_set(data: Any) -> bool:
    return hasattr(data, "image") and hasattr(data, "image_shape") and hasattr(data, "__len__")


def open_training_data(data_dir, options: dict[str, Any], split_key: str = "split"):
    """The ImageSet for ``options[split_key]`` via gen_eval.data.open_dataset (one-line errors).

    ``data_dir`` may also be an ImageSet object, used as the training split (it has no held-out split).
    """
    from gen_eval.data.datasets import open_dataset

    if is_image_set(data_dir):
        if split_key != "split":
            raise UserError("an in-memory data set has no held-out split")
        return data_dir
    options = {**DATA_OPTIONS, **options}
    reader_kw = {k: v for k, v in options.items() if k not in DATA_OPTIONS}
    try:
        return open_dataset(data_dir, split=options[split_key], fmt=options["format"] or None, **reader_kw)
    except TypeError as exc:
        raise UserError(f"the data reader does not take {', '.join('data.' + k for k in reader_kw)} ({exc}); "
                        f"drop those {param('config_overrides')} options") from None


def training_label_space(cls: type[Family], image_set, ckpt: dict[str, Any] | None) -> LabelSpace | None:
    """The data's label space (conditional families), or the resumed run's, which the data must match."""
    label_space = image_set.label_space if cls.conditional else None
    if ckpt is not None and ckpt.get("label_space"):
        stored_space = LabelSpace.from_dict(ckpt["label_space"])
        if label_space is not None and stored_space != label_space:
            raise UserError(f"{image_set.source} has other labels than the ones this run was trained on; "
                            "resume with the same data set")
        label_space = stored_space
    return label_space


def check_data_fits(family: Family, image_set, resize: bool) -> tuple[int, int, int]:
    """The image shape to train at, or a UserError saying which option makes the data fit."""
    data_shape = tuple(int(v) for v in image_set.image_shape)
    want = family.image_shape
    if family.conditional and getattr(image_set, "labels", None) is None:
        raise UserError(f"{family.name} is conditional and needs labels, but {image_set.source} has none; "
                        f"give a labelled data set (iCLEVR/shapes layout, CelebA with {set_option('data.attribute', 'NAME')}, "
                        "Cartoon Set), e.g. one made by 'gen-eval data shapes --out DIR'")
    if data_shape != want and not resize:
        c, h, w = data_shape
        hint = f"{set_option('image_size', h)} to train at the data's size, or " if h == w and hasattr(family.config, "image_size") else ""
        raise UserError(f"{image_set.source} has {c}x{h}x{w} images but {family.name} trains on "
                        f"{want[0]}x{want[1]}x{want[2]}; pass {hint}{set_option('data.resize', 'true')} to resize the images")
    return want


def heldout_data(family: Family, data_dir, data_options: dict[str, Any], image_shape) -> ImageSetDataset | None:
    """The held-out split, for families that implement evaluate(); None (with a note) when there is none."""
    if not family.uses_heldout():
        return None
    options = {**DATA_OPTIONS, **data_options}
    if not options["eval_split"]:
        return None
    try:
        image_set = open_training_data(data_dir, options, split_key="eval_split")
    except UserError as exc:
        log.info("no held-out evaluation (%s); set another split with %s", exc, render(set_option("data.eval_split", "NAME")))
        return None
    if family.conditional and getattr(image_set, "labels", None) is None:
        return None
    return ImageSetDataset(image_set, image_shape)
