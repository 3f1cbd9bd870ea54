"""The embedded *shapes* data set: procedural 64x64 scenes of the 24 iCLEVR objects.

Each image shows 1-3 non-overlapping objects with distinct names from ``<colour> <shape>``
(8 colours x cube/sphere/cylinder) on a plain light background, drawn so a small CNN can tell them
apart: a cube is a square front face with a lighter top and a darker side face, a sphere a disc with
radial shading, a cylinder an upright body with elliptical top and bottom. Written in the iCLEVR
layout (``images/``, ``objects.json``, ``train.json``, ``heldout.json``, ``test.json``,
``new_test.json``) so the iCLEVR reader opens it.

Determinism: every image is drawn from its own generator seeded by ``(seed, split, index)``, so the
same seed gives byte-identical files, and image ``i`` does not depend on how many images are written.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from gen_eval.data.images import png_bytes
from gen_eval.errors import UserError, param
from gen_eval.fileio import make_folder

IMAGE_SIZE = 64
SUPERSAMPLE = 4  # draw at 4x and box-downscale: anti-aliased edges

COLORS: dict[str, tuple[int, int, int]] = {
    "gray": (128, 128, 128),
    "red": (205, 35, 35),
    "blue": (40, 70, 215),
    "green": (40, 165, 55),
    "brown": (135, 85, 40),
    "purple": (135, 55, 185),
    "cyan": (30, 190, 205),
    "yellow": (235, 200, 30),
}
SHAPES = ("cube", "sphere", "cylinder")
BACKGROUND = (244, 240, 230)

# iCLEVR's objects.json: name -> index, shape-major (all cubes, then spheres, then cylinders).
OBJECT_NAMES: tuple[str, ...] = tuple(f"{color} {shape}" for shape in SHAPES for color in COLORS)
OBJECTS: dict[str, int] = {name: i for i, name in enumerate(OBJECT_NAMES)}

OBJECT_SIZE_RANGE = (16.0, 24.0)  # pixels across at 64x64
MIN_GAP = 2.0  # pixels between object boxes and from the border

# Condition sizes of test.json and new_test.json, in the style of iCLEVR's files (32 each).
TEST_SIZES = ((1,) * 3 + (2,) * 6 + (3,) * 7) * 2
NEW_TEST_SIZES = (2,) * 12 + (3,) * 20

_SPLIT_CODES = {"train": 0, "heldout": 1, "test": 2, "new_test": 3}


def objects_json_text() -> str:
    """objects.json exactly as iCLEVR's file (one line, ``json.dumps`` separators, no newline)."""
    return json.dumps(OBJECTS)


def _rng(seed: int, split: str, index: int = 0) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, _SPLIT_CODES[split], index]))


def _shade(color: Sequence[float], factor: float) -> tuple[int, int, int]:
    """Darker for factor < 1, mixed towards white for factor > 1."""
    mixed = (v * factor if factor <= 1 else v + (255 - v) * (factor - 1) for v in color)
    return tuple(min(255, max(0, round(v))) for v in mixed)


def _box_size(shape: str, size: float) -> tuple[float, float]:
    """Width and height of a shape's bounding box for a nominal size."""
    return (0.72 * size, size) if shape == "cylinder" else (size, size)


def _draw_sphere(draw: ImageDraw.ImageDraw, x0: float, y0: float, w: float, h: float, color) -> None:
    r = w / 2
    cx, cy = x0 + r, y0 + r
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=_shade(color, 0.55))
    steps = 7
    for t in range(steps):
        f = t / (steps - 1)
        radius = (r - 1.2 * SUPERSAMPLE) * (1 - 0.8 * f)
        ox, oy = cx - 0.3 * r * f, cy - 0.3 * r * f  # highlight towards the top left
        draw.ellipse((ox - radius, oy - radius, ox + radius, oy + radius), fill=_shade(color, 0.75 + 0.55 * f))


