"""The options the seed reports need (issue 17): raw conditions, SRGAN discriminator, S0/S2 loss and schedule
options, the judge's per-epoch score with best checkpoints, BatchNorm re-estimation in the classifier."""

from __future__ import annotations

import pytest
import torch

from gen_eval.data.labels import LabelSpace
from gen_eval.data.shapes import write_shapes
from gen_eval.trainers import get_family
from gen_eval.trainers.base import Batch
from gen_eval.trainers.loop import train
from gen_eval.trainers.losses import adversarial_loss
from helpers.training import TINY_GAN, read_log

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return write_shapes(tmp_path_factory.mktemp("data") / "shapes", n_train=48, n_heldout=16, seed=0)



def family_of(name: str, label_space: LabelSpace | None = None, **settings):
    cls = get_family(name)
    family = cls(cls.resolve_config({k: str(v) for k, v in settings.items()}), label_space)
    family.fit_data((3, 16, 16), label_space)
    return family


@pytest.mark.parametrize("generator", ["dcgan", "upsample", "srgan"])
def test_cond_embed_zero_feeds_the_raw_condition(generator):
    family = family_of("acgan", LabelSpace.binary("Smiling"), cond_embed=0, generator=generator, image_size=16,
                       ngf=4, latent_dim=8, g_start_size=4, g_res_blocks=1)
    torch.manual_seed(0)
    g = family.build_networks()["generator"].eval()
    assert g.condition_expand is None
    z = torch.randn(2, 8)
    with torch.no_grad():
        off, on = g(z, torch.zeros(2, 1)), g(z, torch.ones(2, 1))
    assert not torch.allclose(off, on)   # the label reaches the image (it was silently dropped before)


def test_srgan_discriminator_trains_in_acgan_and_cgan(shapes, tmp_path):
    for name in ("acgan", "cgan"):
        run = tmp_path / name
        train(name, shapes, run, steps=2, batch_size=8, device="cpu", progress=False,
              config_overrides={**TINY_GAN, "discriminator": "srgan", "d_label_channel": "true"})
        assert {"loss_d", "loss_g"} <= set(read_log(run / "log.csv")[0])


def test_s0_vae_gan_options_weigh_the_terms_they_name():
    real = torch.rand(4, 3, 16, 16) * 2 - 1

    def step(**extra):
        family = family_of("vae-gan", image_size=16, width=4, latent_dim=8, **extra)
        torch.manual_seed(0)
        networks = family.build_networks()
        real_term = adversarial_loss(networks["discriminator"](real), 1.0).item()
        optimizers = family.build_optimizers(networks)
        torch.manual_seed(1)
        return family.train_step(networks, optimizers, Batch(real), 0), real_term

    (plain, real_term), (recon5, _), (real2, _) = step(), step(recon_weight=5), step(d_real_weight=2)
    assert recon5["mse"] == pytest.approx(plain["mse"])
    assert recon5["loss_g"] - plain["loss_g"] == pytest.approx(4 * plain["mse"], rel=1e-4)
    assert real2["loss_d"] - plain["loss_d"] == pytest.approx(real_term, rel=1e-4)


def test_s0_vae_gan_discriminator_has_its_own_lr_and_weight_decay():
    family = family_of("vae-gan", image_size=16, width=4, latent_dim=8, lr_d=4e-4, d_weight_decay=1e-5)
    optimizers = family.build_optimizers(family.build_networks())
    assert optimizers["discriminator"].param_groups[0]["lr"] == 4e-4
    assert optimizers["discriminator"].param_groups[0]["weight_decay"] == 1e-5
    assert optimizers["generator"].param_groups[0]["lr"] == optimizers["encoder"].param_groups[0]["lr"] == 1e-4


def test_s2_mean_reduced_bce_is_the_summed_one_over_the_pixels():
    images = torch.rand(4, 1, 28, 28)
    losses = {}
    for reduction in ("sum", "mean"):
        family = family_of("mlp-vae", bce_reduction=reduction, kl_weight=0, dropout=0)
        torch.manual_seed(0)
        networks = family.build_networks()
        optimizers = family.build_optimizers(networks)
        torch.manual_seed(1)
        losses[reduction] = family.train_step(networks, optimizers, Batch(images), 0)["bce"]
    assert losses["sum"] == pytest.approx(784 * losses["mean"], rel=1e-5)


