"""The one checkpoint format that trainers write and the exporter reads.

A checkpoint is one ``.pt`` file holding only tensors and plain Python values, so it loads with
``torch.load(weights_only=True)`` and a file carrying a pickle payload is refused without running it::

    {
      "format": "gen_eval.checkpoint", "version": 1,
      "family": "acgan",                      # trainer family name (gen_eval.trainers registry)
      "config": {...},                        # JSON-able hyperparameters; rebuilds the networks
      "label_space": {...} | None,            # LabelSpace.to_dict() for conditional families
      "step": 1200, "epoch": 3,
      "networks": {"generator": state_dict, "discriminator": state_dict, ...},
      "optimizers": {"generator": state_dict, ...},
      "rng": {"torch": ByteTensor, "numpy": {...}, "python": [...] },  # for exact resume
      "loop": {"seed": 0, "batch_size": 64, "data_dir": "...", "data_options": {...}, "total_steps": ...,
               "steps_per_epoch": ..., "image_shape": [3, 64, 64], "elapsed_s": ..., "log_window": {...}},
                                               # written by gen_eval.trainers.loop to resume a run exactly
      "extra": {...},                          # family-specific plain values
    }
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from gen_eval.errors import UserError
from gen_eval.fileio import atomic_path
from gen_eval.inputfiles import require_regular_file

MAX_CHECKPOINT_BYTES = 16 * 2**30
FORMAT = "gen_eval.checkpoint"
VERSION = 1


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any], force: bool = True) -> Path:
    """Write ``payload`` (see module docstring; format/version are added) atomically."""
    data = {"format": FORMAT, "version": VERSION, **payload}
    with atomic_path(path, force=force) as tmp:
        torch.save(data, tmp)
    return Path(path)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a gen-eval checkpoint safely (``weights_only=True``); one-line UserError on any problem."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"checkpoint {path} does not exist; give the path of a .pt file written by 'gen-eval train'")
    require_regular_file(path, "checkpoint", MAX_CHECKPOINT_BYTES)  # not a FIFO or device; not absurdly large
    if path.stat().st_size == 0:
        raise UserError(f"checkpoint {path} is empty (0 bytes); use another checkpoint, e.g. the run's last.pt")
    with open(path, "rb") as handle:
        first_byte = handle.read(1)
    if not zipfile.is_zipfile(path) and first_byte != b"\x80":  # torch.save writes a zip (or, before 1.6, a pickle)
        raise UserError(f"cannot read checkpoint {path}: not a complete PyTorch file (truncated, or another kind of "
                        "file); give a .pt written by 'gen-eval train'")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's message explains how to load the file unsafely; only name what was refused
        found = re.search(r"WeightsUnpickler error: ([^\n]*?)(?: was not an allowed global| Please|\n|$)", str(exc))
        first = found.group(1) if found else "unsupported object"
        raise UserError(
            f"refusing to load {path}: it holds Python objects that are not plain weights ({first[:120]}); "
            "only checkpoints of tensors and plain values are loaded"
        ) from None
    except Exception as exc:  # noqa: BLE001 - any failure to parse an untrusted file is a one-line error
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot read checkpoint {path}: {msg[:160]} (truncated or not a torch file?)") from None
    return data


def is_gen_eval_checkpoint(data: Any) -> bool:
    return isinstance(data, dict) and data.get("format") == FORMAT


def require_gen_eval_checkpoint(data: Any, path: str | os.PathLike, resume: bool = False) -> dict[str, Any]:
    """``data`` as a gen-eval checkpoint, its entries of the right types; one-line UserError otherwise.

    A file that loads with ``weights_only=True`` may still hold anything plain: a config that is a list,
    networks that are strings, a negative step. With ``resume`` the optimiser and RNG states a resumed
    run needs must be there too.
    """
    if not is_gen_eval_checkpoint(data):
        raise UserError(f"{path} is not a gen-eval checkpoint (no 'format': {FORMAT!r}); "
                        "for the iCLEVR reference classifier use 'gen-eval export-classifier'")
    if data.get("version") != VERSION:
        raise UserError(f"{path} is checkpoint version {_short(data.get('version'))}; this gen-eval reads version {VERSION}")
    for key in ("family", "config", "networks") + (("optimizers", "rng", "step") if resume else ()):
        if key not in data:
            what = "; it cannot be resumed, start a new run" if resume else "; it is incomplete"
            raise UserError(f"checkpoint {path} has no {key!r} entry{what}")

    def bad(key: str, want: str) -> UserError:
        return UserError(f"checkpoint {path}: {key!r} is {type(data[key]).__name__} {_short(data[key])}, expected "
                         f"{want}; the file is damaged or not written by 'gen-eval train'")

    if not isinstance(data["family"], str):
        raise bad("family", "a family name")
    if not isinstance(data["config"], dict) or not all(isinstance(k, str) for k in data["config"]):
        raise bad("config", "a dict of settings")
    if not isinstance(data["networks"], dict) or not all(
            isinstance(state, dict) and all(isinstance(t, torch.Tensor) for t in state.values())
            for state in data["networks"].values()):
        raise bad("networks", "a dict of state dicts (name -> tensor)")
    if data.get("label_space") is not None and not isinstance(data["label_space"], dict):
        raise bad("label_space", "a label space dict or None")
    if "step" in data and (not isinstance(data["step"], int) or isinstance(data["step"], bool) or data["step"] < 0):
        raise bad("step", "a non-negative integer")
    if resume:
        if not isinstance(data["optimizers"], dict) or not all(isinstance(v, dict) for v in data["optimizers"].values()):
            raise bad("optimizers", "a dict of optimiser state dicts")
        rng = data["rng"]
        if not isinstance(rng, dict) or not {"torch", "numpy", "python"} <= set(rng):
            raise UserError(f"checkpoint {path} has no complete random-number state ('rng': torch, numpy, python); "
                            "it cannot be resumed exactly: start a new run")
        if data.get("loop") is not None and not isinstance(data["loop"], dict):
            raise bad("loop", "a dict")
    return data


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
