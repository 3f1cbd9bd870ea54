"""Loading an ONNX model for one role: the file, its onnxruntime session, and runs in batches.

What the model's metadata and shapes say, and their checks against its role and against what the caller
supplied, live in :mod:`gen_eval.evaluator.modelfacts`; the file-level safety checks of a model file in
:mod:`gen_eval.evaluator.onnxfile`.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort

from gen_eval import contract as C
from gen_eval.data.labels import LabelSpace
from gen_eval.errors import UserError, param, printable, render
from gen_eval.evaluator.batches import BatchRunner
from gen_eval.evaluator.modelfacts import (
    MAX_MODEL_BYTES,
    ModelInfo,
    TensorSpec,
    agree,
    check_role,
    guess_role,
    map_names,
    parse_metadata,
    tensor_spec,
)
from gen_eval.evaluator.onnxfile import check_external_data, external_data_locations
from gen_eval.evaluator.runtime import Runtime
from gen_eval.inputfiles import read_input_bytes

DEFAULT_BATCH_SIZE = {"cpu": 64, "cuda": 256}
ROLE_INPUTS, ROLE_OUTPUTS = C.ROLE_INPUTS, C.ROLE_OUTPUTS  # the contract's tables (shared with the exporter)
log = logging.getLogger("gen_eval")


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
                raise UserError(f"{self.path} is a conditional generator; give a condition file ({param('conditions')})")
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
                f"re-export the model (or fix {param('image_shape')})"
            )
        lo, hi = self.info.value_range
        margin = 0.05 * (hi - lo)
        if not self._warned_range and (images.min() < lo - margin or images.max() > hi + margin):
            self._warned_range = True
            log.warning(
                f"{printable(self.path.name)} outputs values in [{images.min():.3g}, {images.max():.3g}], outside its "
                f"value range {C.format_value_range((lo, hi))} ({self.info.sources.get('value_range', '?')}); "
                f"check {param('value_range')}"
            )

    def describe(self) -> list[tuple[str, str]]:
        """Rows for ``gen-eval info``: (what, value [source])."""
        info = self.info

        def src(key: str) -> str:
            return f"  [{info.sources[key]}]" if key in info.sources else ""

        rows = [("file", str(self.path)), ("role", info.role + src("role"))]  # printed through printable()
        if info.family:
            rows.append(("family", info.family))
        if C.KEY_SAMPLER in info.metadata:
            rows.append(("sampler", info.metadata[C.KEY_SAMPLER]))
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
            rows.append(("labels", f"{info.label_size} values, names unknown (pass {render(param('objects'))})"))
        if info.output_size is not None:
            rows.append(("output size", str(info.output_size)))
        rows.append(("batch size", f"{self.batch_size}" + (" (fixed by the graph)" if any(
            s.static_batch for s in self.inputs.values()) else "")))
        rows.append(("contract", info.contract or "none (no gen-eval metadata)"))
        for key, value in sorted(info.metadata.items()):
            if not key.startswith(C.PREFIX):
                rows.append((f"metadata {key}", value if len(value) < 80 else value[:77] + "..."))
        return rows


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
    param_prefix: str = "",
    label_space_source: str | None = None,
    require: bool = True,
) -> OnnxModel:
    """Open ``path`` as a model of ``role`` (checked against its metadata and graph).

    ``latent_dim``/``value_range``/``label_space``/``image_shape`` supply what a model without
    gen-eval metadata lacks; they must agree with the metadata when both exist. Errors for a
    missing fact name the parameter ``{param_prefix}latent_dim`` etc. (gen_eval.errors.param). With ``require=False`` (``gen-eval
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
    info = parse_metadata(path, meta)
    sha256 = hashlib.sha256(data).hexdigest()
    in_specs = [tensor_spec(node, path, "input") for node in session.get_inputs()]
    out_specs = [tensor_spec(node, path, "output") for node in session.get_outputs()]

    if role is not None and info.role and info.role != role:
        raise UserError(f"{path} is a {info.role} model (its metadata says so), but a {role} is needed here")
    if not info.role:
        guessed = role or guess_role(in_specs, out_specs)
        if guessed is None:
            if require:
                raise UserError(f"{path}: no gen_eval.role metadata and the graph does not tell; export it with gen-eval")
            guessed = "unknown"
        info.role = guessed
        info.sources["role"] = "asked for" if role else "guessed from the graph"
    if info.role == "unknown":
        return OnnxModel(path, session, runtime, info, {s.name: s for s in in_specs}, {s.name: s for s in out_specs},
                         batch_size or 1, sha256)

    inputs = map_names(path, info.role, in_specs, ROLE_INPUTS[info.role], "input", info.sources)
    outputs = map_names(path, info.role, out_specs, ROLE_OUTPUTS[info.role], "output", info.sources)
    flags = {k: render(param(param_prefix + k)) for k in ("latent_dim", "value_range", "image_shape")}
    flags["label_space"] = render(param(f"{param_prefix}objects"))
    agree(path, info, "latent_dim", latent_dim, flags["latent_dim"], flags["latent_dim"])
    agree(path, info, "value_range", tuple(float(v) for v in value_range) if value_range else None,
           flags["value_range"], flags["value_range"])
    agree(path, info, "image_shape", tuple(image_shape) if image_shape else None, flags["image_shape"], flags["image_shape"])
    if label_space is not None:
        given = render(label_space_source) if label_space_source else flags["label_space"]
        if info.label_space is not None and info.label_space != label_space:
            raise UserError(
                f"{path}: the label space from {given} ({label_space.kind}, {label_space.size} names) differs from "
                f"the model's metadata ({info.label_space.kind}, {info.label_space.size} names); use matching models/files"
            )
        if info.label_space is None:
            info.label_space = label_space
            info.sources["label_space"] = given

    check_role(path, info, inputs, outputs, flags, require)
    default_batch = DEFAULT_BATCH_SIZE["cuda" if runtime.uses_cuda else "cpu"]
    return OnnxModel(path, session, runtime, info, inputs, outputs,
                     default_batch if batch_size is None else batch_size, sha256)


