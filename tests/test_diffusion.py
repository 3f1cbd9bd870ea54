"""The diffusion family: the rectified-flow sampler and its guidance, the unrolled sampler exported as one ONNX
generator (parity with the float64 module, metadata, ``export --set``), every label space through the loop, and
what it refuses."""

from __future__ import annotations

import json
import math

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from gen_eval import contract
from gen_eval.data.imageset import ArrayImageSet
from gen_eval.data.labels import LabelSpace
from gen_eval.errors import UserError
from gen_eval.exporter import export_checkpoint
from gen_eval.exporter.graphs import build_graph
from gen_eval.exporter.parity import parity_inputs
from gen_eval.trainers import get_family
from gen_eval.trainers.diffusion import FlowSampler, time_grid
from gen_eval.trainers.loop import train
from helpers.cli import run_cli_here
from helpers.training import read_log

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py

TINY = {"image_size": 8, "width": 8, "channel_mults": "1,2", "patch": 2, "sample_steps": 3, "warmup": 2}
SPACES = {
    "multilabel": LabelSpace.multilabel([f"object {i}" for i in range(24)]),
    "categorical": LabelSpace.categorical({"hair": ["a", "b", "c"], "eye": ["x", "y"]}),
    "binary": LabelSpace.binary("Smiling"),
    "digits": LabelSpace.categorical({"digit": [str(d) for d in range(10)]}),
}


def labelled_set(space: LabelSpace, n: int = 16, size: int = 8, channels: int = 3) -> ArrayImageSet:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, size, size, channels), dtype=np.uint8)
    if space.kind == "categorical":
        labels = np.concatenate([np.eye(len(v), dtype=np.float32)[rng.integers(0, len(v), n)] for _, v in space.heads],
                                axis=1)
    else:
        labels = rng.integers(0, 2, size=(n, space.size)).astype(np.float32)
        if space.kind == "multilabel":
            labels[labels.sum(axis=1) == 0, 0] = 1.0
    return ArrayImageSet(images, format="array", source="in-memory test set", labels=labels, label_space=space)


def tiny_family(space: LabelSpace, channels: int = 3, **overrides):
    cls = get_family("diffusion")
    family = cls(cls.resolve_config({**TINY, **overrides}), space)
    family.fit_data((channels, 8, 8), space)
    return family


def randomised(networks: dict[str, nn.Module], seed: int = 0) -> dict[str, nn.Module]:
    """Every weight drawn at random, the zero-initialised last layers included (an untrained UNet outputs 0,
    so a parity check on it would prove nothing)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for net in networks.values():
            for p in net.parameters():
                p.copy_(torch.randn(p.shape, generator=generator) * 0.2)
    return networks


class LinearVelocity(nn.Module):
    """v = a x + (labels . w) (1 - dropped) + c t: a network whose sampler can be integrated by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.c = -0.7, 0.3

    def forward(self, x, t, labels=None, dropped=None):
        shift = (labels.sum(dim=1, keepdim=True) * (1 - dropped))[:, :, None, None]
        return self.a * x + shift + self.c * t[:, None, None, None]


@pytest.mark.parametrize("guidance", [0.0, 1.0, 2.5])
def test_sampler_is_euler_from_noise_to_image_with_classifier_free_guidance(guidance):
    steps, shape = 4, (1, 2, 2)
    sampler = FlowSampler(LinearVelocity(), shape, steps=steps, guidance=guidance, shift=1.0, conditional=True)
    z = torch.randn(3, 4, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    got = sampler(z, labels).numpy()

    x = z.numpy().reshape(3, *shape).astype(np.float64)
    s = labels.numpy().sum(axis=1)[:, None, None, None]
    times = np.linspace(1.0, 0.0, steps + 1)
    for t, t_next in zip(times[:-1], times[1:]):
        conditioned = -0.7 * x + s + 0.3 * t
        unconditioned = -0.7 * x + 0.3 * t
        x = x + (t_next - t) * (unconditioned + guidance * (conditioned - unconditioned))
    np.testing.assert_allclose(got, np.clip(x, -1, 1), rtol=1e-5, atol=1e-6)


def test_time_grid_runs_from_one_to_zero_and_a_shift_spends_more_steps_at_high_noise():
    plain, shifted = time_grid(4, 1.0), time_grid(4, 3.0)
    assert plain == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0])
    assert shifted[0] == pytest.approx(1.0) and shifted[-1] == pytest.approx(0.0)
    assert all(a > b for a, b in zip(shifted, shifted[1:]))
    assert shifted[1] > plain[1]   # the first step is shorter: more of the path is spent near the noise


