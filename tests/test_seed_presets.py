"""Every seed report's preset builds the layers the report prints (shared/seeds/00N_*.txt, lines cited).

The networks are built on the meta device (shapes, no memory); each layer is written like the report's
``repr`` lines: ``Conv2d(in, out, kernel, stride)``, ``ConvTranspose2d(...)``, ``Linear(in, out)``,
``BatchNorm2d(n)``, with ``no bias`` where the layer has none and ``eps`` where it is not 1e-5.
"""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from gen_eval.data.labels import LabelSpace
from gen_eval.trainers import get_family
from gen_eval.trainers.config import split_overrides
from gen_eval.trainers.presets import PRESETS, preset_names

ICLEVR = LabelSpace.multilabel([f"object{i}" for i in range(24)])
CELEBA_MOUTH = LabelSpace.binary("Mouth_Slightly_Open")
CARTOON = LabelSpace.categorical({"hair": [str(i) for i in range(6)], "eye": [str(i) for i in range(4)],
                                  "face": [str(i) for i in range(3)], "glasses": ["0", "1"]})


def layers(module: nn.Module) -> list[str]:
    """The module's parameterised layers in order, written like the reports' repr lines."""
    out = []
    for m in module.modules():
        bias = "" if getattr(m, "bias", None) is not None else ", no bias"
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            channels = (m.in_channels, m.out_channels)
            out.append(f"{type(m).__name__}({channels[0]}, {channels[1]}, {m.kernel_size[0]}, {m.stride[0]}{bias})")
        elif isinstance(m, nn.Linear):
            out.append(f"Linear({m.in_features}, {m.out_features}{bias})")
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            eps = "" if m.eps == 1e-5 else f", eps={m.eps:g}"
            out.append(f"{type(m).__name__}({m.num_features}{eps})")
        elif isinstance(m, nn.PReLU):
            out.append("PReLU")
    return out


def build(preset_name: str, label_space: LabelSpace | None = None) -> dict[str, nn.Module]:
    preset = PRESETS[preset_name]
    cls = get_family(preset.family)
    settings, _ = split_overrides(preset.overrides({}))
    config = cls.resolve_config(settings)
    family = cls(config, label_space)
    size = int(config.get("image_size", 64))
    family.fit_data((3, size, size), label_space)
    with torch.device("meta"):
        return family.build_networks()


def conv(i, o, k, s, bias=True, name="Conv2d"):
    return f"{name}({i}, {o}, {k}, {s}{'' if bias else ', no bias'})"


def convt(i, o, k, s, bias=False):
    return conv(i, o, k, s, bias, name="ConvTranspose2d")


def bn(n, eps=None, dim=2):
    return f"BatchNorm{dim}d({n}{'' if eps is None else f', eps={eps:g}'})"


def linear(i, o, bias=True):
    return f"Linear({i}, {o}{'' if bias else ', no bias'})"


# -- S0: VAE-GAN (seeds/000 lines 19-131) ------------------------------------------------------------------
S0_DISCRIMINATOR = [  # lines 19-81: 3x3 convs + BatchNorm, 32 32 | 64 64 | 128 x3 | 256 x3, then 4096-256-32-1
    *[item for i, o in ((3, 32), (32, 32), (32, 64), (64, 64), (64, 128), (128, 128), (128, 128), (128, 256),
                        (256, 256), (256, 256)) for item in (conv(i, o, 3, 1), bn(o))],
    linear(4096, 256), linear(256, 32), linear(32, 1)]
S0_GENERATOR = [  # lines 83-107
    linear(200, 4096, bias=False), bn(4096, dim=1),
    convt(256, 128, 5, 2), bn(128), convt(128, 64, 5, 2), bn(64), convt(64, 32, 5, 2), bn(32), convt(32, 3, 5, 2)]
S0_ENCODER = [  # lines 109-131
    conv(3, 32, 5, 2), conv(32, 64, 5, 2), bn(64), conv(64, 128, 5, 2), bn(128), conv(128, 256, 5, 2), bn(256),
    linear(4096, 200), linear(4096, 200)]


@pytest.mark.parametrize("name", ["s0-vae-gan", "s0-vae-gan-test2"])
def test_s0_vae_gan(name):
    networks = build(name)
    assert layers(networks["discriminator"]) == S0_DISCRIMINATOR
    assert layers(networks["generator"]) == S0_GENERATOR
    assert layers(networks["encoder"]) == S0_ENCODER


