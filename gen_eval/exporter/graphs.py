"""ExportGraph -> parity-checked .onnx file with the gen-eval metadata; checkpoints -> their graphs.

Every graph of one export is converted and verified in memory first; files are written (atomically)
only when all of them passed, so a failed verification leaves no output file behind.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gen_eval import contract
from gen_eval.contract import ExportGraph
from gen_eval.data.labels import LabelSpace
from gen_eval.errors import UserError, param, render
from gen_eval.exporter.convert import module_to_onnx, serialize, set_metadata, to_fp16
from gen_eval.exporter.parity import ParityReport, check_parity, parity_inputs
from gen_eval.fileio import atomic_path, ensure_can_write
from gen_eval.trainers.fingerprint import weights_fingerprint


@dataclass
class ExportResult:
    path: Path
    role: str
    parity: ParityReport | None = None   # None when not verified (--no-verify)
    fp16: bool = False
    size_bytes: int = 0

    def describe(self) -> str:
        text = f"wrote {self.path} ({self.role}{', fp16 weights' if self.fp16 else ''}, {self.size_bytes / 1e6:.1f} MB)"
        if self.parity is not None:
            text += "; " + self.parity.describe()
        else:
            text += f"; not verified ({render(param('verify', False))})"
        return text


@dataclass
class _Built:
    graph: ExportGraph
    path: Path
    data: bytes
    parity: ParityReport | None


def check_graph_contract(graph: ExportGraph) -> None:
    """The input/output names and shapes the evaluator relies on for this role (docs/contract.md)."""
    if graph.role not in contract.ROLE_OUTPUTS:
        raise ValueError(f"unknown export role {graph.role!r}; expected one of {', '.join(contract.ROLES)}")
    role_outputs = tuple(contract.ROLE_OUTPUTS[graph.role])
    optional = (contract.OUTPUT_LOGITS,) if graph.role == "features" else ()  # features may also give logits
    allowed = {role_outputs, tuple(o for o in role_outputs if o not in optional)}
    if tuple(graph.output_names) not in allowed:
        raise ValueError(f"a {graph.role} graph outputs {list(role_outputs)}, got {graph.output_names}")
    if len(graph.input_names) != len(graph.input_shapes):
        raise ValueError("ExportGraph needs one input shape per input name")
    first = contract.INPUT_Z if graph.role == "generator" else contract.INPUT_IMAGE
    conditional = graph.role in ("generator", "encoder") and graph.label_space is not None
    expected = [first] + ([contract.INPUT_LABELS] if conditional else [])
    if list(graph.input_names) != expected:
        raise ValueError(f"a {graph.role} graph takes {expected} (labels only with a label space, and only "
                         f"generators and encoders take them), got {graph.input_names}")
    if graph.role == "generator" and (graph.latent_dim is None or tuple(graph.input_shapes[0]) != (graph.latent_dim,)):
        raise ValueError(f"a generator's z input has shape (latent_dim,), got {graph.input_shapes[0]} "
                         f"with latent_dim={graph.latent_dim}")
    if conditional and tuple(graph.input_shapes[1]) != (graph.label_space.size,):
        raise ValueError(f"labels input shape {graph.input_shapes[1]} does not fit the label space "
                         f"({graph.label_space.size} values)")


def graph_metadata(graph: ExportGraph, family: str, extra: Mapping[str, str] | None = None, *,
                   dynamic_image_size: bool = False) -> dict[str, str]:
    """The ``metadata_props`` of docs/contract.md for this graph.

    A graph that takes images of any size (``dynamic_image_size``) records no image shape, so the
    evaluator feeds images at their own size instead of resizing them first.
    """
    meta = {
        contract.KEY_ROLE: graph.role,
        contract.KEY_FAMILY: family,
        contract.KEY_VALUE_RANGE: contract.format_value_range(graph.value_range),
        contract.KEY_CONTRACT: contract.CONTRACT_VERSION,
    }
    if not dynamic_image_size:
        meta[contract.KEY_IMAGE_SHAPE] = contract.format_image_shape(graph.image_shape)
    if graph.latent_dim is not None:
        meta[contract.KEY_LATENT_DIM] = str(int(graph.latent_dim))
    if graph.label_space is not None:
        meta[contract.KEY_LABEL_SPACE] = graph.label_space.to_json()
    meta.update(graph.metadata or {})
    meta.update(extra or {})
    return meta


def _check_eager_shapes(graph: ExportGraph, example: Sequence[torch.Tensor]) -> None:
    module = graph.module
    was_training = module.training
    module.eval()
    try:
        with torch.inference_mode():
            outputs = module(*example)
    finally:
        module.train(was_training)
    outputs = (outputs,) if isinstance(outputs, torch.Tensor) else tuple(outputs)
    batch = example[0].shape[0]
    if len(outputs) != len(graph.output_names):
        raise ValueError(f"the {graph.role} module returns {len(outputs)} outputs for {graph.output_names}")
    first = tuple(outputs[0].shape)
    if graph.role == "generator" and first != (batch, *graph.image_shape):
        raise ValueError(f"the generator makes images of shape {first[1:]}, its ExportGraph says {graph.image_shape}")
    if graph.role == "classifier" and graph.label_space is not None and first != (batch, graph.label_space.size):
        raise UserError(f"the classifier outputs {first[1:]} probabilities but the label space has "
                        f"{graph.label_space.size} names; give the objects.json it was trained on")
    if graph.role in ("classifier", "features", "encoder") and len(first) != 2:
        raise ValueError(f"a {graph.role} graph outputs [B, D], got shape {first}")


def build_graph(graph: ExportGraph, family: str, *, verify: bool = True, fp16: bool = False,
                dynamic_image_size: bool = False, extra_metadata: Mapping[str, str] | None = None
                ) -> tuple[bytes, ParityReport | None]:
    """Convert (and verify) one graph in memory: the .onnx bytes and the parity report (None unverified)."""
    check_graph_contract(graph)
    example = [torch.from_numpy(a) for a in parity_inputs(graph, batch=2)]
    _check_eager_shapes(graph, example)
    spatial = [contract.INPUT_IMAGE] if dynamic_image_size else []
    model = module_to_onnx(graph.module, example, graph.input_names, graph.output_names, spatial_inputs=spatial)
    if fp16:
        model = to_fp16(model)
    fingerprint = {contract.KEY_WEIGHTS_FINGERPRINT: weights_fingerprint(graph.module)}
    set_metadata(model, graph_metadata(graph, family, {**fingerprint, **(extra_metadata or {})},
                                       dynamic_image_size=dynamic_image_size))
    data = serialize(model)
    report = check_parity(graph.module, data, graph, fp16=fp16) if verify else None
    return data, report


def _write(built: Sequence[_Built], force: bool, fp16: bool) -> list[ExportResult]:
    results = []
    for item in built:
        with atomic_path(item.path, force=force) as tmp:
            tmp.write_bytes(item.data)
        results.append(ExportResult(item.path, item.graph.role, item.parity, fp16, len(item.data)))
    return results


def export_graph(graph: ExportGraph, out: str | os.PathLike, *, family: str, verify: bool = True,
                 fp16: bool = False, force: bool = False, dynamic_image_size: bool = False,
                 extra_metadata: Mapping[str, str] | None = None) -> ExportResult:
    """Export one graph to ``out`` (one self-contained .onnx file), verified against torch unless ``verify=False``.

    ``dynamic_image_size`` makes the image input's height and width dynamic too (the graph must accept any size).
    """
    path = ensure_can_write(out, force)
    data, report = build_graph(graph, family, verify=verify, fp16=fp16, dynamic_image_size=dynamic_image_size,
                               extra_metadata=extra_metadata)
    return _write([_Built(graph, path, data, report)], force, fp16)[0]


def output_paths(out: str | os.PathLike, graphs: Sequence[ExportGraph]) -> list[Path]:
    """The main graph goes to ``out``; a graph with suffix S to ``<out stem>.S.onnx`` (e.g. vae.encoder.onnx)."""
    out = Path(out)
    main = [g for g in graphs if not g.suffix]
    if len(main) != 1:
        raise ValueError(f"a family exports exactly one main graph (suffix ''), got {len(main)}")
    extension = out.suffix or ".onnx"
    stem = out.name[: -len(out.suffix)] if out.suffix else out.name
    paths = [out if not g.suffix else out.with_name(f"{stem}.{g.suffix}{extension}") for g in graphs]
    if len(set(paths)) != len(paths):
        raise ValueError("two export graphs share one file name; give them different suffixes")
    return paths


def rebuild_family(checkpoint_data: Mapping, source: str):
    """The family object and its networks with the checkpoint's weights (family, config and label_space of the
    checkpoint format in gen_eval/trainers/checkpoint.py rebuild the networks)."""
    from gen_eval.trainers import get_family

    family_cls = get_family(checkpoint_data["family"])
    raw_space = checkpoint_data.get("label_space")
    try:
        label_space = LabelSpace.from_dict(raw_space) if raw_space else None
    except ValueError as exc:
        raise UserError(f"checkpoint {source} has a bad label space: {exc}") from None
    try:
        family = family_cls(dict(checkpoint_data["config"]), label_space)
        networks = family.build_networks()
    except UserError:
        raise
    except (TypeError, ValueError, KeyError, RuntimeError, OverflowError, MemoryError) as exc:
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise UserError(f"checkpoint {source}: its settings do not build {checkpoint_data['family']} networks "
                        f"({detail}); the file is damaged or from another gen-eval version") from None
    saved = checkpoint_data["networks"]
    for name, network in networks.items():
        if name not in saved:
            raise UserError(f"checkpoint {source} has no weights for network {name!r} of family "
                            f"{checkpoint_data['family']!r}; it is incomplete")
        try:
            network.load_state_dict(saved[name])
        except RuntimeError as exc:
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            detail = (lines[1] if len(lines) > 1 else lines[0] if lines else "shape mismatch")[:200]
            raise UserError(f"checkpoint {source}: the {name} weights do not fit the family's networks "
                            f"({detail}); was the checkpoint written by another gen-eval version?") from None
        network.eval()
    return family, networks


def training_judges_metadata(checkpoint_data: Mapping, source: str) -> dict[str, str]:
    """The generator's record of the classifiers its training used (Family.training_judges), with whether
    one of them picked this very checkpoint (an epochN_scoreX.pt copy), as ``gen_eval.training_judges``."""
    extra = checkpoint_data.get("extra") or {}
    judges = extra.get("training_judges") if isinstance(extra, Mapping) else None
    if not judges:
        return {}
    picked = isinstance(extra.get("selected_by"), Mapping)
    try:
        entries = [{"file": str(j.get("file", "")), "classifier": str(j["classifier"]), "features": str(j["features"]),
                    "loss_terms": {str(k): float(v) for k, v in dict(j.get("loss_terms") or {}).items()},
                    "scores_epochs": bool(j.get("scores_epochs")),
                    "picked_this_checkpoint": picked and bool(j.get("scores_epochs"))} for j in judges]
    except (TypeError, ValueError, KeyError, AttributeError):
        raise UserError(f"checkpoint {source}: its record of the judges used in training is damaged; "
                        "the file is damaged or from another gen-eval version") from None
    return {contract.KEY_TRAINING_JUDGES: json.dumps(entries, sort_keys=True)}


def apply_export_settings(family, settings: Mapping[str, Any] | None) -> None:
    """Set the family's export-time settings (``Family.export_settings``), checked as training settings are."""
    if not settings:
        return
    allowed = tuple(getattr(family, "export_settings", ()))
    for key in settings:
        if key not in allowed:
            takes = f"it takes {', '.join(allowed)}" if allowed else "it takes none"
            raise UserError(f"{family.name} has no setting {key!r} to choose at export; {takes}")
    checked = type(family).resolve_config(dict(settings))
    family.config = dataclasses.replace(family.config, **{key: checked[key] for key in settings})


