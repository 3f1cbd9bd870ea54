"""Parity check: onnxruntime (CPU) against the PyTorch module on the same seeded inputs."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from gen_eval import contract
from gen_eval.data.labels import LabelSpace
from gen_eval.errors import GateFailed
from gen_eval.trainers.base import ExportGraph

FP32_TOLERANCE = 1e-4            # absolute
FP32_NOISE_FACTOR = 3.0          # deep nets: allowed up to this times torch's own float32 error (vs float64)
FP16_RELATIVE_TOLERANCE = 1e-2   # times each output's range (max - min of the torch output)
PARITY_BATCH_SIZES = (1, 8)
PARITY_SEED = 0


@dataclass
class ParityReport:
    max_abs_diff: dict[int, float] = field(default_factory=dict)   # batch size -> max |onnx - torch|
    tolerance: dict[int, float] = field(default_factory=dict)      # batch size -> allowed max |diff|
    provider: str = ""

    def describe(self) -> str:
        parts = ", ".join(f"batch {b}: {d:.2e} (tolerance {self.tolerance[b]:.1e})" for b, d in self.max_abs_diff.items())
        return f"max |onnx - torch| {parts}; onnxruntime {self.provider}"


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


def _torch_outputs(module: torch.nn.Module, inputs: Sequence[np.ndarray],
                   dtype: torch.dtype = torch.float32) -> list[np.ndarray]:
    was_training = module.training
    module.eval()
    try:
        with torch.inference_mode():
            outputs = module(*(torch.from_numpy(a).to(dtype) for a in inputs))
    finally:
        module.train(was_training)
    if isinstance(outputs, torch.Tensor):
        outputs = (outputs,)
    return [o.detach().cpu().numpy().astype(np.float32 if dtype == torch.float32 else np.float64) for o in outputs]


class _Float64Reference:
    """The module in float64 (a copy, made on first use): how far torch's own float32 result is from exact."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.module = module
        self.copy: torch.nn.Module | None = None

    def float32_error(self, inputs: Sequence[np.ndarray], float32_outputs: Sequence[np.ndarray]) -> list[float]:
        try:
            if self.copy is None:
                self.copy = copy.deepcopy(self.module).double()
            exact = _torch_outputs(self.copy, inputs, torch.float64)
        except Exception:  # a module that cannot run in float64 gets no allowance for rounding noise
            return [0.0] * len(float32_outputs)
        return [float(np.max(np.abs(e - o))) if o.size else 0.0 for e, o in zip(exact, float32_outputs)]


def cpu_session(model_bytes: bytes):
    """An onnxruntime session on the CPU provider (the reference for parity)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def check_parity(module: torch.nn.Module, model_bytes: bytes, graph: ExportGraph, *, fp16: bool = False,
                 batch_sizes: Sequence[int] = PARITY_BATCH_SIZES, seed: int = PARITY_SEED) -> ParityReport:
    """Run both on the same seeded inputs; raise GateFailed if an output differs beyond tolerance.

    float32: 1e-4 absolute. A deep network (e.g. Inception's 95 layers) can lose more than that to
    float32 rounding in torch itself; then the allowance is raised to ``FP32_NOISE_FACTOR`` times
    torch's own float32 error against a float64 run of the same module on the same inputs, so the
    ONNX graph must be about as accurate as PyTorch is. An export bug (a wrong op) is orders of
    magnitude above either. float16: 1e-2 of each output's range.
    """
    session = cpu_session(model_bytes)
    report = ParityReport(provider=session.get_providers()[0])
    onnx_names = [o.name for o in session.get_outputs()]
    float64 = _Float64Reference(module)
    for batch in batch_sizes:
        inputs = parity_inputs(graph, batch, seed)
        expected = _torch_outputs(module, inputs)
        got = session.run(graph.output_names, dict(zip(graph.input_names, inputs)))
        if len(expected) != len(got):
            raise GateFailed(f"the {graph.role} module returns {len(expected)} outputs, the ONNX graph "
                             f"{len(got)} ({', '.join(onnx_names)})")
        diffs = []
        for name, ref, out in zip(graph.output_names, expected, got):
            if ref.shape != out.shape:
                raise GateFailed(f"parity check failed: output {name!r} has shape {out.shape} in ONNX, "
                                 f"{ref.shape} in torch (batch {batch})")
            diff = float(np.max(np.abs(out.astype(np.float64) - ref))) if ref.size else 0.0
            diffs.append(diff if np.isfinite(diff) else float("inf"))  # NaN/Inf anywhere fails
        if fp16:
            tolerances = [FP16_RELATIVE_TOLERANCE * _scale(ref) for ref in expected]
        else:
            tolerances = [FP32_TOLERANCE] * len(expected)
            if any(d > t for d, t in zip(diffs, tolerances)):
                noise = float64.float32_error(inputs, expected)
                tolerances = [max(t, FP32_NOISE_FACTOR * n) for t, n in zip(tolerances, noise)]
        for name, diff, tolerance in zip(graph.output_names, diffs, tolerances):
            if not diff <= tolerance:
                raise GateFailed(
                    f"parity check failed for the {graph.role} graph: output {name!r} at batch {batch} differs from "
                    f"torch by up to {diff:.3g} (tolerance {tolerance:.1e}); the ONNX file was not written "
                    "(--no-verify writes it unchecked)"
                )
        worst = int(np.argmax(np.array(diffs) / np.array(tolerances)))
        report.max_abs_diff[batch] = max(diffs)
        report.tolerance[batch] = tolerances[worst]
    return report


def _scale(ref: np.ndarray) -> float:
    """An output's range (max - min), or its magnitude when constant, at least a tiny positive number."""
    if not ref.size:
        return 1.0
    spread = float(ref.max() - ref.min())
    return spread if spread > 0 else max(float(np.abs(ref).max()), 1e-6)
