"""The six seed families (mlp-vae, mlp-gan, vae, dcgan, wgan-gp, vae-gan): training through the shared
loop, checkpoint round-trips, resume, ONNX export with parity, and the seeds' architectures and losses.

Data are tiny sets the tests write in the real formats (MNIST idx, an image folder, a Cartoon Set attr
file); networks are shrunk with the families' width settings.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from gen_eval import contract
from gen_eval.data.labels import LabelSpace
from gen_eval.errors import UserError
from gen_eval.exporter import export_checkpoint
from gen_eval.trainers import get_family
from gen_eval.trainers.base import Batch
from gen_eval.trainers.checkpoint import load_checkpoint, require_gen_eval_checkpoint, save_checkpoint
from gen_eval.trainers.loop import train

N_IMAGES = 16
BATCH = 8
CARTOON_HEADS = {"hair": ["h0", "h1", "h2", "h3", "h4", "h5"], "eye": ["e0", "e1", "e2", "e3"],
                 "face": ["f0", "f1", "f2"], "glasses": ["g0", "g1"]}
CARTOON = LabelSpace.categorical(CARTOON_HEADS)

# family -> (data set, tiny settings)
TINY = {
    "mlp-vae": ("mnist", {"hidden": [32, 16], "latent_dim": 4}),
    "mlp-gan": ("mnist", {"g_hidden": [16, 32], "d_hidden": [32], "latent_dim": 8}),
    "vae": ("rgb", {"image_size": 16, "width": 8, "latent_dim": 8}),
    "dcgan": ("rgb", {"image_size": 16, "g_width": 8, "d_width": 8, "latent_dim": 16}),
    "wgan-gp": ("cartoon", {"image_size": 16, "g_width": 4, "d_width": 4, "head_hidden": 8, "latent_dim": 8,
                            "n_critic": 2}),
    "vae-gan": ("rgb", {"image_size": 16, "width": 4, "latent_dim": 8}),
}
VAE_FAMILIES = ("mlp-vae", "vae", "vae-gan")


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py


# -- tiny data sets in the real formats ------------------------------------------------------------

def _idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _blobs(rng: np.random.Generator, count: int, size: int, channels: int) -> np.ndarray:
    """Images with a bright square on a dark background, so that they are not pure noise."""
    images = rng.integers(0, 40, size=(count, size, size, channels), dtype=np.uint8)
    for image in images:
        y, x = rng.integers(0, size // 2, size=2)
        image[y:y + size // 2, x:x + size // 2] = rng.integers(150, 256, size=channels)
    return images


def write_tiny_datasets(root: Path) -> dict[str, Path]:
    """MNIST idx files, a folder of PNGs and a Cartoon Set (attr file + PNGs), N_IMAGES each."""
    rng = np.random.default_rng(0)
    mnist = root / "mnist"
    mnist.mkdir()
    (mnist / "train-images-idx3-ubyte").write_bytes(_idx_bytes(_blobs(rng, N_IMAGES, 28, 1)[..., 0]))
    (mnist / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(rng.integers(0, 10, size=N_IMAGES)))

    rgb = root / "rgb"
    rgb.mkdir()
    for i, image in enumerate(_blobs(rng, N_IMAGES, 16, 3)):
        Image.fromarray(image).save(rgb / f"{i:03d}.png")

    cartoon = root / "cartoon"
    (cartoon / "images").mkdir(parents=True)
    lines = [str(N_IMAGES), " ".join(name.split(":")[1] for name in CARTOON.names)]
    for i, image in enumerate(_blobs(rng, N_IMAGES, 16, 3)):
        Image.fromarray(image).save(cartoon / "images" / f"cs{i:03d}.png")
        bits = np.concatenate([np.eye(len(v), dtype=int)[rng.integers(len(v))] for v in CARTOON_HEADS.values()])
        lines.append(f"cs{i:03d}.png " + " ".join(str(b) for b in bits))
    (cartoon / "cartoon_attr.txt").write_text("\n".join(lines) + "\n")
    return {"mnist": mnist, "rgb": rgb, "cartoon": cartoon}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict[str, Path]:
    return write_tiny_datasets(tmp_path_factory.mktemp("family-data"))


def _train(name: str, datasets, out: Path, steps: int, resume: bool = False) -> Path:
    data, settings = TINY[name]
    return train(name, datasets[data], out, steps=steps, batch_size=BATCH, device="cpu", seed=3, resume=resume,
                 config_overrides=settings, log_every=1, checkpoint_every=2, workers=0, progress=False)


@pytest.fixture(scope="module")
def trained(datasets, tmp_path_factory) -> dict[str, Path]:
    """Each family trained 4 steps (2 epochs of 2 batches) through the shared loop: name -> last.pt."""
    root = tmp_path_factory.mktemp("family-runs")
    return {name: _train(name, datasets, root / name, steps=4) for name in TINY}


def _tiny_family(name: str, **overrides):
    cls = get_family(name)
    space = CARTOON if cls.conditional else None
    return cls(cls.resolve_config({**TINY[name][1], **overrides}), space)


def _random_conditions(space: LabelSpace, count: int, generator: torch.Generator) -> torch.Tensor:
    parts = [F.one_hot(torch.randint(len(v), (count,), generator=generator), len(v)).float() for _, v in space.heads]
    return torch.cat(parts, dim=1)


def _fake_batch(family, count: int = BATCH, seed: int = 0) -> Batch:
    generator = torch.Generator().manual_seed(seed)
    low, high = family.value_range
    images = torch.rand(count, *family.image_shape, generator=generator) * (high - low) + low
    labels = _random_conditions(family.label_space, count, generator) if family.label_space else None
    return Batch(images, labels)


# -- every family through the loop -------------------------------------------------------------------

@pytest.mark.parametrize("name", list(TINY))
def test_family_trains_through_the_loop_with_finite_losses(name, trained):
    run = trained[name].parent.parent
    with (run / "log.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(float(r["step"])) for r in rows] == [1, 2, 3, 4]
    losses = {k: float(v) for r in rows for k, v in r.items() if k not in ("step", "epoch", "time") and v}
    assert losses and all(math.isfinite(v) for v in losses.values())
    assert (run / "samples" / "last.png").is_file()
    assert (run / "loss_curve.png").is_file()
    if name in VAE_FAMILIES:
        assert (run / "recon" / "epoch_002.png").is_file()
        assert (run / "latent" / "epoch_002.png").is_file()
    ckpt = require_gen_eval_checkpoint(load_checkpoint(trained[name]), trained[name])
    assert ckpt["family"] == name and ckpt["step"] == 4


def test_wgan_gp_updates_its_generator_in_the_loop(trained):
    with (trained["wgan-gp"].parent.parent / "log.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    # n_critic = 2: the generator loss appears after every second critic step only.
    assert [bool(r.get("loss_g")) for r in rows] == [False, True, False, True]


@pytest.mark.parametrize("name", list(TINY))
def test_checkpoint_exports_to_onnx_with_parity(name, trained, tmp_path):
    results = export_checkpoint(trained[name], tmp_path / f"{name}.onnx")
    roles = sorted(r.role for r in results)
    assert roles == (["encoder", "generator"] if name in VAE_FAMILIES else ["generator"])
    for result in results:
        assert result.parity.error and all(d <= result.parity.tolerance[b] for b, d in result.parity.error.items())

    ckpt = load_checkpoint(trained[name])
    space = LabelSpace.from_dict(ckpt["label_space"]) if ckpt["label_space"] else None
    family = get_family(name)(ckpt["config"], space)
    generator_file = tmp_path / f"{name}.onnx"
    meta = {p.key: p.value for p in onnx.load(generator_file).metadata_props}
    assert meta[contract.KEY_ROLE] == "generator"
    assert meta[contract.KEY_FAMILY] == name
    assert contract.parse_image_shape(meta[contract.KEY_IMAGE_SHAPE]) == family.image_shape
    assert contract.parse_value_range(meta[contract.KEY_VALUE_RANGE]) == family.value_range
    assert int(meta[contract.KEY_LATENT_DIM]) == family.config.latent_dim
    if family.conditional:
        assert LabelSpace.from_json(meta[contract.KEY_LABEL_SPACE]) == CARTOON
    else:
        assert contract.KEY_LABEL_SPACE not in meta

    # The ONNX generator draws what the family's own sample hook draws from the same noise.
    networks = family.build_networks()
    for key, net in networks.items():
        net.load_state_dict(ckpt["networks"][key])
        net.eval()
    rng = np.random.default_rng(7)
    z = rng.standard_normal((5, family.config.latent_dim)).astype(np.float32)
    feeds = {"z": z}
    labels = None
    if family.conditional:
        labels = _random_conditions(CARTOON, 5, torch.Generator().manual_seed(1))
        feeds["labels"] = labels.numpy()
    session = ort.InferenceSession(str(generator_file), providers=["CPUExecutionProvider"])
    image, = session.run(["image"], feeds)
    with torch.no_grad():
        expected = family.sample(networks, torch.from_numpy(z), labels).numpy()
    assert image.shape == (5, *family.image_shape)
    np.testing.assert_allclose(image, expected, atol=1e-4)
    low, high = family.value_range
    assert image.min() >= low - 1e-6 and image.max() <= high + 1e-6

    if name in VAE_FAMILIES:
        encoder_file = tmp_path / f"{name}.encoder.onnx"
        enc_meta = {p.key: p.value for p in onnx.load(encoder_file).metadata_props}
        assert enc_meta[contract.KEY_ROLE] == "encoder"
        session = ort.InferenceSession(str(encoder_file), providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == ["image"]
        assert [o.name for o in session.get_outputs()] == ["mu", "logvar"]


# -- checkpoints and resume --------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(TINY))
def test_checkpoint_round_trip_rebuilds_the_same_networks(name, tmp_path):
    torch.manual_seed(0)
    family = _tiny_family(name)
    networks = family.build_networks()
    optimizers = family.build_optimizers(networks)
    for step in range(2):
        family.train_step(networks, optimizers, _fake_batch(family, seed=step), step)
    path = save_checkpoint(tmp_path / "ckpt.pt", {
        "family": name, "config": family.config_dict(),
        "label_space": family.label_space.to_dict() if family.label_space else None, "step": 2, "epoch": 0,
        "networks": {k: v.state_dict() for k, v in networks.items()},
        "optimizers": {k: v.state_dict() for k, v in optimizers.items()}})

    ckpt = require_gen_eval_checkpoint(load_checkpoint(path), path)
    cls = get_family(ckpt["family"])
    again = cls(ckpt["config"], LabelSpace.from_dict(ckpt["label_space"]) if ckpt["label_space"] else None)
    rebuilt = again.build_networks()
    for key, net in rebuilt.items():
        net.load_state_dict(ckpt["networks"][key])
    rebuilt_opts = again.build_optimizers(rebuilt)
    for key, opt in rebuilt_opts.items():
        opt.load_state_dict(ckpt["optimizers"][key])
    for key in networks:
        for (pname, a), (_, b) in zip(networks[key].state_dict().items(), rebuilt[key].state_dict().items()):
            assert torch.equal(a, b), f"{key}.{pname} differs after the round trip"

    # One more step from the original and from the rebuilt state gives the same weights.
    batch = _fake_batch(family, seed=9)
    for fam, nets, opts in ((family, networks, optimizers), (again, rebuilt, rebuilt_opts)):
        torch.manual_seed(5)
        fam.train_step(nets, opts, batch, 2)
    for key in networks:
        for a, b in zip(networks[key].parameters(), rebuilt[key].parameters()):
            assert torch.equal(a, b)


@pytest.mark.parametrize("name", ["wgan-gp", "vae-gan"])
def test_resumed_run_equals_uninterrupted_run(name, datasets, tmp_path, trained):
    interrupted = _train(name, datasets, tmp_path / "resumed", steps=2)
    resumed = _train(name, datasets, tmp_path / "resumed", steps=4, resume=True)
    assert interrupted == resumed
    straight = load_checkpoint(trained[name])["networks"]
    again = load_checkpoint(resumed)["networks"]
    for key in straight:
        for pname, tensor in straight[key].items():
            assert torch.equal(tensor, again[key][pname]), f"{key}.{pname} differs after resume"


# -- the seeds' architectures, losses and schedules ----------------------------------------------------

def _default(name: str, label_space: LabelSpace | None = None):
    cls = get_family(name)
    family = cls(cls.resolve_config({}), label_space)
    return family, family.build_networks()


def _count(module: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in module.modules())


def test_mlp_vae_matches_s2_with_separate_mu_and_logvar_heads():
    family, nets = _default("mlp-vae")
    encoder, decoder = nets["encoder"], nets["decoder"]
    assert [(m.in_features, m.out_features) for m in encoder.modules() if isinstance(m, nn.Linear)] == \
        [(784, 512), (512, 256), (256, 32), (256, 32)]
    assert [(m.in_features, m.out_features) for m in decoder.modules() if isinstance(m, nn.Linear)] == \
        [(32, 256), (256, 512), (512, 784)]
    assert _count(encoder, nn.Dropout) == 1 and _count(encoder, nn.Tanh) == 2
    assert family.value_range == (0.0, 1.0) and family.image_shape == (1, 28, 28)
    encoder.eval()
    mu, logvar = encoder(torch.rand(4, 1, 28, 28))
    assert not torch.allclose(mu, logvar)   # S2 computed both with one layer; ours are two heads


def test_mlp_vae_loss_is_bce_sum_plus_weighted_kl_per_image():
    family = _tiny_family("mlp-vae", kl_weight=0.45, dropout=0.0)
    nets = family.build_networks()
    opts = family.build_optimizers(nets)
    batch = _fake_batch(family)
    torch.manual_seed(1)
    mu, logvar = nets["encoder"](batch.images)
    eps = torch.randn_like(mu)
    recon = nets["decoder"](mu + eps * torch.exp(0.5 * logvar))
    bce = F.binary_cross_entropy(recon, batch.images, reduction="sum") / BATCH
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / BATCH
    torch.manual_seed(1)
    logs = family.train_step(nets, opts, batch, 0)
    assert logs["bce"] == pytest.approx(bce.item(), rel=1e-5)
    assert logs["kld"] == pytest.approx(kld.item(), rel=1e-5)
    assert logs["loss"] == pytest.approx(bce.item() + 0.45 * kld.item(), rel=1e-5)


def test_mlp_gan_matches_s2():
    _, nets = _default("mlp-gan")
    generator, discriminator = nets["generator"], nets["discriminator"]
    assert [(m.in_features, m.out_features) for m in generator.modules() if isinstance(m, nn.Linear)] == \
        [(100, 128), (128, 256), (256, 512), (512, 600), (600, 784)]
    assert [m.num_features for m in generator.modules() if isinstance(m, nn.BatchNorm1d)] == [128, 256, 512, 600]
    assert [(m.in_features, m.out_features) for m in discriminator.modules() if isinstance(m, nn.Linear)] == \
        [(784, 1024), (1024, 512), (512, 1)]
    assert isinstance(discriminator[1], nn.Dropout) and discriminator[1].p == 0.5   # dropout on the input
    generator.eval()
    assert generator(torch.randn(3, 100)).shape == (3, 1, 28, 28)


def _steps_changing(family, network: str, steps: int) -> list[tuple[bool, dict]]:
    """Train steps 0..steps-1 of fresh networks; for each, whether ``network``'s parameters changed, and the logs."""
    nets = family.build_networks()
    opts = family.build_optimizers(nets)
    out = []
    for step in range(steps):
        before = [p.detach().clone() for p in nets[network].parameters()]
        logs = family.train_step(nets, opts, _fake_batch(family, seed=step), step)
        out.append((any(not torch.equal(a, b) for a, b in zip(before, nets[network].parameters())), logs))
    return out