def test_s0_test3_is_test2_at_128px():
    # line 152: "Increased image dimension into 128x128. Model structure slightly change": every flattened
    # 4096 (256 x 4 x 4) becomes 256 x 8 x 8
    networks = build("s0-vae-gan-test3")
    grow = lambda rows: [r.replace("4096", "16384") for r in rows]  # noqa: E731
    assert layers(networks["discriminator"]) == grow(S0_DISCRIMINATOR)
    assert layers(networks["generator"]) == grow(S0_GENERATOR)
    assert layers(networks["encoder"]) == grow(S0_ENCODER)


# -- S1 (seeds/001) -------------------------------------------------------------------------------------------
def test_s1_vae():
    networks = build("s1-vae")
    # lines 11-22: three Conv2d(., 256, 3, no bias) + BatchNorm2d(256) (+ ReLU, AvgPool 2); line 40: fc11 16384 -> 1024
    assert layers(networks["encoder"]) == [conv(3, 256, 3, 1, bias=False), bn(256), conv(256, 256, 3, 1, bias=False),
                                           bn(256), conv(256, 256, 3, 1, bias=False), bn(256),
                                           linear(16384, 1024), linear(16384, 1024)]
    # lines 26-35 (and fc2 of lines 41-42, read as 1024 -> 16384: see gen_eval/trainers/vae.py)
    assert layers(networks["decoder"]) == [linear(1024, 16384), convt(256, 256, 4, 2), bn(256), convt(256, 256, 4, 2),
                                           bn(256), convt(256, 3, 4, 2), bn(3)]


S1_DCGAN_GENERATOR = [convt(512, 256, 4, 2), bn(256), convt(256, 128, 4, 2), bn(128), convt(128, 64, 4, 2), bn(64),
                      convt(64, 3, 4, 2)]
S1_DCGAN_FEATURES = [conv(3, 64, 4, 2, bias=False), conv(64, 128, 4, 2, bias=False), bn(128),
                     conv(128, 256, 4, 2, bias=False), bn(256), conv(256, 512, 4, 2, bias=False), bn(512)]


def test_s1_dcgan():
    networks = build("s1-dcgan")
    # lines 84-100: ConvTranspose2d(256, 512, 4, stride 1) from z of 256, then 512-256-128-64-3
    assert layers(networks["generator"]) == [convt(256, 512, 4, 1), bn(512), *S1_DCGAN_GENERATOR]
    # lines 102-116 (OCR-garbled: line 105 repeats line 104, line 113's BatchNorm reads 256 for 512)
    assert layers(networks["discriminator"]) == [*S1_DCGAN_FEATURES, conv(512, 1, 4, 1, bias=False)]


def test_s1_acgan_generator_takes_z_and_the_raw_attribute():
    networks = build("s1-acgan", CELEBA_MOUTH)
    # lines 145-161: ConvTranspose2d(257, 512, 4, stride 1): z of 256 and the attribute, no embedding
    assert layers(networks["generator"]) == [convt(257, 512, 4, 1), bn(512), *S1_DCGAN_GENERATOR]
    # lines 164-181 (garbled): the DCGAN body, then two Conv2d(512, 1, 4) heads (adversarial and attribute);
    # our heads are Linear(512*4*4, 1), the same function of the same 8192 inputs
    discriminator = layers(networks["discriminator"])
    assert discriminator == [*S1_DCGAN_FEATURES, linear(8192, 1), linear(8192, 1)]


# -- S2 (seeds/002) -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["s2-mlp-vae", "s2-mlp-vae-mean"])
def test_s2_mlp_vae(name):
    networks = build(name)
    # lines 17-19: 784-512-256-32 (S2's one L3 serves mu and sigma; we give each its own head)
    assert layers(networks["encoder"]) == [linear(784, 512), linear(512, 256), linear(256, 32), linear(256, 32)]
    assert layers(networks["decoder"]) == [linear(32, 256), linear(256, 512), linear(512, 784)]  # lines 40-42


@pytest.mark.parametrize("name", ["s2-mlp-gan", "s2-mlp-gan-skip500", "s2-mlp-gan-epoch-digit",
                                  "s2-mlp-gan-skip-d-epoch5"])
def test_s2_mlp_gan(name):
    networks = build(name)
    # lines 128-136
    assert layers(networks["generator"]) == [linear(100, 128), bn(128, dim=1), linear(128, 256), bn(256, dim=1),
                                             linear(256, 512), bn(512, dim=1), linear(512, 600), bn(600, dim=1),
                                             linear(600, 784)]
    # lines 161-163 (its BatchNorms are commented out of forward, lines 172 and 174)
    assert layers(networks["discriminator"]) == [linear(784, 1024), linear(1024, 512), linear(512, 1)]