def _draw_cube(draw: ImageDraw.ImageDraw, x0: float, y0: float, w: float, h: float, color) -> None:
    depth = 0.24 * w
    side = w - depth
    fx0, fy0 = x0, y0 + depth  # front face
    fx1, fy1 = fx0 + side, fy0 + side
    outline, line = _shade(color, 0.5), max(1, round(0.6 * SUPERSAMPLE))
    top = [(fx0, fy0), (fx0 + depth, y0), (fx1 + depth, y0), (fx1, fy0)]
    right = [(fx1, fy0), (fx1 + depth, y0), (fx1 + depth, fy1 - depth), (fx1, fy1)]
    draw.polygon(top, fill=_shade(color, 1.45), outline=outline, width=line)
    draw.polygon(right, fill=_shade(color, 0.7), outline=outline, width=line)
    draw.rectangle((fx0, fy0, fx1, fy1), fill=color, outline=outline, width=line)


def _draw_cylinder(draw: ImageDraw.ImageDraw, x0: float, y0: float, w: float, h: float, color) -> None:
    cap = 0.36 * w  # height of the elliptical top and bottom
    x1, y1 = x0 + w, y0 + h
    outline = _shade(color, 0.5)
    draw.ellipse((x0, y1 - cap, x1, y1), fill=outline)  # bottom rim
    draw.rectangle((x0, y0 + cap / 2, x1, y1 - cap / 2), fill=outline)
    inset = 0.6 * SUPERSAMPLE
    strips = 6  # horizontal shading: lighter on the left, darker on the right
    for s in range(strips):
        sx0 = x0 + inset + (w - 2 * inset) * s / strips
        sx1 = x0 + inset + (w - 2 * inset) * (s + 1) / strips
        draw.rectangle((sx0, y0 + cap / 2, sx1, y1 - cap / 2 - inset), fill=_shade(color, 1.15 - 0.35 * s / (strips - 1)))
    draw.ellipse((x0 + inset, y1 - cap, x1 - inset, y1 - inset), fill=_shade(color, 0.85))
    draw.rectangle((x0 + inset, y1 - cap - inset, x1 - inset, y1 - cap / 2), fill=_shade(color, 0.85))
    draw.ellipse((x0, y0, x1, y0 + cap), fill=_shade(color, 1.5), outline=outline, width=max(1, round(0.6 * SUPERSAMPLE)))


_DRAWERS = {"cube": _draw_cube, "sphere": _draw_sphere, "cylinder": _draw_cylinder}


