"""The iCLEVR reference judge: torchvision ResNet18 ending in Linear(512, N) + Sigmoid.

Shared by the classifier family (trainers) and ``gen-eval export-classifier`` (exporter), so the
state-dict keys (``fc.0.weight``, ``fc.0.bias``) are the reference evaluator's wherever it is built.
"""

from __future__ import annotations

import os

import torch
from torch import nn
from torchvision.models import resnet18

from gen_eval.data.labels import LabelSpace
from gen_eval.errors import UserError


def ta_resnet18(num_labels: int = 24) -> nn.Module:
    """ResNet18 (random init) with ``fc = Sequential(Linear(512, num_labels), Sigmoid())``; input 64x64 in [-1, 1]."""
    model = resnet18(weights=None)
    model.fc = nn.Sequential(nn.Linear(512, num_labels), nn.Sigmoid())
    return model


def penultimate(model: nn.Module) -> nn.Module:
    """The judge without its head: image -> 512-d pooled features (for Frechet distances and perceptual losses)."""
    return nn.Sequential(*list(model.children())[:-1], nn.Flatten(1))


def load_judge(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> tuple[nn.Module, LabelSpace | None]:
    """A trained judge from a gen-eval classifier checkpoint or a reference ``{'model': state_dict}`` file.

    Returns the model in eval mode and the label space when the file records one (gen-eval checkpoints
    do; reference files do not). The number of labels is read from ``fc.0.weight``. One-line UserError on any
    problem.
    """
    from gen_eval.trainers.checkpoint import is_gen_eval_checkpoint, load_checkpoint

    data = load_checkpoint(path, map_location=map_location)
    label_space = None
    if is_gen_eval_checkpoint(data):
        if data.get("family") != "classifier":
            raise UserError(f"{path} is a {data.get('family')!r} checkpoint, not a classifier; "
                            "give the classifier's last.pt or classifier_ta.pth")
        state = data["networks"]["classifier"]
        if data.get("label_space"):
            label_space = LabelSpace.from_dict(data["label_space"])
    elif isinstance(data, dict) and isinstance(data.get("model"), dict):
        state = data["model"]
    elif isinstance(data, dict) and "fc.0.weight" in data:
        state = data
    else:
        raise UserError(f"{path} is neither a gen-eval classifier checkpoint nor a reference file {{'model': state_dict}}")
    weight = state.get("fc.0.weight")
    if not isinstance(weight, torch.Tensor) or weight.ndim != 2 or weight.shape[1] != 512:
        raise UserError(f"{path} is not a ResNet18 judge: no fc.0.weight of shape [labels, 512] "
                        "(expected torchvision resnet18 with fc = Sequential(Linear(512, N), Sigmoid()))")
    model = ta_resnet18(int(weight.shape[0]))
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise UserError(f"{path} does not fit the reference ResNet18: {str(exc).splitlines()[0][:160]}") from None
    return model.eval(), label_space
