"""What works for conditional GANs on small data, as options of the GAN families (acgan, cgan).

- hinge loss (Lim & Ye 2017; SNGAN, BigGAN): D minimises ``relu(1 - D(real)) + relu(1 + D(fake))``, G ``-D(fake)``;
- spectral normalisation of every discriminator layer (Miyato et al. 2018): each weight divided by its
  largest singular value (one power iteration per step), so D is about 1-Lipschitz;
- projection discriminator (Miyato & Koyama 2018): the adversarial logit gets ``<embed(y), sum-pooled
  features>``, so D judges image and condition together (see ConditionalDiscriminator);
- conditional BatchNorm in the generator (de Vries et al. 2017): BatchNorm without its own scale and
  shift, which come from the condition instead (``1 + Linear(y)``, ``Linear(y)``);
- DiffAugment (Zhao et al. 2020): the same random, differentiable augmentations (colour, translation,
  cutout) on every image D sees, real and generated, in D's and G's steps alike. Only ``brightness`` and
  ``translation_border`` are label-safe: saturation turns a red cube grey, zero fill is mid-grey (the
  "gray" objects' colour in [-1, 1]) and a cutout can erase an object, yet augmented real images still
  train the label head and the projection;
- mismatched-label negatives (Reed et al. 2016): D also sees real images paired with another image's
  condition and must call them fake, so its conditional path has to check the labels;
- an exponential moving average of the generator's weights (Karras et al., Yazici et al. 2019), which
  samples and the exported ONNX generator use; its BatchNorm statistics are either copied from the raw
  generator or tracked from its own forward passes (:func:`track_batchnorm_statistics`).

Randomness comes from the global torch RNG (the loop checkpoints it) unless a ``torch.Generator`` is given.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from gen_eval.errors import UserError
from gen_eval.trainers.config import set_option
from gen_eval.trainers.losses import adversarial_loss

ADV_LOSSES = ("bce", "hinge", "wgan")
AUGMENTATIONS = ("color", "translation", "cutout", "brightness", "translation_border")
# ops that keep every object's colour and every object: the labels of an augmented real image still hold
LABEL_SAFE_AUGMENTATIONS = ("brightness", "translation_border")
BRIGHTNESS_RANGE = 0.1   # +-, in [-1, 1]: about the shapes set's own shading jitter (x0.93-1.07 of a colour)


# -- adversarial losses -----------------------------------------------------------------------------------
def discriminator_loss(kind: str, real_logits: torch.Tensor, fake_logits: torch.Tensor,
                       real_label: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss on real, loss on fake) of the discriminator for ``kind`` (one of ADV_LOSSES); ``wgan`` is the
    critic's estimate of the Wasserstein distance, negated (Arjovsky 2017; pair it with weight clipping)."""
    if kind == "wgan":
        return -real_logits.mean(), fake_logits.mean()
    if kind == "hinge":
        return F.relu(1 - real_logits).mean(), F.relu(1 + fake_logits).mean()
    return adversarial_loss(real_logits, real_label), adversarial_loss(fake_logits, 0.0)


def generator_adversarial_loss(kind: str, fake_logits: torch.Tensor) -> torch.Tensor:
    """The generator's adversarial loss: non-saturating BCE, or ``-D(fake)`` for hinge and wgan."""
    return -fake_logits.mean() if kind in ("hinge", "wgan") else adversarial_loss(fake_logits, 1.0)


def clip_weights(module: nn.Module, bound: float) -> None:
    """Every parameter of ``module`` clamped to [-bound, bound] (the original WGAN's Lipschitz constraint)."""
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.clamp_(-bound, bound)


