"""Checkpoint -> ONNX export with parity checks and metadata (torch, onnx).

Public API (the files it writes follow the ONNX model contract of docs/contract.md)::

    export_checkpoint(checkpoint, out, *, verify=True, fp16=False, force=False) -> list[ExportResult]
    export_graph(graph, out, *, family, verify=True, fp16=False, force=False) -> ExportResult
    export_ta_classifier(checkpoint, out, *, label_space=None, features=False, verify=True, fp16=False, force=False)
    export_inception(weights, out, *, verify=True, force=False) -> ExportResult
    fetch_inception(out, *, url=FID_WEIGHTS_URL, force=False) -> Path       (torch-free)

Names are imported on first use, so ``gen_eval.exporter.fid_weights`` works where torch is absent.
"""

from __future__ import annotations

import importlib

_PUBLIC = {
    "ExportResult": "gen_eval.exporter.graphs",
    "export_checkpoint": "gen_eval.exporter.graphs",
    "export_graph": "gen_eval.exporter.graphs",
    "export_ta_classifier": "gen_eval.exporter.classifier",
    "export_inception": "gen_eval.exporter.inception",
    "fetch_inception": "gen_eval.exporter.fid_weights",
}
__all__ = list(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'gen_eval.exporter' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)
