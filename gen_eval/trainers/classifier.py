"""The judge: the iCLEVR reference ResNet18 (torchvision resnet18, fc = Linear(512, L) + Sigmoid), trained with BCE.

Input 64x64 in [-1, 1]. Light augmentation (random horizontal flips, on by default) keeps the labels
of iCLEVR-like scenes. Each epoch the held-out split (``heldout`` in the shapes set) is scored by the
classifier score's rule (gen_eval.evaluator.score: pooled top-k for multilabel, per-head accuracy for
categorical, threshold accuracy for binary). When training ends, the BatchNorm statistics are re-estimated on the
first ``bn_images`` training images (gen_eval.trainers.batchnorm: after a short run the running
averages lag the weights; on the shapes set held-out accuracy goes 0.69 -> 0.87 with it), the held-out
split is scored again, and that is what the last checkpoint holds. At the end the weights are also
written in the iCLEVR reference evaluator's format, ``<run>/classifier_ta.pth`` = ``{'model': state_dict}``,
which that evaluator's code loads unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from gen_eval import contract
from gen_eval.contract import ExportGraph
from gen_eval.fileio import atomic_path
from gen_eval.trainers import register_family
from gen_eval.trainers.base import Batch, Family
from gen_eval.trainers.config import BELOW_ONE, NON_NEGATIVE, POSITIVE, between, one_of, setting
from gen_eval.trainers.judge import penultimate, ta_resnet18
from gen_eval.trainers.losses import bce_on_probs

REFERENCE_FORMAT_FILE = "classifier_ta.pth"


def score(probs: np.ndarray, labels: np.ndarray, label_space) -> float:
    """The classifier-score accuracy of ``probs`` against ``labels`` (pooled top-k for multilabel; see
    gen_eval.evaluator.score)."""
    from gen_eval.evaluator.score import score_probs

    return score_probs(probs, labels, label_space).value


@dataclass(frozen=True)
class ClassifierConfig:
    image_size: int = setting(64, "image side in pixels", between(8, 1024))
    image_channels: int = setting(3, "image channels (the ResNet18 judge takes RGB)", one_of(3))
    lr: float = setting(1e-3, "Adam learning rate", POSITIVE)
    beta1: float = setting(0.9, "Adam beta1", BELOW_ONE)
    beta2: float = setting(0.999, "Adam beta2", BELOW_ONE)
    weight_decay: float = setting(0.0, "Adam weight decay", NON_NEGATIVE)
    flip: bool = setting(True, "random horizontal flips (label-preserving for iCLEVR scenes)")
    bn_images: int = setting(1024, "at the end, re-estimate BatchNorm statistics on this many training images "
                                   "(0: keep the running averages)", between(0, 10**9))


@register_family
class Classifier(Family):
    """The judge: the iCLEVR reference ResNet18 multi-label classifier, trained with BCE."""

    name: ClassVar[str] = "classifier"
    Config = ClassifierConfig
    conditional: ClassVar[bool] = True
    default_epochs: ClassVar[int] = 10
    cpu_hint: ClassVar[str] = ("~2.6 s per step of 64 images on 2 busy CPU cores, "   # measured: benchmarks/RESULTS.md
                               "~4 min per epoch of the 6000-image shapes set")

    def build_networks(self) -> dict[str, nn.Module]:
        return {"classifier": ta_resnet18(self.label_space.size)}

    def build_optimizers(self, networks: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return {"classifier": torch.optim.Adam(networks["classifier"].parameters(), lr=c.lr,
                                               betas=(c.beta1, c.beta2), weight_decay=c.weight_decay)}

    def train_step(self, networks: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer],
                   batch: Batch, step: int) -> dict[str, float]:
        images, labels = batch.images, batch.labels
        if self.config.flip:
            flip = torch.rand(len(images), device=images.device) < 0.5
            images = torch.where(flip[:, None, None, None], images.flip(-1), images)
        probs = networks["classifier"](images)
        loss = bce_on_probs(probs, labels)
        optimizers["classifier"].zero_grad(set_to_none=True)
        loss.backward()
        optimizers["classifier"].step()
        return {"loss": loss.item()}

    def evaluate(self, networks: dict[str, nn.Module], batches: Iterable[Batch]) -> dict[str, float]:
        probs, labels = [], []
        for batch in batches:
            probs.append(networks["classifier"](batch.images).float().cpu().numpy())
            labels.append(batch.labels.cpu().numpy())
        if not probs:
            return {}
        return {"accuracy": score(np.concatenate(probs), np.concatenate(labels), self.label_space)}

    def finish_training(self, networks: dict[str, nn.Module], images: Iterable[torch.Tensor]) -> dict[str, int]:
        from gen_eval.trainers.batchnorm import recalibrate_batchnorm

        wanted = int(self.config.bn_images)
        if not wanted:
            return {}
        seen = 0

        def first_images() -> Iterable[torch.Tensor]:
            nonlocal seen
            for batch in images:
                if seen >= wanted:
                    return
                batch = batch[: wanted - seen]
                seen += len(batch)
                yield batch

        model = networks["classifier"]
        training = model.training
        count = recalibrate_batchnorm(model, first_images())
        model.train(training)
        return {"bn_recalibration_images": count} if count else {}

    def export_graphs(self, networks: dict[str, nn.Module]) -> list[ExportGraph]:
        model = networks["classifier"]
        common = dict(input_names=[contract.INPUT_IMAGE], input_shapes=[self.image_shape],
                      image_shape=self.image_shape, value_range=self.value_range, label_space=self.label_space)
        return [ExportGraph(role="classifier", module=model, output_names=[contract.OUTPUT_PROBS], **common),
                ExportGraph(role="features", module=penultimate(model), output_names=[contract.OUTPUT_FEATURES],
                            suffix="features", **common)]

    def on_train_end(self, networks: dict[str, nn.Module], out_dir: Path, force: bool) -> list[Path]:
        path = Path(out_dir) / REFERENCE_FORMAT_FILE
        state = {k: v.detach().cpu() for k, v in networks["classifier"].state_dict().items()}
        with atomic_path(path, force=force) as tmp:
            torch.save({"model": state}, tmp)
        return [path]

