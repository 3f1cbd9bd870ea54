"""torch's side of the one device grammar (``auto|cpu|cuda[:N]``, gen_eval.devices): the device a run
trains on, and the ``runtime:`` line that says which."""

from __future__ import annotations

import torch

from gen_eval.devices import parse_device
from gen_eval.errors import UserError, param, render


def resolve_device(device: str) -> torch.device:
    """``auto|cpu|cuda[:N]`` (gen_eval.devices) -> torch.device; auto picks CUDA when torch sees a GPU."""
    kind, index = parse_device(device)
    if kind == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise UserError(f"{param('device', device)} but no CUDA device is visible; use {param('device', 'cpu')} (or auto)")
    if index >= torch.cuda.device_count():
        raise UserError(f"{param('device', device)}: there is no GPU cuda:{index}; this machine has "
                        f"{torch.cuda.device_count()} (cuda:0 to cuda:{torch.cuda.device_count() - 1})")
    return torch.device("cuda", index) if ":" in str(device) else torch.device("cuda")


def describe_device(device: torch.device, asked: str) -> str:
    """One line like the evaluator's ``runtime:`` line: torch's version, the device, and why."""
    if device.type == "cuda":
        return f"torch {torch.__version__} on {device} ({torch.cuda.get_device_name(device)})"
    why = f"; {render(param('device', 'auto'))}: torch sees no CUDA device" if asked.strip().lower() == "auto" else ""
    return f"torch {torch.__version__} on cpu ({torch.get_num_threads()} threads){why}"
