"""The shared inputs of the bad-input table and the fault tests: small models, images and statistics."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gen_eval.data.labels import LabelSpace
from gen_eval.evaluator.stats import FeatureStats
from helpers.graphs import ICLEVR_NAMES, make_dense_head, make_encoder, make_generator, make_linear_decoder
from helpers.images import write_images

CARTOON_SPACE = LabelSpace.categorical({"hair": ["h0", "h1", "h2"], "eye": ["e0", "e1"]})
GENERATOR_META = {"gen_eval.role": "generator", "gen_eval.family": "test", "gen_eval.latent_dim": "8",
                  "gen_eval.image_shape": "3,8,8", "gen_eval.value_range": "-1,1", "gen_eval.contract": "1"}


def write_stats(path: Path, **arrays) -> Path:
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
    return path


@dataclass
class Assets:
    root: Path
    objects: Path  # iCLEVR objects.json, 24 names
    test_json: Path  # 4 conditions
    gen: Path  # unconditional generator, 3x8x8 in [-1, 1], z 8
    gen_cond: Path  # conditional generator (iCLEVR 24 labels)
    gen_cond_bare: Path  # the same without metadata
    gen_cartoon: Path  # conditional generator on a categorical space (hair 3, eye 2)
    classifier: Path  # 24 labels, 3x8x8 in [-1, 1]
    classifier10: Path  # 10 labels (the first 10 iCLEVR names)
    classifier10_bare: Path  # 10 outputs, no metadata
    classifier_grey: Path  # takes 1x8x8 images
    features: Path  # 16-d features, 3x8x8 in [0, 1]
    encoder: Path
    decoder: Path
    encoder4: Path  # 4-d mu (does not fit the 8-d decoder)
    images: Path  # folder of 20 PNGs (8x8): more than the 16 feature dimensions, so no small-sample warning
    one_image: Path  # folder with one PNG
    stats: Path  # 16-d statistics of our format (of 20 other images)
    stats_pytorch_fid: Path  # mu, sigma only
    torch_files: dict[str, Path] = field(default_factory=dict)  # from the torch_assets fixture, for rows that need it


def build_assets(root: Path) -> Assets:
    root.mkdir(parents=True, exist_ok=True)
    objects = root / "objects.json"
    objects.write_text(json.dumps({name: i for i, name in enumerate(ICLEVR_NAMES)}))
    test_json = root / "test.json"
    test_json.write_text(json.dumps([["red cube"], ["blue sphere", "gray cube"], ["green cylinder"], ["cyan cube"]]))
    space10 = LabelSpace.multilabel(ICLEVR_NAMES[:10])
    decoder_weight = np.random.default_rng(3).standard_normal((8, 192)).astype(np.float32) / 8
    features = make_dense_head(root / "features.onnx", role="features", out_dim=16, value_range="0,1", activation="Tanh")
    stats = reference_stats(features, write_images(root / "reference", 20, seed=1), root / "stats.npz")
    return Assets(
        root=root, objects=objects, test_json=test_json,
        gen=make_generator(root / "gen.onnx"),
        gen_cond=make_generator(root / "gen_cond.onnx", labels=24),
        gen_cond_bare=make_generator(root / "gen_cond_bare.onnx", labels=24, metadata=False),
        gen_cartoon=make_generator(root / "gen_cartoon.onnx", labels=CARTOON_SPACE.size, label_space=CARTOON_SPACE),
        classifier=make_dense_head(root / "classifier.onnx", role="classifier"),
        classifier10=make_dense_head(root / "classifier10.onnx", role="classifier", out_dim=10, label_space=space10),
        classifier10_bare=make_dense_head(root / "classifier10_bare.onnx", role="classifier", out_dim=10, metadata=False),
        classifier_grey=make_dense_head(root / "classifier_grey.onnx", role="classifier", image_shape=(1, 8, 8)),
        features=features,
        encoder=make_encoder(root / "encoder.onnx", np.linalg.pinv(decoder_weight), value_range="-1,1"),
        decoder=make_linear_decoder(root / "decoder.onnx", decoder_weight, value_range="-1,1"),
        encoder4=make_encoder(root / "encoder4.onnx", latent_dim=4),
        images=write_images(root / "images", 20),
        one_image=write_images(root / "one_image", 1),
        stats=root / "stats.npz",
        stats_pytorch_fid=write_stats(root / "pytorch_fid.npz", mu=stats.mu, sigma=stats.sigma),
    )


def reference_stats(features: Path, folder: Path, out: Path) -> FeatureStats:
    """Statistics of ``folder`` through ``features``, as `gen-eval stats` writes them."""
    from gen_eval.data.datasets import open_dataset
    from gen_eval.evaluator.features import imageset_stats
    from gen_eval.evaluator.model import load_model

    stats = imageset_stats(load_model(features, role="features", device="cpu"), open_dataset(folder), progress=False)
    stats.save(out)
    return stats