def mismatched_conditions(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image's condition replaced by the next image's in the batch (batches are shuffled, so the pairing
    is random), and a mask of the rows whose new condition differs from their own (only those are wrong)."""
    wrong = labels.roll(1, dims=0)
    return wrong, (wrong != labels).any(dim=1)


# -- spectral normalisation -------------------------------------------------------------------------------
def spectral_normalize(module: nn.Module, skip: tuple[nn.Module | None, ...] = ()) -> nn.Module:
    """Spectral normalisation on the weight of every Conv and Linear layer in ``module`` but those in ``skip``
    (modules whose layers are all left alone; in place).

    The ACGAN skips its auxiliary classifier head: bounded to norm 1 on small pooled features, its logits
    stay too small for a confident label prediction, and the generator then gets no label signal.
    """
    from torch.nn.utils.parametrizations import spectral_norm

    skipped = {id(inner) for outer in skip if outer is not None for inner in outer.modules()}
    for layer in list(module.modules()):
        if isinstance(layer, (nn.Conv2d, nn.Linear, nn.ConvTranspose2d)) and id(layer) not in skipped:
            spectral_norm(layer)
    return module


def initialise_at_prior(head: nn.Linear, label_dim: int) -> None:
    """Biases of a label head at the log-odds of ``min(1/2, 1/label_dim)`` (the RetinaNet prior): with Adam at
    GAN learning rates a bias moves ~lr per step, so from 0 it would need thousands of steps to reach the
    base rate of 24 sparse labels, and the head's signal to the generator is noise until then."""
    prior = min(0.5, 1.0 / max(label_dim, 1))
    with torch.no_grad():
        head.bias.fill_(float(torch.logit(torch.tensor(prior))))


# -- conditional BatchNorm and the generator body that uses it --------------------------------------------
class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm2d whose scale ``1 + Linear(y)`` and shift ``Linear(y)`` come from the condition ``y`` [B, L]."""

    def __init__(self, channels: int, label_dim: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.scale = nn.Linear(label_dim, channels)
        self.shift = nn.Linear(label_dim, channels)
        for linear in (self.scale, self.shift):   # starts as plain BatchNorm
            nn.init.zeros_(linear.weight)
            nn.init.zeros_(linear.bias)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        scale = 1 + self.scale(labels)[:, :, None, None]
        return self.norm(x) * scale + self.shift(labels)[:, :, None, None]


class ConditionalUpsampleBody(nn.Module):
    """The ``upsample`` generator body (gen_eval.trainers.generators) with conditional BatchNorm:
    Linear to ``start_size``^2 x widest, then per doubling Upsample(nearest) + Conv3x3 + CBN + LeakyReLU(0.2),
    a Conv3x3 to the image and Tanh. ``forward(x, labels)``."""

    takes_labels = True

    def __init__(self, in_dim: int, label_dim: int, image_size: int, channels: int, width: int,
                 start_size: int, n_up: int) -> None:
        super().__init__()
        widths = [width * 2 ** (n_up - 1 - i) for i in range(n_up)]
        self.project = nn.Sequential(nn.Linear(in_dim, widths[0] * start_size ** 2),
                                     nn.Unflatten(1, (widths[0], start_size, start_size)))
        self.first_norm = ConditionalBatchNorm2d(widths[0], label_dim)
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        ch = widths[0]
        for out in widths:
            self.convs.append(nn.Conv2d(ch, out, 3, 1, 1))
            self.norms.append(ConditionalBatchNorm2d(out, label_dim))
            ch = out
        self.to_image = nn.Conv2d(ch, channels, 3, 1, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x = self.first_norm(self.project(x), labels)
        for conv, norm in zip(self.convs, self.norms):
            x = F.leaky_relu(norm(conv(F.interpolate(x, scale_factor=2, mode="nearest")), labels), 0.2)
        return torch.tanh(self.to_image(x))


# -- DiffAugment ------------------------------------------------------------------------------------------
def parse_augment_policy(text: str) -> tuple[str, ...]:
    """``"color,translation"`` -> ("color", "translation"); empty text: no augmentation."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [name for name in names if name not in AUGMENTATIONS]
    if unknown:
        raise UserError(f"{set_option('diffaugment', text)}: unknown augmentation {unknown[0]!r}; give a "
                        f"comma-separated list of {', '.join(AUGMENTATIONS)} (e.g. "
                        f"{set_option('diffaugment', 'color,translation')}), or empty")
    return names


def diff_augment(images: torch.Tensor, policy: tuple[str, ...], generator: torch.Generator | None = None
                 ) -> torch.Tensor:
    """DiffAugment (Zhao et al. 2020, their official ops) on images in [-1, 1]: differentiable in ``images``;
    each image draws its own random parameters."""
    if not policy:
        return images
    batch = images.shape[0]

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator, device=images.device, dtype=images.dtype)

    x = images
    if "brightness" in policy:
        x = x + (rand(batch, 1, 1, 1) * 2 - 1) * BRIGHTNESS_RANGE                  # the same shift on every channel
    if "color" in policy:
        x = x + (rand(batch, 1, 1, 1) - 0.5)                                        # brightness
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (rand(batch, 1, 1, 1) * 2) + mean                          # saturation
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * (rand(batch, 1, 1, 1) + 0.5) + mean                        # contrast
    if "translation" in policy:
        x = _translate(x, 0.125, rand)
    if "translation_border" in policy:
        x = _translate(x, 0.125, rand, fill="border")
    if "cutout" in policy:
        x = _cutout(x, 0.5, rand)
    return x


