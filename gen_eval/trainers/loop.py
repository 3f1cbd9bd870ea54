"""The one training loop every family runs in.

The loop owns the device, seeding, data order, checkpoints and logs; a family (gen_eval.trainers.base)
owns its networks, optimisers and one training step. Run folder layout::

    RUN/run.json                    what was run (family, data, seed, batch size, config)
    RUN/checkpoints/last.pt         written every --checkpoint-every steps and at the end
    RUN/checkpoints/step_000500.pt  only with keep_checkpoints
    RUN/log.csv, RUN/loss_curve.png losses (means over log_every steps)
    RUN/eval.csv                    held-out metrics per epoch (families with evaluate(), data with a held-out split)
    RUN/samples/epoch_001.png ...   fixed-noise sample grid per epoch, samples/last.png at the end,
                                    samples/real.png: the real images whose conditions the grids use
    RUN/recon/, RUN/latent/         VAE families: reconstruction grids and 2-D latent plots per epoch

Resume: the data order of every epoch depends only on (seed, epoch) and the checkpoint holds the
optimiser and RNG states (torch, CUDA, numpy, python), so on CPU a run resumed from any checkpoint
reaches bit-identical weights to an uninterrupted run with the same seed.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gen_eval.data.labels import LabelSpace
from gen_eval.errors import UserError
from gen_eval.fileio import atomic_write_json, remove_stale_temp_files
from gen_eval.trainers import get_family
from gen_eval.trainers.base import Family, parse_setting
from gen_eval.trainers.checkpoint import load_checkpoint, require_gen_eval_checkpoint, save_checkpoint
from gen_eval.trainers.logs import (CsvLog, save_grid, save_latent_plot, save_loss_curve,
                                    save_reconstruction_grid)
from gen_eval.trainers.torchdata import BatchSource, ImageSetDataset, iterate_all

GRID_SIZE = 64
LATENT_PLOT_ITEMS = 1000
# Options for the data reader, given as --set data.KEY=VALUE (with their types); other data.* keys are
# passed to gen_eval.data.open_dataset as strings (e.g. data.attribute=Smiling for CelebA).
DATA_OPTIONS: dict[str, Any] = {"split": "train", "eval_split": "heldout", "resize": False, "format": ""}
RUN_OUTPUTS = ("run.json", "log.csv", "eval.csv", "loss_curve.png")


def resolve_device(device: str) -> torch.device:
    """'auto' -> CUDA when available, else CPU; 'cuda' without a GPU is a UserError."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {device} but no CUDA device is visible; use --device cpu (or auto)")
    if not (device == "cpu" or device.startswith("cuda")):
        raise UserError(f"unknown device {device!r}; use auto, cpu or cuda")
    return torch.device(device)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Every RNG state as tensors and plain values (loadable with weights_only=True)."""
    np_state = np.random.get_state()
    py_version, py_keys, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"name": np_state[0], "keys": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": {"version": py_version, "keys": list(py_keys), "gauss_next": py_gauss},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["keys"]), p["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def split_overrides(overrides: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``--set`` values -> (family settings, data options) ; ``data.KEY`` goes to the data reader."""
    family, data = {}, {}
    for key, value in (overrides or {}).items():
        if key.startswith("data."):
            name = key[len("data."):]
            if name in DATA_OPTIONS and isinstance(value, str):
                value = parse_setting(key, value, DATA_OPTIONS[name])
            data[name] = value
        else:
            family[key] = value
    return family, data


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
                        "drop those --set options") from None


