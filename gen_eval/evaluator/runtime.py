"""onnxruntime sessions: which provider runs, how many threads, and fixed-shape batched runs.

``--device auto`` uses CUDAExecutionProvider only when it really works: onnxruntime-gpu lists CUDA
as available on any machine and silently falls back to CPU when a session cannot use it, so the
driver is probed first and ``session.get_providers()`` is checked after the session exists.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import onnxruntime as ort

from gen_eval.devices import DEVICES, default_threads, parse_device  # noqa: F401 - re-exported for callers
from gen_eval.errors import UserError

RUN_TIME_LIMIT = 600.0  # seconds for one model run (one batch); Inception on 64 images takes ~10 s on 2 cores
RUN_TIMEOUT_ENV = "GEN_EVAL_RUN_TIMEOUT"


class RunTooLong(Exception):
    """A model run passed its wall-clock limit."""


def run_time_limit() -> float:
    """``GEN_EVAL_RUN_TIMEOUT`` seconds (0: no limit), else :data:`RUN_TIME_LIMIT`."""
    text = os.environ.get(RUN_TIMEOUT_ENV, "").strip()
    if not text:
        return RUN_TIME_LIMIT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (value >= 0 and value < float("inf")):
        raise UserError(f"{RUN_TIMEOUT_ENV}={text!r}: give a number of seconds >= 0 (0 for no limit)")
    return value


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
        if self.threads is not None and self.threads < 1:
            raise UserError(f"--threads must be at least 1, got {self.threads}")
        if self._kind == "cpu":
            self.provider = CPU
        elif self._kind == "cuda":
            problem = cuda_problem(self._device_id)
            if problem:
                raise UserError(f"--device cuda: {problem}; use --device cpu (or auto) on this machine")
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
                raise UserError(f"--device {self.device}: {problem}; use --device cpu")
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


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip()
    reason = text.splitlines()[0] if text else type(exc).__name__
    return reason if len(reason) <= limit else reason[:limit] + "..."


def _create(source, path, options: ort.SessionOptions, providers: list) -> ort.InferenceSession:
    try:
        return ort.InferenceSession(source, sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types (InvalidProtobuf, Fail, ...)
        raise UserError(f"{path}: onnxruntime cannot load this model ({_first_line(exc)}); give a valid .onnx file") from None


@dataclass
class BatchRunner:
    """Runs a session on batches of ``batch_size`` rows. A graph with a fixed batch dimension (``pad``)
    gets its last batch padded to that size; any other graph runs the last batch at its own size, so
    4 images at ``--batch-size 1000000`` cost 4 images of memory.

    On CUDA, inputs of full batches are copied into device buffers allocated once and outputs stay on
    the device until fetched (IO binding), so onnxruntime neither re-plans nor re-allocates per batch.

    Each run happens in a helper thread while the main thread waits: Ctrl-C (and the CLI's SIGTERM)
    reach Python at once, set ``RunOptions.terminate`` so onnxruntime stops the graph (a Loop with a
    huge trip count included), and unwind as usual. A run that takes longer than ``time_limit``
    seconds (default :data:`RUN_TIME_LIMIT`, or ``GEN_EVAL_RUN_TIMEOUT``; 0: none) is stopped the same
    way and reported as one error line: a hostile graph cannot hold a CI job until its own timeout.
    """

    session: ort.InferenceSession
    batch_size: int
    io_binding: bool = False
    device_id: int = 0
    name: str = "model"  # for messages: the model file
    pad: bool = True  # the graph's batch dimension is fixed: pad the last batch to it
    time_limit: float | None = None  # seconds per run; None: GEN_EVAL_RUN_TIMEOUT or RUN_TIME_LIMIT
    _buffers: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise UserError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.time_limit is None:
            self.time_limit = run_time_limit()
        self.output_names = [o.name for o in self.session.get_outputs()]
        self._run_options = ort.RunOptions()
        self._run_options.log_severity_level = QUIET

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Outputs for any number of rows (all inputs share the first dimension), batch by batch."""
        rows = {len(v) for v in feeds.values()}
        if len(rows) != 1:
            raise ValueError(f"inputs differ in length: {sorted(rows)}")
        (n,) = rows
        parts: dict[str, list[np.ndarray]] = {name: [] for name in self.output_names}
        for start in range(0, n, self.batch_size):
            stop = min(start + self.batch_size, n)
            size = self.batch_size if self.pad else stop - start
            batch = {name: _pad(np.ascontiguousarray(v[start:stop]), size) for name, v in feeds.items()}
            try:
                outputs = self._interruptible(batch)
            except Exception as exc:  # onnxruntime's Fail / InvalidArgument / RuntimeException ...
                raise UserError(
                    f"{self.name}: onnxruntime failed running the model ({_first_line(exc)}); "
                    "check its input sizes, or re-export it"
                ) from None
            for name, value in zip(self.output_names, outputs):
                parts[name].append(value[: stop - start])
        return {name: np.concatenate(chunks) if chunks else np.empty((0,)) for name, chunks in parts.items()}

    def _interruptible(self, batch: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """``_run_batch`` in a helper thread; KeyboardInterrupt (or SIGTERM) in the main thread stops the run."""
        result: dict[str, object] = {}
        done = threading.Event()  # (Thread.join interrupted by Ctrl-C may wrongly report the thread ended)

        def work() -> None:
            try:
                result["value"] = self._run_batch(batch)
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                result["error"] = exc
            finally:
                done.set()

        worker = threading.Thread(target=work, name="onnxruntime-run", daemon=True)
        deadline = time.monotonic() + self.time_limit if self.time_limit else None
        try:
            worker.start()
            while not done.wait(0.05):
                if deadline is not None and time.monotonic() > deadline:
                    raise RunTooLong()
        except RunTooLong:
            self._stop(worker, done)
            raise UserError(f"{self.name}: one model run took over {self.time_limit:g} s and was stopped (a graph "
                            f"that never ends?); if the model is just slow, raise {RUN_TIMEOUT_ENV} (seconds, "
                            "0 for no limit) or use a smaller --batch-size") from None
        except BaseException:
            self._stop(worker, done)
            raise
        if "error" in result:
            raise result["error"]
        return result["value"]

    def _stop(self, worker: threading.Thread, done: threading.Event) -> None:
        # onnxruntime checks the flag before a run, between nodes and in Loop iterations
        self._run_options.terminate = True
        done.wait(30 if worker.ident is not None else 1)
        self._run_options = ort.RunOptions()
        self._run_options.log_severity_level = QUIET

    def _run_batch(self, batch: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        rows = {len(v) for v in batch.values()}
        if not self.io_binding or rows != {self.batch_size}:
            return self.session.run(self.output_names, dict(batch), self._run_options)
        device = "cuda" if self.session.get_providers()[0] == CUDA else "cpu"
        binding = self._buffers.get("binding")
        if binding is None:
            binding = self.session.io_binding()
            for name, value in batch.items():
                buffer = ort.OrtValue.ortvalue_from_shape_and_type(value.shape, value.dtype, device, self.device_id)
                self._buffers[name] = buffer
                binding.bind_ortvalue_input(name, buffer)
            for name in self.output_names:
                binding.bind_output(name, device, self.device_id)
            self._buffers["binding"] = binding
        for name, value in batch.items():
            self._buffers[name].update_inplace(value)
        self.session.run_with_iobinding(binding, self._run_options)
        return binding.copy_outputs_to_cpu()


def _pad(array: np.ndarray, size: int) -> np.ndarray:
    if len(array) == size:
        return array
    padding = np.zeros((size - len(array), *array.shape[1:]), dtype=array.dtype)
    return np.concatenate([array, padding])