def test_mlp_gan_skips_the_discriminator_every_nth_step():
    steps = _steps_changing(_tiny_family("mlp-gan", d_skip_every=2), "discriminator", 4)
    assert [changed for changed, _ in steps] == [True, False, True, False]


def test_conv_vae_matches_s1_and_its_loss_uses_the_kl_weight():
    family, nets = _default("vae")
    encoder, decoder = nets["encoder"], nets["decoder"]
    assert (encoder.fc11.in_features, encoder.fc11.out_features) == (16384, 1024)
    assert (encoder.fc12.in_features, encoder.fc12.out_features) == (16384, 1024)
    assert (decoder.fc2.in_features, decoder.fc2.out_features) == (1024, 16384)
    assert _count(encoder, nn.AvgPool2d) == 3 and _count(decoder, nn.ConvTranspose2d) == 3
    assert family.config.kl_weight == 1e-5 and family.value_range == (0.0, 1.0)

    tiny = _tiny_family("vae", kl_weight=0.5)
    tnets = tiny.build_networks()
    logs = tiny.train_step(tnets, tiny.build_optimizers(tnets), _fake_batch(tiny), 0)
    assert logs["loss"] == pytest.approx(logs["mse"] + 0.5 * logs["kld"], rel=1e-5)


def test_dcgan_matches_radford():
    family, nets = _default("dcgan")
    generator, discriminator = nets["generator"], nets["discriminator"]
    convt = [(m.in_channels, m.out_channels, m.stride[0]) for m in generator.modules()
             if isinstance(m, nn.ConvTranspose2d)]
    assert convt == [(100, 512, 1), (512, 256, 2), (256, 128, 2), (128, 64, 2), (64, 3, 2)]
    convs = [(m.in_channels, m.out_channels) for m in discriminator.modules() if isinstance(m, nn.Conv2d)]
    assert convs == [(3, 64), (64, 128), (128, 256), (256, 512), (512, 1)]
    assert _count(discriminator, nn.BatchNorm2d) == 3
    weights = torch.cat([m.weight.detach().flatten() for m in generator.modules() if isinstance(m, nn.ConvTranspose2d)])
    assert weights.mean().abs() < 1e-3 and weights.std() == pytest.approx(0.02, rel=0.05)
    optimizer = family.build_optimizers(nets)["generator"]
    assert optimizer.defaults["lr"] == 2e-4 and optimizer.defaults["betas"] == (0.5, 0.999)
    generator.eval()
    assert generator(torch.randn(2, 100)).shape == (2, 3, 64, 64)