def export_checkpoint(checkpoint: str | os.PathLike, out: str | os.PathLike, *, verify: bool = True,
                      fp16: bool = False, force: bool = False,
                      settings: Mapping[str, Any] | None = None) -> list[ExportResult]:
    """Export a gen-eval checkpoint: the generator to ``out``, a VAE's encoder to ``<out stem>.encoder.onnx``.

    ``settings``: export-time settings of the family (see :func:`apply_export_settings`)."""
    from gen_eval.trainers.checkpoint import load_checkpoint, require_gen_eval_checkpoint

    data = require_gen_eval_checkpoint(load_checkpoint(checkpoint), checkpoint)
    family, networks = rebuild_family(data, str(checkpoint))
    apply_export_settings(family, settings)
    graphs = family.export_graphs(networks)
    paths = output_paths(out, graphs)
    for path in paths:
        ensure_can_write(path, force)
    built = []
    judges = training_judges_metadata(data, str(checkpoint))
    for graph, path in zip(graphs, paths):
        payload, report = build_graph(graph, data["family"], verify=verify, fp16=fp16,
                                      extra_metadata=judges if graph.role == "generator" else None)
        built.append(_Built(graph, path, payload, report))
    return _write(built, force, fp16)


__all__ = ["ExportResult", "export_graph", "export_checkpoint", "build_graph", "graph_metadata", "output_paths",
           "rebuild_family", "check_graph_contract"]
