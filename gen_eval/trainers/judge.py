"""The TA's iCLEVR judge: torchvision ResNet18 ending in Linear(512, N) + Sigmoid.

Shared by the classifier family (trainers) and ``gen-eval export-classifier`` (exporter), so the
state-dict keys (``fc.0.weight``, ``fc.0.bias``) are the TA's wherever it is built.
"""

from __future__ import annotations

from torch import nn
from torchvision.models import resnet18


def ta_resnet18(num_labels: int = 24) -> nn.Module:
    """ResNet18 (random init) with ``fc = Sequential(Linear(512, num_labels), Sigmoid())``; input 64x64 in [-1, 1]."""
    model = resnet18(weights=None)
    model.fc = nn.Sequential(nn.Linear(512, num_labels), nn.Sigmoid())
    return model


def penultimate(model: nn.Module) -> nn.Module:
    """The judge without its head: image -> 512-d pooled features (for Frechet distances and perceptual losses)."""
    return nn.Sequential(*list(model.children())[:-1], nn.Flatten(1))
