"""What a model family declares; the shared loop (gen_eval.trainers.loop) does the rest.

A family is one short module: its networks, optimisers, one training step, and the graphs it exports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from gen_eval.data.labels import LabelSpace


@dataclass
class ExportGraph:
    """One ONNX graph a family exports (see DESIGN.md, the ONNX model contract).

    ``module`` takes the inputs positionally, in ``input_names`` order, and returns the outputs in
    ``output_names`` order. ``input_shapes`` omit the batch dimension (always dynamic).
    """

    role: str                               # "generator" | "encoder" | "classifier" | "features"
    module: nn.Module
    input_names: list[str]
    input_shapes: list[tuple[int, ...]]
    output_names: list[str]
    image_shape: tuple[int, int, int]       # C,H,W of images in or out
    value_range: tuple[float, float]        # range of image values
    latent_dim: int | None = None
    label_space: LabelSpace | None = None
    suffix: str = ""                        # file-name suffix for secondary graphs, e.g. "encoder"


@dataclass
class Batch:
    """One batch from the data loader: images in the family's value range, conditions or None."""

    images: torch.Tensor
    labels: torch.Tensor | None = None


class Family:
    """Base class for a trainer family. Subclasses set ``name`` and implement the four methods."""

    name: ClassVar[str]
    conditional: ClassVar[bool] = False
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, config: dict[str, Any], label_space: LabelSpace | None = None) -> None:
        self.config = {**self.defaults, **config}
        self.label_space = label_space

    def build_networks(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def build_optimizers(self, networks: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def train_step(self, networks: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer],
                   batch: Batch, step: int) -> dict[str, float]:
        raise NotImplementedError

    def export_graphs(self, networks: dict[str, nn.Module]) -> list[ExportGraph]:
        raise NotImplementedError