def test_wgan_gp_matches_s3():
    family, nets = _default("wgan-gp", CARTOON)
    generator, critic = nets["generator"], nets["critic"]
    first = next(m for m in generator.modules() if isinstance(m, nn.ConvTranspose2d))
    assert (first.in_channels, first.out_channels) == (100 + 15, 1024)
    assert _count(critic, nn.BatchNorm2d) == 0 and _count(critic, nn.Sigmoid) == 0
    assert [head[-1].out_features for head in critic.classifiers] == [6, 4, 3, 2]
    assert family.config.gp_weight == 10 and family.config.n_critic == 5
    optimizer = family.build_optimizers(nets)["critic"]
    assert optimizer.defaults["lr"] == 1e-4
    generator.eval()
    labels = _random_conditions(CARTOON, 2, torch.Generator().manual_seed(0))
    assert generator(torch.randn(2, 100), labels).shape == (2, 3, 128, 128)


def test_wgan_gp_trains_the_generator_once_per_n_critic_steps():
    steps = _steps_changing(_tiny_family("wgan-gp", n_critic=5), "generator", 10)
    for generator_changed, logs in steps:
        assert ("loss_g" in logs) == generator_changed
    assert [changed for changed, _ in steps] == [False] * 4 + [True] + [False] * 4 + [True]


