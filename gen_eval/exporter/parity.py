"""Parity check: onnxruntime (CPU) against the PyTorch module on the same seeded inputs."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from gen_eval import contract
from gen_eval.contract import ExportGraph
from gen_eval.data.labels import LabelSpace
from gen_eval.errors import GateFailed, param

# float32 parity is judged against the truth, not against torch's own float32 rounding: both torch and
# onnxruntime run in float32 and are compared with a float64 run of the same module on the same inputs.
# Another CPU (AVX2, AVX-512, AMX), another kernel or a fused BatchNorm rounds differently, so
# onnxruntime may be some times further from float64 than torch is; an export bug (a wrong op, weight,
# padding, stride or constant, a dropped layer, a 1e-3 relative change) is orders of magnitude further.
NOISE_FACTOR = 16.0              # onnxruntime may be this many times further from float64 than torch float32
FLOAT32_FLOOR = 2.0 ** -16       # ~1.5e-5 of the output's scale: float32's 2^-24 with 8 bits lost to depth and sums
FP16_RELATIVE_TOLERANCE = 1e-2   # times each output's range (max - min of the torch output)
PARITY_BATCH_SIZES = (1, 8)
PARITY_SEED = 0


@dataclass
class ParityReport:
    """Per batch size: the worst output's distance from the reference and the distance allowed.

    Verified against float64 (``reference == "float64"``), ``error`` is max |onnx - float64| and
    ``torch_error`` max |torch float32 - float64|; for fp16 exports or modules that cannot run in
    float64 the reference is torch float32 and ``torch_error`` is empty.
    """

    error: dict[int, float] = field(default_factory=dict)
    tolerance: dict[int, float] = field(default_factory=dict)
    torch_error: dict[int, float] = field(default_factory=dict)
    reference: str = "float64"
    provider: str = ""

    def describe(self) -> str:
        parts = ", ".join(f"batch {b}: {d:.2e} (tolerance {self.tolerance[b]:.1e}"
                          + (f", torch float32 {self.torch_error[b]:.1e})" if b in self.torch_error else ")")
                          for b, d in self.error.items())
        return f"max |onnx - {self.reference}| {parts}; onnxruntime {self.provider}"


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
    return [o.detach().cpu().numpy().astype(np.float64) for o in outputs]


def float64_copy(module: torch.nn.Module) -> torch.nn.Module | None:
    """The module in float64 (a copy), or None when it cannot be copied or converted."""
    try:
        return copy.deepcopy(module).double()
    except Exception:  # noqa: BLE001 - such a module is checked against torch float32 instead
        return None


@dataclass
class OutputError:
    """How far one output is from the reference, by its largest and its root-mean-square deviation."""

    max: float
    rms: float

    @classmethod
    def between(cls, got: np.ndarray, reference: np.ndarray) -> "OutputError":
        if not reference.size:
            return cls(0.0, 0.0)
        diff = np.abs(got.astype(np.float64) - reference)
        worst, rms = float(np.max(diff)), float(np.sqrt(np.mean(diff * diff)))
        if not (np.isfinite(worst) and np.isfinite(rms)):  # NaN/Inf anywhere fails
            return cls(float("inf"), float("inf"))
        return cls(worst, rms)


def float32_tolerance(exact: np.ndarray, torch_error: OutputError) -> OutputError:
    """What float32 arithmetic may cost on another machine: ``NOISE_FACTOR`` times torch's own float32
    error, but never less than ``FLOAT32_FLOOR`` of the output's scale (its largest and its RMS value).

    Both statistics are bounded: the RMS catches a small change everywhere, the maximum a large
    change in a few places (a wrong border from a wrong padding).
    """
    if not exact.size:
        return OutputError(0.0, 0.0)
    scale_max = float(np.max(np.abs(exact)))
    scale_rms = float(np.sqrt(np.mean(exact * exact)))
    tiny = float(np.finfo(np.float32).tiny)
    return OutputError(max(NOISE_FACTOR * torch_error.max, FLOAT32_FLOOR * scale_max, tiny),
                       max(NOISE_FACTOR * torch_error.rms, FLOAT32_FLOOR * scale_rms, tiny))


def cpu_session(model_bytes: bytes):
    """An onnxruntime session on the CPU provider (the reference for parity)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


@dataclass
class OutputComparison:
    """One output of one run: its distance from the reference, what float32 allows, torch's own error."""

    error: OutputError
    tolerance: OutputError
    torch_error: OutputError | None  # None when torch float32 itself is the reference

    @property
    def passed(self) -> bool:
        return self.error.max <= self.tolerance.max and self.error.rms <= self.tolerance.rms

    def failure(self) -> str:
        """Which statistic failed and by how much, in words."""
        if not self.error.max <= self.tolerance.max:
            return f"{self.error.max:.3g} by its largest deviation (float32 allows {self.tolerance.max:.2g})"
        return f"{self.error.rms:.3g} by its RMS deviation (float32 allows {self.tolerance.rms:.2g})"


