"""Opening what a job is given: models with their facts, label spaces, condition files, image sets.

Every model of one job is loaded on one :class:`~gen_eval.evaluator.runtime.Runtime`, so they share
a provider; the facts a model without gen-eval metadata lacks (latent size, value range, label names)
come from the caller and must agree with the metadata where both exist.
"""

from __future__ import annotations

import logging
from pathlib import Path

from gen_eval.errors import UserError, param

log = logging.getLogger("gen_eval")


def _parse(text, parser, name: str):
    """``parser`` on 'A,B[,C]' text (or a tuple, joined first); None -> None; errors name ``name``."""
    if text is None:
        return None
    if not isinstance(text, (str, tuple, list)):
        raise UserError(f"{name} must be comma-separated text or a tuple, got {text!r} ({type(text).__name__})")
    if not isinstance(text, str):
        text = ",".join(str(v) for v in text)
    try:
        return parser(text)
    except ValueError as exc:
        raise UserError(f"{name}: {exc}") from None


def value_range(text: str | tuple[float, float] | None, name: str) -> tuple[float, float] | None:
    """'LOW,HIGH' (or a pair) -> (low, high); None -> None."""
    from gen_eval.contract import parse_value_range

    return _parse(text, parse_value_range, name)


def image_shape(text: str | tuple[int, int, int] | None, name: str) -> tuple[int, int, int] | None:
    """'C,H,W' (or a triple) -> (c, h, w); None -> None."""
    from gen_eval.contract import parse_image_shape

    return _parse(text, parse_image_shape, name)


def read_label_space(path: str | Path | None):
    """An iCLEVR objects.json ({name: index}) or a label-space JSON ({"kind": ...}); None -> None."""
    if path is None:
        return None
    from gen_eval.data.conditions import read_objects
    from gen_eval.data.labels import LabelSpace
    from gen_eval.data.textfiles import read_json

    obj = read_json(path, "objects file")
    if isinstance(obj, dict) and "kind" in obj:
        try:
            return LabelSpace.from_dict(obj)
        except ValueError as exc:
            raise UserError(f"{path}: bad label space ({exc})") from None
    return read_objects(path)


PATH = "path"  # check_types kind: a str or an os.PathLike such as pathlib.Path
IMAGES = "images"  # check_types kind: a path or images in memory (gen_eval.data.memory says what is wrong with them)
_KINDS = {int: "an integer", float: "a number", str: "a string", bool: "True or False",
          PATH: "a path (a str or a pathlib.Path)"}


def check_types(**named) -> None:
    """One-line UserErrors for arguments of the wrong type: ``name=(value, type)``; None passes (the
    default applies). ``float`` takes an int too; ``int`` refuses bools and floats such as 3.0; :data:`PATH`
    takes a str or an ``os.PathLike``."""
    import numbers
    import os

    for name, (value, kind) in named.items():
        if value is None or kind is IMAGES:
            continue
        if kind is PATH:
            good = isinstance(value, (str, os.PathLike))
        elif kind is int:
            good = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        elif kind is float:
            good = isinstance(value, numbers.Real) and not isinstance(value, bool)
        else:
            good = isinstance(value, kind)
        if not good:
            raise UserError(f"{param(name)} must be {_KINDS.get(kind) or kind.__name__}, got {value!r} "
                            f"({type(value).__name__})")


def load_generator(path, rt, *, batch_size=None, latent_dim=None, value_range_text=None, objects=None,
                   label_space=None, label_source=None):
    """A generator; ``objects`` (a file) wins over ``label_space`` handed down from another model."""
    from gen_eval.evaluator.model import load_model

    space = read_label_space(objects)
    return load_model(
        path, role="generator", runtime=rt, batch_size=batch_size, latent_dim=latent_dim,
        value_range=value_range(value_range_text, param("value_range")),
        label_space=space if space is not None else label_space,
        label_space_source=None if space is not None else label_source,
    )


def load_features(path, rt, batch_size=None):
    from gen_eval.evaluator.model import load_model

    return load_model(path, role="features", runtime=rt, batch_size=batch_size, param_prefix="features_")


def conditions_for(generator, conditions_path, name: str = "conditions"):
    """The condition vectors a conditional generator needs (None for an unconditional one)."""
    from gen_eval.data.conditions import read_condition_file

    if not generator.info.conditional:
        if conditions_path is not None:
            raise UserError(f"{generator.path} is an unconditional generator; leave out {param(name)}")
        return None
    if conditions_path is None:
        raise UserError(f"{generator.path} is a conditional generator; give a condition file with {param(name)} (e.g. test.json)")
    return read_condition_file(conditions_path, generator.info.label_space)


def image_set(path, split: str, channels: int | None = None, what: str = "images"):
    """A folder / data set, or the .npz that `gen-eval sample --out x.npz` writes; or an
    :class:`~gen_eval.api.sources.ImageSource` or images in memory (an array, a tensor, an iterable of
    batches), whose errors name ``what``."""
    from gen_eval.data.datasets import detect_format, open_dataset
    from gen_eval.data.memory import is_in_memory
    from gen_eval.evaluator.sampling import check_sample_folder, open_sample_npz

    if is_in_memory(path):
        from gen_eval.api.sources import image_source

        return image_source(path, split).open(channels, what)

    if Path(path).suffix.lower() == ".npz":
        return open_sample_npz(Path(path))
    fmt = detect_format(path, split)
    if fmt == "folder":
        check_sample_folder(Path(path))  # a folder of `gen-eval sample` must hold every image of its run
    kw = {"mode": "L"} if fmt == "folder" and channels == 1 else {}
    return open_dataset(path, split=split, fmt=fmt, **kw)


def check_outputs(force: bool, outputs: dict, inputs: dict) -> None:
    """Every output writable, none of them one of the inputs or another output (name -> path). A
    ``--summary`` among ``inputs`` is a file appended to: it may not be another output (so it is passed with
    the inputs), nor an input, nor anything but a regular file."""
    from gen_eval.fileio import check_append_target
    from gen_eval.fileio import check_outputs as check

    check(outputs.items(), inputs.items(), force)
    others = {flag: path for flag, path in inputs.items() if flag != "--summary"}
    check_append_target("--summary", inputs.get("--summary"), others.items())
