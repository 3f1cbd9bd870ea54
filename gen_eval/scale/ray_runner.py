"""Chunks of a job on a pool of Ray actors: one onnxruntime session per actor, results in index order.

Each actor opens the job's models itself (the paths must be readable on every node: a shared file
system on a cluster), on one GPU (``num_gpus=1``) when the cluster has GPUs, else on one CPU core.
The driver hands out chunks (the fixed index ranges of :mod:`gen_eval.evaluator.exact`) and takes the
features back in index order, so sums, stores and metrics are the bits of the single-process run
whatever the number of actors. A killed actor is restarted and its chunk run again (Ray's
``max_restarts`` / ``max_task_retries``): results are keyed by chunk, so nothing is counted twice or
missed. A bad input found in a worker is raised again in the driver as the same ``UserError``.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from gen_eval.errors import UserError, printable

log = logging.getLogger("gen_eval")
RESTARTS = 3  # times a dead actor is restarted (and its running chunk retried)


@dataclass(frozen=True)
class ChunkJob:
    """What an actor needs, no open models: the features .onnx, the source of the images (a
    ``gen_eval.ImageSource`` of a path or a ``gen_eval.GeneratorSource``, each opens itself) and the
    ``gen_eval.Runtime`` (the actor sets its own device and threads)."""

    features: str | None
    source: Any
    runtime: Any
    out: str | None = None          # a PNG folder: the chunk's samples are written there (gen-eval sample)
    force: bool = False


class ChunkWorker:
    """A Ray actor's state: the job's models, opened once; a bad input is kept and raised by every call,
    so it reaches the driver as the task's error rather than as a dead actor."""

    def __init__(self, job: ChunkJob, device: str, threads: int | None) -> None:
        self.job, self.error = job, None
        try:
            self._open(device, threads)
        except UserError as exc:
            self.error = exc

    def _open(self, device: str, threads: int | None) -> None:
        from gen_eval.evaluator.model import load_model

        job = self.job
        runtime = replace(job.runtime, device=device, threads=threads)
        sessions = runtime.open()
        self.features = load_model(job.features, role="features", runtime=sessions, batch_size=runtime.batch_size,
                                   param_prefix="features_") if job.features else None
        self.images = self.generator = self.conditions = None
        if hasattr(job.source, "n"):  # a generator's samples
            opened = job.source.open(sessions, runtime.batch_size)
            self.generator, self.conditions = opened.generator, opened.conditions
        else:
            self.images = job.source.open()

    def features_of(self, start: int, stop: int) -> tuple[int, np.ndarray]:
        """(start, features [stop - start, D]) of one chunk."""
        from gen_eval.evaluator.features import generator_chunk_features, imageset_chunk_features

        if self.error is not None:
            raise self.error
        chunk = range(start, stop)
        if self.images is not None:
            return start, imageset_chunk_features(self.features, self.images, chunk)
        source = self.job.source
        return start, generator_chunk_features(self.features, self.generator, source.n, source.seed, chunk,
                                               self.conditions)

    def write_pngs(self, shard: tuple[int, int]) -> tuple[int, int]:
        """Shard ``shard`` of the run's PNGs into ``job.out`` (resumable: present PNGs are kept)."""
        from gen_eval.evaluator.sampling import write_png_folder

        if self.error is not None:
            raise self.error
        source = self.job.source
        return write_png_folder(self.generator, self.job.out, source.n, source.seed, conditions=self.conditions,
                                shard=shard, force=self.job.force)


def connect(address: str | None):
    """The ``ray`` module, connected: 'local' (or None) starts or joins a Ray on this machine; otherwise
    the cluster at ``address`` (e.g. 'auto', 'ray://head:10001'). An existing connection is reused."""
    try:
        import ray
    except ImportError:
        raise UserError("Ray is not installed; install it with: pip install 'gen-eval[ray]'") from None
    if not ray.is_initialized():
        _check_answers(address)
        try:
            ray.init(address=None if address in (None, "local") else address, include_dashboard=False,
                     logging_level=logging.ERROR, log_to_driver=False, configure_logging=True)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"cannot connect to Ray at {address}: {first[:200]}; start it with `ray start --head` "
                            "or give its address") from None
    return ray


