"""Parity check: onnxruntime (CPU) against the PyTorch module on the same seeded inputs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from gen_eval import contract
from gen_eval.data.labels import LabelSpace
from gen_eval.errors import GateFailed
from gen_eval.trainers.base import ExportGraph

FP32_TOLERANCE = 1e-4            # absolute
FP16_RELATIVE_TOLERANCE = 1e-2   # times each output's range (max - min of the torch output)
PARITY_BATCH_SIZES = (1, 8)
PARITY_SEED = 0


@dataclass
class ParityReport:
    max_abs_diff: dict[int, float] = field(default_factory=dict)   # batch size -> max |onnx - torch|
    tolerance: dict[int, float] = field(default_factory=dict)      # batch size -> allowed max |diff|
    provider: str = ""

    def describe(self) -> str:
        diffs = ", ".join(f"batch {b}: {d:.2e}" for b, d in self.max_abs_diff.items())
        tols = sorted(set(f"{t:.1e}" for t in self.tolerance.values()))
        return f"max |onnx - torch| {diffs} (tolerance {', '.join(tols)}; onnxruntime {self.provider})"


def _labels(label_space: LabelSpace | None, batch: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Valid condition vectors: 1-3 names for multilabel, one choice per head, 0/1 for binary."""
    out = np.zeros((batch, size), dtype=np.float32)
    for row in out:
        if label_space is not None and label_space.kind == "categorical":
            for _, sl in label_space.head_slices():
                row[sl.start + rng.integers(sl.stop - sl.start)] = 1.0
        elif label_space is not None and label_space.kind == "multilabel":
            row[rng.choice(size, size=min(size, int(rng.integers(1, 4))), replace=False)] = 1.0
        else:
            row[:] = rng.integers(0, 2, size=size)
    return out


def parity_inputs(graph: ExportGraph, batch: int, seed: int = PARITY_SEED) -> list[np.ndarray]:
    """Seeded inputs in the graph's input order: z ~ N(0, 1), valid labels, images uniform in the value range."""
    rng = np.random.default_rng(seed)
    arrays = []
    for name, shape in zip(graph.input_names, graph.input_shapes):
        full = (batch, *shape)
        if name == contract.INPUT_LABELS:
            arrays.append(_labels(graph.label_space, batch, shape[-1], rng))
        elif name == contract.INPUT_IMAGE:
            lo, hi = graph.value_range
            arrays.append(rng.uniform(lo, hi, size=full).astype(np.float32))
        else:
            arrays.append(rng.standard_normal(full).astype(np.float32))
    return arrays


def _torch_outputs(module: torch.nn.Module, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    was_training = module.training
    module.eval()
    try:
        with torch.inference_mode():
            outputs = module(*(torch.from_numpy(a) for a in inputs))
    finally:
        module.train(was_training)
    if isinstance(outputs, torch.Tensor):
        outputs = (outputs,)
    return [o.detach().float().cpu().numpy() for o in outputs]


def cpu_session(model_bytes: bytes):
    """An onnxruntime session on the CPU provider (the reference for parity)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def check_parity(module: torch.nn.Module, model_bytes: bytes, graph: ExportGraph, *, fp16: bool = False,
                 batch_sizes: Sequence[int] = PARITY_BATCH_SIZES, seed: int = PARITY_SEED) -> ParityReport:
    """Run both on the same seeded inputs; raise GateFailed if an output differs beyond tolerance."""
    session = cpu_session(model_bytes)
    report = ParityReport(provider=session.get_providers()[0])
    onnx_names = [o.name for o in session.get_outputs()]
    for batch in batch_sizes:
        inputs = parity_inputs(graph, batch, seed)
        expected = _torch_outputs(module, inputs)
        got = session.run(graph.output_names, dict(zip(graph.input_names, inputs)))
        if len(expected) != len(got):
            raise GateFailed(f"the {graph.role} module returns {len(expected)} outputs, the ONNX graph "
                             f"{len(got)} ({', '.join(onnx_names)})")
        worst, allowed = 0.0, np.inf
        for name, ref, out in zip(graph.output_names, expected, got):
            if ref.shape != out.shape:
                raise GateFailed(f"parity check failed: output {name!r} has shape {out.shape} in ONNX, "
                                 f"{ref.shape} in torch (batch {batch})")
            diff = float(np.max(np.abs(out.astype(np.float64) - ref))) if ref.size else 0.0
            if not np.isfinite(out).all() and np.isfinite(ref).all():
                diff = float("inf")
            if fp16:
                scale = float(ref.max() - ref.min()) if ref.size else 0.0
                tolerance = FP16_RELATIVE_TOLERANCE * (scale if scale > 0 else max(float(np.abs(ref).max()), 1.0))
            else:
                tolerance = FP32_TOLERANCE
            if diff > tolerance:
                raise GateFailed(
                    f"parity check failed for the {graph.role} graph: output {name!r} at batch {batch} differs from "
                    f"torch by up to {diff:.3g} (tolerance {tolerance:.1e}); the ONNX file was not written "
                    "(--no-verify writes it unchecked)"
                )
            worst, allowed = max(worst, diff), min(allowed, tolerance)
        report.max_abs_diff[batch] = worst
        report.tolerance[batch] = allowed
    return report
