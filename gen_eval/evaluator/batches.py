"""Running an onnxruntime session on any number of rows: in fixed-size batches, interruptible, time-limited.

The session itself (provider, threads) comes from :class:`gen_eval.evaluator.runtime.Runtime`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import onnxruntime as ort

from gen_eval.errors import UserError, param, printable
from gen_eval.evaluator.runtime import CUDA, QUIET, run_failure

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
            raise UserError(f"{param('batch_size')} must be at least 1, got {self.batch_size}")
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
                raise run_failure(self.name, exc) from None
            for name, value in zip(self.output_names, outputs):
                if np.ndim(value) == 0 or len(value) != size:
                    got = "no batch dimension" if np.ndim(value) == 0 else f"{len(value)} rows"
                    raise UserError(f"{self.name}: output {printable(name)!r} has {got} for a batch of {size}; a model "
                                    "must give one row per input row (its first dimension is the batch): re-export it "
                                    "with a dynamic batch dimension")
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
                            f"0 for no limit) or use a smaller {param('batch_size')}") from None
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