def _place(rng: np.random.Generator, shapes: Sequence[str]) -> list[tuple[float, float, float, float]]:
    """Non-overlapping boxes (x0, y0, w, h) in 64x64 pixels; shrinks the objects if they do not fit."""
    lo, hi = OBJECT_SIZE_RANGE
    for attempt in range(200):
        shrink = 1.0 - 0.02 * (attempt // 20)
        boxes: list[tuple[float, float, float, float]] = []
        for shape in shapes:
            w, h = _box_size(shape, rng.uniform(lo, hi) * shrink)
            x0 = rng.uniform(MIN_GAP, IMAGE_SIZE - MIN_GAP - w)
            y0 = rng.uniform(MIN_GAP, IMAGE_SIZE - MIN_GAP - h)
            if any(
                x0 < bx + bw + MIN_GAP and bx < x0 + w + MIN_GAP and y0 < by + bh + MIN_GAP and by < y0 + h + MIN_GAP
                for bx, by, bw, bh in boxes
            ):
                break
            boxes.append((x0, y0, w, h))
        if len(boxes) == len(shapes):
            return boxes
    raise RuntimeError("could not place the objects")  # unreachable with 3 objects of <= 24 px in 64x64


def render_scene(names: Sequence[str], rng: np.random.Generator) -> np.ndarray:
    """Draw the named objects (distinct iCLEVR names) into a 64x64x3 uint8 image."""
    shapes = [name.split(" ")[1] for name in names]
    canvas = Image.new("RGB", (IMAGE_SIZE * SUPERSAMPLE,) * 2, BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for name, shape, (x0, y0, w, h) in zip(names, shapes, _place(rng, shapes)):
        color = _shade(COLORS[name.split(" ")[0]], rng.uniform(0.93, 1.07))
        s = SUPERSAMPLE
        _DRAWERS[shape](draw, x0 * s, y0 * s, w * s, h * s, color)
    return np.asarray(canvas.reduce(SUPERSAMPLE))  # box average of each 4x4 block


def _draw_names(rng: np.random.Generator, count: int) -> list[str]:
    picks = rng.choice(len(OBJECT_NAMES), size=count, replace=False)
    return [OBJECT_NAMES[i] for i in picks]


def sample_scene(seed: int, split: str, index: int) -> tuple[list[str], np.ndarray]:
    """The labels and pixels of image ``index`` of ``split`` for ``seed`` (1-3 objects, uniform)."""
    rng = _rng(seed, split, index)
    names = _draw_names(rng, int(rng.integers(1, 4)))
    return names, render_scene(names, rng)


def make_conditions(seed: int, split: str, sizes: Sequence[int]) -> list[list[str]]:
    """Condition lists (distinct names each) with the given numbers of objects."""
    rng = _rng(seed, split)
    order = rng.permutation(len(sizes)) if split == "new_test" else np.arange(len(sizes))
    return [_draw_names(rng, int(sizes[i])) for i in order]


def _prepare_target(out_dir: Path, force: bool) -> Path | None:
    """Check that ``out_dir`` may be (re)placed; return an existing folder to replace, if any."""
    if not out_dir.exists():
        return None
    if not out_dir.is_dir():
        raise UserError(f"{out_dir} exists and is not a folder; choose another {param('out_dir')}")
    if not any(out_dir.iterdir()):
        return None
    if not force:
        raise UserError(f"{out_dir} exists and is not empty; pass {param('force', True)} to replace it or choose another "
                        f"{param('out_dir')}")
    if not (out_dir / "objects.json").is_file():
        raise UserError(
            f"{out_dir} is not a data set folder (no objects.json); refusing to replace it even with {param('force', True)}, "
            f"remove it yourself or choose another {param('out_dir')}"
        )
    return out_dir


def write_shapes(
    out_dir: str | os.PathLike,
    n_train: int = 6000,
    n_heldout: int = 1000,
    seed: int = 0,
    force: bool = False,
    progress: bool = False,
) -> Path:
    """Write the shapes data set to ``out_dir`` (iCLEVR layout) and return its path.

    The folder is built under a hidden temporary name beside ``out_dir`` and renamed at the end, so
    nothing half-written is left on failure. An existing non-empty ``out_dir`` is refused unless
    ``force`` (and then only if it holds a previous data set, i.e. an ``objects.json``).
    """
    if n_train < 1 or n_heldout < 0:
        raise UserError(f"need at least 1 training image and a non-negative held-out size, got {n_train} and {n_heldout}")
    if not 0 <= seed < 2**63:
        raise UserError(f"seed must be a non-negative integer, got {seed}")
    out_dir = Path(out_dir)
    replaced = _prepare_target(out_dir, force)
    parent = out_dir.parent
    make_folder(parent, param("out_dir"))
    # named first and created inside the try, so a Ctrl-C right after the mkdir still removes it
    tmp = parent / f".{out_dir.name}.tmp-{uuid.uuid4().hex}"
    try:
        try:
            tmp.mkdir()
        except OSError as exc:
            raise UserError(f"cannot write in {parent}: {exc.strerror}; choose another {param('out_dir')}") from None
        images = tmp / "images"
        images.mkdir()
        for split, count in (("train", n_train), ("heldout", n_heldout)):
            labels: dict[str, list[str]] = {}
            indices = range(count)
            if progress:
                from tqdm import tqdm

                indices = tqdm(indices, desc=f"shapes {split}", unit="img", leave=True, disable=None)
            for i in indices:
                names, pixels = sample_scene(seed, split, i)
                file_name = f"{split}_{i:06d}.png"
                (images / file_name).write_bytes(png_bytes(pixels))
                labels[file_name] = names
            (tmp / f"{split}.json").write_text(json.dumps(labels))
        (tmp / "objects.json").write_text(objects_json_text())
        (tmp / "test.json").write_text(json.dumps(make_conditions(seed, "test", TEST_SIZES)))
        (tmp / "new_test.json").write_text(json.dumps(make_conditions(seed, "new_test", NEW_TEST_SIZES)))
        tmp.chmod(0o755)
        if replaced is not None:
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=parent))
            os.replace(out_dir, old / "data")
            try:
                os.replace(tmp, out_dir)
            except OSError:
                os.replace(old / "data", out_dir)  # put the previous data set back
                old.rmdir()
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    except OSError as exc:
        raise UserError(f"cannot write the shapes data set to {out_dir}: {exc}") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir
