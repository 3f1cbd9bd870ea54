"""The ONNX model contract shared by the exporter and the evaluator (see docs/contract.md).

Everything both sides must agree on lives here: metadata keys, roles and the input and output names
of each role, and :class:`ExportGraph`, the spec of one graph to export. Torch-free: the evaluator
imports this (an ExportGraph's ``module`` is a torch module, but only the exporter touches it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gen_eval.data.labels import LabelSpace

CONTRACT_VERSION = "1"
PREFIX = "gen_eval."

KEY_ROLE = PREFIX + "role"
KEY_FAMILY = PREFIX + "family"
KEY_LATENT_DIM = PREFIX + "latent_dim"
KEY_IMAGE_SHAPE = PREFIX + "image_shape"
KEY_VALUE_RANGE = PREFIX + "value_range"
KEY_LABEL_SPACE = PREFIX + "label_space"
KEY_CONTRACT = PREFIX + "contract"
# Optional: SHA-256 of the weights file a model was exported from (the FID Inception records it).
KEY_WEIGHTS_SHA256 = PREFIX + "weights_sha256"
# Written by gen-eval's exporter: SHA-256 of the exported network's weights (gen_eval.trainers.fingerprint),
# the same whatever file they came from; and, on a generator, a JSON list of the classifiers its training
# used (fingerprints, loss terms, whether one picked this checkpoint), so the evaluator can flag a score
# by a judge that was part of the generator's own training.
KEY_WEIGHTS_FINGERPRINT = PREFIX + "weights_fingerprint"
KEY_TRAINING_JUDGES = PREFIX + "training_judges"
# Optional, on a generator that runs a sampler inside its graph (the diffusion family): how it samples
# (method, steps, guidance scale), chosen at export.
KEY_SAMPLER = PREFIX + "sampler"

ROLES = ("generator", "encoder", "classifier", "features")

# Input and output names by role.
INPUT_Z = "z"
INPUT_LABELS = "labels"
INPUT_IMAGE = "image"
OUTPUT_IMAGE = "image"
OUTPUT_MU = "mu"
OUTPUT_LOGVAR = "logvar"
OUTPUT_PROBS = "probs"
OUTPUT_FEATURES = "features"
OUTPUT_LOGITS = "logits"  # optional second output of a features model (the Inception's classifier, for IS)

# Inputs each role takes and the outputs it gives, in graph order when unnamed.
ROLE_INPUTS = {
    "generator": (INPUT_Z, INPUT_LABELS),
    "encoder": (INPUT_IMAGE, INPUT_LABELS),
    "classifier": (INPUT_IMAGE,),
    "features": (INPUT_IMAGE,),
}
ROLE_OUTPUTS = {
    "generator": (OUTPUT_IMAGE,),
    "encoder": (OUTPUT_MU, OUTPUT_LOGVAR),
    "classifier": (OUTPUT_PROBS,),
    "features": (OUTPUT_FEATURES, OUTPUT_LOGITS),
}


@dataclass
class ExportGraph:
    """One ONNX graph to export (docs/contract.md, the ONNX model contract).

    ``module`` (a torch module) takes the inputs positionally, in ``input_names`` order, and returns
    the outputs in ``output_names`` order. ``input_shapes`` omit the batch dimension (always dynamic).
    """

    role: str                               # "generator" | "encoder" | "classifier" | "features"
    module: Any
    input_names: list[str]
    input_shapes: list[tuple[int, ...]]
    output_names: list[str]
    image_shape: tuple[int, int, int]       # C,H,W of images in or out
    value_range: tuple[float, float]        # range of image values
    latent_dim: int | None = None
    label_space: LabelSpace | None = None
    suffix: str = ""                        # file-name suffix for secondary graphs, e.g. "encoder"
    metadata: dict[str, str] | None = None  # more gen_eval.* metadata, e.g. a diffusion sampler's settings


def format_image_shape(shape: tuple[int, int, int]) -> str:
    return ",".join(str(int(v)) for v in shape)


def parse_image_shape(text: str) -> tuple[int, int, int]:
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) != 3 or not all(p.isascii() and p.isdigit() and len(p) <= 9 and int(p) > 0 for p in parts):
        raise ValueError(f"image shape must be 'C,H,W' with positive integers, got {text!r}")
    c, h, w = (int(p) for p in parts)
    return c, h, w


def format_value_range(value_range: tuple[float, float]) -> str:
    lo, hi = value_range
    return f"{lo:g},{hi:g}"


def parse_value_range(text: str) -> tuple[float, float]:
    parts = [p.strip() for p in str(text).split(",")]
    try:
        lo, hi = (float(p) for p in parts)
    except ValueError:
        raise ValueError(f"value range must be 'LOW,HIGH' such as '-1,1' or '0,1', got {text!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"value range must be finite numbers such as '-1,1' or '0,1', got {text!r}")
    if not lo < hi:
        raise ValueError(f"value range must have LOW < HIGH, got {text!r}")
    return lo, hi