def test_s2_epoch_schedules():
    family = family_of("mlp-gan", schedule="epoch-digit", d_skip_every=0)
    family.steps_per_epoch = 3
    per_epoch = [family.updates(3 * (epoch - 1)) for epoch in range(1, 21)]
    # epochs ending in 1-4: discriminator only; 5-9: generator only; every 10th: both
    assert per_epoch[:10] == [(True, False)] * 4 + [(False, True)] * 5 + [(True, True)]
    assert per_epoch[10:] == per_epoch[:10]
    family = family_of("mlp-gan", d_skip_epoch_every=5, d_skip_every=0)
    family.steps_per_epoch = 3
    assert [family.updates(step)[0] for step in range(0, 30, 3)] == [True] * 4 + [False] + [True] * 4 + [False]


def test_judge_scores_every_epoch_and_keeps_the_best_checkpoints(shapes, tmp_path):
    from gen_eval.trainers.judge import ta_resnet18

    judge = tmp_path / "judge.pth"
    torch.manual_seed(1)
    torch.save({"model": ta_resnet18(24).state_dict()}, judge)
    run = tmp_path / "run"
    train("acgan", shapes, run, epochs=2, batch_size=16, device="cpu", progress=False,
          config_overrides={**TINY_GAN, "judge": str(judge)})
    rows = read_log(run / "eval.csv")
    scores = [float(row["judge_score"]) for row in rows]
    assert [float(row["epoch"]) for row in rows] == [1, 2] and all(0 <= s <= 1 for s in scores)
    kept = sorted(p.name for p in (run / "checkpoints").glob("epoch*_score*.pt"))
    expected = ["epoch1_score%.2f.pt" % scores[0]] + (["epoch2_score%.2f.pt" % scores[1]] if scores[1] > scores[0]
                                                       else [])
    assert kept == sorted(expected)


def test_classifier_reestimates_batchnorm_when_training_ends(shapes, tmp_path):
    from gen_eval.data.datasets import open_dataset
    from gen_eval.trainers.batchnorm import recalibrate_batchnorm
    from gen_eval.trainers.judge import ta_resnet18
    from gen_eval.trainers.torchdata import ImageSetDataset, iterate_all

    run = tmp_path / "run"
    last = train("classifier", shapes, run, epochs=1, batch_size=16, device="cpu", progress=False,
                 config_overrides={"data.resize": "true", "image_size": "32", "bn_images": "40"})
    ckpt = torch.load(last, weights_only=True)
    assert ckpt["extra"]["bn_recalibration_images"] == 40
    # the same statistics as re-estimating the trained weights on the first 40 training images
    model = ta_resnet18(24)
    model.load_state_dict(ckpt["networks"]["classifier"])
    dataset = ImageSetDataset(open_dataset(shapes, split="train"), (3, 32, 32))
    batches = [b.images for b in iterate_all(dataset, 64, (-1.0, 1.0), torch.device("cpu"))]
    recalibrate_batchnorm(model, [batches[0][:40]])
    for key, value in model.state_dict().items():
        if key.endswith(("running_mean", "running_var")):
            assert torch.allclose(value, ckpt["networks"]["classifier"][key], rtol=1e-4, atol=1e-6), key
    # the TA-format copy holds them too, and the held-out split is scored again after
    ta = torch.load(run / "classifier_ta.pth", weights_only=True)["model"]
    assert torch.equal(ta["bn1.running_mean"], ckpt["networks"]["classifier"]["bn1.running_mean"])
    assert [row["step"] for row in read_log(run / "eval.csv")] == ["3", "3"]   # end of epoch 1, then re-estimated

    train("classifier", shapes, tmp_path / "off", steps=1, batch_size=16, device="cpu", progress=False,
          config_overrides={"data.resize": "true", "image_size": "32", "bn_images": "0"})
    assert "bn_recalibration_images" not in torch.load(tmp_path / "off" / "checkpoints" / "last.pt",
                                                       weights_only=True)["extra"]
