"""`sample`: seeded samples of a generator, to a PNG folder, a grid PNG, an .npz, or memory."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gen_eval.api import inputs
from gen_eval.errors import UserError

log = logging.getLogger("gen_eval")
OTHER_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"}


@dataclass
class SampleResult:
    kind: str                       # "folder", "grid", "npz" or "memory"
    path: Path | None
    count: int                      # images made by this call
    already_there: int = 0          # a resumed folder's images kept
    part: range | None = None       # the sample indices of this shard (None: the whole run)
    images: np.ndarray | None = None   # "memory": uint8 NCHW
    labels: np.ndarray | None = None
    indices: np.ndarray | None = None

    def describe(self) -> str:
        where = f" (images {self.part.start}..{self.part.stop - 1})" if self.part is not None else ""
        if self.kind == "folder":
            kept = f"; {self.already_there} were already there" if self.already_there else ""
            return f"wrote {self.count} PNGs to {self.path}{where}{kept}"
        if self.kind == "grid":
            return f"wrote a grid of {self.count} images to {self.path}"
        if self.kind == "npz":
            return f"wrote {self.count} images to {self.path}{where}"
        return f"made {self.count} images{where}"


def output_kind(out: str | Path | None) -> str:
    if out is None:
        return "memory"
    suffix = Path(out).suffix.lower()
    if suffix in OTHER_IMAGE_SUFFIXES:
        raise UserError(f"--out {out}: grids are written as .png; give a .png, an .npz or a folder")
    return {".png": "grid", ".npz": "npz"}.get(suffix, "folder")


def sample(model: str | Path, out: str | Path | None = None, *, n: int | None = None,
           conditions: str | Path | None = None, seed: int = 0, shard: tuple[int, int] | None = None, nrow: int = 8,
           upscale: int = 1, resample: str = "nearest", force: bool = False, objects=None, latent_dim=None, value_range=None, device: str = "auto",
           batch_size: int | None = None, threads: int | None = None, progress: bool = False) -> SampleResult:
    """``n`` samples of generator ``model`` (one per condition row of ``conditions`` by default; the rows
    are cycled to ``n``), sample ``i`` from the noise of (seed, i). ``out``: a folder of PNGs (resumable,
    memory flat in ``n``; a conditional run also gets ``labels.json``), a ``.png`` grid (at most 256 images,
    ``nrow`` columns, each captioned with its condition, enlarged ``upscale`` times with ``resample``), an
    ``.npz``, or None for uint8 images in memory."""
    from gen_eval.evaluator import pictures, sample_outputs, sampling
    from gen_eval.evaluator.noise import check_seed

    check_seed(seed)
    if n is not None:
        sampling.check_count(n)
    kind = output_kind(out)
    if kind == "grid" and shard is not None:
        raise UserError("--shard writes a PNG folder or an .npz; a grid is one image of the whole run")
    if kind == "grid":
        if not 1 <= nrow <= pictures.MAX_COLUMNS:
            raise UserError(f"--nrow must be from 1 to {pictures.MAX_COLUMNS} images per grid row, got {nrow}")
        if not 1 <= upscale <= pictures.MAX_UPSCALE:
            raise UserError(f"--upscale must be a whole factor from 1 to {pictures.MAX_UPSCALE}, got {upscale}")
        if resample not in pictures.RESAMPLE:
            raise UserError(f"--resample must be one of {', '.join(pictures.RESAMPLE)}, got {resample!r}")
    out_path = Path(out) if out is not None else None
    inputs.check_outputs(force, {"--out": out_path} if kind in ("grid", "npz") else {},
                         {"--model": model, "--conditions": conditions, "--objects": objects})
    rt = inputs.runtime(device, threads)
    generator = inputs.load_generator(model, rt, batch_size=batch_size, latent_dim=latent_dim,
                                      value_range_text=value_range, objects=objects)
    log.info("runtime: %s", rt.describe())
    cond = inputs.conditions_for(generator, conditions)
    if n is None:
        if cond is None:
            raise UserError("give the number of images with --n")
        n = len(cond)
    if kind == "grid" and n > pictures.MAX_GRID_IMAGES:
        raise UserError(f"--out {out}: a grid holds at most {pictures.MAX_GRID_IMAGES} images ({pictures.MAX_COLUMNS} "
                        f"columns x {pictures.MAX_GRID_IMAGES // pictures.MAX_COLUMNS} rows), asked for {n}; give "
                        f"--n {pictures.MAX_GRID_IMAGES} or fewer, or write them to a folder (--out samples/)")
    part = sampling.shard_indices(n, shard) if shard is not None else None
    if kind == "folder":
        written, kept = sampling.write_png_folder(generator, out_path, n, seed, conditions=cond, shard=shard,
                                                  force=force, progress=progress)
        if cond is not None:
            sample_outputs.write_labels_json(out_path, n, cond, generator.info.label_space)
        return SampleResult(kind, out_path, written, kept, part)
    indices, images, labels = sampling.generate_all(generator, n, seed, conditions=cond, shard=shard,
                                                    progress=progress)
    if kind == "grid":
        sample_outputs.write_sample_grid(out_path, images, indices, labels, generator.info.label_space, columns=nrow,
                                         upscale=upscale, resample=resample, force=force)
    elif kind == "npz":
        sampling.write_npz(out_path, indices, images, labels, seed, generator, force=force)
    return SampleResult(kind, out_path, len(images), 0, part,
                        images=images if kind == "memory" else None, labels=labels, indices=indices)


__all__ = ["SampleResult", "sample"]
