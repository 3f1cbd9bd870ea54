"""onnxruntime sessions: which provider runs and how many threads (batched runs: gen_eval.evaluator.batches).

``--device auto`` uses CUDAExecutionProvider only when it really works: onnxruntime-gpu lists CUDA
as available on any machine and silently falls back to CPU when a session cannot use it, so the
driver is probed first and ``session.get_providers()`` is checked after the session exists.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
from dataclasses import dataclass, field

import onnxruntime as ort

from gen_eval.devices import check_threads, default_threads, parse_device
from gen_eval.errors import UserError, param

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"

# 4 = fatal only: onnxruntime's C++ logger would print its own (coloured) lines for warnings and for
# errors that the evaluator reports itself as one-line messages (failed loads, failed runs, CUDA fallback).
QUIET = 4
ort.set_default_logger_severity(QUIET)


def cuda_problem(device_id: int = 0) -> str | None:
    """Why CUDA cannot run here, or None when the driver sees GPU ``device_id``."""
    if CUDA not in ort.get_available_providers():
        return f"this onnxruntime build ({ort.__version__}) has no CUDA support; install onnxruntime-gpu"
    try:
        libcuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return "no NVIDIA driver found (libcuda.so.1 is missing)"
    if libcuda.cuInit(0) != 0:
        return "the NVIDIA driver failed to initialise (cuInit)"
    count = ctypes.c_int(0)
    if libcuda.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value == 0:
        return "no CUDA GPU is visible (check CUDA_VISIBLE_DEVICES)"
    if device_id >= count.value:
        return f"there is no GPU cuda:{device_id}; this machine has {count.value}"
    return None


_dlls_preloaded = False


def _preload_cuda_dlls() -> None:
    """Load CUDA/cuDNN from the pip nvidia-* packages (no-op where they are not installed)."""
    global _dlls_preloaded
    if _dlls_preloaded or not hasattr(ort, "preload_dlls"):
        return
    _dlls_preloaded = True
    with contextlib.redirect_stdout(io.StringIO()):  # it prints warnings we report our own way
        try:
            ort.preload_dlls()
        except Exception:  # noqa: BLE001 - a failed preload shows up as a failed CUDA session below
            pass


@dataclass
class Runtime:
    """Creates every session of one command on the same provider and remembers which one that is.

    ``device`` is auto, cpu, cuda or cuda:N. With auto the first session tries CUDA; if that fails
    every session runs on CPU. ``threads`` sets intra-op threads on CPU (default: usable CPUs).
    """

    device: str = "auto"
    threads: int | None = None
    provider: str | None = field(default=None, init=False)
    fallback_reason: str | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._kind, self._device_id = parse_device(self.device)
        check_threads(self.threads)
        if self._kind == "cpu":
            self.provider = CPU
        elif self._kind == "cuda":
            problem = cuda_problem(self._device_id)
            if problem:
                raise UserError(f"{param('device', 'cuda')}: {problem}; use {param('device', 'cpu')} (or auto) on this machine")
        else:
            problem = cuda_problem(self._device_id)
            if problem:
                self.provider, self.fallback_reason = CPU, problem

    def _options(self) -> ort.SessionOptions:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = self.threads or default_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = QUIET
        # no busy-waiting between ops: on a shared or oversubscribed CPU spinning threads steal the
        # cores the other threads need (measured in benchmarks/RESULTS.md); large batched ops lose nothing
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return options

    def session(self, path: str | os.PathLike, model_bytes: bytes | None = None) -> ort.InferenceSession:
        """A session for the ONNX file ``path`` (or its already-read bytes) on this runtime's provider."""
        source = model_bytes if model_bytes is not None else str(path)
        if self.provider in (None, CUDA):
            _preload_cuda_dlls()
            # default cuDNN algorithm search (exhaustive) runs once: every batch has the same shape.
            # TF32 off: it keeps 10 mantissa bits (~1e-3 relative), which would break the float32
            # conformance bounds of `gen-eval selftest` and make a GPU's numbers differ from a CPU's.
            cuda_options = {"device_id": self._device_id, "use_tf32": 0}
            session = _create(source, path, self._options(), [(CUDA, cuda_options), CPU])
            if session.get_providers()[0] == CUDA:
                self.provider = CUDA
                return session
            problem = "the CUDA provider failed to load (CUDA 13 / cuDNN 9 libraries missing?)"
            if self._kind == "cuda" or self.provider == CUDA:
                raise UserError(f"{param('device', self.device)}: {problem}; use {param('device', 'cpu')}")
            self.provider, self.fallback_reason = CPU, problem
            return session
        return _create(source, path, self._options(), [CPU])

    @property
    def uses_cuda(self) -> bool:
        return self.provider == CUDA

    @property
    def device_id(self) -> int:
        return self._device_id

    def describe(self) -> str:
        """One line: which provider runs (and why not CUDA, when auto fell back)."""
        name = self.provider or "(no session yet)"
        if self.provider == CUDA:
            detail = f"GPU cuda:{self._device_id}"
        else:
            detail = f"{self.threads or default_threads()} threads"
        line = f"onnxruntime {ort.__version__} on {name} ({detail})"
        if self._kind == "auto" and self.fallback_reason and self.provider == CPU:
            line += f"; CUDA not used: {self.fallback_reason}"
        return line


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, whole (onnxruntime puts the reason at its end)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# what onnxruntime (and the C++/Python runtime under it) says when the machine, not the model, is short
_SHORT_OF = (
    ("threads", ("can't start new thread", "pthread_create", "resource temporarily unavailable",
                 "thread constructor failed")),
    ("memory", ("bad_alloc", "failed to allocate", "out of memory", "cannot allocate memory",
                "memoryerror", "alloc_failed", "cudaerrormemoryallocation", "insufficient memory")),
)


def machine_shortage(exc: BaseException) -> str | None:
    """'threads' or 'memory' when ``exc`` says the machine ran short of it, else None."""
    if isinstance(exc, MemoryError):
        return "memory"
    text = f"{type(exc).__name__} {exc}".lower()
    for what, phrases in _SHORT_OF:
        if any(phrase in text for phrase in phrases):
            return what
    return None


def run_failure(name: str, exc: BaseException, doing: str = "running the model") -> UserError:
    """The one-line error for an onnxruntime failure: the machine's shortage when it is one (threads,
    memory), else the model; either way onnxruntime's own first line is kept."""
    short = machine_shortage(exc)
    if short == "threads":
        return UserError(f"{name}: this machine could not start the threads onnxruntime asked for while "
                         f"{doing} ({first_line(exc)}); the model is not at fault: give fewer "
                         f"{param('threads')}, or run fewer jobs at once")
    if short == "memory":
        return UserError(f"{name}: this machine ran out of memory while onnxruntime was {doing} "
                         f"({first_line(exc)}); the model is not at fault: use a smaller {param('batch_size')}, "
                         "or free memory (fewer jobs at once)")
    return UserError(f"{name}: onnxruntime failed {doing} ({first_line(exc)}); check its input sizes, or "
                     "re-export it")


def _create(source, path, options: ort.SessionOptions, providers: list) -> ort.InferenceSession:
    try:
        return ort.InferenceSession(source, sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types (InvalidProtobuf, Fail, ...)
        if machine_shortage(exc):
            raise run_failure(str(path), exc, "loading the model") from None
        raise UserError(f"{path}: onnxruntime cannot load this model ({first_line(exc)}); give a valid .onnx file") from None
