"""`info`: what a model file is, what its metadata says, and what the evaluator still needs to run it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gen_eval.api import inputs
from gen_eval.errors import param, render


@dataclass
class ModelDescription:
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
         objects: str | Path | None = None,
         device: str = "cpu") -> ModelDescription:
    """Describe ``model``: role, inputs/outputs, metadata and their sources."""
    from gen_eval.evaluator.model import load_model

    rt = inputs.runtime(device, None)
    loaded = load_model(model, runtime=rt, latent_dim=latent_dim,
                        value_range=inputs.value_range(value_range, param("value_range")),
                        label_space=inputs.read_label_space(objects), require=False)
    return ModelDescription(list(loaded.describe()), missing_facts(loaded), rt.describe())


__all__ = ["ModelDescription", "info", "missing_facts"]
