"""export_checkpoint / `gen-eval export`: every registered family rebuilt from a checkpoint, exported
and checked against torch eager; VAE encoders beside the generator; unsafe and wrong files refused."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from gen_eval import contract
from gen_eval.contract import ExportGraph
from gen_eval.data.labels import LabelSpace
from gen_eval.errors import UserError
from gen_eval.exporter.graphs import export_checkpoint
from gen_eval.exporter.parity import compare_outputs, parity_inputs
from gen_eval.trainers import family_module, family_names, get_family, register_family
from gen_eval.trainers.base import Family
from gen_eval.trainers.checkpoint import save_checkpoint
from gen_eval.trainers.config import setting
from helpers.cli import assert_one_line_error, run_cli_here

ICLEVR_LIKE = LabelSpace.multilabel(["gray cube", "red cube", "blue sphere", "green cylinder", "cyan sphere"])
SMILING = LabelSpace.binary("Smiling")
CARTOON = LabelSpace.categorical({"hair": ["h0", "h1", "h2"], "eye": ["e0", "e1"], "glasses": ["g0", "g1"]})

# The smallest settings of each family (its widths shrunk) and the label space it is built for.
# A family missing here is exported with its defaults (slower, still checked).
SMALL: dict[str, tuple[dict[str, Any], LabelSpace | None]] = {
    "mlp-vae": ({"hidden": [32, 16], "latent_dim": 4}, None),
    "mlp-gan": ({"g_hidden": [16, 32], "d_hidden": [32], "latent_dim": 8}, None),
    "vae": ({"image_size": 16, "width": 8, "latent_dim": 8}, None),
    "dcgan": ({"image_size": 16, "g_width": 8, "d_width": 8, "latent_dim": 16}, None),
    "wgan-gp": ({"image_size": 16, "g_width": 4, "d_width": 4, "head_hidden": 8, "latent_dim": 8}, CARTOON),
    "vae-gan": ({"image_size": 16, "width": 4, "latent_dim": 8}, None),
    "diffusion": ({"image_size": 8, "image_channels": 3, "width": 8, "channel_mults": "1,2", "patch": 2,
                   "sample_steps": 2}, ICLEVR_LIKE),
    "acgan": ({"image_size": 16, "image_channels": 3, "ngf": 4, "ndf": 4, "cond_embed": 8, "latent_dim": 8,
               "g_start_size": 4}, ICLEVR_LIKE),
    "cgan": ({"image_size": 16, "image_channels": 3, "ngf": 4, "ndf": 4, "cond_embed": 8, "latent_dim": 8}, SMILING),
    "classifier": ({"image_size": 32}, ICLEVR_LIKE),
    "cnn-classifier": ({"image_size": 16, "image_channels": 1, "widths": [4, 8]}, CARTOON),
}
CONDITIONAL_DEFAULT = ICLEVR_LIKE


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py


def write_checkpoint(path: Path, name: str, family: Family, networks: dict[str, nn.Module]) -> Path:
    payload = {"family": name, "config": family.config_dict(),
               "label_space": family.label_space.to_dict() if family.label_space else None,
               "step": 3, "epoch": 0, "networks": {k: v.state_dict() for k, v in networks.items()},
               "optimizers": {}, "rng": {}, "extra": {}}
    return save_checkpoint(path, payload)


def family_module_exists(name: str) -> bool:
    return importlib.util.find_spec(family_module(name)) is not None


def randomise_batch_norm(networks: dict[str, nn.Module]) -> None:
    """Trained-looking running statistics, so that exporting in train mode would be caught."""
    generator = torch.Generator().manual_seed(0)
    for net in networks.values():
        for module in net.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.running_mean is not None:
                module.running_mean.copy_(torch.rand(module.running_mean.shape, generator=generator) - 0.5)
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)


@pytest.mark.parametrize("name", family_names())
def test_every_family_exports_from_its_checkpoint_with_parity(name, tmp_path):
    if not family_module_exists(name):
        pytest.skip(f"family module {family_module(name)} does not exist yet")
    cls = get_family(name)
    settings, space = SMALL.get(name, ({}, CONDITIONAL_DEFAULT if cls.conditional else None))
    family = cls(cls.resolve_config(settings), space)
    networks = family.build_networks()
    randomise_batch_norm(networks)
    checkpoint = write_checkpoint(tmp_path / "last.pt", name, family, networks)

    results = export_checkpoint(checkpoint, tmp_path / "model.onnx")

    # the reference: the networks that were saved, in eval mode, in torch
    for net in networks.values():
        net.eval()
    graphs = family.export_graphs(networks)
    assert [r.role for r in results] == [g.role for g in graphs]
    assert results[0].path == tmp_path / "model.onnx"
    for result, graph in zip(results, graphs):
        expected_name = "model.onnx" if not graph.suffix else f"model.{graph.suffix}.onnx"
        assert result.path.name == expected_name and result.path.is_file()
        assert result.parity is not None and set(result.parity.error) == {1, 8}
        assert result.parity.reference == "float64"
        assert all(result.parity.error[b] <= result.parity.tolerance[b] for b in result.parity.error)

        model = onnx.load(str(result.path))
        meta = {p.key: p.value for p in model.metadata_props}
        assert meta[contract.KEY_ROLE] == graph.role and meta[contract.KEY_FAMILY] == name
        assert meta[contract.KEY_CONTRACT] == contract.CONTRACT_VERSION
        assert contract.parse_image_shape(meta[contract.KEY_IMAGE_SHAPE]) == tuple(graph.image_shape)
        assert contract.parse_value_range(meta[contract.KEY_VALUE_RANGE]) == tuple(graph.value_range)
        if graph.latent_dim is not None:
            assert int(meta[contract.KEY_LATENT_DIM]) == graph.latent_dim
        if graph.label_space is not None:
            assert LabelSpace.from_json(meta[contract.KEY_LABEL_SPACE]) == graph.label_space

        inputs = parity_inputs(graph, batch=5, seed=11)  # a batch size and inputs the export never saw
        session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
        got = session.run(None, dict(zip(graph.input_names, inputs)))
        assert all(c.passed for c in compare_outputs(graph.module.eval(), inputs, got))
    if name in ("mlp-vae", "vae", "vae-gan"):
        assert [r.role for r in results] == ["generator", "encoder"]


# -- a tiny family of our own, for the command line and the error paths ----------------------------

@dataclass(frozen=True)
class TinyVAEConfig:
    latent_dim: int = setting(3, "latent units")
    size: int = setting(4, "image side in pixels")


class TinyVAE(Family):
    name: ClassVar[str] = "tiny-vae-for-export-tests"
    Config = TinyVAEConfig
    value_range: ClassVar[tuple[float, float]] = (0.0, 1.0)

    def build_networks(self) -> dict[str, nn.Module]:
        pixels = 3 * self.config.size ** 2
        latent = self.config.latent_dim
        decoder = nn.Sequential(nn.Linear(latent, pixels), nn.Sigmoid(), nn.Unflatten(1, (3, self.config.size, self.config.size)))
        return {"encoder": nn.Sequential(nn.Flatten(), nn.Linear(pixels, 2 * latent), nn.Unflatten(1, (2, latent))),
                "decoder": decoder}

    def export_graphs(self, networks: dict[str, nn.Module]) -> list[ExportGraph]:
        size, latent = self.config.size, self.config.latent_dim

        class MuLogvar(nn.Module):
            def __init__(self, body: nn.Module) -> None:
                super().__init__()
                self.body = body

            def forward(self, image):
                out = self.body(image)
                return out[:, 0], out[:, 1]

        shape = (3, size, size)
        return [ExportGraph("generator", networks["decoder"], ["z"], [(latent,)], ["image"], shape, self.value_range,
                            latent_dim=latent),
                ExportGraph("encoder", MuLogvar(networks["encoder"]), ["image"], [shape], ["mu", "logvar"], shape,
                            self.value_range, latent_dim=latent, suffix="encoder")]


@pytest.fixture()
def tiny_family():
    return register_family(TinyVAE)   # a name of its own: registering it again is a no-op


def tiny_checkpoint(path: Path, **changes) -> Path:
    family = TinyVAE({}, None)
    networks = family.build_networks()
    payload = {"family": TinyVAE.name, "config": family.config_dict(), "label_space": None, "step": 1, "epoch": 0,
               "networks": {k: v.state_dict() for k, v in networks.items()}, "optimizers": {}, "rng": {}, "extra": {}}
    payload.update(changes)
    return save_checkpoint(path, payload)


def test_cli_export_writes_generator_and_encoder_and_reports_parity(tiny_family, tmp_path):
    checkpoint = tiny_checkpoint(tmp_path / "last.pt")
    result = run_cli_here("export", checkpoint, "--out", tmp_path / "vae.onnx")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt", "vae.encoder.onnx", "vae.onnx"]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2 and "vae.onnx (generator" in lines[0] and "vae.encoder.onnx (encoder" in lines[1]
    assert all("max |onnx - float64| batch 1:" in line and "batch 8:" in line and "torch float32" in line for line in lines)

    # the encoder file exists already: nothing is overwritten, not even the generator
    (tmp_path / "vae.onnx").unlink()
    again = run_cli_here("export", checkpoint, "--out", tmp_path / "vae.onnx")
    assert_one_line_error(again, "vae.encoder.onnx already exists", "--force")
    assert not (tmp_path / "vae.onnx").exists()
    assert run_cli_here("export", checkpoint, "--out", tmp_path / "vae.onnx", "--force", "--no-verify").returncode == 0


def test_checkpoint_that_does_not_fit_its_family_is_a_one_line_error(tiny_family, tmp_path):
    wrong = TinyVAE({"latent_dim": 5}, None).build_networks()
    bad = tiny_checkpoint(tmp_path / "bad.pt", networks={k: v.state_dict() for k, v in wrong.items()})
    assert_one_line_error(run_cli_here("export", bad, "--out", tmp_path / "m.onnx"),
                          "weights do not fit", "size mismatch")
    missing = tiny_checkpoint(tmp_path / "missing.pt", networks={})
    assert_one_line_error(run_cli_here("export", missing, "--out", tmp_path / "m.onnx"),
                          "no weights for network", "incomplete")
    unknown = tiny_checkpoint(tmp_path / "unknown.pt", family="no-such-family")
    assert_one_line_error(run_cli_here("export", unknown, "--out", tmp_path / "m.onnx"), "unknown model family")
    assert not (tmp_path / "m.onnx").exists()


def test_ta_classifier_file_is_pointed_to_export_classifier(tmp_path):
    path = tmp_path / "classifier_weight.pth"
    torch.save({"model": {"fc.0.weight": torch.zeros(24, 512)}}, path)
    assert_one_line_error(run_cli_here("export", path, "--out", tmp_path / "m.onnx"),
                          "not a gen-eval checkpoint", "export-classifier")


class Payload:
    """Unpickling this calls open(marker, 'w'): a file carrying code that runs on load."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_checkpoint_with_pickle_payload_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "payload-ran"
    evil = tmp_path / "evil.pt"
    torch.save({"format": "gen_eval.checkpoint", "version": 1, "family": "dcgan", "config": {},
                "networks": {"generator": Payload(marker)}}, evil)
    assert not marker.exists()

    with pytest.raises(UserError, match="refusing to load"):
        export_checkpoint(evil, tmp_path / "m.onnx")
    result = run_cli_here("export", evil, "--out", tmp_path / "m.onnx")
    assert_one_line_error(result, "refusing to load", str(evil))
    assert not marker.exists(), "the payload ran"
    assert not (tmp_path / "m.onnx").exists()

    # control: the file really is dangerous, an unsafe load runs it
    torch.load(evil, weights_only=False)
    assert marker.exists()