def check_data_fits(family: Family, image_set, resize: bool) -> tuple[int, int, int]:
    """The image shape to train at, or a UserError saying which option makes the data fit."""
    data_shape = tuple(int(v) for v in image_set.image_shape)
    want = family.image_shape
    if family.conditional and getattr(image_set, "labels", None) is None:
        raise UserError(f"{family.name} is conditional and needs labels, but {image_set.source} has none; "
                        "give a labelled data set (iCLEVR/shapes layout, CelebA with --set data.attribute=NAME, "
                        "Cartoon Set), e.g. one made by 'gen-eval data shapes --out DIR'")
    if data_shape != want and not resize:
        c, h, w = data_shape
        hint = f"--set image_size={h} to train at the data's size, or " if h == w and "image_size" in family.defaults else ""
        raise UserError(f"{image_set.source} has {c}x{h}x{w} images but {family.name} trains on "
                        f"{want[0]}x{want[1]}x{want[2]}; pass {hint}--set data.resize=true to resize the images")
    return want


class _Checkpointer:
    def __init__(self, run: Path, keep: bool) -> None:
        self.folder = run / "checkpoints"
        self.keep = keep

    @property
    def last(self) -> Path:
        return self.folder / "last.pt"

    def save(self, payload: dict[str, Any]) -> Path:
        save_checkpoint(self.last, payload, force=True)
        if self.keep:
            save_checkpoint(self.folder / f"step_{payload['step']:06d}.pt", payload, force=True)
        return self.last


@contextlib.contextmanager
def evaluating(networks: dict[str, nn.Module]) -> Iterator[None]:
    """Networks in eval mode without gradients for the duration; their previous modes restored after."""
    modes = {name: net.training for name, net in networks.items()}
    for net in networks.values():
        net.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for name, net in networks.items():
            net.train(modes[name])


def _overrides_match(stored: dict[str, Any], requested: dict[str, Any], what: str) -> None:
    for key, value in requested.items():
        if key in stored and stored[key] != value:
            raise UserError(f"this run was trained with {what}{key}={stored[key]}; resuming with {value} "
                            f"is not allowed: drop --set {what}{key} or start a new run with --force")


def _load_resumable(run: Path, checkpointer: _Checkpointer, family_name: str) -> dict[str, Any]:
    if not checkpointer.last.is_file():
        raise UserError(f"nothing to resume: {checkpointer.last} does not exist; start the run without --resume")
    ckpt = require_gen_eval_checkpoint(load_checkpoint(checkpointer.last), checkpointer.last)
    if ckpt["family"] != family_name:
        raise UserError(f"{run} is a {ckpt['family']} run; resume it with 'gen-eval train {ckpt['family']}'")
    return ckpt


def _resumed_settings(cls: type[Family], ckpt: dict[str, Any], family_overrides: dict[str, Any],
                      data_overrides: dict[str, Any], seed: int | None, batch_size: int | None
                      ) -> tuple[dict[str, Any], dict[str, Any], int, int]:
    """The stored config, data options, seed and batch size; any --set/--seed/--batch-size must agree."""
    loop_state = ckpt.get("loop") or {}
    family_config = dict(ckpt["config"])
    requested = cls.resolve_config(family_overrides)
    _overrides_match(family_config, {k: requested[k] for k in family_overrides}, "")
    data_options = dict(loop_state.get("data_options", {}))
    _overrides_match({**DATA_OPTIONS, **data_options}, data_overrides, "data.")
    for name, given, stored in (("--seed", seed, loop_state.get("seed")),
                                ("--batch-size", batch_size, loop_state.get("batch_size"))):
        if given is not None and stored is not None and given != stored:
            raise UserError(f"this run used {name} {stored}; resume with the same value (or leave it out)")
    return (family_config, data_options, int(loop_state.get("seed", 0)),
            int(loop_state.get("batch_size", batch_size or cls.default_batch_size)))


def _claim_run_folder(run: Path, force: bool) -> None:
    """A fresh run needs an absent or empty folder, or --force (which clears an earlier run's outputs)."""
    if run.is_dir() and any(run.iterdir()):
        if not force:
            raise UserError(f"{run} exists and is not empty; pass --resume to continue that run "
                            "or --force to start over in it")
        _clear_run_outputs(run)


