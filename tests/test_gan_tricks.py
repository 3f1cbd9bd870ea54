"""The conditional-GAN options of acgan/cgan (gen_eval.trainers.gan_tricks): hinge loss, spectral norm,
projection discriminator, conditional BatchNorm, DiffAugment, the EMA generator and its export."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from gen_eval.data.shapes import write_shapes
from gen_eval.errors import UserError
from gen_eval.trainers import acgan as acgan_module
from gen_eval.trainers.checkpoint import load_checkpoint
from gen_eval.trainers.discriminators import ConditionalDiscriminator
from gen_eval.trainers.gan_tricks import (
    ConditionalBatchNorm2d,
    diff_augment,
    discriminator_loss,
    generator_adversarial_loss,
    parse_augment_policy,
    spectral_normalize,
    update_ema,
)
from gen_eval.trainers.loop import train

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py

TINY = {"data.resize": "true", "image_size": "16", "ngf": "4", "ndf": "4", "latent_dim": "8", "cond_embed": "8",
        "g_start_size": "4", "data.eval_split": ""}
ALL_TRICKS = {"adv_loss": "hinge", "d_spectral_norm": "true", "d_aux_prior": "true", "d_projection": "true",
              "g_conditional_bn": "true",
              "diffaugment": "color,translation,cutout", "ema_decay": "0.9", "d_batch_norm": "false"}


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return write_shapes(tmp_path_factory.mktemp("data") / "shapes", n_train=16, n_heldout=8, seed=0)


def test_hinge_losses():
    real, fake = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-2.0, 0.0, 1.0])
    loss_real, loss_fake = discriminator_loss("hinge", real, fake)
    assert loss_real.item() == pytest.approx((0 + 0.5 + 2) / 3)
    assert loss_fake.item() == pytest.approx((0 + 1 + 2) / 3)
    assert generator_adversarial_loss("hinge", fake).item() == pytest.approx(1 / 3)
    bce_real, _ = discriminator_loss("bce", real, fake)
    assert bce_real.item() == pytest.approx(torch.nn.functional.softplus(-real).mean().item())


def test_wgan_critic_loss_and_weight_clipping(shapes, tmp_path):
    real, fake = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-2.0, 0.0, 1.0])
    loss_real, loss_fake = discriminator_loss("wgan", real, fake)
    # the critic minimises E[D(fake)] - E[D(real)]: the negated Wasserstein estimate
    assert (loss_real + loss_fake).item() == pytest.approx(fake.mean().item() - real.mean().item())
    assert generator_adversarial_loss("wgan", fake).item() == pytest.approx(-fake.mean().item())
    last = train("cgan", shapes, tmp_path / "run", steps=2, batch_size=4, device="cpu", progress=False,
                 config_overrides={**TINY, "adv_loss": "wgan", "d_clip": "0.01", "lr_d": "0.1"})
    weights = load_checkpoint(last)["networks"]["discriminator"]
    moved = [w for k, w in weights.items() if w.is_floating_point() and "running" not in k]
    assert max(float(w.abs().max()) for w in moved) <= 0.01 + 1e-9


def test_spectral_norm_bounds_the_largest_singular_value():
    torch.manual_seed(0)
    net = spectral_normalize(nn.Sequential(nn.Linear(20, 30), nn.Conv2d(3, 8, 3)))
    with torch.no_grad():
        for layer in net:
            layer.parametrizations.weight.original.mul_(50)     # far from 1 before normalising
    net.train()
    for _ in range(30):                                         # power iterations run in training forwards
        net[0](torch.randn(2, 20))
        net[1](torch.randn(2, 3, 5, 5))
    net.eval()
    for layer in net:
        matrix = layer.weight.detach().flatten(1)
        original = layer.parametrizations.weight.original.detach().flatten(1)
        assert torch.linalg.matrix_norm(original, 2) > 10
        assert torch.linalg.matrix_norm(matrix, 2).item() == pytest.approx(1.0, abs=1e-3)


def test_ema_weights_are_the_running_average():
    model, ema = nn.Linear(1, 1, bias=False), nn.Linear(1, 1, bias=False)
    bn_model, bn_ema = nn.BatchNorm1d(1), nn.BatchNorm1d(1)
    with torch.no_grad():
        ema.weight.fill_(0.0)
    expected = 0.0
    for step, value in enumerate([1.0, 2.0, 4.0, -1.0, 3.0] * 6):
        with torch.no_grad():
            model.weight.fill_(value)
        used = update_ema(ema, model, decay=0.9, step=step)
        assert used == pytest.approx(min(0.9, (1 + step) / (10 + step)))
        expected = used * expected + (1 - used) * value
        assert ema.weight.item() == pytest.approx(expected)
    bn_model.running_mean.fill_(3.0)
    update_ema(bn_ema, bn_model, decay=0.9, step=100)
    assert bn_ema.running_mean.item() == 3.0      # statistics are copied, not averaged


def test_projection_discriminator_output_depends_on_the_label():
    torch.manual_seed(0)
    images = torch.randn(4, 3, 16, 16)
    a, b = torch.zeros(4, 5), torch.zeros(4, 5)
    a[:, 0], b[:, 3] = 1, 1
    projecting = ConditionalDiscriminator((3, 16, 16), 4, 5, projection=True).eval()
    plain = ConditionalDiscriminator((3, 16, 16), 4, 5).eval()
    assert not torch.allclose(projecting(images, a)[0], projecting(images, b)[0])
    assert torch.equal(plain(images, a)[0], plain(images, b)[0])


def test_conditional_batchnorm_starts_as_batchnorm_and_follows_the_label():
    torch.manual_seed(0)
    norm = ConditionalBatchNorm2d(6, 3)
    x, labels = torch.randn(8, 6, 4, 4), torch.eye(3)[torch.arange(8) % 3]
    reference = nn.BatchNorm2d(6, affine=False)
    assert torch.allclose(norm(x, labels), reference(x), atol=1e-6)
    with torch.no_grad():
        norm.scale.weight.normal_()
    out = norm(x, labels)
    normalised = reference(x)
    for row in range(3):
        scale = 1 + norm.scale.weight[:, row] + norm.scale.bias
        assert torch.allclose(out[row], normalised[row] * scale[:, None, None], atol=1e-5)


def test_diffaugment_is_differentiable_and_keeps_the_pixels_it_moves():
    images = torch.rand(4, 3, 16, 16, requires_grad=True)
    out = diff_augment(images, ("translation",), torch.Generator().manual_seed(0))
    values = set(np.round(images.detach().numpy().ravel(), 6)) | {0.0}
    assert set(np.round(out.detach().numpy().ravel(), 6)) <= values          # moved, not resampled
    weights = torch.randn_like(out)
    (out * weights).sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    # the gradient of a shift is the shift back: each input pixel receives the weight of where it went
    out_again = diff_augment(images.detach(), ("translation",), torch.Generator().manual_seed(0))
    assert torch.equal(out_again, out.detach())
    assert torch.isclose((images.grad * images.detach()).sum(), (weights * out.detach()).sum(), rtol=1e-4)

    ones = torch.ones(2, 1, 32, 32)
    cut = diff_augment(ones, ("cutout",), torch.Generator().manual_seed(1))
    zeroed = (cut == 0).flatten(1).sum(1)
    assert (zeroed > 0).all() and (zeroed <= 16 * 16).all()
    color = diff_augment(torch.rand(2, 3, 8, 8, requires_grad=True), ("color",))
    color.sum().backward()


def test_diffaugment_applies_to_every_image_the_discriminator_sees(shapes, tmp_path, monkeypatch):
    seen = []

    def recording(images, policy, generator=None):
        seen.append((images.requires_grad, policy))
        return images

    monkeypatch.setattr(acgan_module, "diff_augment", recording)
    train("acgan", shapes, tmp_path / "run", steps=1, batch_size=4, device="cpu", progress=False,
          config_overrides={**TINY, "diffaugment": "color,translation"})
    policy = ("color", "translation")
    # discriminator step: real and (detached) fake; generator step: fake with its graph
    assert seen == [(False, policy), (False, policy), (True, policy)]


def test_bad_augmentation_policy_is_one_line():
    with pytest.raises(UserError, match="unknown augmentation 'flip'"):
        parse_augment_policy("color,flip")
    with pytest.raises(UserError, match="diffaugment must be"):
        acgan_module.ACGAN.resolve_config({"diffaugment": "color,flip"})


def test_conditional_bn_needs_the_upsample_generator():
    family = acgan_module.ACGAN(acgan_module.ACGAN.resolve_config({"g_conditional_bn": "true", "generator": "dcgan"}))
    from gen_eval.data.labels import LabelSpace

    family.label_space = LabelSpace.multilabel([f"l{i}" for i in range(4)])
    with pytest.raises(UserError, match="upsample generator"):
        family.build_networks()


@pytest.mark.parametrize("family", ["acgan", "cgan"])
def test_all_options_train_and_export_the_ema_generator(shapes, tmp_path, family):
    from gen_eval.exporter import export_checkpoint

    overrides = {**TINY, **ALL_TRICKS, "generator": "upsample", "lr_g": "0.05"}   # weights that move
    last = train(family, shapes, tmp_path / "run", steps=3, batch_size=4, device="cpu", progress=False,
                 config_overrides=overrides)
    ckpt = load_checkpoint(last)
    generator, ema = ckpt["networks"]["generator"], ckpt["networks"]["generator_ema"]
    assert any(not torch.equal(generator[k], ema[k]) for k in generator if generator[k].is_floating_point())
    export_checkpoint(last, tmp_path / "g.onnx")

    cls = acgan_module.ACGAN if family == "acgan" else __import__("gen_eval.trainers.cgan").trainers.cgan.CGAN
    from gen_eval.data.labels import LabelSpace

    fam = cls(ckpt["config"], LabelSpace.from_dict(ckpt["label_space"]))
    nets = fam.build_networks()
    for name, net in nets.items():
        net.load_state_dict(ckpt["networks"][name])
        net.eval()
    z = torch.randn(2, 8)
    labels = torch.zeros(2, fam.label_dim)
    labels[0, 1] = labels[1, 5] = 1
    session = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    onnx_out = session.run(None, dict(zip(names, [z.numpy(), labels.numpy()])))[0]
    with torch.no_grad():
        from_ema = nets["generator_ema"](z, labels).numpy()
        from_raw = nets["generator"](z, labels).numpy()
    assert np.abs(onnx_out - from_ema).max() < 1e-4
    assert np.abs(onnx_out - from_raw).max() > 1e-3


def test_acgan_spectral_norm_leaves_the_auxiliary_classifier_free():
    from torch.nn.utils import parametrize

    from gen_eval.data.labels import LabelSpace

    config = acgan_module.ACGAN.resolve_config({**{k: v for k, v in TINY.items() if not k.startswith("data.")},
                                                "d_spectral_norm": "true", "d_projection": "true",
                                                "d_batch_norm": "false"})
    family = acgan_module.ACGAN(config, LabelSpace.multilabel([f"l{i}" for i in range(4)]))
    family.fit_data((3, 16, 16), family.label_space)
    discriminator = family.build_networks()["discriminator"]
    assert not parametrize.is_parametrized(discriminator.auxiliary)
    assert parametrize.is_parametrized(discriminator.adversarial) and parametrize.is_parametrized(discriminator.embed)
    assert all(parametrize.is_parametrized(m) for m in discriminator.features if isinstance(m, nn.Conv2d))


def test_auxiliary_prior_starts_at_the_base_rate():
    from gen_eval.trainers.gan_tricks import initialise_at_prior

    head = nn.Linear(8, 24)
    initialise_at_prior(head, 24)
    assert torch.sigmoid(head.bias).allclose(torch.full((24,), 1 / 24))
    single = nn.Linear(8, 1)
    initialise_at_prior(single, 1)
    assert single.bias.item() == 0.0
