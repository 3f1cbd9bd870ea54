"""Grids a person can read: images in at most ``MAX_COLUMNS`` columns, each cell captioned (its
conditions, its index), optionally upscaled with Pillow's nearest or bilinear filter.

A grid holds at most ``MAX_GRID_IMAGES`` images; more would make an image nobody looks at (a 2000-image
grid of 32 px cells was a 274x8502 strip), so callers refuse beyond it and point at a folder.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

MAX_COLUMNS = 16
MAX_GRID_IMAGES = 256
MAX_UPSCALE = 16
MAX_CAPTION_LINES = 12  # a caption wraps onto as many lines as it needs, up to this (a condition file's worth)
RESAMPLE = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR}
PADDING = 4


def check_grid_options(count: int, columns: int, upscale: int, resample: str) -> None:
    """ValueError (one line) when a grid of ``count`` images with these options is not sensible."""
    if count > MAX_GRID_IMAGES:
        raise ValueError(f"a grid holds at most {MAX_GRID_IMAGES} images ({MAX_COLUMNS} columns x "
                         f"{MAX_GRID_IMAGES // MAX_COLUMNS} rows), got {count}")
    if not 1 <= columns <= MAX_COLUMNS:
        raise ValueError(f"a grid has 1 to {MAX_COLUMNS} columns, got {columns}")
    if not 1 <= upscale <= MAX_UPSCALE:
        raise ValueError(f"upscale is a whole factor from 1 to {MAX_UPSCALE}, got {upscale}")
    if resample not in RESAMPLE:
        raise ValueError(f"resample is one of {', '.join(RESAMPLE)}, got {resample!r}")


def _font(size: int = 11) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        return ImageFont.load_default()


def _wrap(text: str, width_px: int, draw: ImageDraw.ImageDraw, font) -> list[str]:
    """Lines of ``text`` that each fit ``width_px`` as drawn in ``font`` (measured, not estimated): words
    move to the next line whole; a word wider than the cell is split. Beyond ``MAX_CAPTION_LINES`` the
    last line ends in '…' (a caption that long is a data problem, not a picture)."""
    def fits(line: str) -> bool:
        return draw.textlength(line, font=font) <= width_px

    lines: list[str] = []
    for word in text.split():
        if lines and fits(f"{lines[-1]} {word}"):
            lines[-1] = f"{lines[-1]} {word}"
            continue
        while len(word) > 1 and not fits(word):  # a word wider than the cell: split it
            cut = max([k for k in range(1, len(word)) if fits(word[:k])] or [1])
            lines.append(word[:cut])
            word = word[cut:]
        lines.append(word)
    lines = lines or [""]
    if len(lines) > MAX_CAPTION_LINES:
        lines = lines[: MAX_CAPTION_LINES - 1] + [lines[MAX_CAPTION_LINES - 1][:-1] + "…"]
    return lines


def captioned_grid(images, captions=None, *, columns: int = 8, upscale: int = 1, resample: str = "nearest",
                   title: str | None = None) -> Image.Image:
    """uint8 images (an [N, C, H, W] array or a list of [C, H, W]) -> one RGB grid, each cell captioned.

    Images of another size than the first are resized to it (``resample``); grey images become RGB.
    """
    images = list(images)
    check_grid_options(len(images), columns, upscale, resample)
    if not images:
        raise ValueError("a grid needs at least one image")
    captions = list(captions) if captions is not None else [""] * len(images)
    if len(captions) != len(images):
        raise ValueError(f"{len(captions)} captions for {len(images)} images")
    filt = RESAMPLE[resample]
    first = np.asarray(images[0])
    cell_w, cell_h = first.shape[2] * upscale, first.shape[1] * upscale
    tiles = []
    for image in images:
        image = np.asarray(image)
        mode_image = Image.fromarray(image.transpose(1, 2, 0).squeeze(-1) if image.shape[0] == 1
                                     else image.transpose(1, 2, 0)).convert("RGB")
        tiles.append(mode_image.resize((cell_w, cell_h), filt) if mode_image.size != (cell_w, cell_h) else mode_image)
    font = _font()
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    line_h = int(font.getbbox("Ag")[3] - font.getbbox("Ag")[1]) + 3
    text_w = max(cell_w, 96)  # captions get at least ~16 characters of width
    wrapped = [_wrap(c, text_w, probe, font) if c else [] for c in captions]
    caption_h = max((len(w) for w in wrapped), default=0) * line_h
    box_w, box_h = max(cell_w, text_w if any(wrapped) else cell_w), cell_h + caption_h
    cols = min(columns, len(images))
    rows = math.ceil(len(images) / cols)
    title_h = line_h + PADDING if title else 0
    grid = Image.new("RGB", (cols * (box_w + PADDING) + PADDING, title_h + rows * (box_h + PADDING) + PADDING),
                     "white")
    draw = ImageDraw.Draw(grid)
    if title:
        draw.text((PADDING, PADDING), title, fill="black", font=font)
    for k, (tile, lines) in enumerate(zip(tiles, wrapped)):
        row, col = divmod(k, cols)
        left = PADDING + col * (box_w + PADDING)
        top = title_h + PADDING + row * (box_h + PADDING)
        grid.paste(tile, (left + (box_w - cell_w) // 2, top))
        for j, line in enumerate(lines):
            draw.text((left, top + cell_h + j * line_h), line, fill="black", font=font)
    return grid


def condition_names(vector, label_space) -> list[str]:
    """The names of the labels set in one condition vector (a binary attribute: its name or 'not name')."""
    on = np.flatnonzero(np.asarray(vector) > 0.5)
    names = list(label_space.names) if label_space is not None else None
    if label_space is not None and label_space.kind == "binary":
        return [names[0] if len(on) else f"not {names[0]}"]
    return [names[j] if names else str(j) for j in on]


def condition_captions(labels: np.ndarray | None, label_space, indices) -> list[str]:
    """'#i: red cube, blue sphere' for each sample index; ``labels[k]`` is the condition of ``indices[k]``."""
    out = []
    for k, i in enumerate(indices):
        text = f"#{int(i)}"
        if labels is not None:
            words = condition_names(labels[k], label_space)
            text += ": " + (", ".join(words) if words else "(none)")
        out.append(text)
    return out