def _check_answers(address: str | None, timeout: float = 5.0) -> None:
    """A HOST:PORT address must accept a connection: Ray itself retries a silent address for a minute or more."""
    if address in (None, "local", "auto") or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"--ray {printable(address)}: not an address of a Ray head (HOST:PORT, 'auto', or "
                        "ray://HOST:PORT); give its address or leave out the value")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise UserError(f"cannot connect to Ray at {printable(address)}: {exc.strerror or exc}; start it with "
                        "`ray start --head` or give its address") from None


def _user_error(exc: BaseException) -> BaseException:
    """The UserError a worker raised (the same one-line message), else ``exc``."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, UserError):
        return UserError(str(cause))
    if isinstance(exc, UserError):
        return UserError(str(exc).strip().splitlines()[-1].removeprefix("gen_eval.errors.UserError: "))
    return exc


def actor_pool(job: ChunkJob, address: str | None, actors: int | None, tasks: int):
    """(ray, ActorPool, actor handles): ``actors`` actors (default: one per GPU, else one per CPU),
    never more than ``tasks``."""
    ray = connect(address)
    from ray.util import ActorPool

    resources = ray.cluster_resources()
    gpus, cpus = int(resources.get("GPU", 0)), max(1, int(resources.get("CPU", 1)))
    use_gpu = gpus > 0 and job.runtime.device != "cpu"
    count = actors if actors is not None else (gpus if use_gpu else cpus)
    if count < 1:
        raise UserError(f"the number of Ray actors must be at least 1, got {count}")
    count = max(1, min(count, tasks))
    device = "cuda" if use_gpu else "cpu"
    # a CPU actor owns one core: one onnxruntime thread unless the job says otherwise
    threads = job.runtime.threads if job.runtime.threads is not None or use_gpu else 1
    remote = ray.remote(ChunkWorker).options(num_gpus=1 if use_gpu else 0, num_cpus=1, max_restarts=RESTARTS,
                                             max_task_retries=RESTARTS)
    handles = [remote.remote(job, device, threads) for _ in range(count)]
    log.debug("ray: %d %s actor%s", count, "GPU" if use_gpu else "CPU", "s" if count != 1 else "")
    return ray, ActorPool(handles), handles


def run_chunks(job: ChunkJob, chunks: list[range], address: str | None = "local", actors: int | None = None):
    """Yield (chunk, features) for ``chunks`` in their order, computed by a pool of Ray actors."""
    if not chunks:
        return
    ray, pool, handles = actor_pool(job, address, actors, len(chunks))
    try:
        by_start = {c.start: c for c in chunks}
        for start, feats in pool.map(lambda actor, c: actor.features_of.remote(c.start, c.stop), list(chunks)):
            yield by_start[start], feats
    except Exception as exc:  # noqa: BLE001 - a worker's UserError comes back wrapped in Ray's error types
        raise _user_error(exc) from None
    finally:
        for handle in handles:
            ray.kill(handle)


def write_png_shards(job: ChunkJob, shards: int, address: str | None = "local",
                     actors: int | None = None) -> tuple[int, int]:
    """Shards 2..``shards`` of a PNG run on Ray actors (shard 1, which claims the folder, is the caller's);
    returns (written, already there)."""
    if shards < 2:
        return 0, 0
    ray, pool, handles = actor_pool(job, address, actors, shards - 1)
    written = kept = 0
    try:
        for w, k in pool.map(lambda actor, k: actor.write_pngs.remote((k, shards)), list(range(2, shards + 1))):
            written, kept = written + w, kept + k
    except Exception as exc:  # noqa: BLE001
        raise _user_error(exc) from None
    finally:
        for handle in handles:
            ray.kill(handle)
    return written, kept


__all__ = ["ChunkJob", "connect", "run_chunks", "write_png_shards"]
