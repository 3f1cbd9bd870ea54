"""`export`: a gen-eval checkpoint to parity-checked ONNX files (needs torch: the ``train`` extra)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gen_eval.exporter.graphs import ExportResult


def export(checkpoint: str | Path, out: str | Path, *, verify: bool = True, fp16: bool = False,
           force: bool = False, settings: Mapping[str, Any] | None = None) -> list[ExportResult]:
    """Export ``checkpoint``'s generator to ``out`` (a VAE's encoder to ``<out stem>.encoder.onnx``),
    each verified against a float64 run of the module (see :mod:`gen_eval.exporter.parity`). Needs torch
    (the ``train`` extra); the files it writes are read by every other job with onnxruntime only.

    Args:
        checkpoint: a gen-eval training checkpoint (``runs/<name>/checkpoints/last.pt``).
        out: the generator's .onnx path.
        verify: compare the ONNX outputs with a float64 run of the module before keeping the file.
        fp16: store the weights in float16 (about half the size; the parity check then compares with
            torch float32).
        force: overwrite existing files.
        settings: the family's export-time settings (a diffusion model's ``sample_steps``, ``guidance``,
            ``sample_shift``), checked like training settings; other keys are refused.

    Returns:
        The :class:`~gen_eval.exporter.graphs.ExportResult` of each file written.

    Raises:
        UserError: on an unreadable checkpoint, a failed parity check, an output that exists without
            ``force`` or an argument of the wrong type (one line).

    Example:
        >>> gen_eval.export("runs/acgan/checkpoints/last.pt", "acgan.onnx")  # doctest: +SKIP
    """
    from gen_eval.api.inputs import PATH, check_types
    from gen_eval.exporter.graphs import export_checkpoint

    check_types(checkpoint=(checkpoint, PATH), out=(out, PATH), verify=(verify, bool), fp16=(fp16, bool),
                force=(force, bool), settings=(settings, dict))

    return export_checkpoint(checkpoint, out, verify=verify, fp16=fp16, force=force, settings=settings)


__all__ = ["export"]
