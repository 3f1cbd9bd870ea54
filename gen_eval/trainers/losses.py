"""Losses shared by the trainer families.

Discriminator heads here output logits (the sigmoid lives inside the loss), which is numerically safer
than the seeds' ``Sigmoid`` + ``BCELoss`` and works under CUDA autocast; the values are the same BCE.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gen_eval.data.labels import LabelSpace


def adversarial_loss(logits: torch.Tensor, target: float) -> torch.Tensor:
    """BCE of discriminator logits against a constant target (1 = real, 0 = fake, or a smoothed value)."""
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, float(target)))


AUX_REDUCTIONS = ("mean", "sum")


def auxiliary_loss(logits: torch.Tensor, labels: torch.Tensor, label_space: LabelSpace,
                   reduction: str = "mean") -> torch.Tensor:
    """ACGAN auxiliary-classifier loss, averaged over the batch.

    multilabel / binary: BCE per label; categorical: the cross-entropy of each head's logits against its
    one-hot choice. ``reduction`` ``mean`` averages over labels (or heads); ``sum`` adds them,
    so each of 24 labels gets the gradient one categorical head gets, not 1/24 of it.
    """
    if label_space.kind == "categorical":
        losses = torch.stack([F.cross_entropy(logits[:, sl], labels[:, sl].argmax(dim=1))
                              for _, sl in label_space.head_slices()])
        return losses.sum() if reduction == "sum" else losses.mean()
    if reduction == "sum":
        return F.binary_cross_entropy_with_logits(logits, labels, reduction="sum") / len(logits)
    return F.binary_cross_entropy_with_logits(logits, labels)


def bce_on_probs(probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """BCE on probabilities (the ResNet18 judge ends in Sigmoid), computed in float32 outside autocast."""
    with torch.autocast(device_type=probs.device.type, enabled=False):
        return F.binary_cross_entropy(probs.float(), targets.float())


def image_l2(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Pixel MSE between generated images and the real images of the same conditions."""
    return F.mse_loss(fake, real)


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """SRGAN's TV loss: 2 * (mean squared vertical + horizontal neighbour differences) / batch size."""
    batch, _, height, width = images.shape
    dh = (images[:, :, 1:, :] - images[:, :, :height - 1, :]).pow(2).sum()
    dw = (images[:, :, :, 1:] - images[:, :, :, :width - 1]).pow(2).sum()
    count_h = images[:, :, 1:, :][0].numel()
    count_w = images[:, :, :, 1:][0].numel()
    return 2 * (dh / count_h + dw / count_w) / batch


class FrozenJudge(nn.Module):
    """A trained, frozen ResNet18 judge for generator losses: penultimate features and label probabilities.

    Loaded from a gen-eval classifier checkpoint or a reference ``{'model': state_dict}`` file; expects images
    at 64x64 in [-1, 1] (other sizes are resized bilinearly). Kept out of the trained networks (not
    saved in checkpoints); it follows the device of its inputs.
    """

    def __init__(self, path: str | os.PathLike, num_labels: int | None = None) -> None:
        super().__init__()
        from gen_eval.errors import UserError
        from gen_eval.trainers.fingerprint import weights_fingerprint
        from gen_eval.trainers.judge import load_judge, penultimate

        model, _ = load_judge(path)
        labels = model.fc[0].out_features
        if num_labels is not None and labels != num_labels:
            raise UserError(f"the judge {path} predicts {labels} labels but the data has {num_labels}; "
                            "give a classifier trained on this label space")
        self.model = model.requires_grad_(False).eval()
        self.body = penultimate(self.model)
        # What the exporter writes into this judge's classifier and features ONNX: the evaluator matches
        # them against the generator's record of the judges it trained against.
        self.fingerprints = {"classifier": weights_fingerprint(self.model), "features": weights_fingerprint(self.body)}
        self.source = Path(path).name

    def train(self, mode: bool = True) -> "FrozenJudge":
        return super().train(False)   # always eval: BatchNorm statistics stay fixed

    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        if next(self.model.parameters()).device != images.device:
            self.to(images.device)
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        if images.shape[-2:] != (64, 64):
            images = F.interpolate(images, size=(64, 64), mode="bilinear", align_corners=False)
        return images

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(self._prepare(images))

    def probs(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(self._prepare(images))


def perceptual_loss(judge: FrozenJudge, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """MSE between the judge's penultimate features of generated and real images."""
    with torch.no_grad():
        target = judge.features(real)
    return F.mse_loss(judge.features(fake), target)


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
                     fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP penalty E[(||grad critic(x_hat)||_2 - 1)^2] on random interpolates (multiply by lambda yourself).

    ``critic`` maps images to scores [B] or [B, 1]; pass a lambda that picks the adversarial head when the
    critic has auxiliary heads. The mixing weights come from the global torch RNG (checkpointed).
    """
    alpha = torch.rand(real.shape[0], *([1] * (real.ndim - 1)), device=real.device, dtype=real.dtype)
    mixed = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    scores = critic(mixed)
    grads, = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    return (grads.flatten(1).norm(2, dim=1) - 1).pow(2).mean()
