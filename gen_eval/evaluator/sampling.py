"""Seeded sampling from an ONNX generator, in shards, to a PNG folder, a grid PNG or an .npz.

Sample ``i`` of a run is fixed by (model, seed, i) — see :mod:`gen_eval.evaluator.noise` — and, for
conditional generators, takes condition ``i % len(conditions)``. PNG files are named by the global
index (``000123.png``), so shards of one run fill one folder without gaps, and a killed shard is
resumed by running it again: files already there (each written atomically) are skipped. A hidden
manifest in the folder records the run, so a different run is never mixed into it.

(Just over 300 lines: the folder, grid and .npz writers share the run's index and manifest rules.)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gen_eval.data.images import save_png, to_uint8
from gen_eval.errors import UserError, param
from gen_eval.evaluator.grid import save_grid
from gen_eval.evaluator.model import OnnxModel
from gen_eval.evaluator.noise import NOISE_BLOCK, check_seed, cycle_conditions, latent_noise, paired_noise_indices
from gen_eval.fileio import atomic_path, atomic_write_json
from gen_eval.inputfiles import read_input_bytes, read_npz

MANIFEST = ".gen-eval-sample.json"
# --n beyond this is refused at once (10^9 PNGs of 64x64 would fill ~10 TB); memory never grows with --n.
MAX_SAMPLES = 10**9
# Outputs held in memory before they are written (a grid PNG, an .npz) are refused beyond this.
MAX_IN_MEMORY_BYTES = 4 * 2**30

log = logging.getLogger("gen_eval")


@dataclass
class SampleBatch:
    indices: np.ndarray  # global sample indices, int64 [B]
    images: np.ndarray  # float32 [B, C, H, W] in the generator's value range
    conditions: np.ndarray | None  # float32 [B, L]


def check_count(n: int, name: str = "n") -> int:
    """``n`` images to make: 1..MAX_SAMPLES, else a one-line UserError."""
    if n < 1:
        raise UserError(f"{param(name)} must be at least 1, got {n}")
    if n > MAX_SAMPLES:
        raise UserError(f"{param(name, n)} is more than the {MAX_SAMPLES:,} images gen-eval makes in one run; "
                        f"give a smaller {param(name)} (shards of one run can be merged with `gen-eval stats merge`)")
    return int(n)


def shard_indices(n: int, shard: tuple[int, int] | None) -> range:
    """The contiguous block of ``range(n)`` that shard k of N does (blocks differ in size by at most 1)."""
    check_count(n)
    if shard is None:
        return range(n)
    k, count = shard
    return range((k - 1) * n // count, k * n // count)


def sample(
    generator: OnnxModel,
    n: int,
    seed: int,
    *,
    conditions: np.ndarray | None = None,
    indices: range | np.ndarray | None = None,
    progress: bool = False,
    pair_noise: bool = False,
) -> Iterator[SampleBatch]:
    """Yield batches of samples ``indices`` (default ``range(n)``) of the run (generator, seed, conditions).

    ``indices`` is a range or any iterable of ints; it is consumed a batch at a time, so memory does
    not grow with its length. ``pair_noise``: consecutive samples, one per condition row, share one
    noise vector (gen_eval.evaluator.noise.paired_noise_indices).
    """
    check_seed(seed)
    if generator.info.conditional and conditions is None:
        raise UserError(f"{generator.path} is a conditional generator; give a condition file with {param('conditions')}")
    if not generator.info.conditional and conditions is not None:
        raise UserError(f"{generator.path} is unconditional; leave out {param('conditions')}")
    if pair_noise and conditions is None:
        raise UserError(f"{generator.path} is unconditional: paired noise shares z across conditions, "
                        "so it needs a conditional generator and a condition file")
    indices = range(n) if indices is None else indices
    step = generator.batch_size
    total = len(indices) if hasattr(indices, "__len__") else None
    with tqdm(total=total, unit="img", desc="sampling", disable=not progress or None, leave=True) as bar:
        for chunk in _chunks(indices, step):
            z = latent_noise(seed, paired_noise_indices(chunk, len(conditions)) if pair_noise else chunk,
                             generator.info.latent_dim)
            labels = cycle_conditions(conditions, chunk) if conditions is not None else None
            images = generator.generate(z, labels)
            bar.update(len(chunk))
            yield SampleBatch(chunk, images, labels)


def _chunks(indices, step: int) -> Iterator[np.ndarray]:
    """int64 arrays of at most ``step`` consecutive items of ``indices`` (a range is never materialised)."""
    if isinstance(indices, range):
        for start in range(0, len(indices), step):
            yield np.arange(indices[start], indices[start] + indices.step * len(indices[start : start + step]),
                            indices.step, dtype=np.int64)
        return
    if isinstance(indices, np.ndarray):
        for start in range(0, len(indices), step):
            yield np.asarray(indices[start : start + step], dtype=np.int64)
        return
    block: list[int] = []
    for index in indices:
        block.append(int(index))
        if len(block) == step:
            yield np.asarray(block, dtype=np.int64)
            block = []
    if block:
        yield np.asarray(block, dtype=np.int64)


def run_manifest(generator: OnnxModel, n: int, seed: int, conditions: np.ndarray | None,
                 pair_noise: bool = False) -> dict:
    """What identifies a sampling run (written into the output folder)."""
    paired = {"pair_noise": True} if pair_noise else {}    # absent when off: earlier folders stay resumable
    return {**paired,
        "model_sha256": generator.sha256,
        "seed": int(seed),
        "n": int(n),
        "conditions_sha256": hashlib.sha256(conditions.tobytes()).hexdigest() if conditions is not None else None,
        "noise": f"SeedSequence(seed, spawn_key=(i // {NOISE_BLOCK},)), float32 standard normal",
        "value_range": list(generator.info.value_range),
    }


def _check_folder(out: Path, manifest: dict, force: bool) -> bool:
    """Whether ``out`` may take this run's PNGs; True when its manifest still has to be written."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} is a file; give a folder, a .png (grid) or an .npz path")
    path = out / MANIFEST
    if path.exists() and not force:
        try:
            existing = json.loads(path.read_text())
        except (OSError, ValueError):
            existing = None
        if existing != manifest:
            what = "another run" if not isinstance(existing, dict) else ", ".join(
                f"{k} {existing.get(k)!r} here, {manifest[k]!r} now" for k in manifest if existing.get(k) != manifest[k]
            )
            raise UserError(f"{out} holds samples of a different run ({what}); choose another folder or pass {param('force', True)}")
        return False
    if not force and out.is_dir() and any(p.suffix == ".png" for p in out.iterdir()):
        raise UserError(f"{out} already holds PNG files not written by gen-eval sample; choose an empty folder or pass "
                        f"{param('force', True)}")
    return True


