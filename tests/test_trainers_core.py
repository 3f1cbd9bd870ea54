"""The shared training loop and the acgan / cgan / classifier families, on tiny data and tiny widths."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from gen_eval.data.imageset import ArrayImageSet
from gen_eval.data.labels import LabelSpace
from gen_eval.data.shapes import write_shapes
from gen_eval.trainers import get_family
from gen_eval.trainers.checkpoint import load_checkpoint, require_gen_eval_checkpoint
from gen_eval.trainers.loop import train
from helpers.cli import assert_one_line_error, run_cli_here
from helpers.training import TINY_GAN, read_log

torch.set_num_threads(1)   # tiny networks: one thread avoids spinning against other jobs on a shared CPU

TINY_CLASSIFIER = {"data.resize": "true", "image_size": "32"}


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return write_shapes(tmp_path_factory.mktemp("data") / "shapes", n_train=48, n_heldout=16, seed=0)



def rebuild(checkpoint_path):
    """Networks rebuilt from a checkpoint the way the exporter does (gen_eval.exporter.graphs.rebuild_family)."""
    ckpt = require_gen_eval_checkpoint(load_checkpoint(checkpoint_path), checkpoint_path)
    cls = get_family(ckpt["family"])
    space = LabelSpace.from_dict(ckpt["label_space"]) if ckpt["label_space"] else None
    family = cls(ckpt["config"], space)
    networks = family.build_networks()
    for name, net in networks.items():
        net.load_state_dict(ckpt["networks"][name])
        net.eval()
    return family, networks, ckpt


def in_memory_set(label_space: LabelSpace, n: int = 32, size: int = 16, seed: int = 0) -> ArrayImageSet:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
    if label_space.kind == "categorical":
        labels = np.concatenate([np.eye(len(values), dtype=np.float32)[rng.integers(0, len(values), n)]
                                 for _, values in label_space.heads], axis=1)
    else:
        labels = rng.integers(0, 2, size=(n, label_space.size)).astype(np.float32)
    return ArrayImageSet(images, format="array", source="in-memory test set", labels=labels, label_space=label_space)


@pytest.mark.parametrize("family, generator", [("acgan", "dcgan"), ("acgan", "upsample"), ("acgan", "srgan"),
                                               ("cgan", "dcgan")])
def test_gan_families_train_and_export(shapes, tmp_path, family, generator):
    run = tmp_path / "run"
    last = train(family, shapes, run, steps=7, batch_size=8, device="cpu", progress=False,
                 config_overrides={**TINY_GAN, "generator": generator})
    rows = read_log(run / "log.csv")
    assert rows and all(math.isfinite(float(v)) for row in rows for k, v in row.items() if v)
    assert {"loss_d", "loss_g"} <= set(rows[0])
    for name in ("samples/epoch_001.png", "samples/last.png", "samples/real.png", "loss_curve.png", "run.json"):
        assert (run / name).is_file(), name
    fam, networks, ckpt = rebuild(last)
    assert ckpt["step"] == 7 and set(ckpt["optimizers"]) == {"generator", "discriminator"}
    (graph,) = fam.export_graphs(networks)
    assert graph.role == "generator" and graph.input_names == ["z", "labels"] and graph.latent_dim == 8
    z = torch.randn(3, 8)
    labels = torch.zeros(3, 24)
    labels[:, [0, 9]] = 1
    with torch.no_grad():
        image = graph.module(z, labels)
    assert image.shape == (3, 3, 16, 16) and image.abs().max() <= 1


@pytest.mark.parametrize("family, overrides", [("acgan", {**TINY_GAN, "generator": "upsample"}),
                                               ("acgan", {**TINY_GAN, "generator": "srgan", "d_aux_pool": "true"}),
                                               ("cgan", TINY_GAN), ("classifier", TINY_CLASSIFIER)])
def test_checkpoints_export_to_onnx_with_parity(shapes, tmp_path, family, overrides):
    from gen_eval.exporter import export_checkpoint

    last = train(family, shapes, tmp_path / "run", steps=2, batch_size=8, device="cpu", progress=False,
                 config_overrides=overrides)
    results = export_checkpoint(last, tmp_path / "model.onnx")
    expected = {"classifier", "features"} if family == "classifier" else {"generator"}
    assert {r.role for r in results} == expected
    for result in results:
        assert result.path.is_file()
        assert all(diff <= result.parity.tolerance[batch] for batch, diff in result.parity.error.items())


@pytest.mark.parametrize("space", [LabelSpace.binary("Smiling"),
                                   LabelSpace.categorical({"hair": ["a", "b", "c"], "eye": ["x", "y"]})])
def test_acgan_on_binary_and_categorical_label_spaces(tmp_path, space):
    data = in_memory_set(space)
    last = train("acgan", data, tmp_path / "run", steps=3, batch_size=8, device="cpu", progress=False,
                 config_overrides={k: v for k, v in TINY_GAN.items() if k != "data.resize"})
    fam, networks, ckpt = rebuild(last)
    assert LabelSpace.from_dict(ckpt["label_space"]) == space
    assert networks["discriminator"].auxiliary.out_features == space.size
    assert all(math.isfinite(float(row["g_aux"])) for row in read_log(tmp_path / "run" / "log.csv"))


def test_auxiliary_loss_per_label_space():
    from gen_eval.trainers.losses import auxiliary_loss

    logits = torch.tensor([[2.0, -1.0, 0.5, 1.0, -2.0]])
    cat = LabelSpace.categorical({"hair": ["a", "b", "c"], "eye": ["x", "y"]})
    labels = torch.tensor([[0.0, 0.0, 1.0, 1.0, 0.0]])
    expected = (nn.functional.cross_entropy(logits[:, :3], torch.tensor([2]))
                + nn.functional.cross_entropy(logits[:, 3:], torch.tensor([0]))) / 2
    assert torch.allclose(auxiliary_loss(logits, labels, cat), expected)
    multi = LabelSpace.multilabel(list("abcde"))
    probs = torch.sigmoid(logits)
    bce = -(labels * probs.log() + (1 - labels) * (1 - probs).log()).mean()
    assert torch.allclose(auxiliary_loss(logits, labels, multi), bce)


def test_total_variation_and_gradient_penalty_match_their_formulas():
    from gen_eval.trainers.losses import gradient_penalty, total_variation

    x = torch.arange(2 * 1 * 3 * 4, dtype=torch.float32).reshape(2, 1, 3, 4) ** 1.5
    dh = ((x[:, :, 1:] - x[:, :, :-1]) ** 2).sum() / (1 * 2 * 4)
    dw = ((x[..., 1:] - x[..., :-1]) ** 2).sum() / (1 * 3 * 3)
    assert torch.allclose(total_variation(x), 2 * (dh + dw) / 2)
    w = torch.tensor([3.0, 4.0])          # critic(x) = w.x has gradient w everywhere: penalty (|w| - 1)^2 = 16
    penalty = gradient_penalty(lambda v: v @ w, torch.randn(5, 2), torch.randn(5, 2))
    assert torch.allclose(penalty, torch.tensor(16.0))


def test_classifier_trains_scores_heldout_and_writes_ta_format(shapes, tmp_path):
    run = tmp_path / "run"
    last = train("classifier", shapes, run, epochs=1, batch_size=16, device="cpu", progress=False,
                 config_overrides=TINY_CLASSIFIER)
    evals = read_log(run / "eval.csv")
    assert len(evals) == 2 and all(0.0 <= float(row["accuracy"]) <= 1.0 for row in evals)   # + after BN re-estimation
    # the TA's code: torchvision resnet18, fc = Sequential(Linear(512, 24), Sigmoid()), load ['model']
    from torchvision.models import resnet18

    ta = resnet18()
    ta.fc = nn.Sequential(nn.Linear(512, 24), nn.Sigmoid())
    ta.load_state_dict(torch.load(run / "classifier_ta.pth", weights_only=True)["model"])
    fam, networks, _ = rebuild(last)
    graphs = {g.role: g for g in fam.export_graphs(networks)}
    image = torch.rand(2, 3, 32, 32) * 2 - 1
    ta.eval()
    with torch.no_grad():
        assert torch.equal(graphs["classifier"].module(image), ta(image))
        assert graphs["features"].module(image).shape == (2, 512)
    assert graphs["classifier"].output_names == ["probs"] and graphs["features"].suffix == "features"


def test_perceptual_and_judge_losses_use_a_frozen_classifier(shapes, tmp_path):
    from gen_eval.trainers.judge import ta_resnet18

    judge_path = tmp_path / "judge.pth"
    torch.manual_seed(1)
    torch.save({"model": ta_resnet18(24).state_dict()}, judge_path)
    before = torch.load(judge_path, weights_only=True)["model"]
    train("acgan", shapes, tmp_path / "run", steps=2, batch_size=4, device="cpu", progress=False,
          config_overrides={**TINY_GAN, "judge": str(judge_path), "perceptual_weight": "0.1", "judge_weight": "1",
                            "l2_weight": "1", "tv_weight": "1e-3"})
    row = read_log(tmp_path / "run" / "log.csv")[-1]
    assert all(math.isfinite(float(row[k])) for k in ("g_perceptual", "g_judge", "g_l2", "g_tv"))
    fam, networks, _ = rebuild(tmp_path / "run" / "checkpoints" / "last.pt")
    judge = fam.judge()
    assert all(torch.equal(judge.model.state_dict()[k], v) for k, v in before.items())   # never trained

    # the judge only shapes training: once its file is gone, the generator still exports
    from gen_eval.exporter import export_checkpoint

    judge_path.unlink()
    results = export_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt", tmp_path / "acgan.onnx")
    assert [r.role for r in results] == ["generator"] and (tmp_path / "acgan.onnx").is_file()


def state_of(path):
    ckpt = torch.load(path, weights_only=True)
    return ckpt["networks"], ckpt["optimizers"]


def assert_same_state(a, b):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same_state(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same_state(x, y)
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    else:
        assert a == b


# (family, settings, batch size, steps, step index killed at): 48 images per epoch, so every run crosses an
# epoch boundary; checkpoints every 2 steps, so the resumed run redoes the steps after the last even one.
@pytest.mark.parametrize("family, overrides, batch, steps, killed", [("acgan", TINY_GAN, 8, 9, 5),
                                                                     ("classifier", TINY_CLASSIFIER, 16, 4, 3)])
def test_resume_after_a_kill_reaches_the_same_weights(shapes, tmp_path, monkeypatch, family, overrides, batch,
                                                      steps, killed):
    kwargs = dict(steps=steps, batch_size=batch, device="cpu", progress=False, config_overrides=overrides, seed=3)
    train(family, shapes, tmp_path / "whole", **kwargs)

    cls = get_family(family)
    original = cls.train_step

    def killed_midway(self, networks, optimizers, batch, step):
        if step == killed:
            raise KeyboardInterrupt
        return original(self, networks, optimizers, batch, step)

    monkeypatch.setattr(cls, "train_step", killed_midway)
    with pytest.raises(KeyboardInterrupt):
        train(family, shapes, tmp_path / "split", checkpoint_every=2, **kwargs)
    assert torch.load(tmp_path / "split" / "checkpoints" / "last.pt", weights_only=True)["step"] == killed // 2 * 2
    monkeypatch.setattr(cls, "train_step", original)
    train(family, shapes, tmp_path / "split", resume=True, **{k: v for k, v in kwargs.items() if k != "config_overrides"})

    assert_same_state(state_of(tmp_path / "whole" / "checkpoints" / "last.pt"),
                      state_of(tmp_path / "split" / "checkpoints" / "last.pt"))
    drop_time = lambda rows: [{k: v for k, v in r.items() if k != "time"} for r in rows]  # noqa: E731
    assert drop_time(read_log(tmp_path / "whole" / "log.csv")) == drop_time(read_log(tmp_path / "split" / "log.csv"))


def test_resume_extends_a_finished_run_like_a_longer_one(shapes, tmp_path):
    kwargs = dict(batch_size=8, device="cpu", progress=False, config_overrides=TINY_GAN)
    train("cgan", shapes, tmp_path / "long", steps=5, **kwargs)
    train("cgan", shapes, tmp_path / "short", steps=3, keep_checkpoints=True, **kwargs)
    train("cgan", shapes, tmp_path / "short", steps=5, resume=True, batch_size=8, device="cpu", progress=False)
    assert_same_state(state_of(tmp_path / "long" / "checkpoints" / "last.pt"),
                      state_of(tmp_path / "short" / "checkpoints" / "last.pt"))
    assert (tmp_path / "short" / "checkpoints" / "step_000003.pt").is_file()


def test_a_checkpoint_with_settings_as_a_plain_dict_resumes_and_exports(shapes, tmp_path):
    """Checkpoints store the settings as a dict of plain values (families read them as a typed config):
    one written with a retired setting and without a setting at its default still resumes to the same
    weights as an uninterrupted run, and exports."""
    from gen_eval.exporter.graphs import export_checkpoint
    from gen_eval.trainers.checkpoint import save_checkpoint

    kwargs = dict(batch_size=8, device="cpu", progress=False)
    train("cgan", shapes, tmp_path / "whole", steps=4, config_overrides=TINY_GAN, **kwargs)
    last = train("cgan", shapes, tmp_path / "split", steps=2, config_overrides=TINY_GAN, **kwargs)
    ckpt = torch.load(last, weights_only=True)
    assert isinstance(ckpt["config"], dict) and ckpt["config"]["ema_bn"] == "copy"
    older = {key: value for key, value in ckpt["config"].items() if key != "ema_bn"}
    older["a_retired_setting"] = 1
    payload = {key: value for key, value in ckpt.items() if key not in ("format", "version")}
    save_checkpoint(last, {**payload, "config": older})

    train("cgan", shapes, tmp_path / "split", steps=4, resume=True, **kwargs)
    assert_same_state(state_of(tmp_path / "whole" / "checkpoints" / "last.pt"),
                      state_of(tmp_path / "split" / "checkpoints" / "last.pt"))
    resumed = torch.load(tmp_path / "split" / "checkpoints" / "last.pt", weights_only=True)["config"]
    assert resumed == ckpt["config"]          # the retired key dropped, the missing one at its default
    assert [r.role for r in export_checkpoint(last, tmp_path / "g.onnx")] == ["generator"]


def test_checkpoint_holds_only_plain_values_and_tensors(shapes, tmp_path):
    last = train("acgan", shapes, tmp_path / "run", steps=1, batch_size=8, device="cpu", progress=False,
                 config_overrides=TINY_GAN)
    ckpt = torch.load(last, weights_only=True)        # raises on any pickled object
    assert ckpt["format"] == "gen_eval.checkpoint" and ckpt["family"] == "acgan"
    assert set(ckpt["rng"]) >= {"torch", "numpy", "python"}
    assert ckpt["config"]["image_channels"] == 3      # adopted from the data
    assert ckpt["loop"]["seed"] == 0 and ckpt["loop"]["batch_size"] == 8


def test_epoch_order_depends_only_on_seed_and_epoch():
    from gen_eval.trainers.torchdata import epoch_order

    assert np.array_equal(epoch_order(50, 1, 2), epoch_order(50, 1, 2))
    assert not np.array_equal(epoch_order(50, 1, 2), epoch_order(50, 1, 3))
    assert not np.array_equal(epoch_order(50, 1, 2), epoch_order(50, 2, 2))
    assert sorted(epoch_order(50, 1, 2)) == list(range(50))


def test_batches_from_a_mid_epoch_start_are_the_tail_of_the_epoch():
    from gen_eval.trainers.torchdata import BatchSource, ImageSetDataset

    data = in_memory_set(LabelSpace.multilabel(list("abc")), n=20)
    kwargs = dict(batch_size=4, seed=5, value_range=(-1.0, 1.0), device=torch.device("cpu"))
    cached = BatchSource(ImageSetDataset(data), **kwargs)
    streamed = BatchSource(ImageSetDataset(data), **kwargs, workers=0, cache_bytes=0)
    whole = list(cached.batches(epoch=1))
    assert len(whole) == cached.steps_per_epoch == 5
    for source in (cached, streamed):
        tail = list(source.batches(epoch=1, start=3))
        assert len(tail) == 2
        for a, b in zip(tail, whole[3:]):
            assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert whole[0].images.min() >= -1 and whole[0].images.max() <= 1


def test_log_helpers_write_pictures(tmp_path):
    from gen_eval.trainers.logs import project_2d, save_latent_plot, save_reconstruction_grid

    points, axis = project_2d(np.array([[1.0, 0, 0], [-1.0, 0, 0], [0, 0.1, 0]]))
    assert axis == "PC" and np.allclose(np.abs(points[:, 0]), [1.0, 1.0, 0.0], atol=0.05)
    save_latent_plot(torch.randn(20, 5), np.arange(20) % 2, tmp_path / "latent.png", colour_name="Male")
    save_reconstruction_grid(torch.rand(8, 3, 8, 8), torch.rand(8, 3, 8, 8), tmp_path / "recon.png", (0.0, 1.0), 4)
    from PIL import Image

    assert Image.open(tmp_path / "latent.png").size[0] > 100
    assert Image.open(tmp_path / "recon.png").size == (2 + 4 * 10, 2 + 4 * 10)   # 4 rows of 4, padding 2


# -- the command line: one-line errors, exit code 2 -----------------------------------------------------------------

def test_cli_rejects_bad_input_in_one_line(shapes, tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    from PIL import Image

    for i in range(2):
        Image.new("RGB", (64, 64)).save(plain / f"{i}.png")
    out = str(tmp_path / "out")
    assert_one_line_error(run_cli_here("train", "nosuch", "--data", str(shapes), "--out", out), "unknown model family")
    assert_one_line_error(run_cli_here("train", "acgan", "--data", str(plain), "--out", out), "needs labels")
    assert_one_line_error(run_cli_here("train", "acgan", "--data", str(shapes), "--out", out, "--set", "image_size=32"),
                          "--set data.resize=true")
    assert_one_line_error(run_cli_here("train", "acgan", "--data", str(shapes), "--out", out, "--set", "lr_q=1"),
                          "no setting 'lr_q'", "lr_g")
    assert_one_line_error(run_cli_here("train", "acgan", "--data", str(shapes), "--out", out, "--set", "ngf=wide"),
                          "integer")
    assert_one_line_error(run_cli_here("train", "acgan", "--data", str(shapes), "--out", out, "--set", "generator=vq"),
                          "dcgan, upsample, srgan")
    assert_one_line_error(run_cli_here("train", "acgan", "--data", str(shapes), "--out", out, "--steps", "2",
                                       "--epochs", "1"), "either --steps or --epochs")
    assert_one_line_error(run_cli_here("train", "acgan", "--data", str(shapes), "--out", out, "--resume"),
                          "nothing to resume")
    assert_one_line_error(run_cli_here("train", "acgan", "--out", out), "--data is required")
    assert_one_line_error(run_cli_here("train", "acgan", "--data", str(shapes), "--out", out,
                                       "--set", "perceptual_weight=1"), "--set judge=PATH")
    assert_one_line_error(run_cli_here("train", "acgan", "--data", str(tmp_path / "missing"), "--out", out),
                          "not found")
    assert not (tmp_path / "out" / "checkpoints").exists()


def test_cli_trains_refuses_to_clobber_and_resumes(shapes, tmp_path):
    out = tmp_path / "run"
    args = ["train", "cgan", "--data", str(shapes), "--out", str(out), "--batch-size", "8", "--device", "cpu",
            "--no-progress"] + [a for k, v in TINY_GAN.items() for a in ("--set", f"{k}={v}")]
    result = run_cli_here(*args, "--steps", "2")
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert result.stdout.strip().endswith("last.pt")
    assert_one_line_error(run_cli_here(*args, "--steps", "2"), "--resume", "--force")
    assert_one_line_error(run_cli_here(*args, "--steps", "3", "--resume", "--set", "lr_g=0.1"), "lr_g")
    assert run_cli_here(*args, "--steps", "3", "--resume").returncode == 0
    assert torch.load(out / "checkpoints" / "last.pt", weights_only=True)["step"] == 3
    assert run_cli_here(*args, "--steps", "1", "--force").returncode == 0
    assert torch.load(out / "checkpoints" / "last.pt", weights_only=True)["step"] == 1


def test_loop_draws_reconstructions_and_latent_plots_for_families_with_those_hooks(shapes, tmp_path, monkeypatch):
    from dataclasses import dataclass

    from gen_eval.trainers import loop
    from gen_eval.trainers.base import Family
    from gen_eval.trainers.config import setting

    @dataclass(frozen=True)
    class TinyAutoencoderConfig:
        image_size: int = setting(16, "image side")
        image_channels: int = setting(3, "image channels")
        latent_dim: int = setting(2, "latent units")

    class TinyAutoencoder(Family):
        name = "tiny-ae"
        Config = TinyAutoencoderConfig
        value_range = (0.0, 1.0)

        def build_networks(self):
            return {"encoder": nn.Sequential(nn.Flatten(), nn.Linear(768, 2)),
                    "decoder": nn.Sequential(nn.Linear(2, 768), nn.Sigmoid(), nn.Unflatten(1, (3, 16, 16)))}

        def build_optimizers(self, networks):
            params = [p for net in networks.values() for p in net.parameters()]
            return {"all": torch.optim.Adam(params, 1e-3)}

        def train_step(self, networks, optimizers, batch, step):
            loss = nn.functional.mse_loss(networks["decoder"](networks["encoder"](batch.images)), batch.images)
            optimizers["all"].zero_grad()
            loss.backward()
            optimizers["all"].step()
            return {"mse": loss.item()}

        def sample(self, networks, z, labels):
            return networks["decoder"](z)

        def reconstruct(self, networks, images, labels):
            return networks["decoder"](networks["encoder"](images))

        def encode(self, networks, images, labels):
            return networks["encoder"](images)

        def evaluate(self, networks, batches):
            errors = [nn.functional.mse_loss(self.reconstruct(networks, b.images, None), b.images).item() for b in batches]
            return {"mse": sum(errors) / len(errors)}

    monkeypatch.setattr(loop, "get_family", lambda name: TinyAutoencoder)
    run = tmp_path / "run"
    train("tiny-ae", shapes, run, epochs=2, batch_size=16, device="cpu", progress=False,
          config_overrides={"data.resize": "true"})
    for name in ("recon/epoch_001.png", "recon/epoch_002.png", "latent/epoch_002.png", "samples/epoch_002.png"):
        assert (run / name).is_file(), name
    evals = read_log(run / "eval.csv")
    assert [row["step"] for row in evals] == ["3", "6"]           # held-out metrics once per epoch
    assert all(0.0 <= float(row["mse"]) <= 1.0 for row in evals)