def _total_steps(steps: int | None, epochs: int | None, ckpt: dict[str, Any] | None, default_epochs: int,
                 steps_per_epoch: int) -> int:
    if steps is not None:
        return int(steps)
    if epochs is not None:
        return int(epochs) * steps_per_epoch
    if ckpt is not None:
        return int((ckpt.get("loop") or {}).get("total_steps", ckpt["step"]))
    return default_epochs * steps_per_epoch


def _restore(ckpt: dict[str, Any], networks: dict[str, nn.Module],
             optimizers: dict[str, torch.optim.Optimizer]) -> tuple[int, float]:
    """Weights, optimiser and RNG states from a checkpoint; returns (step, training seconds so far)."""
    try:
        for name, net in networks.items():
            net.load_state_dict(ckpt["networks"][name])
        for name, opt in optimizers.items():
            opt.load_state_dict(ckpt["optimizers"][name])
        set_rng_state(ckpt["rng"])
        return int(ckpt["step"]), float((ckpt.get("loop") or {}).get("elapsed_s", 0.0))
    except (KeyError, ValueError, TypeError, RuntimeError, AttributeError, IndexError) as exc:
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise UserError(f"cannot resume from its last checkpoint: the weights, optimiser or random state do not fit "
                        f"this run ({type(exc).__name__}: {detail}); start a new run with --force") from None


