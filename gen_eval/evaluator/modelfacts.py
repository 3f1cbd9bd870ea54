"""A model's facts: what its ``gen_eval.*`` metadata says, what its input and output shapes say, and
whether they agree with each other, with the contract of its role, and with what the caller supplied.

Every fact the evaluator needs (latent size, value range, image shape, label space) comes from the
metadata, else from static input/output shapes, else from the caller; when none has it, the error
names the parameter. ``ModelInfo.sources`` records where each fact came from. Opening the file and the
onnxruntime session is :mod:`gen_eval.evaluator.model`'s job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gen_eval import contract as C
from gen_eval.data.labels import LabelSpace
from gen_eval.errors import UserError

# Bounds on what a model may ask of the evaluator: a protobuf cannot exceed 2 GiB; noise and images
# beyond these sizes would exhaust memory long before a useful result (StyleGAN's z is 512, Inception's
# input 299x299; a features model declaring 2048x2048 would upsample every image to it).
MAX_MODEL_BYTES = 2**31
MAX_LATENT_DIM = 2**16
MAX_IMAGE_SIDE = 1024
MAX_CHANNELS = 4
# What a features model takes when its metadata does not say (docs/contract.md): float32 in [0, 1].
FEATURES_VALUE_RANGE = (0.0, 1.0)


@dataclass
class ModelInfo:
    """What the evaluator knows about a model, and where each fact came from (``sources``)."""

    role: str
    latent_dim: int | None = None
    image_shape: tuple[int, int, int] | None = None
    value_range: tuple[float, float] | None = None
    label_space: LabelSpace | None = None
    label_size: int | None = None
    output_size: int | None = None
    family: str | None = None
    contract: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    conditional: bool = False


@dataclass
class TensorSpec:
    name: str
    shape: tuple  # ints for static dims, str/None for dynamic ones
    dtype: np.dtype

    @property
    def static_batch(self) -> int | None:
        return self.shape[0] if self.shape and isinstance(self.shape[0], int) and self.shape[0] > 0 else None

    def static(self, axis: int) -> int | None:
        dim = self.shape[axis] if len(self.shape) > axis else None
        return dim if isinstance(dim, int) and dim > 0 else None

    def describe(self) -> str:
        dims = ", ".join(str(d) if isinstance(d, int) else (d or "?") for d in self.shape)
        return f"{self.name} {np.dtype(self.dtype).name} [{dims}]"


_ORT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}


def tensor_spec(node, path: Path, what: str) -> TensorSpec:
    if node.type not in _ORT_TYPES:
        raise UserError(
            f"{path}: {what} {node.name!r} is {node.type}; the contract wants float32 (or float16) tensors, re-export it"
        )
    return TensorSpec(node.name, tuple(node.shape), np.dtype(_ORT_TYPES[node.type]))


def parse_metadata(path: Path, meta: Mapping[str, str]) -> ModelInfo:
    info = ModelInfo(role="", metadata=dict(meta))
    info.family = meta.get(C.KEY_FAMILY)
    info.contract = meta.get(C.KEY_CONTRACT)

    def parse(key, parser, attr):
        if key in meta:
            try:
                setattr(info, attr, parser(meta[key]))
            except RecursionError:
                raise UserError(f"{path}: bad metadata {key} (nested too deeply); re-export the model") from None
            except (ValueError, KeyError, TypeError) as exc:
                shown = meta[key] if len(meta[key]) <= 80 else meta[key][:77] + "..."
                raise UserError(f"{path}: bad metadata {key}={shown!r} ({str(exc)[:120]}); re-export the model") from None
            info.sources[attr] = "metadata"

    def latent(text):
        value = int(text)
        if not 1 <= value <= MAX_LATENT_DIM:
            raise ValueError(f"must be an integer from 1 to {MAX_LATENT_DIM}")
        return value

    def image_shape(text):
        shape = C.parse_image_shape(text)
        _check_image_shape(shape)
        return shape

    parse(C.KEY_LATENT_DIM, latent, "latent_dim")
    parse(C.KEY_IMAGE_SHAPE, image_shape, "image_shape")
    parse(C.KEY_VALUE_RANGE, C.parse_value_range, "value_range")
    parse(C.KEY_LABEL_SPACE, LabelSpace.from_json, "label_space")
    if C.KEY_ROLE in meta:
        if meta[C.KEY_ROLE] not in C.ROLES:
            raise UserError(f"{path}: unknown role {meta[C.KEY_ROLE]!r} in metadata; expected one of {', '.join(C.ROLES)}")
        info.role = meta[C.KEY_ROLE]
        info.sources["role"] = "metadata"
    return info


def _check_image_shape(shape) -> None:
    c, h, w = shape
    if c > MAX_CHANNELS or h > MAX_IMAGE_SIDE or w > MAX_IMAGE_SIDE:
        raise ValueError(f"images of {c}x{h}x{w} are over the limit of {MAX_CHANNELS} channels and "
                         f"{MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE} pixels")


def guess_role(inputs: list[TensorSpec], outputs: list[TensorSpec]) -> str | None:
    ranks_in = [len(s.shape) for s in inputs]
    if len(outputs) == 2 and ranks_in and ranks_in[0] == 4:
        return "encoder"
    if len(outputs) == 1 and len(outputs[0].shape) == 4 and ranks_in and ranks_in[0] in (2, 4) and ranks_in[0] != 4:
        return "generator"
    if len(outputs) == 1 and len(outputs[0].shape) == 4 and inputs and len(inputs[0].shape) == 4 and inputs[0].static(2) == 1:
        return "generator"  # z [B, nz, 1, 1]
    return None


def map_names(path: Path, role: str, specs: list[TensorSpec], wanted: tuple[str, ...], what: str,
               sources: dict) -> dict[str, TensorSpec]:
    """Contract name -> graph tensor: by name when the graph uses the contract's names, else by position."""
    by_name = {s.name: s for s in specs}
    if all(name in by_name for name in wanted[: len(specs)]) and len(specs) <= len(wanted):
        return {name: by_name[name] for name in wanted if name in by_name}
    if len(specs) > len(wanted):
        raise UserError(
            f"{path}: a {role} has at most {len(wanted)} {what}s ({', '.join(wanted)}), this graph has "
            f"{len(specs)} ({', '.join(by_name)}); export it with the contract's {what} names"
        )
    mapping = dict(zip(wanted, specs))
    renamed = [f"{s.name}->{k}" for k, s in mapping.items() if s.name != k]
    if renamed:
        sources[f"{what}s"] = "by position: " + ", ".join(renamed)
    return mapping


