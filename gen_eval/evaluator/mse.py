"""Reconstruction MSE of a VAE (docs/metrics.md): encoder mean (no sampling) -> decoder, compared with the
input, averaged over every pixel and channel of the whole set, on images scaled to [0, 1]."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from gen_eval.data.images import from_uint8
from gen_eval.data.imageset import ImageSet, rows_per_batch
from gen_eval.errors import UserError
from gen_eval.evaluator.model import OnnxModel
from gen_eval.evaluator.preprocess import hwc_to_nchw, rescale

SCALE = "[0, 1]"


@dataclass
class MseResult:
    value: float  # mean squared error on [0, 1]-scaled images
    n: int  # images
    values: int  # pixels x channels summed over
    per_image: np.ndarray | None = None  # each image's MSE (their mean is ``value``: images share one size)


def check_pair(encoder: OnnxModel, decoder: OnnxModel, images: ImageSet) -> None:
    """One-line errors when the encoder, decoder and data do not fit together."""
    if encoder.info.latent_dim and decoder.info.latent_dim and encoder.info.latent_dim != decoder.info.latent_dim:
        raise UserError(
            f"{encoder.path} gives a {encoder.info.latent_dim}-d mu but {decoder.path} takes a "
            f"{decoder.info.latent_dim}-d z; use the encoder and decoder of one VAE"
        )
    shape = images.image_shape
    for model in (encoder, decoder):
        if model.info.image_shape and tuple(model.info.image_shape) != tuple(shape):
            c, h, w = model.info.image_shape
            raise UserError(
                f"{images.source}: images are {shape[0]}x{shape[1]}x{shape[2]} (C,H,W) but {model.path.name} works on "
                f"{c}x{h}x{w}; give the data at the model's resolution"
            )
    if (encoder.info.conditional or decoder.info.conditional) and images.labels is None:
        raise UserError(f"{images.source}: the VAE is conditional but the data set has no labels; give a labelled data set")


def reconstruction_mse(encoder: OnnxModel, decoder: OnnxModel, images: ImageSet, *, progress: bool = False) -> MseResult:
    """Mean of (decoder(encoder_mu(x)) - x)² over all pixels and channels, images in [0, 1]."""
    check_pair(encoder, decoder, images)
    enc_range, dec_range = encoder.info.value_range, decoder.info.value_range
    total, count, per_image = 0.0, 0, []
    step = rows_per_batch(images, encoder.batch_size)
    with tqdm(total=len(images), unit="img", desc="reconstructing", disable=not progress or None, leave=True) as bar:
        for start in range(0, len(images), step):
            idx = range(start, min(start + step, len(images)))
            target = from_uint8(hwc_to_nchw([images.image(i) for i in idx]), (0.0, 1.0))
            labels = images.labels[start : idx.stop] if images.labels is not None else None
            feeds = {"image": rescale(target, (0.0, 1.0), enc_range)}
            if encoder.info.conditional:
                feeds["labels"] = labels
            mu = encoder.run(**feeds)["mu"]
            recon = decoder.generate(mu, labels if decoder.info.conditional else None)
            if recon.shape != target.shape:
                raise UserError(f"{decoder.path}: reconstructions are {recon.shape[1:]}, the images {target.shape[1:]}")
            diff = rescale(recon, dec_range, (0.0, 1.0)).astype(np.float64) - target
            squared = np.square(diff)
            total += float(squared.sum())
            count += diff.size
            per_image.append(squared.reshape(len(squared), -1).mean(axis=1))
            bar.update(len(idx))
    return MseResult(total / count, len(images), count, np.concatenate(per_image) if per_image else None)
