"""A Fréchet distance you update inside a training loop: ``update(images)``, ``merge``, ``compute``, ``reset``.

The reference side (statistics .npz, images on disk, or images in memory) is read once, when the
metric is made; each ``update`` runs the features model on its batch and adds the features to
float64 sums, so memory stays ``jackknife_blocks`` D x D sums whatever the number of images. Image
``i`` (counted from the first update since a reset) goes to block ``i % jackknife_blocks``: the
number of images is not known in advance, so the blocks interleave rather than being contiguous as
in :func:`gen_eval.fid`. The value is that of :func:`gen_eval.fid` on the same images; the interval is
the same delete-a-block jackknife over these other blocks.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from gen_eval.api import inputs
from gen_eval.api.fid import DEFAULT_FEATURES, JACKKNIFE_BLOCKS, reference_statistics
from gen_eval.api.reports import Report
from gen_eval.api.sources import Runtime, image_source, path_or_none, runtime_of
from gen_eval.data.memory import images_to_uint8
from gen_eval.errors import UserError, param
from gen_eval.evaluator.features import (
    feature_model_id,
    features_of_uint8,
    new_stats,
    preprocessing_id,
    small_sample_warning,
)
from gen_eval.evaluator.provenance import provenance
from gen_eval.evaluator.stats import FeatureStats
from gen_eval.evaluator.uncertainty import frechet_with_interval

log = logging.getLogger("gen_eval")


class FrechetDistance:
    """FID of the images given to :meth:`update` against ``ref``, as a :class:`~gen_eval.api.reports.Report`.

    Args:
        features: a features .onnx or a cached extractor's name (default ``"inception"``).
        ref: the reference: a statistics .npz, a folder / data set of images, or images in memory
            (see :class:`gen_eval.ImageSource`, which also picks a data set's split).
        value_range: the range of float images given to :meth:`update` ([0, 1] when None); uint8 images
            need none.
        layout: "NHWC" or "NCHW" when a batch's shape leaves it open.
        confidence, jackknife_blocks: the interval (as :func:`gen_eval.fid`).
        allow_other_features: accept reference statistics made with other features (a warning).
        runtime: the device, batch size and threads (:class:`gen_eval.Runtime`) [default: ``Runtime()``].
        cache: reuse (and keep) the statistics of reference images in the cache folder.

    Example::

        metric = gen_eval.FrechetDistance(features="inception", ref="stats.npz")
        for batch in generated_batches:      # uint8 or float in [0, 1], NHWC or NCHW, numpy or torch
            metric.update(batch)
        report = metric.compute()            # report.value, report.interval
        metric.reset()
    """

    def __init__(self, features: str | Path | None = DEFAULT_FEATURES, ref: Any = None, *,
                 value_range: tuple[float, float] | None = None, layout: str | None = None,
                 confidence: float = 0.95, jackknife_blocks: int = JACKKNIFE_BLOCKS,
                 allow_other_features: bool = False, runtime: Runtime | None = None,
                 cache: bool = True) -> None:
        from gen_eval.weights.named import resolve_features

        if ref is None:
            raise UserError(f"give the reference with {param('ref')}: a statistics .npz, images, or an array")
        inputs.check_types(confidence=(confidence, float), jackknife_blocks=(jackknife_blocks, int))
        if not 0 < confidence < 1:
            raise UserError(f"{param('confidence')} must be between 0 and 1, got {confidence}")
        if jackknife_blocks < 2:
            raise UserError(f"{param('jackknife_blocks')} must be at least 2 for an interval, got {jackknife_blocks}")
        self.features = resolve_features(DEFAULT_FEATURES if features is None else features)
        self.ref = ref
        self.value_range, self.layout = value_range, layout
        self.confidence, self.jackknife_blocks = confidence, jackknife_blocks
        runtime = runtime_of(runtime)
        self._runtime = runtime.open()
        self._model = inputs.load_features(self.features, self._runtime, runtime.batch_size)
        log.info("runtime: %s", self._runtime.describe())
        self._ref_mu, self._ref_sigma, self._ref_n, self._ref_warnings = reference_statistics(
            ref, self._model, allow_other_features=allow_other_features, progress=False, cache=cache)
        self._blocks: list[FeatureStats] = []
        self.reset()

    @property
    def n(self) -> int:
        """The number of images added since the last reset."""
        return sum(block.n for block in self._blocks)

    def reset(self) -> None:
        """Forget the images added (the features model and the reference stay)."""
        self._blocks = [new_stats(self._model) for _ in range(self.jackknife_blocks)]

    def update(self, images: Any) -> None:
        """Add a batch of images: a numpy array or torch tensor, [N, H, W, C] or [N, C, H, W], uint8 or float
        in ``value_range``, or an iterable of such batches."""
        pixels = images_to_uint8(images, self.value_range, self.layout, "images")
        first = self.n
        step = self._model.batch_size
        for start in range(0, len(pixels), step):
            batch = pixels[start : start + step].transpose(0, 3, 1, 2)
            feats = np.asarray(features_of_uint8(self._model, batch), np.float64)
            which = (first + start + np.arange(len(feats))) % self.jackknife_blocks
            for block in np.unique(which):
                self._blocks[block].update(feats[which == block])

    def merge(self, other: "FrechetDistance") -> "FrechetDistance":
        """Add another FrechetDistance's images (e.g. another process's) into this one."""
        if not isinstance(other, FrechetDistance):
            raise UserError(f"cannot merge a {type(other).__name__} into a FrechetDistance")
        if other.jackknife_blocks != self.jackknife_blocks:
            raise UserError(f"cannot merge a FrechetDistance of {other.jackknife_blocks} jackknife blocks into one of "
                            f"{self.jackknife_blocks}; make both with the same {param('jackknife_blocks')}")
        if not (np.array_equal(other._ref_mu, self._ref_mu) and np.array_equal(other._ref_sigma, self._ref_sigma)):
            raise UserError("cannot merge FrechetDistances with different references; make both with the same ref")
        for mine, theirs in zip(self._blocks, other._blocks):
            mine.merge(theirs)  # refuses other features models or preprocessing
        return self

    def compute(self) -> Report:
        """The distance of the images added so far, with its jackknife interval over the blocks."""
        whole = new_stats(self._model)
        for block in self._blocks:
            whole.merge(block)
        whole.require_covariance("the images given to update()")
        value, interval = frechet_with_interval(whole, self._ref_mu, self._ref_sigma, self.confidence,
                                                blocks=self._blocks, what="interleaved blocks of the images")
        small = small_sample_warning(whole, "the images given to update()")
        reference = image_source(self.ref).describe()
        details = {"images": f"{whole.n} images given to update()", "reference": reference,
                   "reference_n": self._ref_n, "features": feature_model_id(self._model), "feature_dim": whole.dim}
        prov = provenance(inputs={"features": self.features, "ref": path_or_none(self.ref)},
                          provider=self._runtime.provider or "", device_id=self._runtime.device_id,
                          preprocessing={"features": preprocessing_id(self._model),
                                         "generated": "quantised to uint8 like PNGs"},
                          seeds=None, n=whole.n, batch_size=self._model.batch_size)
        prov["runtime"] = self._runtime.describe()
        report = Report("fid", value, whole.n, interval=interval, details=details, provenance=prov,
                        higher_is_better=False,
                        settings={"confidence": self.confidence, "jackknife_blocks": self.jackknife_blocks},
                        warnings=self._ref_warnings + ([small] if small else []))
        report.stats = whole
        return report


__all__ = ["FrechetDistance"]