# -- S3 (seeds/003) -------------------------------------------------------------------------------------------
def test_s3_wgan_gp():
    networks = build("s3-wgan-gp", CARTOON)
    # lines 12-32: z 100 + 15 labels = 115 inputs, 1024 at 4x4 ... 64, last ConvTranspose with a bias, 128 px
    assert layers(networks["generator"]) == [
        convt(115, 1024, 4, 1), bn(1024), convt(1024, 512, 4, 2), bn(512), convt(512, 256, 4, 2), bn(256),
        convt(256, 128, 4, 2), bn(128), convt(128, 64, 4, 2), bn(64), convt(64, 3, 4, 2, bias=True)]
    # lines 39-83: no BatchNorm; score conv, bottleneck, heads hair 6, eye 4, face 3, glasses 2
    heads = [item for n in (6, 4, 3, 2) for item in (linear(1024, 128), linear(128, n))]
    assert layers(networks["critic"]) == [
        conv(3, 64, 4, 2, bias=False), conv(64, 128, 4, 2, bias=False), conv(128, 256, 4, 2, bias=False),
        conv(256, 512, 4, 2, bias=False), conv(512, 1024, 4, 2, bias=False), conv(1024, 1, 4, 1),
        conv(1024, 1024, 4, 1), *heads]


# -- S4 (seeds/004) -------------------------------------------------------------------------------------------
S4_GENERATOR = [  # lines 40-61: conditionExpand 24 -> 256, l1 356 -> 32768 (128 x 16 x 16), upsampling blocks
    linear(24, 256), linear(356, 32768), bn(128), conv(128, 128, 3, 1), bn(128, eps=0.8), conv(128, 64, 3, 1),
    bn(64, eps=0.8), conv(64, 3, 3, 1)]
S4_DISCRIMINATOR = [  # lines 78-105: label channel (24 -> 4096 = 64 x 64), width 128, flattened 16384
    linear(24, 4096), conv(4, 128, 4, 2, bias=False), conv(128, 256, 4, 2, bias=False), bn(256),
    conv(256, 512, 4, 2, bias=False), bn(512), conv(512, 1024, 4, 2, bias=False), bn(1024), linear(16384, 1)]


@pytest.mark.parametrize("name", ["s4-acgan", "s4-acgan-adv"])
def test_s4_acgan(name):
    networks = build(name, ICLEVR)
    assert layers(networks["generator"]) == S4_GENERATOR
    assert layers(networks["discriminator"]) == [*S4_DISCRIMINATOR, linear(16384, 24)]   # + aux_layer, line 102


@pytest.mark.parametrize("name", ["s4-cgan", "s4-cgan-wgan"])
def test_s4_cgan(name):
    networks = build(name, ICLEVR)
    assert layers(networks["generator"]) == S4_GENERATOR
    assert layers(networks["discriminator"]) == S4_DISCRIMINATOR


def test_s4_cgan_srgan():
    networks = build("s4-cgan-srgan", ICLEVR)
    # lines 383-463 (each ResidualBlock's layers in the order they run: conv, bn1, act, conv, bn2)
    residual = [conv(64, 64, 3, 1), bn(64), "PReLU", conv(64, 64, 3, 1), bn(64)]
    assert layers(networks["generator"]) == [
        linear(24, 256), conv(356, 64, 9, 1), "PReLU", *residual * 5, conv(64, 64, 3, 1), bn(64),
        *[conv(64, 256, 3, 1), "PReLU"] * 6, conv(64, 3, 9, 1)]
    # lines 478-511
    body = [(64, 64, 2), (64, 128, 1), (128, 128, 2), (128, 256, 1), (256, 256, 2), (256, 512, 1), (512, 512, 2)]
    assert layers(networks["discriminator"]) == [
        linear(24, 4096), conv(4, 64, 3, 1), *[item for i, o, s in body for item in (conv(i, o, 3, s), bn(o))],
        conv(512, 1024, 1, 1), conv(1024, 1, 1, 1)]


def test_every_seed_preset_has_a_layer_test():
    tested = {"s0-vae-gan", "s0-vae-gan-test2", "s0-vae-gan-test3", "s1-vae", "s1-dcgan", "s1-acgan", "s2-mlp-vae",
              "s2-mlp-vae-mean", "s2-mlp-gan", "s2-mlp-gan-skip500", "s2-mlp-gan-epoch-digit",
              "s2-mlp-gan-skip-d-epoch5", "s3-wgan-gp", "s4-acgan", "s4-acgan-adv", "s4-cgan", "s4-cgan-wgan",
              "s4-cgan-srgan"}
    assert {name for name in preset_names() if re.match(r"s\d-", name)} == tested
