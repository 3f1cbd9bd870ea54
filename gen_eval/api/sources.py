"""What a job reads and where it runs, as small frozen objects that open themselves.

Every job that takes images takes a path, an :class:`ImageSource`, or the in-memory images
themselves (a numpy array or torch tensor, uint8 or float in [0, 1], [N, H, W, C] or [N, C, H, W],
or an iterable of such batches); :func:`image_source` turns any of them into an ImageSource. Where a
generator's samples make sense a job also takes a :class:`GeneratorSource`; every job takes one
:class:`Runtime` (device, batch size, threads). They check their values when made and read files only
when opened, so they can be pickled (Ray actors receive them) and reused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gen_eval.data.memory import is_in_memory, memory_image_set
from gen_eval.errors import UserError, param


@dataclass(frozen=True, eq=False)
class ImageSource:
    """Images for a job: a folder / data set / sample .npz (``split`` picks a data set's split), or in-memory
    images. ``value_range`` is the range of float images in memory ([0, 1] when None); ``layout`` is
    "NHWC" or "NCHW" when the shape leaves it open (both axes 1 or 3). An iterable of batches is read once,
    when the source is opened."""

    images: Any
    split: str = "train"
    value_range: tuple[float, float] | None = None
    layout: str | None = None

    @property
    def in_memory(self) -> bool:
        return is_in_memory(self.images)

    @property
    def path(self) -> Path | None:
        """The path the images are read from, or None for images in memory."""
        return None if self.in_memory else Path(self.images)

    def describe(self) -> str:
        return "in-memory images" if self.in_memory else str(self.images)

    def open(self, channels: int | None = None, what: str = "images"):
        """The images as an :class:`~gen_eval.data.imageset.ImageSet` (uint8 H x W x C per image)."""
        if self.in_memory:
            return memory_image_set(self.images, self.value_range, self.layout, what)
        from gen_eval.api.inputs import image_set

        return image_set(self.images, self.split, channels)


@dataclass(frozen=True)
class Runtime:
    """Where and how a job runs its ONNX models: ``device`` ("auto", "cpu", "cuda" or "cuda:N"; auto tries
    CUDA and falls back to CPU), ``batch_size`` (images per model run; None: each model's own) and
    ``threads`` (onnxruntime's CPU threads; None: the usable CPUs). Bad values are refused when it is made."""

    device: str = "auto"
    batch_size: int | None = None
    threads: int | None = None

    def __post_init__(self) -> None:
        from gen_eval.api.inputs import check_types
        from gen_eval.devices import check_threads, parse_device

        check_types(device=(self.device, str), batch_size=(self.batch_size, int), threads=(self.threads, int))
        parse_device(self.device)
        check_threads(self.threads)
        if self.batch_size is not None and self.batch_size < 1:
            raise UserError(f"{param('batch_size')} must be at least 1, got {self.batch_size}")

    def open(self):
        """The :class:`gen_eval.evaluator.runtime.Runtime` every model of one job is loaded on."""
        from gen_eval.evaluator.runtime import Runtime as Sessions

        return Sessions(self.device, self.threads)


@dataclass(frozen=True)
class OpenGenerator:
    """A :class:`GeneratorSource` opened: the loaded generator and its condition rows (None when unconditional)."""

    generator: Any
    conditions: Any
    source: GeneratorSource


@dataclass(frozen=True)
class GeneratorSource:
    """``n`` images of a generator .onnx: image i from the noise of (``seed``, i), a conditional generator's
    rows of ``conditions`` (a condition file such as test.json) cycled to ``n``. ``objects``, ``latent_dim``
    and ``value_range`` ("LOW,HIGH" or a pair) are what a generator without gen-eval metadata needs. Bad
    values are refused when it is made; the files are read when it is opened."""

    model: str | os.PathLike
    n: int | None = None
    seed: int = 0
    conditions: str | os.PathLike | None = None
    objects: str | os.PathLike | None = None
    latent_dim: int | None = None
    value_range: str | tuple[float, float] | None = None

    def __post_init__(self) -> None:
        from gen_eval.api import inputs
        from gen_eval.evaluator.noise import check_seed

        inputs.check_types(model=(self.model, inputs.PATH), n=(self.n, int), seed=(self.seed, int),
                           conditions=(self.conditions, inputs.PATH), objects=(self.objects, inputs.PATH),
                           latent_dim=(self.latent_dim, int))
        check_seed(self.seed)
        if self.n is not None:
            from gen_eval.evaluator.sampling import check_count

            check_count(self.n)
        if self.latent_dim is not None and self.latent_dim < 1:
            raise UserError(f"{param('latent_dim')} must be at least 1, got {self.latent_dim}")
        inputs.value_range(self.value_range, param("value_range"))

    @property
    def path(self) -> Path:
        return Path(self.model)

    def describe(self) -> str:
        return f"{self.model} ({self.n} samples, seed {self.seed})"

    def open(self, runtime, batch_size: int | None = None, *, label_space=None, label_source: str | None = None,
             conditions_name: str = "conditions") -> OpenGenerator:
        """The generator loaded on ``runtime`` (an opened :class:`Runtime`) with its condition rows;
        ``label_space`` (from another model, named by ``label_source``) applies when ``objects`` is None."""
        from gen_eval.api import inputs

        generator = inputs.load_generator(self.model, runtime, batch_size=batch_size, latent_dim=self.latent_dim,
                                          value_range_text=self.value_range, objects=self.objects,
                                          label_space=label_space, label_source=label_source)
        return OpenGenerator(generator, inputs.conditions_for(generator, self.conditions, conditions_name), self)

    def require_n(self, why: str = "") -> int:
        """``n``, or a one-line UserError asking for it."""
        if self.n is None:
            raise UserError(f"give the number of images to generate with {param('n')}{why}")
        return self.n


def runtime_of(runtime: Runtime | None) -> Runtime:
    """``runtime`` (None: the defaults); anything else is a one-line UserError."""
    if runtime is None:
        return Runtime()
    if not isinstance(runtime, Runtime):
        raise UserError(f"{param('runtime')} must be a gen_eval.Runtime (e.g. gen_eval.Runtime(device='cpu')), "
                        f"got {type(runtime).__name__}")
    return runtime


def generated_side(data: Any, split: str, model: Any, n: int | None, seed: int, conditions: Any, objects: Any,
                   latent_dim: int | None, value_range: Any) -> ImageSource | GeneratorSource:
    """The generated side a command's options name: ``data`` images (in ``split``) or ``n`` samples of ``model``."""
    if (data is None) == (model is None):
        raise UserError(f"give the images with exactly one of {param('data', 'DIR')} or {param('model', 'G.onnx')}")
    if data is not None:
        if n is not None or conditions is not None:
            raise UserError(f"{param('n')} and {param('conditions')} go with {param('model')}, not {param('data')}")
        return ImageSource(data, split)
    return GeneratorSource(model, n, seed, conditions, objects, latent_dim, value_range)


def with_samples(model: Any, *, n: int | None = None, seed: int = 0, conditions: Any = None) -> GeneratorSource:
    """A job's generator: a GeneratorSource as it is (then ``n``, ``seed`` and ``conditions`` must be left
    out), or a generator .onnx path with them."""
    if isinstance(model, GeneratorSource):
        if n is not None or seed != 0 or conditions is not None:
            raise UserError(f"give {param('n')}, {param('seed')} and {param('conditions')} once: in the "
                            "GeneratorSource, or with a plain path to the generator")
        return model
    from gen_eval.api import inputs

    inputs.check_types(model=(model, inputs.PATH))
    return GeneratorSource(model, n, seed, conditions)


def image_source(images: Any, split: str = "train") -> ImageSource | None:
    """``images`` as an ImageSource (None stays None; an ImageSource is kept as it is)."""
    if images is None or isinstance(images, ImageSource):
        return images
    if isinstance(images, (str, os.PathLike)):
        return ImageSource(images, split)
    return ImageSource(images)


def path_or_none(images: Any):
    """The path of a job's images for provenance and messages (None for images in memory)."""
    source = image_source(images)
    return None if source is None else source.path


__all__ = ["GeneratorSource", "ImageSource", "OpenGenerator", "Runtime", "image_source", "with_samples",
           "path_or_none", "runtime_of"]
