"""Loading an ONNX model for one role: its metadata, what its input shapes say, and what the user said.

Every fact the evaluator needs (latent size, value range, image shape, label space) comes from the
``gen_eval.*`` metadata, else from static input/output shapes, else from a command-line flag; when
none has it, the error names the flag. ``ModelInfo.sources`` records where each fact came from.

(Over 300 lines on purpose: the checks of one role's graph against its metadata read as one story; the
file-level safety checks of a model file live apart, in :mod:`gen_eval.evaluator.onnxfile`.)
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

from gen_eval import contract as C
from gen_eval.data.labels import LabelSpace
from gen_eval.errors import UserError, printable
from gen_eval.evaluator.onnxfile import check_external_data, external_data_locations
from gen_eval.evaluator.runtime import BatchRunner, Runtime
from gen_eval.fileio import read_input_bytes

DEFAULT_BATCH_SIZE = {"cpu": 64, "cuda": 256}
ROLE_INPUTS, ROLE_OUTPUTS = C.ROLE_INPUTS, C.ROLE_OUTPUTS  # the contract's tables (shared with the exporter)
# What a features model takes when its metadata does not say (shared/DESIGN.md): float32 in [0, 1].
FEATURES_VALUE_RANGE = (0.0, 1.0)
# Bounds on what a model may ask of the evaluator: a protobuf cannot exceed 2 GiB; noise and images
# beyond these sizes would exhaust memory long before a useful result (StyleGAN's z is 512, Inception's
# input 299x299; a features model declaring 2048x2048 would upsample every image to it).
MAX_MODEL_BYTES = 2**31
MAX_LATENT_DIM = 2**16
MAX_IMAGE_SIDE = 1024
MAX_CHANNELS = 4

log = logging.getLogger("gen_eval")


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


def _spec(node, path: Path, what: str) -> TensorSpec:
    if node.type not in _ORT_TYPES:
        raise UserError(
            f"{path}: {what} {node.name!r} is {node.type}; the contract wants float32 (or float16) tensors, re-export it"
        )
    return TensorSpec(node.name, tuple(node.shape), np.dtype(_ORT_TYPES[node.type]))


class OnnxModel:
    """One loaded ONNX model: a session, its :class:`ModelInfo`, and runs in fixed-size batches.

    Inputs and outputs are addressed by their contract names (``z``, ``labels``, ``image``,
    ``probs``, ``features``, ``mu``, ``logvar``) whatever the graph calls them.
    """

    def __init__(self, path: Path, session: ort.InferenceSession, runtime: Runtime, info: ModelInfo,
                 inputs: dict[str, TensorSpec], outputs: dict[str, TensorSpec], batch_size: int,
                 sha256: str | None = None) -> None:
        self.path, self.session, self.runtime, self.info = path, session, runtime, info
        if sha256 is not None:
            self.__dict__["sha256"] = sha256  # of the bytes that were loaded (fills the cached property)
        self.inputs, self.outputs = inputs, outputs
        static = {spec.static_batch for spec in inputs.values()} - {None}
        fixed = bool(static)
        self.batch_size = static.pop() if static else batch_size
        self._runner = BatchRunner(session, self.batch_size, io_binding=runtime.uses_cuda,
                                   device_id=runtime.device_id, name=str(path), pad=fixed)
        self._warned_range = False

    @functools.cached_property
    def sha256(self) -> str:
        """Hex digest of the model file (identifies it in reports, sample manifests, statistics)."""
        digest = hashlib.sha256()
        with open(self.path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    @property
    def provider(self) -> str:
        return self.session.get_providers()[0]

    def run(self, **inputs: np.ndarray) -> dict[str, np.ndarray]:
        """Run on any number of rows; keys are contract names; outputs are float32 and finite."""
        feeds = {}
        for key, value in inputs.items():
            spec = self.inputs[key]
            value = np.asarray(value)
            if key == C.INPUT_Z and len(spec.shape) == 4:  # DCGAN-style z [B, nz, 1, 1]
                value = value.reshape(len(value), -1, 1, 1)
            feeds[spec.name] = value.astype(spec.dtype, copy=False)
        outputs = self._runner.run(feeds)
        result = {}
        for key, spec in self.outputs.items():
            value = outputs[spec.name].astype(np.float32, copy=False)
            if not np.isfinite(value).all():
                bad = int(np.argwhere(~np.isfinite(value).reshape(len(value), -1).all(axis=1))[0, 0])
                raise UserError(
                    f"{self.path}: the {self.info.role} produced NaN/Inf in output {spec.name!r} (row {bad} of the batch); "
                    "the model or its export is broken — re-export it, or check its inputs"
                )
            result[key] = value
        return result

    def generate(self, z: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """Images float32 [B, C, H, W] in ``info.value_range`` from noise (and conditions)."""
        feeds = {C.INPUT_Z: z}
        if self.info.conditional:
            if labels is None:
                raise UserError(f"{self.path} is a conditional generator; give a condition file (--conditions/--test)")
            feeds[C.INPUT_LABELS] = labels
        images = self.run(**feeds)[C.OUTPUT_IMAGE]
        self._check_generated(images)
        return images

    def _check_generated(self, images: np.ndarray) -> None:
        if images.ndim != 4:
            raise UserError(f"{self.path}: generator output has shape {images.shape}, expected [B, C, H, W]")
        shape = tuple(int(v) for v in images.shape[1:])
        if self.info.image_shape is not None and shape != tuple(self.info.image_shape):
            raise UserError(
                f"{self.path}: the generator made images of shape {shape} but its "
                f"{self.info.sources.get('image_shape', 'metadata')} says {tuple(self.info.image_shape)}; "
                "re-export the model (or fix --image-shape)"
            )
        lo, hi = self.info.value_range
        margin = 0.05 * (hi - lo)
        if not self._warned_range and (images.min() < lo - margin or images.max() > hi + margin):
            self._warned_range = True
            log.warning(
                f"{printable(self.path.name)} outputs values in [{images.min():.3g}, {images.max():.3g}], outside its "
                f"value range {C.format_value_range((lo, hi))} ({self.info.sources.get('value_range', '?')}); "
                "check --value-range"
            )

    def describe(self) -> list[tuple[str, str]]:
        """Rows for ``gen-eval info``: (what, value [source])."""
        info = self.info

        def src(key: str) -> str:
            return f"  [{info.sources[key]}]" if key in info.sources else ""

        rows = [("file", str(self.path)), ("role", info.role + src("role"))]  # printed through printable()
        if info.family:
            rows.append(("family", info.family))
        for spec in self.inputs.values():
            rows.append(("input", spec.describe()))
        for spec in self.outputs.values():
            rows.append(("output", spec.describe()))
        for what in ("inputs", "outputs"):
            if what in info.sources:
                rows.append((f"{what} taken", info.sources[what]))
        if info.latent_dim is not None:
            rows.append(("latent dim", f"{info.latent_dim}{src('latent_dim')}"))
        if info.image_shape is not None:
            rows.append(("image shape", f"{C.format_image_shape(info.image_shape)} (C,H,W){src('image_shape')}"))
        else:
            rows.append(("image shape", "any (dynamic H, W)" if info.role != "generator" else "known after one run"))
        if info.value_range is not None:
            rows.append(("value range", f"{C.format_value_range(info.value_range)}{src('value_range')}"))
        if info.label_space is not None:
            space = info.label_space
            shown = ", ".join(space.names[:4]) + (", ..." if space.size > 4 else "")
            rows.append(("label space", f"{space.kind}, {space.size} ({shown}){src('label_space')}"))
        elif info.label_size is not None:
            rows.append(("labels", f"{info.label_size} values, names unknown (pass --objects)"))
        if info.output_size is not None:
            rows.append(("output size", str(info.output_size)))
        rows.append(("batch size", f"{self.batch_size}" + (" (fixed by the graph)" if any(
            s.static_batch for s in self.inputs.values()) else "")))
        rows.append(("contract", info.contract or "none (no gen-eval metadata)"))
        for key, value in sorted(info.metadata.items()):
            if not key.startswith(C.PREFIX):
                rows.append((f"metadata {key}", value if len(value) < 80 else value[:77] + "..."))
        return rows


def _flag(prefix: str, name: str) -> str:
    return f"--{prefix}{name}"


def _read_model_file(path: Path) -> bytes:
    """The model's bytes: a regular file under 2 GiB (not a FIFO or device, which would hang or never end)."""
    if path.is_dir():
        raise UserError(f"{path}: is a folder; give an .onnx file")
    data = read_input_bytes(path, "model file", MAX_MODEL_BYTES)
    if not data:
        raise UserError(f"{path}: empty file (0 bytes); export the model again")
    if data[:2] == b"PK" or path.suffix in (".pt", ".pth", ".ckpt"):
        raise UserError(f"{path}: looks like a PyTorch checkpoint, not ONNX; export it with `gen-eval export` first")
    return data


