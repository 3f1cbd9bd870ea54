"""The one training loop every family runs in.

The loop owns the device, seeding, data order, checkpoints and logs; a family (gen_eval.trainers.base)
owns its networks, optimisers and one training step. :func:`train` checks every setting first
(gen_eval.trainers.config), then claims the run folder (gen_eval.trainers.runfolder, which also
describes its layout), then runs :func:`_run_steps`, the step loop itself.

Resume: the data order of every epoch depends only on (seed, epoch) and the checkpoint holds the
optimiser and RNG states (gen_eval.trainers.rng), so on CPU a run resumed from any checkpoint reaches
bit-identical weights to an uninterrupted run with the same seed.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gen_eval.data.labels import LabelSpace
from gen_eval.errors import UserError, param, render
from gen_eval.fileio import atomic_write_json
from gen_eval.trainers import get_family
from gen_eval.trainers.base import Family
from gen_eval.trainers.checkpoint import require_gen_eval_checkpoint
from gen_eval.trainers.config import DATA_OPTIONS, check_run_options, set_option, split_overrides
from gen_eval.trainers.logs import LATENT_PROJECTIONS, CsvLog, save_loss_curve
from gen_eval.trainers.pictures import Pictures, check_colour_by, evaluating
from gen_eval.trainers.rng import rng_state, seed_everything
from gen_eval.trainers.runfolder import (
    Checkpointer,
    RunLock,
    check_run_folder,
    clean_run_folder,
    load_resumable,
    restore,
    resumed_settings,
    total_steps,
)
from gen_eval.trainers.torchdata import BatchSource, ImageSetDataset, iterate_all
from gen_eval.trainers.torchdevice import describe_device, resolve_device
from gen_eval.trainers.trainingdata import (
    check_data_fits,
    heldout_data,
    is_image_set,
    open_training_data,
    training_label_space,
)

log = logging.getLogger("gen_eval.train")


FINISH_BATCH = 64     # images per batch handed to Family.finish_training (BatchNorm re-estimation)


def train(family_name: str, data_dir: str | os.PathLike | Any, out_dir: str | os.PathLike, *,
          steps: int | None = None, epochs: int | None = None, batch_size: int | None = None,
          device: str = "auto", seed: int | None = None, resume: bool = False,
          config_overrides: dict[str, Any] | None = None, force: bool = False,
          checkpoint_every: int = 500, keep_checkpoints: bool = False, log_every: int = 10,
          amp: bool = False, workers: int = 2, progress: bool = False, latent_projection: str = "pca",
          colour_by: str | None = None) -> Path:
    """Train ``family_name`` on the data in ``data_dir``; returns ``<out_dir>/checkpoints/last.pt``.

    ``data_dir`` is a data set path (any format gen_eval.data.open_dataset reads) or an ImageSet object.

    ``steps`` or ``epochs`` give the total length (default: the family's ``default_epochs``); on resume
    they may extend it. ``config_overrides`` are ``--set`` values: family settings by name, data-reader
    options as ``data.KEY`` (``data.attribute``, ``data.split``, ``data.resize``, ...). Messages go to the
    logger ``gen_eval.train``; ``progress`` draws a progress bar on stderr.
    ``latent_projection`` (pca or tsne) and ``colour_by`` (a label or categorical head of the data) shape
    the VAE families' latent plots.
    """
    # -- every check before any file is written ----------------------------------------------------------
    check_run_options(steps=steps, epochs=epochs, batch_size=batch_size, seed=seed,
                      checkpoint_every=checkpoint_every, log_every=log_every, workers=workers)
    cls = get_family(family_name)
    if latent_projection not in LATENT_PROJECTIONS:
        raise UserError(f"latent projection {latent_projection!r}: choose one of {', '.join(LATENT_PROJECTIONS)}")
    run = Path(out_dir)
    torch_device = resolve_device(device)
    if amp and torch_device.type != "cuda":
        raise UserError(f"{param('amp', True)} needs a CUDA device; drop {param('amp', True)} or use {param('device', 'cuda')}")
    family_overrides, data_overrides = split_overrides(config_overrides)
    checkpointer = Checkpointer(run, keep_checkpoints)
    with RunLock(run):  # before the folder is read: a second run on it is refused while this one trains
        check_run_folder(run, resume, force)
        ckpt = load_resumable(run, checkpointer, family_name) if resume else None
        if ckpt is not None:
            family_config, data_options, seed, batch_size = resumed_settings(cls, ckpt, family_overrides,
                                                                             data_overrides, seed, batch_size)
            require_gen_eval_checkpoint(ckpt, checkpointer.last, resume=True)  # optimiser and RNG states are there
        else:
            seed = 0 if seed is None else int(seed)
            batch_size = int(batch_size or cls.default_batch_size)
            family_config = cls.resolve_config(family_overrides)
            data_options = data_overrides

        image_set = open_training_data(data_dir, data_options)
        label_space = training_label_space(cls, image_set, ckpt)
        colour_problem = check_colour_by(label_space or getattr(image_set, "label_space", None), colour_by)
        if colour_problem:
            raise UserError(colour_problem)
        family = cls(family_config, label_space)
        if ckpt is None:
            family.fit_data(tuple(image_set.image_shape), label_space)
        image_shape = check_data_fits(family, image_set, bool({**DATA_OPTIONS, **data_options}["resize"]))
        source = BatchSource(ImageSetDataset(image_set, image_shape), batch_size, seed, family.value_range,
                             torch_device, workers=workers)
        steps_per_epoch = source.steps_per_epoch
        family.steps_per_epoch = steps_per_epoch
        planned = total_steps(steps, epochs, ckpt, cls.default_epochs, steps_per_epoch)
        if ckpt is not None and planned < int(ckpt["step"]):
            raise UserError(f"this run is already at step {ckpt['step']}, past the {planned} steps asked for; give "
                            f"{param('steps')} above {ckpt['step']} to train it further, or start a new run with "
                            f"{param('force', True)}")
        seed_everything(seed)
        networks = {name: net.to(torch_device) for name, net in family.build_networks().items()}
        optimizers = family.build_optimizers(networks)

        # -- the run folder ------------------------------------------------------------------------------------
        clean_run_folder(run, resumed=ckpt is not None)
        data_name = image_set.source if is_image_set(data_dir) else str(Path(data_dir))
        loop_info = {"seed": seed, "batch_size": source.batch_size, "data_dir": data_name,
                     "data_options": data_options, "steps_per_epoch": steps_per_epoch, "total_steps": planned,
                     "image_shape": list(image_shape)}
        r = _Run(family_name, family, networks, optimizers, source, checkpointer, label_space, loop_info, torch_device,
                 log=CsvLog(run / "log.csv"), eval_log=CsvLog(run / "eval.csv"))
        if ckpt is not None:
            r.step, r.elapsed = restore(ckpt, networks, optimizers)
            r.window = dict((ckpt.get("loop") or {}).get("log_window", {}))
            r.extra = dict(ckpt.get("extra") or {})
            r.last_saved = r.step
            log.info("resuming %s from step %d of %d (%s)", family_name, r.step, planned, checkpointer.last)
        atomic_write_json(run / "run.json", {"family": family_name, **loop_info, "device": str(torch_device),
                                             "config": family.config_dict(),
                                             "label_space": label_space.to_dict() if label_space else None}, force=True)
        if ckpt is not None:
            r.log.resume(r.step)
            r.eval_log.resume(r.step)
        r.pictures = Pictures(family, networks, source, run, seed, torch_device, latent_projection, colour_by)
        r.heldout = heldout_data(family, data_dir, data_options, image_shape)
        if ckpt is None:
            r.pictures.real_grid()
        log.info("runtime: %s", describe_device(torch_device, device))

        _run_steps(r, planned, log_every, checkpoint_every, amp, progress)

        # -- the end ---------------------------------------------------------------------------------------
        if r.finish():
            r.last_saved = -1
        if r.last_saved != r.step:
            r.save()
        if r.step % steps_per_epoch and not (r.eval_log.rows and r.eval_log.rows[-1]["step"] == r.step):
            r.evaluate()
        r.pictures.samples(run / "samples" / "last.png")
        save_loss_curve(r.log.rows, run / "loss_curve.png", title=f"{family_name} on {Path(data_name).name}")
        extra_files = family.on_train_end(networks, run, force=True)
        log.info("%s: %d steps in %.0f s; checkpoint %s%s", family_name, r.step, r.elapsed, checkpointer.last,
                 "".join(f", {p}" for p in extra_files))
        return checkpointer.last


def _run_steps(r: _Run, planned: int, log_every: int, checkpoint_every: int, amp: bool, progress: bool) -> None:
    """The step loop: train steps, check losses, log means, checkpoint, and the end-of-epoch work."""
    from tqdm import tqdm

    for net in r.networks.values():
        net.train()
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if amp else contextlib.nullcontext
    spe = r.source.steps_per_epoch
    bar = tqdm(total=planned, initial=r.step, desc=r.family_name, disable=not progress, dynamic_ncols=True,
               file=sys.stderr)
    started = time.perf_counter() - r.elapsed
    try:
        while r.step < planned:
            for batch in r.source.batches(r.step // spe, r.step % spe):
                with autocast():
                    losses = r.family.train_step(r.networks, r.optimizers, batch, r.step)
                r.step += 1
                r.elapsed = time.perf_counter() - started
                r.add_losses(losses)
                bar.update(1)
                if r.step % log_every == 0 or r.step == planned:
                    bar.set_postfix({k: f"{v:.3g}" for k, v in r.log_means().items()}, refresh=False)
                if r.step % checkpoint_every == 0 or r.step == planned:
                    r.log.flush()
                    r.save()
                if r.step % spe == 0:
                    r.end_of_epoch()
                if r.step >= planned:
                    break
    except KeyboardInterrupt:
        bar.close()
        saved = f"step {r.last_saved}" if r.last_saved >= 0 else "none yet"
        log.info("interrupted at step %d (last checkpoint: %s); continue with %s", r.step, saved, render(param("resume", True)))
        raise
    finally:
        bar.close()
        if r.log.rows:
            r.log.flush()


@dataclass
class _Run:
    """A run's state between steps, and what the loop does with it (logs, checkpoints, epoch ends)."""

    family_name: str
    family: Family
    networks: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    source: BatchSource
    checkpointer: Checkpointer
    label_space: LabelSpace | None
    loop_info: dict[str, Any]
    device: torch.device
    log: CsvLog
    eval_log: CsvLog
    pictures: Pictures | None = None
    heldout: ImageSetDataset | None = None
    step: int = 0
    elapsed: float = 0.0
    last_saved: int = -1
    # losses since the last log row; checkpointed so a resumed run logs the same means
    window: dict[str, list[float]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)    # the checkpoint's "extra" (Family.finish_training)
    last_pictures: int = 0                                 # step of the last epoch's grids

    def add_losses(self, losses: dict[str, float]) -> None:
        for key, value in losses.items():
            value = float(value)
            if not math.isfinite(value):
                raise UserError(f"loss {key} became {value} at step {self.step}: training diverged; lower the "
                                f"learning rates ({set_option('lr...', '')}) and start over or resume an earlier checkpoint")
            self.window.setdefault(key, []).append(value)

    def log_means(self) -> dict[str, float]:
        """Append the window's means to log.csv and start a new window."""
        means = {k: sum(v) / len(v) for k, v in self.window.items()}
        spe = self.source.steps_per_epoch
        self.log.append({"step": self.step, "epoch": self.step / spe, "time": round(self.elapsed, 3), **means})
        self.window = {}
        return means

    def payload(self) -> dict[str, Any]:
        return {"family": self.family_name, "config": self.family.config_dict(),
                "label_space": self.label_space.to_dict() if self.label_space else None,
                "step": self.step, "epoch": self.step // self.source.steps_per_epoch,
                "networks": {k: v.state_dict() for k, v in self.networks.items()},
                "optimizers": {k: v.state_dict() for k, v in self.optimizers.items()},
                "rng": rng_state(), "loop": {**self.loop_info, "elapsed_s": self.elapsed, "log_window": self.window},
                "extra": self.checkpoint_extra()}

    def checkpoint_extra(self) -> dict[str, Any]:
        extra = dict(self.extra)
        judges = self.family.training_judges()
        if judges:
            extra["training_judges"] = judges
        return extra

    def save(self) -> None:
        self.checkpointer.save(self.payload())
        self.last_saved = self.step

    def finish(self) -> bool:
        """The family's last changes to the weights (Family.finish_training); True when it made any."""
        images = (batch.images for batch in iterate_all(self.source.dataset, FINISH_BATCH, self.family.value_range,
                                                        self.device))
        done = self.family.finish_training(self.networks, images)
        if done:
            self.extra.update(done)
            log.info("%s: %s", self.family_name, ", ".join(f"{k} {v}" for k, v in done.items()))
            self.evaluate()
        return bool(done)

    def keep_if_best(self, metrics: dict[str, float], epoch: float) -> None:
        """Keep a copy of the checkpoint when the family's selection metric beats every earlier one."""
        name = self.family.selection_metric
        if name and name in metrics:
            earlier = [row[name] for row in self.eval_log.rows[:-1] if name in row]
            if not earlier or metrics[name] > max(earlier):
                payload = self.payload()
                payload["extra"]["selected_by"] = {"metric": name, "value": float(metrics[name])}
                path = self.checkpointer.keep_best(payload, epoch, metrics[name])
                log.info("best %s so far: %.4f, kept as %s", name, metrics[name], path)

    def end_of_epoch(self) -> None:
        if self.step - self.last_pictures >= self.family.steps_between_pictures:
            self.pictures.epoch(self.step // self.source.steps_per_epoch)
            self.last_pictures = self.step
        save_loss_curve(self.log.rows, self.pictures.run / "loss_curve.png", title=self.family.name)
        self.evaluate()

    def evaluate(self) -> None:
        """Held-out metrics (families with evaluate() on data with a held-out split) -> eval.csv."""
        if self.heldout is None:
            return
        with evaluating(self.networks):
            metrics = self.family.evaluate(self.networks, iterate_all(self.heldout, 128, self.family.value_range,
                                                                      self.device))
        if metrics:
            epoch = self.step / self.source.steps_per_epoch
            self.eval_log.append({"step": self.step, "epoch": epoch, **metrics})
            self.eval_log.flush()
            self.keep_if_best(metrics, epoch)
            log.info("step %d (epoch %g): %s", self.step, epoch,
                     ", ".join(f"held-out {k} {v:.4f}" for k, v in metrics.items()))