class _RunLock:
    """An exclusive flock on the run folder itself (no lock file to leave behind), held while training."""

    def __init__(self, run: Path) -> None:
        self.fd = None
        try:
            fd = os.open(run, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:
            return  # not there yet: nothing to resume or overwrite
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UserError(f"{run} is in use by another 'gen-eval train' running now; wait for it to end (or stop "
                            "it) before resuming, or give another --out") from None
        except OSError:
            pass  # a file system without flock: run unlocked
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    __del__ = release


def _clear_run_outputs(run: Path) -> None:
    """--force: remove what an earlier run of the loop wrote here (and nothing else)."""
    paths = [run / name for name in RUN_OUTPUTS]
    for folder, pattern in (("checkpoints", "*.pt"), ("samples", "*.png"), ("recon", "*.png"), ("latent", "*.png")):
        paths += list((run / folder).glob(pattern))
    for path in paths:
        if path.is_file():
            path.unlink()
    remove_stale_temp_files(run, recursive=True)


def train(family_name: str, data_dir: str | os.PathLike | Any, out_dir: str | os.PathLike, **kwargs: Any) -> Path:
    """:func:`_train` while holding a lock on an existing run folder: a second run on it is refused."""
    lock = _RunLock(Path(out_dir))
    try:
        return _train(family_name, data_dir, out_dir, **kwargs)
    finally:
        lock.release()  # at once, not when an exception's traceback lets go of it


def _train(family_name: str, data_dir: str | os.PathLike | Any, out_dir: str | os.PathLike, *,
          steps: int | None = None, epochs: int | None = None, batch_size: int | None = None,
          device: str = "auto", seed: int | None = None, resume: bool = False,
          config_overrides: dict[str, Any] | None = None, force: bool = False,
          checkpoint_every: int = 500, keep_checkpoints: bool = False, log_every: int = 10,
          amp: bool = False, workers: int = 2, progress: bool = True,
          echo: Callable[[str], None] | None = None) -> Path:
    """Train ``family_name`` on the data in ``data_dir``; returns ``<out_dir>/checkpoints/last.pt``.

    ``data_dir`` is a data set path (any format gen_eval.data.open_dataset reads) or an ImageSet object.

    ``steps`` or ``epochs`` give the total length (default: the family's ``default_epochs``); on resume
    they may extend it. ``config_overrides`` are ``--set`` values: family settings by name, data-reader
    options as ``data.KEY`` (``data.attribute``, ``data.split``, ``data.resize``, ...).
    """
    say = echo or (lambda msg: __import__("tqdm").tqdm.write(msg, file=sys.stderr))
    if steps is not None and epochs is not None:
        raise UserError("give either --steps or --epochs, not both")
    for name, value in (("--steps", steps), ("--epochs", epochs), ("--batch-size", batch_size),
                        ("--checkpoint-every", checkpoint_every), ("--log-every", log_every)):
        if value is not None and int(value) < 1:
            raise UserError(f"{name} must be a positive integer, got {value}")
    cls = get_family(family_name)
    run = Path(out_dir)
    torch_device = resolve_device(device)
    if amp and torch_device.type != "cuda":
        raise UserError("--amp needs a CUDA device; drop --amp or use --device cuda")
    family_overrides, data_overrides = split_overrides(config_overrides)
    checkpointer = _Checkpointer(run, keep_checkpoints)

    if run.exists() and not run.is_dir():
        raise UserError(f"{run} is a file; give a folder for the run (--out)")
    if resume:
        ckpt = _load_resumable(run, checkpointer, family_name)
        remove_stale_temp_files(run, recursive=True)  # a process killed mid-write leaves its temp file
        family_config, data_options, seed, batch_size = _resumed_settings(cls, ckpt, family_overrides, data_overrides,
                                                                          seed, batch_size)
        require_gen_eval_checkpoint(ckpt, checkpointer.last, resume=True)  # optimiser and RNG states are there
    else:
        ckpt = None
        _claim_run_folder(run, force)
        seed = 0 if seed is None else int(seed)
        batch_size = int(batch_size or cls.default_batch_size)
        family_config = cls.resolve_config(family_overrides)
        data_options = data_overrides

    # -- data and family ---------------------------------------------------------------------------------
    image_set = open_training_data(data_dir, data_options)
    label_space = image_set.label_space if cls.conditional else None
    if ckpt is not None and ckpt.get("label_space"):
        stored_space = LabelSpace.from_dict(ckpt["label_space"])
        if label_space is not None and stored_space != label_space:
            raise UserError(f"{image_set.source} has other labels than the ones this run was trained on; "
                            "resume with the same data set")
        label_space = stored_space
    family = cls(family_config, label_space)
    if ckpt is None:
        family.fit_data(tuple(image_set.image_shape), label_space)
    image_shape = check_data_fits(family, image_set, bool({**DATA_OPTIONS, **data_options}["resize"]))
    dataset = ImageSetDataset(image_set, image_shape)
    source = BatchSource(dataset, batch_size, seed, family.value_range, torch_device, workers=workers)
    steps_per_epoch = source.steps_per_epoch
    total_steps = _total_steps(steps, epochs, ckpt, cls.default_epochs, steps_per_epoch)

    seed_everything(seed)
    networks = {name: net.to(torch_device) for name, net in family.build_networks().items()}
    optimizers = family.build_optimizers(networks)
    step, elapsed = 0, 0.0
    if ckpt is not None:
        step, elapsed = _restore(ckpt, networks, optimizers)
        say(f"resuming {family_name} from step {step} of {total_steps} ({checkpointer.last})")

    data_name = image_set.source if is_image_set(data_dir) else str(Path(data_dir))
    loop_info = {"seed": seed, "batch_size": source.batch_size, "data_dir": data_name,
                 "data_options": data_options, "steps_per_epoch": steps_per_epoch, "total_steps": total_steps,
                 "image_shape": list(image_shape)}
    atomic_write_json(run / "run.json", {"family": family_name, **loop_info, "device": str(torch_device),
                                         "config": family.config,
                                         "label_space": label_space.to_dict() if label_space else None}, force=True)

    def payload() -> dict[str, Any]:
        return {"family": family_name, "config": family.config,
                "label_space": label_space.to_dict() if label_space else None,
                "step": step, "epoch": step // steps_per_epoch,
                "networks": {k: v.state_dict() for k, v in networks.items()},
                "optimizers": {k: v.state_dict() for k, v in optimizers.items()},
                "rng": rng_state(), "loop": {**loop_info, "elapsed_s": elapsed, "log_window": window},
                "extra": {}}

    # -- logs ----------------------------------------------------------------------------------------
    log = CsvLog(run / "log.csv")
    eval_log = CsvLog(run / "eval.csv")
    if ckpt is not None:
        log.resume(step)
        eval_log.resume(step)
    pictures = _Pictures(family, networks, source, run, seed, torch_device)
    heldout = _heldout_data(family, data_dir, data_options, image_shape, say)
    if ckpt is None:
        pictures.real_grid()

    # -- the loop -------------------------------------------------------------------------------------
    from tqdm import tqdm

    for net in networks.values():
        net.train()
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if amp else contextlib.nullcontext
    # losses since the last log row; checkpointed so a resumed run logs the same means
    window: dict[str, list[float]] = dict((ckpt.get("loop") or {}).get("log_window", {})) if ckpt else {}
    last_saved = step if ckpt is not None else -1
    bar = tqdm(total=total_steps, initial=step, desc=family_name, disable=not progress, dynamic_ncols=True,
               file=sys.stderr)
    started = time.perf_counter() - elapsed
    try:
        while step < total_steps:
            epoch = step // steps_per_epoch
            for batch in source.batches(epoch, step % steps_per_epoch):
                with autocast():
                    losses = family.train_step(networks, optimizers, batch, step)
                step += 1
                elapsed = time.perf_counter() - started
                for key, value in losses.items():
                    value = float(value)
                    if not math.isfinite(value):
                        raise UserError(f"loss {key} became {value} at step {step}: training diverged; lower the "
                                        "learning rates (--set lr...=) and start over or resume an earlier checkpoint")
                    window.setdefault(key, []).append(value)
                bar.update(1)
                if step % log_every == 0 or step == total_steps:
                    means = {k: sum(v) / len(v) for k, v in window.items()}
                    log.append({"step": step, "epoch": step / steps_per_epoch, "time": round(elapsed, 3), **means})
                    bar.set_postfix({k: f"{v:.3g}" for k, v in means.items()}, refresh=False)
                    window = {}
                if step % checkpoint_every == 0 or step == total_steps:
                    log.flush()
                    checkpointer.save(payload())
                    last_saved = step
                if step % steps_per_epoch == 0:
                    _end_of_epoch(family, networks, pictures, heldout, log, eval_log, step, steps_per_epoch, say)
                if step >= total_steps:
                    break
    except KeyboardInterrupt:
        bar.close()
        saved = f"step {last_saved}" if last_saved >= 0 else "none yet"
        say(f"interrupted at step {step} (last checkpoint: {saved}); continue with --resume")
        raise
    finally:
        bar.close()
        if log.rows:
            log.flush()
    if last_saved != step:
        checkpointer.save(payload())
    if step % steps_per_epoch and not (eval_log.rows and eval_log.rows[-1]["step"] == step):
        _evaluate(family, networks, heldout, eval_log, step, steps_per_epoch, torch_device, say)
    pictures.samples(run / "samples" / "last.png")
    save_loss_curve(log.rows, run / "loss_curve.png", title=f"{family_name} on {Path(data_name).name}")
    extra_files = family.on_train_end(networks, run, force=True)
    say(f"{family_name}: {step} steps in {elapsed:.0f} s; checkpoint {checkpointer.last}"
        + "".join(f", {p}" for p in extra_files))
    return checkpointer.last


def _heldout_data(family: Family, data_dir, data_options: dict[str, Any], image_shape,
                  say: Callable[[str], None]) -> ImageSetDataset | None:
    """The held-out split, for families that implement evaluate(); None (with a note) when there is none."""
    if type(family).evaluate is Family.evaluate:
        return None
    options = {**DATA_OPTIONS, **data_options}
    if not options["eval_split"]:
        return None
    try:
        image_set = open_training_data(data_dir, options, split_key="eval_split")
    except UserError as exc:
        say(f"no held-out evaluation ({exc}); set another split with --set data.eval_split=NAME")
        return None
    if family.conditional and getattr(image_set, "labels", None) is None:
        return None
    return ImageSetDataset(image_set, image_shape)


def _end_of_epoch(family: Family, networks, pictures: "_Pictures", heldout, log: CsvLog, eval_log: CsvLog,
                  step: int, steps_per_epoch: int, say: Callable[[str], None]) -> None:
    pictures.epoch(step // steps_per_epoch)
    save_loss_curve(log.rows, pictures.run / "loss_curve.png", title=family.name)
    _evaluate(family, networks, heldout, eval_log, step, steps_per_epoch, pictures.device, say)


def _evaluate(family: Family, networks, heldout, eval_log: CsvLog, step: int, steps_per_epoch: int,
              device: torch.device, say: Callable[[str], None]) -> None:
    """Held-out metrics (families with evaluate() on data with a held-out split) -> eval.csv."""
    if heldout is None:
        return
    with evaluating(networks):
        metrics = family.evaluate(networks, iterate_all(heldout, 128, family.value_range, device))
    if metrics:
        epoch = step / steps_per_epoch
        eval_log.append({"step": step, "epoch": epoch, **metrics})
        eval_log.flush()
        say(f"step {step} (epoch {epoch:g}): " + ", ".join(f"held-out {k} {v:.4f}" for k, v in metrics.items()))


class _Pictures:
    """Sample grids from fixed noise and conditions, reconstruction grids and latent plots."""

    def __init__(self, family: Family, networks, source: BatchSource, run: Path, seed: int,
                 device: torch.device) -> None:
        self.family, self.networks, self.run, self.device = family, networks, run, device
        self.real, self.labels = source.fixed_items(GRID_SIZE)
        self.z = None
        if family.latent_dim:
            generator = torch.Generator().manual_seed(int(seed))
            self.z = torch.randn(self.real.shape[0], family.latent_dim, generator=generator).to(device)
        self.source = source

    def real_grid(self) -> None:
        if self.z is not None and type(self.family).sample is not Family.sample:
            save_grid(self.real, self.run / "samples" / "real.png", self.family.value_range)

    def samples(self, path: Path) -> None:
        if self.z is None:
            return
        with evaluating(self.networks):
            images = self.family.sample(self.networks, self.z, self.labels)
        if images is not None:
            save_grid(images, path, self.family.value_range)

    def epoch(self, epoch: int) -> None:
        self.samples(self.run / "samples" / f"epoch_{epoch:03d}.png")
        with evaluating(self.networks):
            recon = self.family.reconstruct(self.networks, self.real[:32], None if self.labels is None else self.labels[:32])
        if recon is not None:
            save_reconstruction_grid(self.real[:32], recon, self.run / "recon" / f"epoch_{epoch:03d}.png",
                                     self.family.value_range)
        self.latent_plot(epoch)

    def latent_plot(self, epoch: int) -> None:
        if type(self.family).encode is Family.encode:
            return
        dataset = self.source.dataset
        count = min(LATENT_PLOT_ITEMS, len(dataset))
        means, colours = [], []
        with evaluating(self.networks):
            for batch in iterate_all(_Head(dataset, count), 256, self.family.value_range, self.device):
                means.append(self.family.encode(self.networks, batch.images, batch.labels).float().cpu())
                if batch.labels is not None:
                    colours.append(batch.labels[:, 0].float().cpu())
        space = self.family.label_space or getattr(dataset.image_set, "label_space", None)
        colour_name = space.names[0] if space is not None else ""
        save_latent_plot(torch.cat(means), torch.cat(colours).numpy() if colours else None,
                         self.run / "latent" / f"epoch_{epoch:03d}.png", colour_name=colour_name,
                         title=f"{self.family.name} latent means, epoch {epoch}")


class _Head:
    """The first ``count`` items of an ImageSetDataset (same interface as far as iterate_all needs)."""

    def __init__(self, dataset: ImageSetDataset, count: int) -> None:
        self.dataset, self.count = dataset, count
        self.labels = dataset.labels[:count] if dataset.labels is not None else None

    def __len__(self) -> int:
        return self.count

    def image(self, index: int) -> torch.Tensor:
        return self.dataset.image(index)
