"""export_graph on small modules: parity with torch eager, the metadata contract, dynamic batch,
one self-contained file, fp16, noise as an input, and nothing written when something fails."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from gen_eval import contract
from gen_eval.contract import ExportGraph
from gen_eval.data.labels import LabelSpace
from gen_eval.errors import GateFailed, UserError
from gen_eval.exporter.graphs import export_graph
from gen_eval.exporter.parity import parity_inputs

LATENT = 8
SHAPES = LabelSpace.multilabel(["red cube", "blue sphere", "green cylinder", "gray cube"])


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py


class TinyGenerator(nn.Module):
    """z (+ labels) -> [B, 3, 8, 8] in [-1, 1]: Linear, BatchNorm, ConvTranspose, Tanh."""

    def __init__(self, label_dim: int = 0) -> None:
        super().__init__()
        self.fc = nn.Linear(LATENT + label_dim, 16 * 4 * 4)
        self.body = nn.Sequential(nn.BatchNorm2d(16), nn.ReLU(), nn.ConvTranspose2d(16, 3, 4, 2, 1), nn.Tanh())
        with torch.no_grad():  # non-trivial running statistics, so eval mode matters
            self.body[0].running_mean.uniform_(-0.5, 0.5)
            self.body[0].running_var.uniform_(0.5, 2.0)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = z if labels is None else torch.cat([z, labels], dim=1)
        return self.body(self.fc(x).view(-1, 16, 4, 4))


class TinyEncoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 4, 2, 1), nn.LeakyReLU(0.2), nn.Flatten(), nn.Dropout(0.5))
        self.mu, self.logvar = nn.Linear(8 * 4 * 4, LATENT), nn.Linear(8 * 4 * 4, LATENT)

    def forward(self, image: torch.Tensor):
        h = self.body(image)
        return self.mu(h), self.logvar(h)


def generator_graph(module: nn.Module, label_space: LabelSpace | None = None) -> ExportGraph:
    names, shapes = [contract.INPUT_Z], [(LATENT,)]
    if label_space is not None:
        names, shapes = names + [contract.INPUT_LABELS], shapes + [(label_space.size,)]
    return ExportGraph("generator", module, names, shapes, [contract.OUTPUT_IMAGE], (3, 8, 8), (-1.0, 1.0),
                       latent_dim=LATENT, label_space=label_space)


def encoder_graph(module: nn.Module) -> ExportGraph:
    return ExportGraph("encoder", module, [contract.INPUT_IMAGE], [(3, 8, 8)],
                       [contract.OUTPUT_MU, contract.OUTPUT_LOGVAR], (3, 8, 8), (-1.0, 1.0), latent_dim=LATENT)


def run_onnx(path: Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def torch_out(module: nn.Module, *arrays: np.ndarray):
    with torch.no_grad():
        return module(*(torch.from_numpy(a) for a in arrays))


def test_conditional_generator_exports_with_metadata_and_matches_torch(tmp_path):
    module = TinyGenerator(SHAPES.size)
    result = export_graph(generator_graph(module, SHAPES), tmp_path / "g.onnx", family="tiny")
    assert result.path == tmp_path / "g.onnx" and result.role == "generator"
    assert set(result.parity.error) == {1, 8} and max(result.parity.error.values()) <= 1e-4
    assert result.parity.provider == "CPUExecutionProvider"
    assert module.training, "export must restore the module's training flag"

    model = onnx.load(str(result.path))
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta[contract.KEY_ROLE] == "generator"
    assert meta[contract.KEY_FAMILY] == "tiny"
    assert meta[contract.KEY_LATENT_DIM] == str(LATENT)
    assert contract.parse_image_shape(meta[contract.KEY_IMAGE_SHAPE]) == (3, 8, 8)
    assert contract.parse_value_range(meta[contract.KEY_VALUE_RANGE]) == (-1.0, 1.0)
    assert LabelSpace.from_json(meta[contract.KEY_LABEL_SPACE]) == SHAPES
    assert meta[contract.KEY_CONTRACT] == contract.CONTRACT_VERSION
    assert [i.name for i in model.graph.input] == ["z", "labels"]
    assert [o.name for o in model.graph.output] == ["image"]

    # one self-contained file: every weight inside, nothing beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.onnx"]
    assert all(t.data_location != onnx.TensorProto.EXTERNAL for t in model.graph.initializer)

    # dynamic batch, and eval-mode numbers (BatchNorm running statistics) at sizes never exported
    module.eval()
    rng = np.random.default_rng(5)
    for batch in (3, 13):
        z = rng.standard_normal((batch, LATENT)).astype(np.float32)
        labels = np.zeros((batch, SHAPES.size), np.float32)
        labels[:, 1] = 1
        (image,) = run_onnx(result.path, {"z": z, "labels": labels})
        assert image.shape == (batch, 3, 8, 8)
        np.testing.assert_allclose(image, torch_out(module, z, labels).numpy(), atol=1e-5)


def test_encoder_graph_has_two_outputs_and_no_dropout_noise(tmp_path):
    module = TinyEncoder()
    result = export_graph(encoder_graph(module), tmp_path / "e.onnx", family="tiny-vae")
    image = parity_inputs(encoder_graph(module), 4, seed=3)[0]
    mu, logvar = run_onnx(result.path, {"image": image})
    ref_mu, ref_logvar = torch_out(module.eval(), image)
    np.testing.assert_allclose(mu, ref_mu.numpy(), atol=1e-5)
    np.testing.assert_allclose(logvar, ref_logvar.numpy(), atol=1e-5)
    ops = {n.op_type for n in onnx.load(str(result.path)).graph.node}
    assert "Dropout" not in ops


def test_fp16_keeps_float32_io_and_halves_the_weights(tmp_path):
    module = TinyGenerator()
    half = export_graph(generator_graph(module), tmp_path / "g16.onnx", family="tiny", fp16=True)
    assert half.fp16 and half.parity.reference == "torch float32"
    assert max(half.parity.error.values()) <= 2e-2  # 1e-2 of the [-1, 1] output range
    model = onnx.load(str(half.path))
    io_types = {v.name: v.type.tensor_type.elem_type for v in list(model.graph.input) + list(model.graph.output)}
    assert io_types == {"z": onnx.TensorProto.FLOAT, "image": onnx.TensorProto.FLOAT}
    weights = [t for t in model.graph.initializer if len(t.dims) >= 2]
    assert weights and all(t.data_type == onnx.TensorProto.FLOAT16 for t in weights)
    float32_bytes = 4 * sum(p.numel() for p in module.parameters() if p.dim() >= 2)
    assert sum(len(t.raw_data) for t in weights) == float32_bytes // 2
    z = np.random.default_rng(1).standard_normal((4, LATENT)).astype(np.float32)
    (image,) = run_onnx(half.path, {"z": z})
    assert image.dtype == np.float32
    np.testing.assert_allclose(image, torch_out(module.eval(), z).numpy(), atol=2e-2)


class SamplesInside(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(LATENT, 3 * 8 * 8)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.fc(z + torch.randn_like(z))).view(-1, 3, 8, 8)


def test_noise_sampled_inside_the_graph_is_refused(tmp_path):
    with pytest.raises(UserError, match="samples random numbers inside"):
        export_graph(generator_graph(SamplesInside()), tmp_path / "g.onnx", family="tiny", verify=False)
    assert list(tmp_path.iterdir()) == []


class ExportsDifferently(TinyGenerator):
    """Eager and exported graphs disagree (as a broken export would): parity must catch it."""

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        image = super().forward(z, labels)
        return image * 0.99 if torch.onnx.is_in_onnx_export() else image


def test_failed_parity_writes_nothing_no_verify_writes_and_force_overwrites(tmp_path):
    out = tmp_path / "g.onnx"
    with pytest.raises(GateFailed, match="parity check failed.*not written"):
        export_graph(generator_graph(ExportsDifferently()), out, family="tiny")
    assert list(tmp_path.iterdir()) == []

    result = export_graph(generator_graph(ExportsDifferently()), out, family="tiny", verify=False)
    assert out.is_file() and result.parity is None
    written = out.read_bytes()
    with pytest.raises(UserError, match="already exists; pass force=True"):
        export_graph(generator_graph(TinyGenerator()), out, family="tiny")
    assert out.read_bytes() == written
    export_graph(generator_graph(TinyGenerator()), out, family="tiny", force=True)
    assert out.read_bytes() != written and sorted(p.name for p in tmp_path.iterdir()) == ["g.onnx"]


def test_contract_violations_are_caught_before_export(tmp_path):
    bad_names = ExportGraph("generator", TinyGenerator(), ["noise"], [(LATENT,)], ["image"], (3, 8, 8), (-1.0, 1.0),
                            latent_dim=LATENT)
    with pytest.raises(ValueError, match="generator graph takes"):
        export_graph(bad_names, tmp_path / "a.onnx", family="tiny")
    wrong_shape = generator_graph(TinyGenerator())
    wrong_shape.image_shape = (3, 16, 16)
    with pytest.raises(ValueError, match="images of shape"):
        export_graph(wrong_shape, tmp_path / "b.onnx", family="tiny")
    assert list(tmp_path.iterdir()) == []
