"""`export`: a gen-eval checkpoint to parity-checked ONNX files (needs torch: the ``train`` extra)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def export(checkpoint: str | Path, out: str | Path, *, verify: bool = True, fp16: bool = False,
           force: bool = False, settings: Mapping[str, Any] | None = None):
    """Export ``checkpoint``'s generator to ``out`` (a VAE's encoder to ``<out stem>.encoder.onnx``),
    each verified against a float64 run of the module (see :mod:`gen_eval.exporter.parity`).

    ``settings`` are the family's export-time settings (a diffusion model's ``sample_steps``,
    ``guidance``, ``sample_shift``), checked like training settings; other keys are refused.
    Returns the :class:`~gen_eval.exporter.graphs.ExportResult` of each file."""
    from gen_eval.exporter.graphs import export_checkpoint

    return export_checkpoint(checkpoint, out, verify=verify, fp16=fp16, force=force, settings=settings)


__all__ = ["export"]
