"""`sample`: seeded samples of a generator, to a PNG folder, a grid PNG, an .npz, or memory."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from gen_eval.api import inputs
from gen_eval.api.sources import GeneratorSource, Runtime, runtime_of, with_samples
from gen_eval.errors import UserError, param

log = logging.getLogger("gen_eval")
OTHER_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"}


@dataclass
class SampleResult:
    """What :func:`sample` did: ``kind`` of output ("folder", "grid", "npz" or "memory"), its ``path``, the
    ``count`` of images this call made (``already_there``: a resumed folder's images kept), the shard's
    ``part`` of the run, and for "memory" the uint8 NCHW ``images`` with their ``labels`` and ``indices``."""
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
        raise UserError(f"{param('out', out)}: grids are written as .png; give a .png, an .npz or a folder")
    return {".png": "grid", ".npz": "npz"}.get(suffix, "folder")


def sample(model: str | Path | GeneratorSource, out: str | Path | None = None, *, n: int | None = None,
           conditions: str | Path | None = None, seed: int = 0, shard: tuple[int, int] | None = None, nrow: int = 8,
           upscale: int = 1, resample: str = "nearest", force: bool = False, runtime: Runtime | None = None,
           progress: bool = False, ray_address: str | None = None, pair_noise: bool = False) -> SampleResult:
    """``n`` samples of generator ``model`` (one per condition row of ``conditions`` by default; the rows
    are cycled to ``n``), sample ``i`` from the noise of (seed, i). ``out``: a folder of PNGs (resumable,
    memory flat in ``n``; a conditional run also gets ``labels.json``), a ``.png`` grid (at most 256 images,
    ``nrow`` columns, each captioned with its condition, enlarged ``upscale`` times with ``resample``), an
    ``.npz``, or None for uint8 images in memory. ``ray_address`` ('local' or a cluster address) writes a
    PNG folder from a pool of Ray actors.

    ``pair_noise``: sample ``i`` takes the noise of (seed, i // rows), so each run of consecutive samples,
    one per condition row, shares ``z`` (attribute-manipulation figures: two rows off/on, ``n`` 20 gives
    10 pairs; ``nrow`` = the number of rows puts each pair on a grid row).

    A grid's captions are also in its PNG text chunk ``gen_eval.captions``
    (:func:`gen_eval.evaluator.sample_outputs.read_grid_captions` reads them back).

    Args:
        model: the generator .onnx, or a :class:`gen_eval.GeneratorSource` (which also carries the ``objects``,
            ``latent_dim`` and ``value_range`` a generator without gen-eval metadata needs; then leave out
            ``n``, ``seed`` and ``conditions`` here).
        out: a folder, a ``.png`` grid, an ``.npz``, or None (images in memory).
        n: the number of images [default: one per condition row].
        conditions: a conditional generator's condition file (test.json style), its rows cycled to ``n``.
        seed: the noise seed.
        shard: ``(k, N)``: only part k of N of the run (a folder or an .npz).
        nrow: images per grid row, 1 to 16 (a grid).
        upscale: enlarge each grid cell this many times, 1 to 16 (a grid).
        resample: ``nearest`` or ``bilinear``, the filter of ``upscale``.
        force: overwrite existing outputs (a folder: regenerate every file).
        runtime: the device, batch size and threads (:class:`gen_eval.Runtime`) [default: ``Runtime()``].
        progress: draw a progress bar on stderr (kept on screen when done, with rate and total).
        ray_address: 'local' or a Ray cluster address (a folder only).
        pair_noise: see above.

    Returns:
        A :class:`SampleResult`: what was written where (``describe()``), and for ``out=None`` the uint8 NCHW
        ``images`` with their ``labels`` and ``indices``.

    Raises:
        UserError: on a bad argument, an input file or an output that exists without ``force`` (one line).

    Example:
        >>> gen_eval.sample("acgan.onnx", "grid.png", conditions="test.json", upscale=2).describe()  # doctest: +SKIP
        'wrote a grid of 32 images to grid.png'
    """
    from gen_eval.evaluator import pictures, sample_outputs, sampling

    inputs.check_types(out=(out, inputs.PATH), nrow=(nrow, int), upscale=(upscale, int), resample=(resample, str),
                       force=(force, bool), progress=(progress, bool), ray_address=(ray_address, str),
                       pair_noise=(pair_noise, bool))
    source = with_samples(model, n=n, seed=seed, conditions=conditions)
    n, seed, conditions, runtime = source.n, source.seed, source.conditions, runtime_of(runtime)
    if shard is not None and not (isinstance(shard, (tuple, list)) and len(shard) == 2):
        raise UserError(f"{param('shard')} must be a pair (k, N), e.g. (1, 4), got {shard!r}")
    kind = output_kind(out)
    if kind == "grid" and shard is not None:
        raise UserError(f"{param('shard')} writes a PNG folder or an .npz; a grid is one image of the whole run")
    if kind == "grid":
        if not 1 <= nrow <= pictures.MAX_COLUMNS:
            raise UserError(f"{param('nrow')} must be from 1 to {pictures.MAX_COLUMNS} images per grid row, got {nrow}")
        if not 1 <= upscale <= pictures.MAX_UPSCALE:
            raise UserError(f"{param('upscale')} must be a whole factor from 1 to {pictures.MAX_UPSCALE}, got {upscale}")
        if resample not in pictures.RESAMPLE:
            raise UserError(f"{param('resample')} must be one of {', '.join(pictures.RESAMPLE)}, got {resample!r}")
    out_path = Path(out) if out is not None else None
    inputs.check_outputs(force, {param("out"): out_path} if kind in ("grid", "npz") else {},
                         {param("model"): source.model, param("conditions"): conditions,
                          param("objects"): source.objects})
    sessions = runtime.open()
    opened = source.open(sessions, runtime.batch_size)
    generator, cond = opened.generator, opened.conditions
    log.info("runtime: %s", sessions.describe())
    if n is None:
        if cond is None:
            raise UserError(f"give the number of images with {param('n')}")
        n = len(cond)
    if kind == "grid" and n > pictures.MAX_GRID_IMAGES:
        raise UserError(f"{param('out', out)}: a grid holds at most {pictures.MAX_GRID_IMAGES} images "
                        f"({pictures.MAX_COLUMNS} columns x {pictures.MAX_GRID_IMAGES // pictures.MAX_COLUMNS} rows), "
                        f"asked for {n}; give {param('n', pictures.MAX_GRID_IMAGES)} or fewer, or write them to a "
                        f"folder ({param('out', 'samples/')})")
    part = sampling.shard_indices(n, shard) if shard is not None else None
    if kind == "folder":  # one run writes a sample folder at a time (the shards of one run together)
        from gen_eval.fileio import FolderLock

        with FolderLock(out_path, "gen-eval sample", "out", shared=shard is not None and ray_address is None):
            return _sample_folder(generator, replace(source, n=n), runtime, out_path, cond, shard, part, force,
                                  ray_address, progress, pair_noise)
    if pair_noise and ray_address is not None:
        raise UserError(f"{param('pair_noise', True)} runs in one process; leave out {param('ray_address')}")
    if ray_address is not None:
        raise UserError("Ray writes samples into a PNG folder; give a folder as the output")
    indices, images, labels = sampling.generate_all(generator, n, seed, conditions=cond, shard=shard,
                                                    progress=progress, pair_noise=pair_noise)
    if kind == "grid":
        sample_outputs.write_sample_grid(out_path, images, indices, labels, generator.info.label_space, columns=nrow,
                                         upscale=upscale, resample=resample, force=force)
    elif kind == "npz":
        sampling.write_npz(out_path, indices, images, labels, seed, generator, force=force)
    return SampleResult(kind, out_path, len(images), 0, part,
                        images=images if kind == "memory" else None, labels=labels, indices=indices)


def _sample_folder(generator, source: GeneratorSource, runtime: Runtime, out_path, cond, shard, part, force,
                   ray_address, progress, pair_noise) -> SampleResult:
    from gen_eval.evaluator import sample_outputs, sampling

    n, seed = source.n, source.seed

    if pair_noise and ray_address is not None:
        raise UserError(f"{param('pair_noise', True)} runs in one process; leave out {param('ray_address')}")
    if ray_address is not None:
        return _sample_on_ray(generator, source, runtime, out_path, cond, shard, force, ray_address)
    written, kept = sampling.write_png_folder(generator, out_path, n, seed, conditions=cond, shard=shard,
                                              force=force, progress=progress, pair_noise=pair_noise)
    if cond is not None:
        sample_outputs.write_labels_json(out_path, n, cond, generator.info.label_space)
    return SampleResult("folder", out_path, written, kept, part)


def _sample_on_ray(generator, source: GeneratorSource, runtime: Runtime, out_path, cond, shard, force,
                   ray_address) -> SampleResult:
    """The run's PNGs in chunk-sized shards: the first here (it claims the folder), the rest on Ray actors."""
    from gen_eval.evaluator import sampling
    from gen_eval.evaluator.exact import DEFAULT_CHUNK_SIZE
    from gen_eval.scale.ray_runner import ChunkJob, write_png_shards

    if shard is not None:
        raise UserError("Ray splits the run itself; leave out the shard (or run plain shards without Ray)")
    shards = max(1, -(-source.n // DEFAULT_CHUNK_SIZE))
    written, kept = sampling.write_png_folder(generator, out_path, source.n, source.seed, conditions=cond,
                                              shard=(1, shards), force=force)
    job = ChunkJob(features=None, source=source, runtime=runtime, out=str(out_path), force=force)
    more, more_kept = write_png_shards(job, shards, ray_address)
    return SampleResult("folder", out_path, written + more, kept + more_kept, None)


__all__ = ["SampleResult", "sample"]
