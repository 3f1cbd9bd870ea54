"""The run folder: what a fresh run may claim, what ``--force`` clears, checkpoints, and the resume policy.

Layout::

    RUN/run.json                    what was run (family, data, seed, batch size, config)
    RUN/checkpoints/last.pt         written every --checkpoint-every steps and at the end
    RUN/checkpoints/step_000500.pt  only with keep_checkpoints
    RUN/checkpoints/epochN_scoreX.pt each new best held-out score (families with a selection metric)
    RUN/log.csv, RUN/loss_curve.png losses (means over log_every steps)
    RUN/eval.csv                    held-out metrics per epoch (families with evaluate(), data with a held-out split)
    RUN/samples/epoch_001.png ...   fixed-noise sample grid per epoch, samples/last.png at the end,
                                    samples/real.png: the real images whose conditions the grids use
    RUN/recon/, RUN/latent/         VAE families: reconstruction grids and 2-D latent plots per epoch

Resume policy: a run continues only from its own ``checkpoints/last.pt``, with the stored settings,
seed and batch size; ``--set``/``--seed``/``--batch-size`` given again must agree with them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from gen_eval.errors import UserError, param
from gen_eval.fileio import FolderLock, remove_stale_temp_files
from gen_eval.trainers.base import Family
from gen_eval.trainers.checkpoint import load_checkpoint, require_gen_eval_checkpoint, save_checkpoint
from gen_eval.trainers.config import DATA_OPTIONS, set_option
from gen_eval.trainers.rng import set_rng_state

RUN_OUTPUTS = ("run.json", "log.csv", "eval.csv", "loss_curve.png")


class Checkpointer:
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

    def keep_best(self, payload: dict[str, Any], epoch: float, score: float) -> Path:
        """A copy named after the epoch and its held-out score (``epochN_scoreX.pt``)."""
        path = self.folder / f"epoch{epoch:g}_score{score:.2f}.pt"
        save_checkpoint(path, payload, force=True)
        return path


def check_run_folder(run: Path, resume: bool, force: bool) -> None:
    """A folder (not a file); a fresh run needs it absent or empty, or --force. Writes nothing."""
    if run.exists() and not run.is_dir():
        raise UserError(f"{run} is a file; give a folder for the run ({param('out_dir')})")
    if not resume and not force and run.is_dir() and any(run.iterdir()):
        raise UserError(f"{run} exists and is not empty; pass {param('resume', True)} to continue that run "
                        f"or {param('force', True)} to start over in it")


def clean_run_folder(run: Path, resumed: bool) -> None:
    """Once every setting is checked: --force clears an earlier run's outputs (and nothing else);
    a resumed run drops temp files a process killed mid-write left behind."""
    if not resumed and run.is_dir():
        paths = [run / name for name in RUN_OUTPUTS]
        for folder, pattern in (("checkpoints", "*.pt"), ("samples", "*.png"), ("recon", "*.png"),
                                ("latent", "*.png")):
            paths += list((run / folder).glob(pattern))
        for path in paths:
            if path.is_file():
                path.unlink()
    if run.is_dir():
        remove_stale_temp_files(run, recursive=True)


def load_resumable(run: Path, checkpointer: Checkpointer, family_name: str) -> dict[str, Any]:
    if not checkpointer.last.is_file():
        raise UserError(f"nothing to resume: {checkpointer.last} does not exist; start the run without {param('resume', True)}")
    ckpt = require_gen_eval_checkpoint(load_checkpoint(checkpointer.last), checkpointer.last)
    if ckpt["family"] != family_name:
        raise UserError(f"{run} is a {ckpt['family']} run; resume it with 'gen-eval train {ckpt['family']}'")
    return ckpt


def _overrides_match(stored: dict[str, Any], requested: dict[str, Any], what: str) -> None:
    for key, value in requested.items():
        if key in stored and stored[key] != value:
            raise UserError(f"this run was trained with {what}{key}={stored[key]}; resuming with {value} "
                            f"is not allowed: drop {set_option(what + key, value)} or start a new run with {param('force', True)}")


def resumed_settings(cls: type[Family], ckpt: dict[str, Any], family_overrides: dict[str, Any],
                     data_overrides: dict[str, Any], seed: int | None, batch_size: int | None
                     ) -> tuple[dict[str, Any], dict[str, Any], int, int]:
    """The stored config, data options, seed and batch size; any --set/--seed/--batch-size must agree."""
    loop_state = ckpt.get("loop") or {}
    family_config = dict(ckpt["config"])
    requested = cls.resolve_config(family_overrides)
    _overrides_match(family_config, {k: requested[k] for k in family_overrides}, "")
    data_options = dict(loop_state.get("data_options", {}))
    _overrides_match({**DATA_OPTIONS, **data_options}, data_overrides, "data.")
    for name, given, stored in (("seed", seed, loop_state.get("seed")),
                                ("batch_size", batch_size, loop_state.get("batch_size"))):
        if given is not None and stored is not None and given != stored:
            raise UserError(f"this run used {param(name, stored)}; resume with the same value (or leave it out)")
    return (family_config, data_options, int(loop_state.get("seed", 0)),
            int(loop_state.get("batch_size", batch_size or cls.default_batch_size)))


def total_steps(steps: int | None, epochs: int | None, ckpt: dict[str, Any] | None, default_epochs: int,
                steps_per_epoch: int) -> int:
    """``steps``, else ``epochs``, else what the resumed run planned, else the family's default epochs."""
    if steps is not None:
        return int(steps)
    if epochs is not None:
        return int(epochs) * steps_per_epoch
    if ckpt is not None:
        return int((ckpt.get("loop") or {}).get("total_steps", ckpt["step"]))
    return default_epochs * steps_per_epoch


def restore(ckpt: dict[str, Any], networks: dict[str, nn.Module],
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
                        f"this run ({type(exc).__name__}: {detail}); start a new run with {param('force', True)}") from None


class RunLock(FolderLock):
    """The run folder's lock (gen_eval.fileio.FolderLock), taken before anything in the folder is read,
    cleared or written and held while training: a second training on a live folder is refused, with
    --resume, --force or neither. --force clears files inside the folder, never the folder, so the
    lock holds."""

    def __init__(self, run: Path) -> None:
        super().__init__(run, "'gen-eval train'", "out_dir")
