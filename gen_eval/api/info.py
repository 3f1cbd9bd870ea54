"""`info`: what a model file is, what its metadata says, and what the evaluator still needs to run it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gen_eval.api import inputs
from gen_eval.api.sources import Runtime, runtime_of
from gen_eval.errors import param, render


@dataclass
class ModelDescription:
    """What :func:`info` found: ``rows`` of (field, value) as the evaluator reads the model (values are the
    file's untrusted text), the ``missing`` facts to supply before it can run (empty: ready), and the
    ``runtime`` it was opened with."""
    rows: list[tuple[str, str]]   # (field, value) as the evaluator reads them; values are untrusted text
    missing: list[str]            # facts to supply before the model can run (empty: ready)
    runtime: str


def missing_facts(model) -> list[str]:
    info = model.info
    if info.role == "unknown":
        return ["a gen_eval.role (export it with gen-eval)"]
    missing = []
    if info.role == "generator" and info.latent_dim is None:
        missing.append(render(param("latent_dim")))
    if info.role != "features" and info.value_range is None:
        missing.append(render(param("value_range")))
    if info.conditional and info.label_space is None:
        missing.append(render(param("objects")))
    return missing


def info(model: str | Path, *, latent_dim: int | None = None, value_range: str | tuple[float, float] | None = None,
         objects: str | Path | None = None, runtime: Runtime | None = None) -> ModelDescription:
    """Describe ``model``: role, inputs/outputs, metadata and their sources, and what it still needs to run.

    Args:
        model: any .onnx file (a model without gen-eval metadata is described as far as it can be).
        latent_dim, value_range, objects: the facts a model without metadata lacks, as a job would be given them
            (they must agree with the metadata where both exist).
        runtime: the device (:class:`gen_eval.Runtime`) [default: ``Runtime()``].

    Returns:
        A :class:`ModelDescription`.

    Raises:
        UserError: when the file is not a readable ONNX model or an argument is wrong (one line).

    Example:
        >>> described = gen_eval.info("my_export.onnx", latent_dim=100, value_range="-1,1")  # doctest: +SKIP
        >>> described.missing  # doctest: +SKIP
        ['--objects']
    """
    from gen_eval.evaluator.model import load_model

    inputs.check_types(model=(model, inputs.PATH), latent_dim=(latent_dim, int), objects=(objects, inputs.PATH))

    rt = runtime_of(runtime).open()
    loaded = load_model(model, runtime=rt, latent_dim=latent_dim,
                        value_range=inputs.value_range(value_range, param("value_range")),
                        label_space=inputs.read_label_space(objects), require=False)
    return ModelDescription(list(loaded.describe()), missing_facts(loaded), rt.describe())


__all__ = ["ModelDescription", "info", "missing_facts"]