def test_wgan_gp_auxiliary_loss_sums_the_heads_cross_entropies():
    family = _tiny_family("wgan-gp")
    logits = torch.randn(6, CARTOON.size)
    labels = _random_conditions(CARTOON, 6, torch.Generator().manual_seed(2))
    expected = sum(F.cross_entropy(logits[:, sl], labels[:, sl].argmax(1)) for _, sl in CARTOON.head_slices())
    assert family._aux_loss(logits, labels).item() == pytest.approx(expected.item(), rel=1e-6)


def test_wgan_gp_refuses_unlabelled_data():
    family = get_family("wgan-gp")(get_family("wgan-gp").resolve_config({}), None)
    with pytest.raises(UserError, match="labels"):
        family.fit_data((3, 128, 128), None)


def test_vae_gan_matches_s0():
    family, nets = _default("vae-gan")
    encoder, generator, discriminator = nets["encoder"], nets["generator"], nets["discriminator"]
    assert (encoder.x_to_mu.in_features, encoder.x_to_mu.out_features) == (4096, 200)
    assert (encoder.x_to_logvar.in_features, encoder.x_to_logvar.out_features) == (4096, 200)
    assert [m.kernel_size for m in encoder.modules() if isinstance(m, nn.Conv2d)] == [(5, 5)] * 4
    linear = generator.linearT_layer[0]
    assert (linear.in_features, linear.out_features, linear.bias) == (200, 4096, None)
    assert [m.out_channels for m in generator.modules() if isinstance(m, nn.ConvTranspose2d)] == [128, 64, 32, 3]
    assert [m.out_channels for m in discriminator.modules() if isinstance(m, nn.Conv2d)] == \
        [32, 32, 64, 64, 128, 128, 128, 256, 256, 256]
    assert [(m.in_features, m.out_features) for m in discriminator.lin_layer if isinstance(m, nn.Linear)] == \
        [(4096, 256), (256, 32), (32, 1)]
    assert (family.config.beta, family.config.gamma, family.config.lr) == (1.0, 0.1, 1e-4)
    generator.eval()
    assert generator(torch.randn(2, 200)).shape == (2, 3, 64, 64)


