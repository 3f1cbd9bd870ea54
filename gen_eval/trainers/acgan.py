"""ACGAN (Odena et al. 2017) on any label space (one CelebA attribute, 24 iCLEVR labels, categorical heads).

Generator: ``z`` + the condition expanded by ``Linear(L, 256) + ReLU``, body selectable with
``--set generator=dcgan|upsample|srgan|resnet`` (gen_eval.trainers.generators). Discriminator: DCGAN body with an
adversarial head and an auxiliary head (gen_eval.trainers.discriminators); ``d_label_channel=true`` also
feeds the condition as an extra input channel.

Losses: discriminator ``((adv(real, 1) + w_aux*aux(real)) + (adv(fake, 0) + w_aux*aux(fake))) / 2``
(``d_aux_fake=false`` drops the fake auxiliary term), the auxiliary loss being BCE per label
(multilabel, binary) or cross-entropy per head (categorical). Generator:
``w_adv*adv(fake, 1) + w_aux*aux(fake) + w_l2*MSE(fake, real) + w_perc*MSE(judge features)
+ w_tv*TV(fake) + w_judge*BCE(judge(fake), labels)``, where ``real`` is the real image of the same
condition and the judge is a frozen classifier (``--set judge=PATH``: a classifier run's last.pt or an
iCLEVR reference ``{'model': ...}`` file). The last term optimises the classifier score directly; it is off
by default, and a score from that judge then says how well the generator satisfies it, not how good it is.

Options from the conditional-GAN literature (gen_eval.trainers.gan_tricks): ``adv_loss=hinge``,
``d_spectral_norm``, ``d_projection``, ``g_conditional_bn``, ``diffaugment``, ``ema_decay`` (the averaged
generator samples and is exported). Preset ``shapes-acgan-32`` combines them into the demo's recipe, which
needs no judge (numbers in benchmarks/RESULTS.md).

The repair of the conditioning signal (issue 22; each off by default): ``aux_reduction=sum`` (the label
loss summed over labels, not averaged: with 24 labels each present object had 1/24 of the gradient),
label-safe DiffAugment ops (``brightness``, ``translation_border``), ``d_mismatch_weight`` (real images
with another image's condition as negatives for the projection or label-channel path),
``generator=resnet`` (BigGAN-style residual up-blocks from 4x4, conditional BatchNorm fed by the label
embedding and a chunk of z in every block), ``d_warmup_steps`` (the discriminator first learns to
classify real images), ``ema_bn=track`` (the EMA generator's BatchNorm statistics are its own, not the
raw generator's). Preset ``shapes-acgan-64`` combines them at 64 px.

Where the defaults and the presets come from, and what was measured with them: docs/recipes.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from gen_eval.contract import ExportGraph
from gen_eval.data.labels import LabelSpace
from gen_eval.errors import UserError
from gen_eval.trainers import register_family
from gen_eval.trainers.base import Batch, Family, generator_graph
from gen_eval.trainers.config import (
    BELOW_ONE,
    CONDITION_EMBED,
    LABEL_VALUE,
    LATENT,
    NON_NEGATIVE,
    POSITIVE,
    WIDTH,
    Rule,
    between,
    one_of,
    power_of_two,
    set_option,
    setting,
)
from gen_eval.trainers.discriminators import ConditionalDiscriminator
from gen_eval.trainers.gan_tricks import (
    ADV_LOSSES,
    AUGMENTATIONS,
    LABEL_SAFE_AUGMENTATIONS,
    clip_weights,
    diff_augment,
    discriminator_loss,
    ema_copy,
    generator_adversarial_loss,
    initialise_at_prior,
    mismatched_conditions,
    parse_augment_policy,
    spectral_normalize,
    track_batchnorm_statistics,
    update_ema,
)
from gen_eval.trainers.generators import GENERATORS, build_generator
from gen_eval.trainers.losses import (
    AUX_REDUCTIONS,
    FrozenJudge,
    auxiliary_loss,
    bce_on_probs,
    image_l2,
    perceptual_loss,
    total_variation,
)
from gen_eval.trainers.srgan import DISCRIMINATORS, SRGANDiscriminator

AUGMENT_POLICY = Rule("empty or a comma-separated list of " + ", ".join(AUGMENTATIONS) + " (e.g. color,translation)",
                      lambda v: all(p.strip() in AUGMENTATIONS for p in v.split(",") if p.strip()))


@dataclass(frozen=True)
class ACGANConfig:
    image_size: int = setting(64, "image side in pixels", power_of_two(8))
    image_channels: int | None = setting(None, "image channels (none: the data's)", between(1, 4))
    latent_dim: int = setting(100, "length of the noise vector z", LATENT)
    cond_embed: int = setting(256, "width of the generator's condition embedding (0: the raw condition)",
                              CONDITION_EMBED)
    generator: str = setting("upsample", "generator body (gen_eval.trainers.generators)", one_of(*GENERATORS))
    ngf: int = setting(64, "generator width", WIDTH)
    ndf: int = setting(64, "discriminator width", WIDTH)
    g_start_size: int = setting(0, "generator's first feature-map side (0: the body's default)", between(0, 1024))
    g_res_blocks: int = setting(5, "residual blocks of the srgan generator", between(0, 64))
    d_label_channel: bool = setting(False, "feed the condition to the discriminator as an extra channel")
    d_batch_norm: bool = setting(True, "BatchNorm in the discriminator")
    d_dropout: float = setting(0.0, "dropout before the discriminator heads", BELOW_ONE)
    d_aux_pool: bool = setting(False, "auxiliary head on globally pooled features")
    lr_g: float = setting(1e-4, "generator Adam learning rate", POSITIVE)
    lr_d: float = setting(4e-4, "discriminator Adam learning rate", POSITIVE)
    beta1: float = setting(0.5, "Adam beta1 of both networks", BELOW_ONE)
    beta2: float = setting(0.999, "Adam beta2 of both networks", BELOW_ONE)
    n_d: int = setting(1, "discriminator updates per step", between(1, 100))
    n_g: int = setting(1, "generator updates per step", between(1, 100))
    real_label: float = setting(1.0, "target for real images (< 1: one-sided label smoothing)", LABEL_VALUE)
    adv_weight: float = setting(1.0, "generator: adversarial loss weight", NON_NEGATIVE)
    aux_weight: float = setting(1.0, "generator: auxiliary (label) loss weight", NON_NEGATIVE)
    d_aux_weight: float = setting(1.0, "discriminator: auxiliary loss weight", NON_NEGATIVE)
    d_aux_fake: bool = setting(True, "discriminator: auxiliary loss on fake images too")
    l2_weight: float = setting(0.0, "generator: pixel MSE to the real image of the same condition", NON_NEGATIVE)
    perceptual_weight: float = setting(0.0, "generator: MSE of judge features (needs judge)", NON_NEGATIVE)
    tv_weight: float = setting(0.0, "generator: total variation weight", NON_NEGATIVE)
    judge_weight: float = setting(0.0, "generator: BCE of a frozen judge on fakes (needs judge): "
                                  "it optimises that judge's score, so score with another classifier", NON_NEGATIVE)
    judge: str = setting("", "classifier checkpoint for the perceptual/judge losses")
    # -- the discriminator, checkpoint selection and adversarial loss (issue 17) --
    discriminator: str = setting("dcgan", "discriminator body: dcgan (strided convs to 4x4) or srgan (SRGAN's)",
                                 one_of(*DISCRIMINATORS))
    judge_score: bool = setting(True, "with a judge: score held-out conditions each epoch, keep the best "
                                      "as checkpoints/epochN_scoreX.pt")
    adv_loss: str = setting("bce", "adversarial loss: bce, hinge (SNGAN, BigGAN) or wgan (the WGAN critic loss; "
                            "with d_clip)", one_of(*ADV_LOSSES))
    d_clip: float = setting(0.0, "clamp every discriminator weight to [-d_clip, d_clip] after each of its steps "
                            "(0: off; the original WGAN's 0.01)", NON_NEGATIVE)
    d_spectral_norm: bool = setting(False, "spectral normalisation of every discriminator layer but the "
                                    "auxiliary head (Miyato 2018)")
    d_projection: bool = setting(False, "projection discriminator: <embed(labels), features> added to the "
                                 "adversarial logit (Miyato & Koyama 2018)")
    g_conditional_bn: bool = setting(False, "conditional BatchNorm in the upsample generator (scale, shift from "
                                     "the labels)")
    diffaugment: str = setting("", "DiffAugment on D's inputs, real and fake (Zhao 2020), comma-separated; "
                               f"label-safe: {', '.join(LABEL_SAFE_AUGMENTATIONS)}; not label-safe: color "
                               "(saturation greys colours), translation (fills mid-grey, the gray objects' "
                               "colour), cutout (erases objects); empty: off", AUGMENT_POLICY)
    d_aux_prior: bool = setting(False, "start the auxiliary head's biases at the log-odds of 1/labels (a short "
                                "run need not spend its steps learning the labels' base rate)")
    ema_decay: float = setting(0.0, "moving average of the generator's weights (0: off; e.g. 0.999); samples "
                               "and the exported ONNX generator are the averaged one", BELOW_ONE)
    # -- the GAN repair (issue 22) --
    aux_reduction: str = setting("mean", "auxiliary loss over the labels: mean or sum (each of the labels "
                                 "gets a full BCE, as a categorical head gets a full cross-entropy)",
                                 one_of(*AUX_REDUCTIONS))
    d_mismatch_weight: float = setting(0.0, "discriminator: weight of real images paired with another image's "
                                       "condition, scored as fake (Reed 2016; needs d_projection or "
                                       "d_label_channel)", NON_NEGATIVE)
    d_warmup_steps: int = setting(0, "the first N steps (of --steps) train only the discriminator's body and "
                                  "auxiliary head as a classifier of real images; the generator waits",
                                  between(0, 10**9))
    d_aux_tower: bool = setting(False, "the auxiliary head reads a conv tower of its own (the body's widths, "
                                "no spectral norm, the image only), not the adversarial body: a spectrally "
                                "normalised body learns to read labels slowly")
    ema_bn: str = setting("copy", "the EMA generator's BatchNorm statistics: copy (the raw generator's, each "
                          "step) or track (its own: a no-grad pass on each step's noise and conditions)",
                          one_of("copy", "track"))


@register_family
class ACGAN(Family):
    """Auxiliary-classifier GAN on any label space (a CelebA attribute, iCLEVR's 24 labels, categorical heads)."""

    name: ClassVar[str] = "acgan"
    Config = ACGANConfig
    conditional: ClassVar[bool] = True
    default_epochs: ClassVar[int] = 200
    cpu_hint: ClassVar[str] = ("at its 64 px defaults ~11 s per step of 64 images on 2 busy CPU cores (~18 min per "
                               "epoch of the 6000-image shapes set); at 32 px (preset shapes-acgan-32) ~0.16 s per "
                               "step of 32 on 2 idle cores")   # measured: benchmarks/RESULTS.md, README demo
    auxiliary_head: ClassVar[bool] = True
    selection_metric: ClassVar[str | None] = "judge_score"

    def __init__(self, config: dict[str, Any], label_space: LabelSpace | None = None) -> None:
        super().__init__(config, label_space)
        self._judge: FrozenJudge | None = None

    @property
    def label_dim(self) -> int:
        if self.label_space is None:
            raise UserError(f"{self.name} needs a labelled data set")
        return self.label_space.size

    def judge(self) -> FrozenJudge | None:
        """The frozen classifier for the perceptual and judge losses (None when both are off)."""
        c = self.config
        if not (c.perceptual_weight or c.judge_weight):
            return None
        if not c.judge:
            raise UserError(f"perceptual_weight/judge_weight need a classifier: pass {set_option('judge', 'PATH')} "
                            "(a classifier run's checkpoints/last.pt or an iCLEVR reference classifier .pth)")
        return self._load_judge()

    def _load_judge(self) -> FrozenJudge:
        if self._judge is None:
            self._judge = FrozenJudge(self.config.judge, num_labels=self.label_dim)
        return self._judge

    def training_judges(self) -> list[dict[str, Any]]:
        c = self.config
        terms = {key: float(getattr(c, key)) for key in ("judge_weight", "perceptual_weight") if getattr(c, key)}
        if not terms and not self.scores_epochs_with_judge():
            return []
        judge = self._load_judge()
        return [{"file": judge.source, **judge.fingerprints, "loss_terms": terms,
                 "scores_epochs": self.scores_epochs_with_judge()}]

    def build_networks(self) -> dict[str, nn.Module]:
        c = self.config
        if c.g_conditional_bn and c.generator != "upsample":
            built_in = " (the resnet generator always has it)" if c.generator == "resnet" else ""
            raise UserError(f"g_conditional_bn works with the upsample generator, not {c.generator!r}{built_in}; "
                            f"add {set_option('generator', 'upsample')} or drop g_conditional_bn")
        if c.d_mismatch_weight and not (c.d_projection or c.d_label_channel):
            raise UserError(f"{set_option('d_mismatch_weight', c.d_mismatch_weight)} needs a discriminator whose "
                            f"adversarial score sees the condition: add {set_option('d_projection', True)} or "
                            f"{set_option('d_label_channel', True)}")
        if c.ema_bn != "copy" and not c.ema_decay:
            raise UserError(f"{set_option('ema_bn', c.ema_bn)} needs the EMA generator: add e.g. "
                            f"{set_option('ema_decay', 0.999)} or drop ema_bn")
        generator = build_generator(c.generator, latent_dim=c.latent_dim, label_dim=self.label_dim,
                                    image_shape=self.image_shape, width=c.ngf, cond_embed=c.cond_embed,
                                    start_size=c.g_start_size, res_blocks=c.g_res_blocks,
                                    conditional_bn=c.g_conditional_bn)
        if c.discriminator == "srgan":
            if c.d_aux_tower:
                raise UserError("d_aux_tower works with the dcgan discriminator, not srgan; drop one of "
                                f"{set_option('d_aux_tower', True)} and {set_option('discriminator', 'srgan')}")
            if c.d_projection:
                raise UserError("d_projection works with the dcgan discriminator, not srgan; drop one of "
                                f"{set_option('d_projection', True)} and {set_option('discriminator', 'srgan')}")
            discriminator = SRGANDiscriminator(self.image_shape, c.ndf, self.label_dim,
                                               label_channel=c.d_label_channel, aux_head=self.auxiliary_head)
        else:
            discriminator = ConditionalDiscriminator(self.image_shape, c.ndf, self.label_dim,
                                                     label_channel=c.d_label_channel, aux_head=self.auxiliary_head,
                                                     batch_norm=c.d_batch_norm, dropout=c.d_dropout,
                                                     aux_pool=c.d_aux_pool, projection=c.d_projection,
                                                     aux_tower=c.d_aux_tower)
        if c.d_aux_prior and discriminator.auxiliary is not None:
            initialise_at_prior(discriminator.auxiliary, self.label_dim)
        if c.d_spectral_norm:
            spectral_normalize(discriminator,
                               skip=(discriminator.auxiliary, getattr(discriminator, "aux_features", None)))
        networks = {"generator": generator, "discriminator": discriminator}
        if c.ema_decay:
            networks["generator_ema"] = ema_copy(generator)   # what samples and the ONNX export use
        return networks

    def build_optimizers(self, networks: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        # Only training needs the judge: fail before the first step when its file is missing or wrong,
        # but let the exporter rebuild the networks where that file no longer exists.
        self.judge()
        c = self.config
        betas = (c.beta1, c.beta2)
        return {"generator": torch.optim.Adam(networks["generator"].parameters(), lr=c.lr_g, betas=betas),
                "discriminator": torch.optim.Adam(networks["discriminator"].parameters(), lr=c.lr_d, betas=betas)}

    def noise(self, count: int, device: torch.device) -> torch.Tensor:
        return torch.randn(count, self.config.latent_dim, device=device)

    def train_step(self, networks: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer],
                   batch: Batch, step: int) -> dict[str, float]:
        c = self.config
        generator, discriminator = networks["generator"], networks["discriminator"]
        real, labels = batch.images, batch.labels
        out: dict[str, float] = {}

        policy = parse_augment_policy(c.diffaugment)
        warmup = getattr(c, "d_warmup_steps", 0)
        if step < warmup:
            return self.discriminator_warmup_step(discriminator, optimizers["discriminator"], real, labels, policy)
        for _ in range(c.n_d):
            with torch.no_grad():
                fake = generator(self.noise(len(real), real.device), labels)
            real_seen = diff_augment(real, policy)
            real_adv, real_aux = discriminator(real_seen, labels)
            fake_adv, fake_aux = discriminator(diff_augment(fake, policy), labels)
            loss_real, loss_fake = discriminator_loss(c.adv_loss, real_adv, fake_adv, c.real_label)
            if self.auxiliary_head:
                loss_real = loss_real + c.d_aux_weight * self.aux_loss(real_aux, labels)
                if c.d_aux_fake:
                    loss_fake = loss_fake + c.d_aux_weight * self.aux_loss(fake_aux, labels)
            if c.d_mismatch_weight:
                loss_mismatch = self.mismatch_loss(discriminator, real_seen, labels)
                loss_fake = loss_fake + c.d_mismatch_weight * loss_mismatch
                out["d_mismatch"] = loss_mismatch.item()
            loss_d = (loss_real + loss_fake) / 2
            optimizers["discriminator"].zero_grad(set_to_none=True)
            loss_d.backward()
            optimizers["discriminator"].step()
            if c.d_clip:
                clip_weights(discriminator, c.d_clip)
        out["loss_d"] = loss_d.item()
        out["d_real"] = torch.sigmoid(real_adv).mean().item()
        out["d_fake"] = torch.sigmoid(fake_adv).mean().item()

        for _ in range(c.n_g):
            z = self.noise(len(real), real.device)
            fake = generator(z, labels)
            adv, aux = discriminator(diff_augment(fake, policy), labels)
            terms = self.generator_terms(fake, real, labels, adv, aux)
            loss_g = sum(weight * value for weight, value in terms.values())
            optimizers["generator"].zero_grad(set_to_none=True)
            loss_g.backward()
            optimizers["generator"].step()
        if "generator_ema" in networks:
            # the average starts when the generator does (after the discriminator's warm-up)
            update_ema(networks["generator_ema"], generator, c.ema_decay, step - warmup,
                       copy_buffers=c.ema_bn == "copy")
            if c.ema_bn == "track":
                with torch.no_grad():
                    track_batchnorm_statistics(networks["generator_ema"], z, labels)
        out["loss_g"] = loss_g.item()
        out.update({f"g_{name}": value.item() for name, (_, value) in terms.items() if name != "adv"})
        return out

    def aux_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return auxiliary_loss(logits, labels, self.label_space, getattr(self.config, "aux_reduction", "mean"))

    def mismatch_loss(self, discriminator: nn.Module, real: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The discriminator's loss on real images paired with another image's condition, as if they were fake
        (Reed et al. 2016); rows whose borrowed condition equals their own are left out."""
        wrong, differs = mismatched_conditions(labels)
        if not bool(differs.any()):
            return real.new_zeros(())
        wrong_adv, _ = discriminator(real[differs], wrong[differs])
        return discriminator_loss(self.config.adv_loss, wrong_adv, wrong_adv)[1]

    def discriminator_warmup_step(self, discriminator: nn.Module, optimizer: torch.optim.Optimizer,
                                  real: torch.Tensor, labels: torch.Tensor, policy: tuple[str, ...]
                                  ) -> dict[str, float]:
        """``d_warmup_steps``: the discriminator's body and auxiliary head trained as a classifier of real
        images (the adversarial head and the projection get no gradient, the generator does not move), so
        the label head already reads real images when the generator starts to learn from it."""
        _, real_aux = discriminator(diff_augment(real, policy), labels)
        loss = self.aux_loss(real_aux, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if self.config.d_clip:
            clip_weights(discriminator, self.config.d_clip)
        return {"d_warmup_aux": loss.item()}

    def generator_terms(self, fake: torch.Tensor, real: torch.Tensor, labels: torch.Tensor, adv: torch.Tensor,
                        aux: torch.Tensor | None) -> dict[str, tuple[float, torch.Tensor]]:
        """Each generator loss with its weight; terms of weight 0 are not computed."""
        c = self.config
        terms = {"adv": (c.adv_weight, generator_adversarial_loss(c.adv_loss, adv))}
        if aux is not None and c.aux_weight:
            terms["aux"] = (c.aux_weight, self.aux_loss(aux, labels))
        if c.l2_weight:
            terms["l2"] = (c.l2_weight, image_l2(fake, real))
        if c.tv_weight:
            terms["tv"] = (c.tv_weight, total_variation(fake))
        judge = self.judge()
        if judge is not None and c.perceptual_weight:
            terms["perceptual"] = (c.perceptual_weight, perceptual_loss(judge, fake, real))
        if judge is not None and c.judge_weight:
            terms["judge"] = (c.judge_weight, bce_on_probs(judge.probs(fake), labels))
        return terms

    @staticmethod
    def sampling_generator(networks: dict[str, nn.Module]) -> nn.Module:
        """The generator that samples and is exported: the weight average when ``ema_decay`` is on."""
        return networks.get("generator_ema", networks["generator"])

    def sample(self, networks: dict[str, nn.Module], z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.sampling_generator(networks)(z, labels)

    def scores_epochs_with_judge(self) -> bool:
        return bool(self.config.judge and self.config.judge_score)

    def uses_heldout(self) -> bool:
        return self.auxiliary_head or self.scores_epochs_with_judge()

    def evaluate(self, networks: dict[str, nn.Module], batches) -> dict[str, float]:
        """On the held-out split: ``d_label_head``, how well the discriminator's label head reads the real
        images' labels (scored as the classifier score scores a judge; a head that cannot read real images
        cannot teach the generator which objects to draw); with a judge, ``judge_score``, the classifier score
        of images generated for the held-out conditions by the generator that samples and is exported (the EMA
        one when ``ema_decay`` is on).

        The noise comes from its own generator (seed 0), so epochs are scored on the same z and the
        training RNG is untouched (a resumed run stays bit-identical).
        """
        c = self.config
        if not self.uses_heldout():
            return {}
        from gen_eval.trainers.classifier import score

        judge = self._load_judge() if self.scores_epochs_with_judge() else None
        noise = torch.Generator().manual_seed(0)
        head_probs, judge_probs, labels = [], [], []
        with torch.no_grad():
            for batch in batches:
                if self.auxiliary_head:
                    head = networks["discriminator"](batch.images, batch.labels)[1]
                    head_probs.append(torch.sigmoid(head).float().cpu().numpy())
                if judge is not None:
                    z = torch.randn(len(batch.labels), c.latent_dim, generator=noise).to(batch.labels.device)
                    generated = self.sampling_generator(networks)(z, batch.labels)
                    judge_probs.append(judge.probs(generated).float().cpu().numpy())
                labels.append(batch.labels.cpu().numpy())
        if not labels:
            return {}
        truth, out = np.concatenate(labels), {}
        if head_probs:
            out["d_label_head"] = score(np.concatenate(head_probs), truth, self.label_space)
        if judge_probs:
            out["judge_score"] = score(np.concatenate(judge_probs), truth, self.label_space)
        return out

    def export_graphs(self, networks: dict[str, nn.Module]) -> list[ExportGraph]:
        return [generator_graph(self.sampling_generator(networks), self.config.latent_dim, self.image_shape,
                                self.value_range, self.label_space)]