def _write_manifest(out: Path, manifest: dict) -> None:
    try:
        atomic_write_json(out / MANIFEST, manifest, force=True)
    except OSError as exc:
        raise UserError(f"cannot write in {out}: {exc.strerror}; choose another output folder") from None


def png_name(index: int, n: int) -> str:
    return f"{index:0{max(6, len(str(n - 1)))}d}.png"


def _remove_stale_temp_files(out: Path, todo: range) -> None:
    """Delete the ``.<index>.png.tmp-*`` files a killed run of this shard left; other shards' are theirs."""
    if not out.is_dir():
        return
    for path in out.glob(".*.png.tmp-*"):
        stem = path.name[1:].split(".png.tmp-")[0]
        if stem.isdigit() and int(stem) in todo:
            path.unlink(missing_ok=True)


def write_png_folder(
    generator: OnnxModel,
    out: str | os.PathLike,
    n: int,
    seed: int,
    *,
    conditions: np.ndarray | None = None,
    shard: tuple[int, int] | None = None,
    force: bool = False,
    progress: bool = False,
    pair_noise: bool = False,
) -> tuple[int, int]:
    """Write this shard's samples as ``out/<index>.png``; returns (written, already there)."""
    out = Path(out)
    manifest = run_manifest(generator, n, seed, conditions, pair_noise)
    needs_manifest = _check_folder(out, manifest, force)
    todo = shard_indices(n, shard)
    _remove_stale_temp_files(out, todo)
    present = set() if force or not out.is_dir() else _present_indices(out, n, todo)
    missing = _Sized((i for i in todo if i not in present), len(todo) - len(present))  # memory flat in --n
    done = len(present)
    if done and done < len(todo):
        log.info("resuming: %d of %d images of this shard are already in %s", done, len(todo), out)
    lo, hi = generator.info.value_range
    for batch in sample(generator, n, seed, conditions=conditions, indices=missing, progress=progress,
                        pair_noise=pair_noise):
        images = to_uint8(batch.images, (lo, hi)).transpose(0, 2, 3, 1)
        if needs_manifest:  # claimed only once the first batch exists: a model that fails leaves nothing
            _write_manifest(out, manifest)
            needs_manifest = False
        for index, image in zip(batch.indices, images):
            # (stale temp files of this shard were removed once above: no folder scan per image)
            save_png(image, out / png_name(int(index), n), force=force, clean_stale=False)
    return len(todo) - done, done


class _Sized:
    """An iterable that knows its length (for the progress bar) without holding its items."""

    def __init__(self, items, length: int) -> None:
        self.items, self.length = items, length

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return self.length


