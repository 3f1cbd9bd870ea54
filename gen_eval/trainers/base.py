"""What a model family declares; the shared loop (gen_eval.trainers.loop) does the rest.

A family is one short module: its networks, optimisers, one training step, and the graphs it exports.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from gen_eval import contract
from gen_eval.contract import ExportGraph
from gen_eval.data.labels import LabelSpace
from gen_eval.trainers.config import build_config, resolve_config


@dataclass
class Batch:
    """One batch from the data loader: images in the family's value range, conditions or None."""

    images: torch.Tensor
    labels: torch.Tensor | None = None


class Family:
    """Base class for a trainer family. Subclasses set ``name`` and implement the four methods.

    Settings: a subclass sets ``Config``, a frozen dataclass of :func:`gen_eval.trainers.config.setting`
    fields (defaults, help and valid ranges), and registers itself with
    :func:`gen_eval.trainers.register_family`. The family reads its settings as ``self.config.lr``.

    Optional hooks (defaults do nothing) let the shared loop draw pictures and measure held-out data:
    :meth:`sample` (sample grids), :meth:`reconstruct` (VAE reconstruction grids), :meth:`encode`
    (2-D latent plots), :meth:`evaluate` (held-out metrics).
    """

    name: ClassVar[str]
    conditional: ClassVar[bool] = False
    Config: ClassVar[type]                                    # typed settings (gen_eval.trainers.config)
    cpu_hint: ClassVar[str] = ""                                # rough CPU cost, shown by train FAMILY --help
    value_range: ClassVar[tuple[float, float]] = (-1.0, 1.0)   # range of images the loop feeds in
    default_batch_size: ClassVar[int] = 64
    default_epochs: ClassVar[int] = 10
    # a held-out metric (from evaluate) to maximise: each new best is also kept as
    # checkpoints/epochN_scoreX.pt; None keeps only last.pt
    selection_metric: ClassVar[str | None] = None
    # settings that may be chosen again at export (``gen-eval export --set``), e.g. a diffusion sampler's steps
    export_settings: ClassVar[tuple[str, ...]] = ()
    # the epoch's sample grid is skipped until this many steps have passed since the last one (a sampler
    # that runs the network many times would otherwise cost more than the training on a small data set)
    steps_between_pictures: ClassVar[int] = 0
    steps_per_epoch: int = 0    # set by the loop before training (families with per-epoch schedules read it)

    def __init__(self, config: Mapping[str, Any] | Any = (), label_space: LabelSpace | None = None) -> None:
        """``config``: a ``Config`` object, or settings by name (e.g. a checkpoint's stored dict; missing
        ones take their defaults)."""
        self.config = build_config(self.Config, config)
        self.label_space = label_space

    # -- configuration ----------------------------------------------------------------------------
    @classmethod
    def resolve_config(cls, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The defaults updated by ``overrides``; strings (from ``--set key=value``) are parsed to the
        field's type. Unknown keys, unparsable values and values out of range raise a one-line UserError."""
        return resolve_config(cls.name, cls.Config, overrides)

    def config_dict(self) -> dict[str, Any]:
        """The settings by name, as checkpoints and run.json store them."""
        return dataclasses.asdict(self.config)

    @property
    def latent_dim(self) -> int | None:
        """Length of the noise vector ``z`` (None for families without one, e.g. the classifier)."""
        value = getattr(self.config, "latent_dim", None)
        return int(value) if value is not None else None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """C,H,W of the images this family trains on (config ``image_channels`` and ``image_size``)."""
        size = int(getattr(self.config, "image_size", 64))
        return int(getattr(self.config, "image_channels", 3)), size, size

    def fit_data(self, image_shape: tuple[int, int, int], label_space: LabelSpace | None) -> None:
        """Adopt what the data decides (``image_channels: None`` takes the data's channel count).

        Called by the loop before :meth:`build_networks` on a fresh run; families may override to
        check more (e.g. a label-space kind they cannot handle) and raise UserError.
        """
        if hasattr(self.config, "image_channels") and self.config.image_channels is None:
            self.config = dataclasses.replace(self.config, image_channels=int(image_shape[0]))

    # -- the four methods every family implements --------------------------------------------------
    def build_networks(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def build_optimizers(self, networks: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def train_step(self, networks: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer],
                   batch: Batch, step: int) -> dict[str, float]:
        raise NotImplementedError

    def export_graphs(self, networks: dict[str, nn.Module]) -> list[ExportGraph]:
        raise NotImplementedError

    # -- optional hooks used by the loop's logs (networks are in eval mode, under no_grad) ---------
    def sample(self, networks: dict[str, nn.Module], z: torch.Tensor,
               labels: torch.Tensor | None) -> torch.Tensor | None:
        """Images (in ``value_range``) generated from noise ``z`` [B, latent_dim] and ``labels``."""
        return None

    def reconstruct(self, networks: dict[str, nn.Module], images: torch.Tensor,
                    labels: torch.Tensor | None) -> torch.Tensor | None:
        """VAE families: reconstructions of ``images`` (the loop saves a reconstruction grid)."""
        return None

    def encode(self, networks: dict[str, nn.Module], images: torch.Tensor,
               labels: torch.Tensor | None) -> torch.Tensor | None:
        """VAE families: latent means [B, D] (the loop plots them in 2-D, coloured by an attribute)."""
        return None

    def evaluate(self, networks: dict[str, nn.Module], batches: Iterable[Batch]) -> dict[str, float]:
        """Metrics on held-out batches (the loop logs them to eval.csv each epoch)."""
        return {}

    def uses_heldout(self) -> bool:
        """Whether the loop should open the held-out split for :meth:`evaluate` (default: when it is defined)."""
        return type(self).evaluate is not Family.evaluate

    def training_judges(self) -> list[dict[str, Any]]:
        """The classifiers this run trains against or scores its epochs with: for each, its file name, the
        fingerprints of its classifier and features graphs (gen_eval.trainers.fingerprint), ``loss_terms``
        (setting -> weight, empty when it is in no loss) and ``scores_epochs``. The checkpoint keeps them and
        the exporter writes them into the generator's metadata, so a score by the same judge is flagged."""
        return []

    def finish_training(self, networks: dict[str, nn.Module], images: Iterable[torch.Tensor]) -> dict[str, Any]:
        """Last changes to the weights before the final checkpoint (e.g. re-estimated BatchNorm statistics).

        ``images`` are training images in ``value_range`` (consumed lazily). Returns what was done, for
        the checkpoint's ``extra`` (empty: nothing changed, no new checkpoint).
        """
        return {}

    def on_train_end(self, networks: dict[str, nn.Module], out_dir: Path, force: bool) -> list[Path]:
        """Extra files a family writes when training finishes (e.g. the classifier's copy in the iCLEVR reference format)."""
        return []


def generator_graph(generator: nn.Module, latent_dim: int, image_shape: tuple[int, int, int],
                    value_range: tuple[float, float], label_space: LabelSpace | None = None) -> ExportGraph:
    """The ONNX generator graph of a GAN family: ``z`` (+ ``labels`` when conditional) -> ``image``."""
    names, shapes = [contract.INPUT_Z], [(latent_dim,)]
    if label_space is not None:
        names.append(contract.INPUT_LABELS)
        shapes.append((label_space.size,))
    return ExportGraph(role="generator", module=generator, input_names=names, input_shapes=shapes,
                       output_names=[contract.OUTPUT_IMAGE], image_shape=image_shape, value_range=value_range,
                       latent_dim=latent_dim, label_space=label_space)