def compare_outputs(module: torch.nn.Module, inputs: Sequence[np.ndarray], got: Sequence[np.ndarray], *,
                    exact_module: torch.nn.Module | None = None, fp16: bool = False) -> list[OutputComparison]:
    """Judge another engine's outputs ``got`` for ``inputs`` against ``module`` by the float32 rule.

    ``exact_module`` is the module's float64 copy (made here when not given; pass it to reuse it).
    With fp16 weights, or a module that cannot run in float64, torch float32 is the reference.
    """
    torch32 = _torch_outputs(module, inputs)
    if len(torch32) != len(got):
        raise GateFailed(f"the module returns {len(torch32)} outputs, the ONNX graph {len(got)}")
    for ref, out in zip(torch32, got):
        if ref.shape != tuple(out.shape):
            raise GateFailed(f"parity check failed: an output has shape {tuple(out.shape)} in ONNX, {ref.shape} in torch")
    if exact_module is None and not fp16:
        exact_module = float64_copy(module)
    exact = [None] * len(torch32) if fp16 else _exact_outputs(exact_module, inputs, len(torch32))
    comparisons = []
    for ref32, out, ref64 in zip(torch32, got, exact):
        if ref64 is None:
            tolerance = (OutputError(*(2 * [FP16_RELATIVE_TOLERANCE * _scale(ref32)])) if fp16
                         else float32_tolerance(ref32, OutputError(0.0, 0.0)))
            comparisons.append(OutputComparison(OutputError.between(out, ref32), tolerance, None))
        else:
            torch_error = OutputError.between(ref32, ref64)
            comparisons.append(OutputComparison(OutputError.between(out, ref64), float32_tolerance(ref64, torch_error),
                                                torch_error))
    return comparisons


def check_parity(module: torch.nn.Module, model_bytes: bytes, graph: ExportGraph, *, fp16: bool = False,
                 batch_sizes: Sequence[int] = PARITY_BATCH_SIZES, seed: int = PARITY_SEED) -> ParityReport:
    """Run ONNX (onnxruntime CPU), torch float32 and torch float64 on the same seeded inputs; raise
    GateFailed if an ONNX output is further from float64 than float32 arithmetic explains.

    The rule (see :func:`float32_tolerance`) does not depend on which CPU runs it: both float32
    results are measured against the same float64 truth, and onnxruntime is allowed
    ``NOISE_FACTOR`` times torch's own rounding error or ``FLOAT32_FLOOR`` of the output's scale,
    whichever is larger. float16 weights: 1e-2 of each output's range, against torch float32.
    """
    session = cpu_session(model_bytes)
    exact_module = None if fp16 else float64_copy(module)
    report = ParityReport(provider=session.get_providers()[0])
    for batch in batch_sizes:
        inputs = parity_inputs(graph, batch, seed)
        got = session.run(graph.output_names, dict(zip(graph.input_names, inputs)))
        try:
            comparisons = compare_outputs(module, inputs, got, exact_module=exact_module, fp16=fp16)
        except GateFailed as exc:
            raise GateFailed(f"{exc} (the {graph.role} graph, batch {batch})") from None
        report.reference = "float64" if comparisons[0].torch_error is not None else "torch float32"
        for name, comparison in zip(graph.output_names, comparisons):
            if not comparison.passed:
                raise GateFailed(
                    f"parity check failed for the {graph.role} graph: output {name!r} at batch {batch} is "
                    f"{comparison.failure().replace(' by', f' from {report.reference} by', 1)}; the ONNX file "
                    f"was not written ({param('verify', False)} writes it unchecked)"
                )
        worst = max(comparisons, key=lambda c: c.error.max / c.tolerance.max)
        report.error[batch], report.tolerance[batch] = worst.error.max, worst.tolerance.max
        if worst.torch_error is not None:
            report.torch_error[batch] = worst.torch_error.max
    return report


def _exact_outputs(exact_module: torch.nn.Module | None, inputs: Sequence[np.ndarray],
                   count: int) -> list[np.ndarray | None]:
    if exact_module is None:
        return [None] * count
    try:
        outputs = _torch_outputs(exact_module, inputs, torch.float64)
    except Exception:  # noqa: BLE001 - an op without a float64 kernel: fall back to torch float32
        return [None] * count
    return outputs if len(outputs) == count else [None] * count


def _scale(ref: np.ndarray) -> float:
    """An output's range (max - min), or its magnitude when constant, at least a tiny positive number."""
    if not ref.size:
        return 1.0
    spread = float(ref.max() - ref.min())
    return spread if spread > 0 else max(float(np.abs(ref).max()), 1e-6)