def test_vae_gan_each_loss_updates_only_its_own_network():
    """The encoder's update depends on recon + beta*KL only: changing gamma must not change it."""
    results = {}
    for gamma in (0.1, 50.0):
        torch.manual_seed(0)
        family = _tiny_family("vae-gan", gamma=gamma)
        nets = family.build_networks()
        opts = family.build_optimizers(nets)
        torch.manual_seed(1)
        family.train_step(nets, opts, _fake_batch(family), 0)
        results[gamma] = {k: [p.detach().clone() for p in n.parameters()] for k, n in nets.items()}
    same = {k: all(torch.equal(a, b) for a, b in zip(results[0.1][k], results[50.0][k])) for k in results[0.1]}
    assert same == {"encoder": True, "generator": False, "discriminator": True}


def test_vae_families_report_heldout_reconstruction_mse_on_the_0_1_scale():
    family = _tiny_family("vae-gan")
    nets = family.build_networks()
    for net in nets.values():
        net.eval()
    batch = _fake_batch(family)
    with torch.no_grad():
        metrics = family.evaluate(nets, [batch])
        recon = nets["generator"](nets["encoder"](batch.images)[0])
    expected = (((recon + 1) / 2 - (batch.images + 1) / 2) ** 2).mean().item()
    assert metrics["recon_mse"] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("name,setting", [("dcgan", {"image_size": 48}), ("vae", {"image_size": 20}),
                                          ("vae-gan", {"image_size": 40})])
def test_bad_image_size_is_a_one_line_user_error(name, setting):
    with pytest.raises(UserError, match="image_size"):  # checked with the other settings, before any file
        _tiny_family(name, **setting)
    cls = get_family(name)  # and by the networks, for a config that did not pass through resolve_config
    family = cls({**cls.resolve_config(TINY[name][1]), **setting}, None)
    with pytest.raises(UserError, match="image_size"):
        family.build_networks()
