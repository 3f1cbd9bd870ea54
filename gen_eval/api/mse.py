"""`mse`: reconstruction MSE of a VAE (encoder mean -> decoder) on images in [0, 1], with its interval."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from gen_eval.api import inputs
from gen_eval.api.reports import Report
from gen_eval.api.sources import GeneratorSource, Runtime, image_source, runtime_of, with_samples
from gen_eval.errors import param
from gen_eval.evaluator.uncertainty import t_interval

log = logging.getLogger("gen_eval")


def mse(model: str | Path | GeneratorSource, encoder: str | Path, data: Any, *, split: str = "train",
        encoder_value_range: str | tuple[float, float] | None = None, confidence: float = 0.95,
        runtime: Runtime | None = None, progress: bool = False) -> Report:
    """Reconstruction MSE of the VAE whose decoder is ``model`` and encoder ``encoder`` on ``data``.

    Each image goes through the encoder's mean (no sampling) and the decoder; the MSE is the mean over every
    pixel and channel of the whole set, on images scaled to [0, 1]. The interval is Student t over the
    images' own MSEs.

    Args:
        model: the VAE's decoder .onnx (role generator), or a :class:`gen_eval.GeneratorSource` of it (with
            the ``objects``, ``latent_dim`` and ``value_range`` a decoder without gen-eval metadata needs).
        encoder: the VAE's encoder .onnx (role encoder: image -> mu, logvar).
        data: images: a folder, a data set, a `gen-eval sample` .npz, images in memory, or an
            :class:`gen_eval.ImageSource`.
        split: the split of a ``data`` path when it is a data set.
        encoder_value_range: the input range of an encoder without metadata [default: the decoder's].
        confidence: the interval's coverage, between 0 and 1.
        runtime: the device, batch size and threads (:class:`gen_eval.Runtime`) [default: ``Runtime()``].
        progress: draw a progress bar on stderr (kept on screen when done, with rate and total).

    Returns:
        A :class:`~gen_eval.api.reports.Report` with metric ``reconstruction_mse`` (lower is better; its
        ``details["scale"]`` names the scale).

    Raises:
        UserError: on a bad argument or input file (one line that says what to change).

    Example:
        >>> report = gen_eval.mse("vae.onnx", "vae.encoder.onnx", "celeba/", split="test")  # doctest: +SKIP
        >>> report.gate(0.01).passed  # doctest: +SKIP
    """
    from gen_eval.errors import UserError

    inputs.check_types(encoder=(encoder, inputs.PATH), data=(data, inputs.IMAGES), split=(split, str),
                       confidence=(confidence, float), progress=(progress, bool))
    source, runtime = with_samples(model), runtime_of(runtime)
    model, objects = source.model, source.objects
    if not 0 < confidence < 1:
        raise UserError(f"{param('confidence')} must be between 0 and 1, got {confidence}")
    from gen_eval.evaluator.model import load_model
    from gen_eval.evaluator.mse import SCALE, reconstruction_mse
    from gen_eval.evaluator.provenance import image_set_listing, provenance

    rt, batch_size = runtime.open(), runtime.batch_size
    decoder = inputs.load_generator(model, rt, batch_size=batch_size, latent_dim=source.latent_dim,
                                    value_range_text=source.value_range, objects=objects)
    enc = load_model(encoder, role="encoder", runtime=rt, batch_size=batch_size,
                     value_range=inputs.value_range(encoder_value_range, param("encoder_value_range")),
                     label_space=decoder.info.label_space, label_space_source=f"{model} metadata",
                     param_prefix="encoder_", require=False)
    if enc.info.value_range is None:
        enc.info.value_range = decoder.info.value_range
        enc.info.sources["value_range"] = "the decoder's"
    log.info("runtime: %s", rt.describe())
    channels = (decoder.info.image_shape or enc.info.image_shape or (None,))[0]
    images = image_source(data, split).open(channels, param("data"))
    result = reconstruction_mse(enc, decoder, images, progress=progress)
    prov = provenance(inputs={"model": model, "encoder": encoder, "objects": objects}, provider=rt.provider or "",
                      device_id=rt.device_id, preprocessing={"scale": SCALE, "encoder_value_range":
                                                             list(enc.info.value_range)},
                      seeds=None, n=result.n, batch_size=enc.batch_size, data_listing=image_set_listing(images))
    prov["runtime"] = rt.describe()
    prov["data"] = images.source
    interval = t_interval(result.per_image, confidence, "image") if result.per_image is not None else None
    details = {"scale": SCALE, "data": images.source, "encoder": str(encoder), "values": result.values}
    return Report("reconstruction_mse", result.value, result.n, model=str(model), interval=interval,
                  details=details, provenance=prov, higher_is_better=False,
                  settings={"split": split, "confidence": confidence})


__all__ = ["mse"]