def _parse_metadata(path: Path, meta: Mapping[str, str]) -> ModelInfo:
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


def _guess_role(inputs: list[TensorSpec], outputs: list[TensorSpec]) -> str | None:
    ranks_in = [len(s.shape) for s in inputs]
    if len(outputs) == 2 and ranks_in and ranks_in[0] == 4:
        return "encoder"
    if len(outputs) == 1 and len(outputs[0].shape) == 4 and ranks_in and ranks_in[0] in (2, 4) and ranks_in[0] != 4:
        return "generator"
    if len(outputs) == 1 and len(outputs[0].shape) == 4 and inputs and len(inputs[0].shape) == 4 and inputs[0].static(2) == 1:
        return "generator"  # z [B, nz, 1, 1]
    return None


def _map_names(path: Path, role: str, specs: list[TensorSpec], wanted: tuple[str, ...], what: str,
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


def _agree(path: Path, info: ModelInfo, attr: str, value, source: str, flag: str | None = None) -> None:
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


def load_model(
    path: str | os.PathLike,
    *,
    role: str | None = None,
    device: str = "auto",
    runtime: Runtime | None = None,
    latent_dim: int | None = None,
    value_range: tuple[float, float] | None = None,
    label_space: LabelSpace | None = None,
    image_shape: tuple[int, int, int] | None = None,
    batch_size: int | None = None,
    flag_prefix: str = "",
    label_space_source: str | None = None,
    require: bool = True,
) -> OnnxModel:
    """Open ``path`` as a model of ``role`` (checked against its metadata and graph).

    ``latent_dim``/``value_range``/``label_space``/``image_shape`` supply what a model without
    gen-eval metadata lacks; they must agree with the metadata when both exist. Errors for a
    missing fact name the flag ``--{flag_prefix}latent-dim`` etc. With ``require=False`` (``gen-eval
    info``) missing facts are left as None instead.
    """
    path = Path(path)
    runtime = runtime or Runtime(device)
    data = _read_model_file(path)
    try:
        locations = external_data_locations(data)
    except ValueError as exc:
        raise UserError(f"{path}: cannot load this model (not an ONNX protobuf: {exc}); give a valid .onnx file") from None
    if locations:
        # onnxruntime resolves locations of a model given as bytes against the current directory: load it by
        # path, which resolves them in the model's folder, once every location is known to stay inside it
        check_external_data(path, locations)
        session = runtime.session(path)
    else:
        session = runtime.session(path, data)
    try:
        meta = dict(session.get_modelmeta().custom_metadata_map)
    except (UnicodeDecodeError, RuntimeError) as exc:
        raise UserError(f"{path}: unreadable metadata ({type(exc).__name__}: not UTF-8 text); re-export the model") from None
    info = _parse_metadata(path, meta)
    sha256 = hashlib.sha256(data).hexdigest()
    in_specs = [_spec(node, path, "input") for node in session.get_inputs()]
    out_specs = [_spec(node, path, "output") for node in session.get_outputs()]

    if role is not None and info.role and info.role != role:
        raise UserError(f"{path} is a {info.role} model (its metadata says so), but a {role} is needed here")
    if not info.role:
        guessed = role or _guess_role(in_specs, out_specs)
        if guessed is None:
            if require:
                raise UserError(f"{path}: no gen_eval.role metadata and the graph does not tell; export it with gen-eval")
            guessed = "unknown"
        info.role = guessed
        info.sources["role"] = "asked for" if role else "guessed from the graph"
    if info.role == "unknown":
        return OnnxModel(path, session, runtime, info, {s.name: s for s in in_specs}, {s.name: s for s in out_specs},
                         batch_size or 1, sha256)

    inputs = _map_names(path, info.role, in_specs, ROLE_INPUTS[info.role], "input", info.sources)
    outputs = _map_names(path, info.role, out_specs, ROLE_OUTPUTS[info.role], "output", info.sources)
    flags = {k: _flag(flag_prefix, k.replace("_", "-")) for k in ("latent_dim", "value_range", "image_shape")}
    flags["label_space"] = f"--{flag_prefix}objects"
    _agree(path, info, "latent_dim", latent_dim, flags["latent_dim"], flags["latent_dim"])
    _agree(path, info, "value_range", tuple(float(v) for v in value_range) if value_range else None,
           flags["value_range"], flags["value_range"])
    _agree(path, info, "image_shape", tuple(image_shape) if image_shape else None, flags["image_shape"], flags["image_shape"])
    if label_space is not None:
        given = label_space_source or flags["label_space"]
        if info.label_space is not None and info.label_space != label_space:
            raise UserError(
                f"{path}: the label space from {given} ({label_space.kind}, {label_space.size} names) differs from "
                f"the model's metadata ({info.label_space.kind}, {info.label_space.size} names); use matching models/files"
            )
        if info.label_space is None:
            info.label_space = label_space
            info.sources["label_space"] = given

    _check_role(path, info, inputs, outputs, flags, require)
    default_batch = DEFAULT_BATCH_SIZE["cuda" if runtime.uses_cuda else "cpu"]
    return OnnxModel(path, session, runtime, info, inputs, outputs,
                     default_batch if batch_size is None else batch_size, sha256)


def _expect_rank(path: Path, spec: TensorSpec, ranks: tuple[int, ...], what: str) -> None:
    if len(spec.shape) not in ranks:
        want = " or ".join(f"rank {r}" for r in ranks)
        raise UserError(f"{path}: {what} {spec.name!r} has shape {spec.describe()}, expected {want}; is this the right model?")


def _check_role(path: Path, info: ModelInfo, inputs: dict[str, TensorSpec], outputs: dict[str, TensorSpec],
                flags: dict[str, str], require: bool) -> None:
    role = info.role
    if role == "generator":
        z = inputs.get(C.INPUT_Z)
        if z is None:
            raise UserError(f"{path}: a generator needs a noise input 'z'")
        _expect_rank(path, z, (2, 4), "noise input")
        if len(z.shape) == 4 and (z.static(2) != 1 or z.static(3) != 1):
            raise UserError(f"{path}: noise input {z.describe()} must be [B, nz] or [B, nz, 1, 1]")
        _agree(path, info, "latent_dim", z.static(1), "input z shape")
        image = outputs[C.OUTPUT_IMAGE]
        _expect_rank(path, image, (4,), "output")
        static_shape = tuple(image.static(a) for a in (1, 2, 3))
        if all(static_shape):
            _agree(path, info, "image_shape", static_shape, "output shape")
        if require and info.latent_dim is None:
            raise UserError(f"{path}: latent size unknown (no metadata, dynamic z); pass {flags['latent_dim']}")
    else:
        image = inputs.get(C.INPUT_IMAGE)
        if image is None:
            raise UserError(f"{path}: a {role} needs an image input")
        _expect_rank(path, image, (4,), "image input")
        static_shape = tuple(image.static(a) for a in (1, 2, 3))
        if all(static_shape):
            _agree(path, info, "image_shape", static_shape, "input shape")
        elif image.static(1) and info.image_shape is None:
            info.sources["channels"] = str(image.static(1))
        for key, spec in outputs.items():
            _expect_rank(path, spec, (2,), f"output {key}")
        first = next(iter(outputs.values()))
        info.output_size = first.static(1)
        if role == "encoder":
            _agree(path, info, "latent_dim", first.static(1), "output mu shape")
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