@pytest.mark.parametrize("kind", list(SPACES))
def test_unrolled_sampler_exports_as_one_generator_graph_with_parity(kind):
    space = SPACES[kind]
    channels = 1 if kind == "digits" else 3
    family = tiny_family(space, channels=channels)
    networks = randomised(family.build_networks())
    graph = family.export_graphs(networks)[0]
    assert graph.latent_dim == channels * 8 * 8
    data, report = build_graph(graph, "diffusion")
    assert all(report.error[b] <= report.tolerance[b] for b in report.error)
    model = onnx.load_from_string(data)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta[contract.KEY_SAMPLER] == "rectified flow, 3 Euler steps, guidance 2, time shift 1"
    assert meta[contract.KEY_LATENT_DIM] == str(channels * 64)
    assert LabelSpace.from_json(meta[contract.KEY_LABEL_SPACE]) == space
    # the graph really holds the network once per step (twice per step's batch with guidance), sharing weights
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    per_network = sum(isinstance(m, nn.Conv2d) for m in networks["unet_ema"].modules())
    assert len(convs) == 3 * per_network


def test_sampler_output_moves_with_the_labels_and_the_noise():
    family = tiny_family(SPACES["categorical"])
    sampler = family.sampler(randomised(family.build_networks()))
    z, labels = (torch.from_numpy(a) for a in parity_inputs(family.export_graphs(family.build_networks())[0], 4))
    base = sampler(z, labels)
    assert base.shape == (4, 3, 8, 8)
    assert not torch.allclose(base, sampler(z, labels.flip(0)))
    assert not torch.allclose(base, sampler(z + 0.5, labels))


@pytest.mark.parametrize("kind", ["multilabel", "categorical", "binary"])
def test_every_label_space_trains_through_the_loop(tmp_path, kind):
    last = train("diffusion", labelled_set(SPACES[kind]), tmp_path / "run", steps=4, batch_size=8, device="cpu",
                 config_overrides=TINY, log_every=1, workers=0, progress=False)
    rows = read_log(tmp_path / "run" / "log.csv")
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert all(math.isfinite(float(r["loss"])) and float(r["loss"]) > 0 for r in rows)
    assert (tmp_path / "run" / "samples" / "last.png").is_file()
    results = export_checkpoint(last, tmp_path / "d.onnx")
    assert [r.role for r in results] == ["generator"]


def test_export_chooses_the_sampler_and_refuses_other_settings(tmp_path):
    last = train("diffusion", labelled_set(SPACES["binary"]), tmp_path / "run", steps=2, batch_size=8, device="cpu",
                 config_overrides=TINY, workers=0, progress=False)
    out = tmp_path / "d.onnx"
    result = run_cli_here("export", last, "--out", out, "--set", "sample_steps=5", "--set", "guidance=3")
    assert result.returncode == 0, result.stderr
    info = run_cli_here("info", out, "--device", "cpu")
    assert "rectified flow, 5 Euler steps, guidance 3" in info.stdout
    refused = run_cli_here("export", last, "--out", tmp_path / "e.onnx", "--set", "lr=1")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "error: diffusion has no setting 'lr' to choose at export; it takes sample_steps, guidance, sample_shift"]
    out_of_range = run_cli_here("export", last, "--out", tmp_path / "e.onnx", "--set", "guidance=-1")
    assert out_of_range.returncode == 2 and "guidance must be a finite number in [0, 20]" in out_of_range.stderr
    assert not (tmp_path / "e.onnx").exists()
    gan = run_cli_here("export", last, "--out", tmp_path / "e.onnx", "--set", "sample_steps=x")
    assert gan.returncode == 2 and "sample_steps" in gan.stderr


def test_guidance_without_label_dropout_and_sizes_the_unet_cannot_halve_are_refused():
    with pytest.raises(UserError, match="label_dropout"):
        tiny_family(SPACES["binary"], label_dropout=0.0, guidance=2.0)
    tiny_family(SPACES["binary"], label_dropout=0.0, guidance=1.0)   # conditional prediction only: fine
    cls = get_family("diffusion")
    family = cls(cls.resolve_config({**TINY, "image_size": 12, "patch": 4}), SPACES["binary"])
    with pytest.raises(UserError, match="not divisible by patch x 2"):
        family.fit_data((3, 12, 12), SPACES["binary"])
    result = run_cli_here("train", "diffusion", "--help")
    assert "sample_steps" in result.stdout and "guidance" in result.stdout


def test_the_presets_build_and_describe_their_sampler():
    from gen_eval.trainers.presets import PRESETS

    for name, channels, size in (("mnist-diffusion", 1, 28), ("shapes-diffusion", 3, 64)):
        preset = PRESETS[name]
        cls = get_family(preset.family)
        space = SPACES["digits"] if channels == 1 else SPACES["multilabel"]
        family = cls(cls.resolve_config(preset.overrides({})), space)
        family.fit_data((channels, size, size), space)
        graph = family.export_graphs(family.build_networks())[0]
        assert graph.image_shape == (channels, size, size)
        assert json.loads(json.dumps(graph.metadata))[contract.KEY_SAMPLER].startswith("rectified flow, 20 Euler steps")