def _present_indices(out: Path, n: int, todo: range) -> set[int]:
    """Indices of this shard whose PNG is already in ``out`` (one scan of the folder)."""
    width = max(6, len(str(n - 1)))
    present = set()
    with os.scandir(out) as entries:
        for entry in entries:
            name = entry.name
            if name.endswith(".png") and len(name) == width + 4 and name[:width].isdigit() and entry.is_file():
                index = int(name[:width])
                if index in todo:
                    present.add(index)
    return present


def generate_all(generator: OnnxModel, n: int, seed: int, *, conditions: np.ndarray | None = None,
                 shard: tuple[int, int] | None = None, progress: bool = False,
                 pair_noise: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """This shard's samples in memory: (indices, uint8 NCHW images, conditions or None)."""
    indices, images, labels = [], [], []
    value_range = generator.info.value_range
    todo = shard_indices(n, shard)
    for batch in sample(generator, n, seed, conditions=conditions, indices=todo, progress=progress,
                        pair_noise=pair_noise):
        if not images:  # the first batch tells the size of an image: refuse what would not fit in memory
            per_image = int(np.prod(batch.images.shape[1:]))
            if per_image * len(todo) > MAX_IN_MEMORY_BYTES:
                raise UserError(f"{len(todo)} images of {per_image} bytes are over the "
                                f"{MAX_IN_MEMORY_BYTES // 2**30} GiB a grid or .npz output holds in memory; "
                                f"give a smaller {param('n')}, use {param('shard')}, or write a PNG folder ({param('out', 'DIR')})")
        indices.append(batch.indices)
        images.append(to_uint8(batch.images, value_range))
        if batch.conditions is not None:
            labels.append(batch.conditions)
    return np.concatenate(indices), np.concatenate(images), (np.concatenate(labels) if labels else None)


def write_npz(path: str | os.PathLike, indices: np.ndarray, images_u8: np.ndarray, conditions: np.ndarray | None,
              seed: int, generator: OnnxModel, force: bool = False) -> Path:
    """``images`` uint8 [N, H, W, C], ``indices``, ``seed``, ``conditions`` float32 [N, L] when conditional."""
    arrays = {
        "images": np.ascontiguousarray(images_u8.transpose(0, 2, 3, 1)),
        "indices": indices,
        "seed": np.int64(seed),
        "model_sha256": np.str_(generator.sha256),
    }
    if conditions is not None:
        arrays["conditions"] = conditions.astype(np.float32)
    path = Path(path)
    with atomic_path(path, force) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)
    return path


def check_nrow(nrow: int) -> int:
    if not 1 <= nrow <= 10_000:
        raise UserError(f"{param('nrow')} must be from 1 to 10000 images per grid row, got {nrow}")
    return nrow


def write_grid(path: str | os.PathLike, images_u8: np.ndarray, force: bool = False, nrow: int = 8) -> Path:
    return save_grid(images_u8, path, nrow=check_nrow(nrow), force=force)


def check_sample_folder(folder: Path) -> None:
    """A folder written by ``gen-eval sample`` (it has the manifest) must hold all N images of its run:
    statistics of one shard of four would be computed on a quarter of the images without a word."""
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        return
    try:
        manifest = json.loads(read_input_bytes(manifest_path, "sample manifest", 2**20))
        n = int(manifest["n"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise UserError(f"{manifest_path}: damaged manifest of `gen-eval sample`; sample the folder again") from None
    if not 1 <= n <= MAX_SAMPLES:
        raise UserError(f"{manifest_path}: damaged manifest (n={n}); sample the folder again")
    present = len(_present_indices(folder, n, range(n)))
    if present < n:
        raise UserError(f"{folder} holds {present} of the {n} images of its `gen-eval sample` run (see its manifest); "
                        "run the missing shards first (gen-eval sample ... --shard k/N)")


MAX_SAMPLE_NPZ_BYTES = MAX_IN_MEMORY_BYTES


def open_sample_npz(path: Path):
    """The images of an .npz that ``gen-eval sample --out x.npz`` wrote (read without pickles, size-checked)."""
    from gen_eval.data.imageset import ArrayImageSet

    hint = "what `gen-eval sample --out x.npz` writes"
    arrays = read_npz(path, "sample file", MAX_SAMPLE_NPZ_BYTES, keys=["images"], hint=f"give {hint}")
    images = arrays.get("images")
    if images is None or images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3) \
            or 0 in images.shape[1:3]:
        raise UserError(f"{path}: needs 'images', uint8 [N, H, W, C] ({hint})")
    return ArrayImageSet(images, format="npz", source=str(path))
