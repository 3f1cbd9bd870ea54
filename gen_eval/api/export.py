"""`export`: a gen-eval checkpoint to parity-checked ONNX files (needs torch: the ``train`` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gen_eval.exporter.graphs import ExportResult


def export(checkpoint: str | Path, out: str | Path, *, verify: bool = True, fp16: bool = False,
           force: bool = False) -> list[ExportResult]:
    """Export ``checkpoint``'s generator to ``out`` (a VAE's encoder to ``<out stem>.encoder.onnx``),
    each verified against a float64 run of the module (see :mod:`gen_eval.exporter.parity`).
    Returns the :class:`~gen_eval.exporter.graphs.ExportResult` of each file."""
    from gen_eval.exporter.graphs import export_checkpoint

    return export_checkpoint(checkpoint, out, verify=verify, fp16=fp16, force=force)


__all__ = ["export"]