def agree(path: Path, info: ModelInfo, attr: str, value, source: str, flag: str | None = None) -> None:
    """Fill ``info.attr`` from ``source`` or check that it agrees with what is already known."""
    if value is None:
        return
    if attr == "latent_dim" and not 1 <= value <= MAX_LATENT_DIM:
        raise UserError(f"{path}: latent size {value} by {source} is outside 1..{MAX_LATENT_DIM}; "
                        "is this the right model? (a larger z is not supported)")
    if attr == "image_shape":
        try:
            _check_image_shape(value)
        except ValueError as exc:
            raise UserError(f"{path}: {attr.replace('_', ' ')} by {source}: {exc}; use a model made for smaller "
                            "images") from None
    current = getattr(info, attr)
    if current is None:
        setattr(info, attr, value)
        info.sources[attr] = source
    elif current != value:
        hint = f"leave out {flag} or fix it" if flag and source == flag else "re-export the model"
        raise UserError(
            f"{path}: {attr.replace('_', ' ')} is {value} by {source} but {current} by {info.sources.get(attr, '?')}; {hint}"
        )


def _expect_rank(path: Path, spec: TensorSpec, ranks: tuple[int, ...], what: str) -> None:
    if len(spec.shape) not in ranks:
        want = " or ".join(f"rank {r}" for r in ranks)
        raise UserError(f"{path}: {what} {spec.name!r} has shape {spec.describe()}, expected {want}; is this the right model?")


def check_role(path: Path, info: ModelInfo, inputs: dict[str, TensorSpec], outputs: dict[str, TensorSpec],
                flags: dict[str, str], require: bool) -> None:
    role = info.role
    if role == "generator":
        z = inputs.get(C.INPUT_Z)
        if z is None:
            raise UserError(f"{path}: a generator needs a noise input 'z'")
        _expect_rank(path, z, (2, 4), "noise input")
        if len(z.shape) == 4 and (z.static(2) != 1 or z.static(3) != 1):
            raise UserError(f"{path}: noise input {z.describe()} must be [B, nz] or [B, nz, 1, 1]")
        agree(path, info, "latent_dim", z.static(1), "input z shape")
        image = outputs[C.OUTPUT_IMAGE]
        _expect_rank(path, image, (4,), "output")
        static_shape = tuple(image.static(a) for a in (1, 2, 3))
        if all(static_shape):
            agree(path, info, "image_shape", static_shape, "output shape")
        if require and info.latent_dim is None:
            raise UserError(f"{path}: latent size unknown (no metadata, dynamic z); pass {flags['latent_dim']}")
    else:
        image = inputs.get(C.INPUT_IMAGE)
        if image is None:
            raise UserError(f"{path}: a {role} needs an image input")
        _expect_rank(path, image, (4,), "image input")
        static_shape = tuple(image.static(a) for a in (1, 2, 3))
        if all(static_shape):
            agree(path, info, "image_shape", static_shape, "input shape")
        elif image.static(1) and info.image_shape is None:
            info.sources["channels"] = str(image.static(1))
        for key, spec in outputs.items():
            _expect_rank(path, spec, (2,), f"output {key}")
        first = next(iter(outputs.values()))
        info.output_size = first.static(1)
        if role == "encoder":
            agree(path, info, "latent_dim", first.static(1), "output mu shape")
        if role == "features" and info.value_range is None:
            info.value_range = FEATURES_VALUE_RANGE
            info.sources["value_range"] = "default for features models"

    labels = inputs.get(C.INPUT_LABELS)
    info.conditional = labels is not None
    if labels is not None:
        _expect_rank(path, labels, (2,), "labels input")
        info.label_size = labels.static(1) or (info.label_space.size if info.label_space else None)
        if info.label_space is not None and labels.static(1) and labels.static(1) != info.label_space.size:
            raise UserError(
                f"{path}: input labels has {labels.static(1)} values but the label space "
                f"({info.sources['label_space']}) has {info.label_space.size}; give the matching objects.json"
            )
        if require and info.label_space is None:
            raise UserError(f"{path}: conditional model without label names in its metadata; pass {flags['label_space']} objects.json")
        if info.label_size is None:
            info.label_size = info.label_space.size if info.label_space else None
    elif info.label_space is not None and role in ("generator", "encoder") and info.sources.get("label_space") == flags["label_space"]:
        raise UserError(f"{path}: {flags['label_space']} was given but this {role} takes no labels input; leave it out")
    if role == "classifier" and info.label_space is not None and info.output_size and info.output_size != info.label_space.size:
        raise UserError(
            f"{path}: the classifier gives {info.output_size} probabilities but its label space has {info.label_space.size}"
        )
    if require and info.value_range is None and role != "features":
        raise UserError(f"{path}: value range unknown (no gen_eval.value_range metadata); pass {flags['value_range']} -1,1 or 0,1")