def _random_ints(rand, low: int, high: int, batch: int) -> torch.Tensor:
    """Integers uniform in [low, high) from ``rand`` (so one generator drives every draw)."""
    return (low + (rand(batch) * (high - low)).floor()).long().clamp(max=high - 1)


def _translate(x: torch.Tensor, ratio: float, rand, fill: str = "zeros") -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its size, filling with zeros or (``fill="border"``) with the
    nearest edge pixel, which on a plain background is the background."""
    batch, _, height, width = x.shape
    sh, sw = int(height * ratio + 0.5), int(width * ratio + 0.5)
    dy = _random_ints(rand, -sh, sh + 1, batch).to(x.device)
    dx = _random_ints(rand, -sw, sw + 1, batch).to(x.device)
    rows = torch.arange(height, device=x.device)[None, :] + dy[:, None] + 1     # [B, H] into the padded image
    cols = torch.arange(width, device=x.device)[None, :] + dx[:, None] + 1
    rows = rows.clamp(0, height + 1)
    cols = cols.clamp(0, width + 1)
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate" if fill == "border" else "constant")
    index = torch.arange(batch, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[index, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def _cutout(x: torch.Tensor, ratio: float, rand) -> torch.Tensor:
    """Zero a square of ``ratio`` of the image side at a random place in each image."""
    batch, _, height, width = x.shape
    ch, cw = int(height * ratio + 0.5), int(width * ratio + 0.5)
    cy = _random_ints(rand, 0, height + (1 - ch % 2), batch).to(x.device)
    cx = _random_ints(rand, 0, width + (1 - cw % 2), batch).to(x.device)
    rows = torch.arange(height, device=x.device)[None, :]
    cols = torch.arange(width, device=x.device)[None, :]
    inside_rows = ((rows - cy[:, None] + ch // 2) >= 0) & ((rows - cy[:, None] + ch // 2) < ch)
    inside_cols = ((cols - cx[:, None] + cw // 2) >= 0) & ((cols - cx[:, None] + cw // 2) < cw)
    keep = ~(inside_rows[:, :, None] & inside_cols[:, None, :])
    return x * keep[:, None].to(x.dtype)


# -- EMA generator ----------------------------------------------------------------------------------------
def ema_copy(model: nn.Module) -> nn.Module:
    """A frozen copy of ``model`` to hold the moving average of its weights."""
    return copy.deepcopy(model).requires_grad_(False)


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float, step: int, copy_buffers: bool = True) -> float:
    """``ema = d * ema + (1 - d) * model`` for every parameter, with ``d = min(decay, (1 + step) / (10 + step))``
    (TensorFlow's warm-up, so early weights do not linger). ``copy_buffers``: buffers (BatchNorm
    statistics) are copied from ``model``; those are the statistics of the raw weights, not of the averaged
    ones, so pass False and :func:`track_batchnorm_statistics` to give the average its own.
    Returns the ``d`` used."""
    used = min(decay, (1 + step) / (10 + step))
    for averaged, current in zip(ema.parameters(), model.parameters()):
        averaged.lerp_(current.detach(), 1 - used)
    if copy_buffers:
        for averaged, current in zip(ema.buffers(), model.buffers()):
            averaged.copy_(current)
    return used


@torch.no_grad()
def track_batchnorm_statistics(model: nn.Module, *inputs: torch.Tensor) -> None:
    """One forward pass of ``model`` in train mode on ``inputs``, without gradients, so each BatchNorm's
    running statistics take a step (momentum 0.1) toward the statistics of ``model``'s own weights. For an
    EMA generator, whose weights move slowly, the running statistics then match its current weights to
    within a few steps, at every step: what samples each epoch and what is exported are consistent."""
    training = model.training
    model.train()
    model(*inputs)
    model.train(training)
