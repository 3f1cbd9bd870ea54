"""The repair of the conditional GANs' label signal (issue 22): the summed auxiliary loss, label-safe
DiffAugment ops, mismatched-label negatives, the resnet generator, the discriminator's warm-up as a
classifier, the EMA generator's own BatchNorm statistics, and the per-epoch score on the shipped generator."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gen_eval.data.labels import LabelSpace
from gen_eval.data.shapes import write_shapes
from gen_eval.errors import UserError
from gen_eval.trainers import acgan as acgan_module
from gen_eval.trainers.acgan import ACGAN
from gen_eval.trainers.base import Batch
from gen_eval.trainers.cgan import CGAN
from gen_eval.trainers.checkpoint import load_checkpoint
from gen_eval.trainers.gan_tricks import (
    BRIGHTNESS_RANGE,
    diff_augment,
    mismatched_conditions,
    track_batchnorm_statistics,
)
from gen_eval.trainers.generators import ResNetGeneratorBody, build_generator
from gen_eval.trainers.loop import train
from gen_eval.trainers.losses import auxiliary_loss
from helpers.cli import run_cli_here
from helpers.training import TINY_GAN

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py

SHAPES_LABELS = LabelSpace.multilabel([f"object {i}" for i in range(24)])
TINY = {**TINY_GAN, "data.eval_split": ""}
TINY_SETTINGS = {k: v for k, v in TINY.items() if not k.startswith("data.")}


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return write_shapes(tmp_path_factory.mktemp("data") / "shapes", n_train=16, n_heldout=8, seed=0)


def tiny_family(cls=ACGAN, space: LabelSpace = SHAPES_LABELS, **settings) -> ACGAN:
    family = cls(cls.resolve_config({**TINY_SETTINGS, **settings}), space)
    family.fit_data((3, 16, 16), space)
    return family


def multilabel_batch(count: int = 8, seed: int = 0) -> Batch:
    """Real-looking images and 1-3 distinct labels of 24 per image."""
    rng = torch.Generator().manual_seed(seed)
    labels = torch.zeros(count, 24)
    for row in range(count):
        picks = torch.randperm(24, generator=rng)[: 1 + row % 3]
        labels[row, picks] = 1
    return Batch(images=torch.rand(count, 3, 16, 16, generator=rng) * 2 - 1, labels=labels)


def parameters(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.named_parameters()}


# -- (a) the auxiliary loss summed over labels ---------------------------------------------------------
def test_summed_auxiliary_loss_gives_each_label_a_full_bce():
    torch.manual_seed(0)
    logits = torch.randn(5, 24, requires_grad=True)
    labels = multilabel_batch(5).labels
    per_element = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    summed = auxiliary_loss(logits, labels, SHAPES_LABELS, "sum")
    assert summed.item() == pytest.approx(per_element.sum(dim=1).mean().item(), rel=1e-6)
    assert auxiliary_loss(logits, labels, SHAPES_LABELS).item() == pytest.approx(per_element.mean().item(), rel=1e-6)
    summed.backward()
    # d/d logit of one label = (sigmoid - target) / batch: what one binary head would get, not 1/24 of it
    expected = (torch.sigmoid(logits.detach()) - labels) / 5
    assert torch.allclose(logits.grad, expected, atol=1e-7)


def test_summed_auxiliary_loss_adds_categorical_heads():
    space = LabelSpace.categorical({"hair": ["h0", "h1", "h2"], "eye": ["e0", "e1"]})
    logits = torch.tensor([[2.0, 0.0, -1.0, 0.5, 0.0], [0.0, 1.0, 0.0, -1.0, 1.0]])
    labels = torch.tensor([[1.0, 0, 0, 0, 1], [0, 0, 1, 1, 0]])
    hair = F.cross_entropy(logits[:, :3], torch.tensor([0, 2]))
    eye = F.cross_entropy(logits[:, 3:], torch.tensor([1, 0]))
    assert auxiliary_loss(logits, labels, space, "sum").item() == pytest.approx((hair + eye).item())
    assert auxiliary_loss(logits, labels, space, "mean").item() == pytest.approx(((hair + eye) / 2).item())


def test_aux_reduction_setting_reaches_the_acgan_losses():
    logits, labels = torch.randn(4, 24), multilabel_batch(4).labels
    summed = tiny_family(aux_reduction="sum").aux_loss(logits, labels)
    averaged = tiny_family().aux_loss(logits, labels)      # the default stays S4's mean
    assert summed.item() == pytest.approx(24 * averaged.item(), rel=1e-5)
    with pytest.raises(UserError, match="aux_reduction must be one of mean, sum"):
        ACGAN.resolve_config({"aux_reduction": "max"})
    with pytest.raises(UserError, match="cgan has no setting 'aux_reduction'"):
        CGAN.resolve_config({"aux_reduction": "sum"})


# -- (b) label-safe augmentation -----------------------------------------------------------------------
def test_brightness_keeps_every_colour_difference_and_stays_small():
    images = torch.rand(6, 3, 8, 8) * 2 - 1
    out = diff_augment(images, ("brightness",), torch.Generator().manual_seed(0))
    shift = out - images
    # one shift per image, the same on every channel and pixel: hue and saturation are untouched
    assert torch.allclose(shift, shift[:, :1, :1, :1].expand_as(shift), atol=1e-6)
    assert shift.abs().max() <= BRIGHTNESS_RANGE + 1e-6 and shift.abs().max() > 0
    greyed = diff_augment(images, ("color",), torch.Generator().manual_seed(0))
    assert not torch.allclose(greyed[:, 0] - greyed[:, 1], images[:, 0] - images[:, 1], atol=1e-3)


def test_border_translation_fills_with_the_background_and_keeps_the_object():
    background, colour = 0.9, 0.0                        # 0 in [-1, 1] is the "gray" objects' colour
    images = torch.full((16, 3, 16, 16), background)
    images[:, :, 6:10, 6:10] = colour                    # an object well inside the 2 px a shift can move
    out = diff_augment(images, ("translation_border",), torch.Generator().manual_seed(0))
    assert set(out.unique().tolist()) == set(images.unique().tolist())   # no new colour: no grey fill
    assert ((out == colour).flatten(1).sum(1) == 3 * 16).all()          # every object pixel survives
    assert any(not torch.equal(out[i], images[i]) for i in range(16))    # and it moved
    zero_filled = diff_augment(images, ("translation",), torch.Generator().manual_seed(0))
    assert ((zero_filled == colour).flatten(1).sum(1) > 3 * 16).any()   # the old op paints grey edges


def test_train_help_says_which_augmentations_are_label_safe():
    result = run_cli_here("train", "acgan", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "label-safe: brightness, translation_border; not label-safe: color" in text
    assert "cutout (erases objects)" in text


# -- (c) mismatched-label negatives --------------------------------------------------------------------
def test_mismatched_conditions_borrow_another_images_labels():
    labels = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 1, 0], [0, 0, 1]])
    wrong, differs = mismatched_conditions(labels)
    assert differs.tolist() == [True, True, False, True]     # row 2 borrowed row 1's, its own
    assert torch.equal(wrong, labels[[3, 0, 1, 2]])


def test_mismatch_weight_teaches_the_projection_to_check_labels():
    batch = multilabel_batch(8)
    wrong, _ = mismatched_conditions(batch.labels)

    def label_gap(weight: float) -> float:
        torch.manual_seed(0)
        family = tiny_family(d_projection="true", d_batch_norm="false", adv_loss="hinge", lr_d="0.01",
                             d_mismatch_weight=str(weight))
        networks = family.build_networks()
        optimizers = family.build_optimizers(networks)
        for step in range(30):
            losses = family.train_step(networks, optimizers, batch, step)
        assert ("d_mismatch" in losses) == bool(weight)
        discriminator = networks["discriminator"].eval()
        with torch.no_grad():
            return float((discriminator(batch.images, batch.labels)[0] - discriminator(batch.images, wrong)[0]).mean())

    with_negatives, without = label_gap(1.0), label_gap(0.0)
    # real images with their own labels score above the same images with borrowed labels (seeds 0-2: a gap
    # of 7-10 with the negatives, 0.9-1.4 without)
    assert with_negatives > 4.0 and with_negatives > 3 * without


def test_mismatch_needs_a_discriminator_that_sees_the_condition():
    with pytest.raises(UserError, match="d_mismatch_weight.* needs a discriminator whose adversarial score sees"):
        tiny_family(d_mismatch_weight="1").build_networks()
    tiny_family(CGAN, d_mismatch_weight="1").build_networks()     # cgan's label channel sees it


# -- (d) the resnet generator --------------------------------------------------------------------------
def test_resnet_generator_feeds_labels_and_a_chunk_of_z_to_every_block():
    torch.manual_seed(0)
    generator = build_generator("resnet", latent_dim=10, label_dim=24, image_shape=(3, 16, 16), width=4,
                                cond_embed=6).eval()
    body = generator.body
    assert isinstance(body, ResNetGeneratorBody) and len(body.blocks) == 2 and body.chunk_sizes == [4, 3, 3]
    with torch.no_grad():       # trained-looking conditional norms (they start as plain BatchNorm)
        for module in body.modules():
            if isinstance(module, nn.Linear) and module.weight.abs().sum() == 0:
                module.weight.normal_(0, 0.5)
    seen = []
    for block in body.blocks:
        block.register_forward_hook(lambda module, inputs, output: seen.append(inputs[1]))
    z, labels = torch.randn(3, 10), multilabel_batch(3).labels
    with torch.no_grad():
        image = generator(z, labels)
    assert image.shape == (3, 3, 16, 16) and image.abs().max() <= 1
    embedding = body.embed(labels)
    for condition, chunk in zip(seen, (z[:, 4:7], z[:, 7:10])):
        assert torch.equal(condition, torch.cat([embedding, chunk], dim=1))
    with torch.no_grad():
        for start in (0, 4, 7):          # every chunk of z reaches the image, and so do the labels
            moved = z.clone()
            moved[:, start] += 1
            assert not torch.allclose(generator(moved, labels), image, atol=1e-4)
        assert not torch.allclose(generator(z, labels.roll(1, 0)), image, atol=1e-4)


def test_resnet_generator_needs_a_chunk_of_z_per_block():
    with pytest.raises(UserError, match="splits z into 3 chunks"):
        build_generator("resnet", latent_dim=2, label_dim=24, image_shape=(3, 16, 16), width=4)
    with pytest.raises(UserError, match="the resnet generator always has it"):
        tiny_family(generator="resnet", g_conditional_bn="true").build_networks()


def test_resnet_ema_generator_trains_and_exports_with_parity(shapes, tmp_path):
    from gen_eval.exporter import export_checkpoint

    overrides = {**TINY, "generator": "resnet", "ema_decay": "0.9", "ema_bn": "track", "lr_g": "0.01",
                 "d_projection": "true", "d_mismatch_weight": "1", "aux_reduction": "sum",
                 "diffaugment": "brightness,translation_border", "d_warmup_steps": "1"}
    last = train("acgan", shapes, tmp_path / "run", steps=3, batch_size=4, device="cpu", progress=False,
                 config_overrides=overrides)
    results = export_checkpoint(last, tmp_path / "g.onnx")     # raises when the parity check fails
    assert results[0].parity.reference == "float64"
    assert all(results[0].parity.error[b] <= results[0].parity.tolerance[b] for b in results[0].parity.error)

    ckpt = load_checkpoint(last)
    family = ACGAN(ckpt["config"], LabelSpace.from_dict(ckpt["label_space"]))
    networks = family.build_networks()
    for name, net in networks.items():
        net.load_state_dict(ckpt["networks"][name])
        net.eval()
    z, labels = torch.randn(2, 8), multilabel_batch(2).labels
    session = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    onnx_out = session.run(None, dict(zip(names, [z.numpy(), labels.numpy()])))[0]
    with torch.no_grad():
        assert np.abs(onnx_out - networks["generator_ema"](z, labels).numpy()).max() < 1e-4


# -- (e) the discriminator's warm-up as a classifier of real images ------------------------------------
def test_warmup_trains_only_the_label_path_of_the_discriminator():
    torch.manual_seed(0)
    family = tiny_family(d_warmup_steps="25", d_projection="true", d_batch_norm="false", lr_d="0.01",
                         ema_decay="0.9")
    networks = family.build_networks()
    optimizers = family.build_optimizers(networks)
    generator_before = parameters(networks["generator"])
    ema_before = parameters(networks["generator_ema"])
    discriminator = networks["discriminator"]
    heads_before = {**parameters(discriminator.adversarial), **parameters(discriminator.embed)}
    aux_before = parameters(discriminator.auxiliary)
    batch = multilabel_batch(8)
    losses = [family.train_step(networks, optimizers, batch, step) for step in range(25)]
    assert all(set(row) == {"d_warmup_aux"} for row in losses)
    assert losses[-1]["d_warmup_aux"] < 0.5 * losses[0]["d_warmup_aux"]      # it learns the labels of real images
    for name, value in parameters(networks["generator"]).items():
        assert torch.equal(value, generator_before[name])
    for name, value in parameters(networks["generator_ema"]).items():
        assert torch.equal(value, ema_before[name])
    for name, value in {**parameters(discriminator.adversarial), **parameters(discriminator.embed)}.items():
        assert torch.equal(value, heads_before[name])
    assert any(not torch.equal(v, aux_before[k]) for k, v in parameters(discriminator.auxiliary).items())

    after = family.train_step(networks, optimizers, batch, 25)        # the adversarial game starts
    assert {"loss_d", "loss_g"} <= set(after)
    assert any(not torch.equal(v, generator_before[k]) for k, v in parameters(networks["generator"]).items())


def test_cgan_has_no_warmup_without_a_label_head():
    with pytest.raises(UserError, match="cgan has no setting 'd_warmup_steps'"):
        CGAN.resolve_config({"d_warmup_steps": "10"})


# -- (f) the EMA generator's own BatchNorm statistics ----------------------------------------------------
def test_tracking_steps_the_running_statistics_toward_the_models_own():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).eval()
    x = torch.randn(16, 3)
    before = model[1].running_mean.clone()
    with torch.no_grad():
        track_batchnorm_statistics(model, x)
        batch_mean = model[0](x).mean(dim=0)
    assert torch.allclose(model[1].running_mean, 0.9 * before + 0.1 * batch_mean, atol=1e-6)
    assert not model.training                      # left in the mode it was in


@pytest.mark.parametrize("mode", ["copy", "track"])
def test_ema_batchnorm_statistics_are_copied_or_its_own(mode, monkeypatch):
    torch.manual_seed(0)
    family = tiny_family(generator="resnet", ema_decay="0.9", ema_bn=mode, lr_g="0.05")
    networks = family.build_networks()
    for net in networks.values():
        net.train()
    optimizers = family.build_optimizers(networks)
    tracked = []
    real_track = acgan_module.track_batchnorm_statistics
    monkeypatch.setattr(acgan_module, "track_batchnorm_statistics",
                        lambda model, *inputs: (tracked.append((model, inputs)), real_track(model, *inputs)))
    family.train_step(networks, optimizers, multilabel_batch(8), 0)
    raw, ema = networks["generator"], networks["generator_ema"]
    same = [torch.equal(a, b) for a, b in zip(raw.buffers(), ema.buffers()) if a.is_floating_point()]
    if mode == "copy":
        assert all(same) and not tracked
    else:
        assert not any(same)
        (model, (z, labels)), = tracked
        assert model is ema and z.shape == (8, 8) and torch.equal(labels, multilabel_batch(8).labels)


def test_ema_bn_needs_the_ema_generator():
    with pytest.raises(UserError, match="ema_bn.*track.* needs the EMA generator"):
        tiny_family(ema_bn="track").build_networks()


# -- (g) the per-epoch judge score on the generator that ships -----------------------------------------
class RecordingJudge:
    def __init__(self) -> None:
        self.images: list[torch.Tensor] = []

    def probs(self, images: torch.Tensor) -> torch.Tensor:
        self.images.append(images)
        return torch.full((len(images), 24), 0.5)


def test_per_epoch_score_runs_the_ema_generator():
    torch.manual_seed(0)
    family = tiny_family(ema_decay="0.9", judge="judge.pth")
    family._judge = RecordingJudge()
    networks = family.build_networks()
    with torch.no_grad():
        for p in networks["generator_ema"].parameters():
            p.add_(0.1)
    for net in networks.values():
        net.eval()
    batch = multilabel_batch(4)
    with torch.no_grad():
        family.evaluate(networks, [batch])
        z = torch.randn(4, 8, generator=torch.Generator().manual_seed(0))
        shipped = networks["generator_ema"](z, batch.labels)
        raw = networks["generator"](z, batch.labels)
    (scored,) = family._judge.images
    assert torch.equal(scored, shipped) and not torch.allclose(scored, raw)


def test_label_head_score_is_the_classifier_score_of_the_discriminators_logits():
    from gen_eval.evaluator.score import multilabel_score

    torch.manual_seed(0)
    family = tiny_family()  # no judge: the discriminator's own label head is still scored
    networks = family.build_networks()
    for net in networks.values():
        net.eval()
    batches = [multilabel_batch(4, seed=1), multilabel_batch(6, seed=2)]
    metrics = family.evaluate(networks, batches)
    assert set(metrics) == {"d_label_head"}
    with torch.no_grad():
        logits = torch.cat([networks["discriminator"](b.images, b.labels)[1] for b in batches])
    labels = torch.cat([b.labels for b in batches])
    assert metrics["d_label_head"] == multilabel_score(logits.numpy(), labels.numpy()).value
    assert CGAN(CGAN.resolve_config(TINY_SETTINGS), SHAPES_LABELS).uses_heldout() is False  # no label head


def test_every_epoch_logs_how_well_the_discriminator_reads_real_held_out_labels(shapes, tmp_path):
    from helpers.training import read_log

    run = tmp_path / "run"
    overrides = {k: v for k, v in TINY.items() if k != "data.eval_split"}   # the shapes set's held-out split
    train("acgan", shapes, run, steps=8, batch_size=4, device="cpu", progress=False, config_overrides=overrides)
    rows = read_log(run / "eval.csv")
    assert [int(row["step"]) for row in rows] == [4, 8]   # 16 training images, batches of 4: two epochs
    assert all(0.0 <= float(row["d_label_head"]) <= 1.0 for row in rows)
    assert "judge_score" not in rows[0]
    assert "training_judges" not in load_checkpoint(run / "checkpoints" / "last.pt")["extra"]  # no judge used


# -- (f) a label head that learns: its own tower, outside the spectral norm ------------------------------
def test_aux_tower_reads_the_image_only_and_escapes_the_spectral_norm():
    torch.manual_seed(0)
    family = tiny_family(d_aux_tower="true", d_spectral_norm="true", d_projection="true", d_label_channel="true",
                         d_aux_pool="true", d_batch_norm="false")
    discriminator = family.build_networks()["discriminator"]
    normalised = {name.split(".parametrizations")[0] for name, _ in discriminator.named_parameters()
                  if ".parametrizations." in name}
    assert any(name.startswith("features.") for name in normalised)
    assert not any(name.startswith(("aux_features.", "auxiliary.")) for name in normalised)
    batch = multilabel_batch(4)
    discriminator.eval()
    with torch.no_grad():
        adv, aux = discriminator(batch.images, batch.labels)
        adv_other, aux_other = discriminator(batch.images, multilabel_batch(4, seed=9).labels)
    assert torch.equal(aux, aux_other)            # the label head never sees the condition it is asked about
    assert not torch.equal(adv, adv_other)        # the adversarial score does (projection, label channel)


def test_aux_tower_warmup_trains_the_tower_and_leaves_the_adversarial_body():
    torch.manual_seed(0)
    family = tiny_family(d_aux_tower="true", d_spectral_norm="true", d_warmup_steps="10", lr_d="0.01",
                         d_aux_pool="true", d_batch_norm="false")
    networks = family.build_networks()
    optimizers = family.build_optimizers(networks)
    discriminator = networks["discriminator"]
    body_before, tower_before = parameters(discriminator.features), parameters(discriminator.aux_features)
    for step in range(10):
        family.train_step(networks, optimizers, multilabel_batch(8), step)
    assert all(torch.equal(v, body_before[k]) for k, v in parameters(discriminator.features).items())
    assert any(not torch.equal(v, tower_before[k]) for k, v in parameters(discriminator.aux_features).items())


def test_aux_tower_needs_the_dcgan_discriminator():
    with pytest.raises(UserError, match="d_aux_tower works with the dcgan discriminator"):
        tiny_family(d_aux_tower="true", discriminator="srgan").build_networks()
