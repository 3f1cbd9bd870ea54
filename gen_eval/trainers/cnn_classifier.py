"""A small CNN judge for small images (MNIST): the classifier family's training, scoring and export, a cheaper body.

The ResNet18 judge costs ~2.6 s per step of 64 images on 2 busy CPU cores; this one (three blocks of
Conv3x3 + BatchNorm + ReLU + MaxPool2 at 32, 64 and 128 channels, global average pooling, then
``Linear(128, L) + Sigmoid``) takes a small fraction of that and reaches ~99% on MNIST's test split in
one epoch (benchmarks/RESULTS.md). Its penultimate output, the 128 pooled features, is the ``features``
graph for Fréchet distances. Any channel count (none: the data's); no flips (a flipped digit is another
digit, or none). Trained with BCE per label like the ResNet18 judge, so every label space works.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from torch import nn

from gen_eval.trainers import register_family
from gen_eval.trainers.classifier import Classifier, ClassifierConfig
from gen_eval.trainers.config import between, setting, widths


def small_cnn(channels: int, num_labels: int, block_widths: list[int]) -> nn.Sequential:
    """``Sequential(body, head)``: the body ends in pooled, flattened features (what ``penultimate`` keeps)."""
    layers: list[nn.Module] = []
    width = channels
    for out in block_widths:
        layers += [nn.Conv2d(width, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True),
                   nn.MaxPool2d(2)]
        width = out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(1)]
    return nn.Sequential(nn.Sequential(*layers), nn.Sequential(nn.Linear(width, num_labels), nn.Sigmoid()))


@dataclass(frozen=True)
class CNNClassifierConfig(ClassifierConfig):
    """The classifier's settings (optimiser, BatchNorm re-estimation) with a small image's defaults and the
    conv widths."""

    image_size: int = setting(28, "image side in pixels", between(8, 1024))
    image_channels: int | None = setting(None, "image channels (none: the data's)", between(1, 4))
    flip: bool = setting(False, "random horizontal flips (off: they change digits)")
    widths: list[int] = setting([32, 64, 128], "channels of the conv blocks (each halves the image side)",
                                widths(8))


@register_family
class CNNClassifier(Classifier):
    """A small CNN judge for small images (MNIST), trained with BCE; 128-d features for Frechet distances."""

    name: ClassVar[str] = "cnn-classifier"
    Config = CNNClassifierConfig
    default_epochs: ClassVar[int] = 2
    cpu_hint: ClassVar[str] = ""

    def build_networks(self) -> dict[str, nn.Module]:
        c = self.config
        return {"classifier": small_cnn(self.image_shape[0], self.label_space.size, [int(w) for w in c.widths])}

    def on_train_end(self, networks: dict[str, nn.Module], out_dir: Path, force: bool) -> list[Path]:
        return []   # no {'model': state_dict} copy: the iCLEVR reference evaluator loads ResNet18 weights only
