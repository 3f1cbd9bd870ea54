"""The FID Inception-v3, built exactly as pytorch-fid 0.3.0 builds it, as an ONNX ``features`` model.

pytorch-fid ports TensorFlow's 2015 Inception graph to torchvision's ``Inception3`` with three
patches: the average-pool branches of the A, C and first E blocks ignore padded zeros
(``count_include_pad=False``, as TensorFlow does), the last E block pools with max instead of
average, and the classifier has 1008 classes. We build the same network from torchvision's blocks so
the weights file ``pt_inception-2015-12-05-6726825d.pth`` loads unchanged, and put pytorch-fid's
input handling (bilinear resize to 299, align_corners=False, then 2x-1) inside the graph: the ONNX
model takes float32 [B, 3, H, W] in [0, 1] of any size and returns pool3 features [B, 2048] and
``logits`` [B, 1008].

The logits are torch-fidelity's ``logits_unbiased`` (what its Inception Score uses): pool3 times the
same weights file's ``fc.weight``, without the bias (torch-fidelity's weights file
weights-inception-2015-12-05-6726825d.pth has the same keys and the same hash prefix as pytorch-fid's).
torch-fidelity feeds the network differently: TensorFlow-1 bilinear resize (no half-pixel offset) of
0..255 values, then (x-128)/128. ``preprocessing="torch-fidelity"`` builds that input handling into
the graph instead, so features and logits are torch-fidelity's (its FID, KID and IS); the default
keeps pytorch-fid's, whose FID is the published one, and then IS differs from torch-fidelity's by the
resize (measured in benchmarks/RESULTS.md).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.inception import (
    BasicConv2d,
    Inception3,
    InceptionA,
    InceptionAux,
    InceptionB,
    InceptionC,
    InceptionD,
    InceptionE,
)

from gen_eval import contract
from gen_eval.contract import ExportGraph
from gen_eval.errors import UserError
from gen_eval.exporter.fid_weights import (
    FID_INPUT_SIZE,
    FID_NUM_CLASSES,
    FID_WEIGHTS_NAME,
    FID_WEIGHTS_SHA256,
    PREPROCESSINGS,
    check_weights_file,
    inception_family,
)
from gen_eval.exporter.graphs import ExportResult, export_graph
from gen_eval.fileio import ensure_can_write

log = logging.getLogger("gen_eval")



def tf1_bilinear_resize(x: Tensor, size: int) -> Tensor:
    """TensorFlow 1's ``resize_bilinear(align_corners=False)``, as torch-fidelity emulates it: source
    coordinate = output index x (in/out), no half-pixel offset, edge rows repeated. Shapes stay dynamic
    in the exported graph (the scale is computed from the input's shape tensor)."""
    shape = torch._shape_as_tensor(x)
    for axis in (2, 3):
        length = shape[axis]
        source = torch.arange(size, dtype=torch.float32) * (length.to(torch.float32) / size)
        low = source.to(torch.int64)  # source >= 0: truncation is floor
        high = torch.minimum(low + 1, length - 1)
        weight = source - low.to(torch.float32)
        weight = weight.view(1, 1, size, 1) if axis == 2 else weight.view(1, 1, 1, size)
        first, second = x.index_select(axis, low), x.index_select(axis, high)
        x = first + (second - first) * weight
    return x


def _tf_avg_pool(x: Tensor) -> Tensor:
    """TensorFlow's 3x3 average pool: padded zeros do not count in the mean."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(InceptionA):
    """InceptionA with TensorFlow's average pool."""

    def _forward(self, x: Tensor) -> list[Tensor]:
        branch1x1 = self.branch1x1(x)
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        branch_pool = self.branch_pool(_tf_avg_pool(x))
        return [branch1x1, branch5x5, branch3x3dbl, branch_pool]


class FIDInceptionC(InceptionC):
    """InceptionC with TensorFlow's average pool."""

    def _forward(self, x: Tensor) -> list[Tensor]:
        branch1x1 = self.branch1x1(x)
        branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        branch7x7dbl = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3,
                      self.branch7x7dbl_4, self.branch7x7dbl_5):
            branch7x7dbl = layer(branch7x7dbl)
        branch_pool = self.branch_pool(_tf_avg_pool(x))
        return [branch1x1, branch7x7, branch7x7dbl, branch_pool]


class FIDInceptionE(InceptionE):
    """InceptionE with TensorFlow's average pool, or (``max_pool=True``, the last block) a max pool."""

    def __init__(self, in_channels: int, max_pool: bool = False) -> None:
        super().__init__(in_channels)
        self.max_pool = max_pool

    def _forward(self, x: Tensor) -> list[Tensor]:
        branch1x1 = self.branch1x1(x)
        branch3x3 = self.branch3x3_1(x)
        branch3x3 = torch.cat([self.branch3x3_2a(branch3x3), self.branch3x3_2b(branch3x3)], 1)
        branch3x3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        branch3x3dbl = torch.cat([self.branch3x3dbl_3a(branch3x3dbl), self.branch3x3dbl_3b(branch3x3dbl)], 1)
        if self.max_pool:
            pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        else:
            pooled = _tf_avg_pool(x)
        branch_pool = self.branch_pool(pooled)
        return [branch1x1, branch3x3, branch3x3dbl, branch_pool]


def fid_inception_v3(state_dict: dict[str, Tensor] | None = None) -> Inception3:
    """torchvision's Inception3 patched like pytorch-fid (1008 classes, no aux head).

    ``state_dict`` (pytorch-fid's weights file) is loaded strictly; without it the weights are
    torchvision's random initialisation.
    """
    blocks = [BasicConv2d, FIDInceptionA, InceptionB, FIDInceptionC, InceptionD, FIDInceptionE, InceptionAux]
    net = Inception3(num_classes=FID_NUM_CLASSES, aux_logits=False, inception_blocks=blocks,
                     init_weights=state_dict is None)
    net.Mixed_7c = FIDInceptionE(2048, max_pool=True)
    if state_dict is not None:
        net.load_state_dict(state_dict)
    return net.eval()


class FIDInceptionFeatures(nn.Module):
    """Images [B, 3, H, W] in [0, 1] -> pool3 features [B, 2048], as pytorch-fid's ``InceptionV3([3])``
    (``preprocessing="torch-fidelity"``: as torch-fidelity's ``FeatureExtractorInceptionV3``)."""

    def __init__(self, inception: Inception3, preprocessing: str = "pytorch-fid") -> None:
        super().__init__()
        if preprocessing not in PREPROCESSINGS:
            raise ValueError(f"preprocessing {preprocessing!r}: choose one of {', '.join(PREPROCESSINGS)}")
        self.preprocessing = preprocessing
        self.layers = nn.Sequential(
            inception.Conv2d_1a_3x3, inception.Conv2d_2a_3x3, inception.Conv2d_2b_3x3, inception.maxpool1,
            inception.Conv2d_3b_1x1, inception.Conv2d_4a_3x3, inception.maxpool2,
            inception.Mixed_5b, inception.Mixed_5c, inception.Mixed_5d,
            inception.Mixed_6a, inception.Mixed_6b, inception.Mixed_6c, inception.Mixed_6d, inception.Mixed_6e,
            inception.Mixed_7a, inception.Mixed_7b, inception.Mixed_7c,
            nn.AdaptiveAvgPool2d((1, 1)),
            nn.Flatten(1),
        )

    def forward(self, images: Tensor) -> Tensor:
        if self.preprocessing == "torch-fidelity":
            x = tf1_bilinear_resize(images * 255, FID_INPUT_SIZE)
            return self.layers((x - 128) / 128)
        x = F.interpolate(images, size=(FID_INPUT_SIZE, FID_INPUT_SIZE), mode="bilinear", align_corners=False)
        return self.layers(2 * x - 1)


class FIDInceptionWithLogits(nn.Module):
    """Images -> (pool3 features [B, 2048], logits [B, 1008]) from one pass; the logits are
    torch-fidelity's ``logits_unbiased`` (pool3 @ fc.weight.T, no bias), the input of its IS."""

    def __init__(self, features: FIDInceptionFeatures, fc_weight: Tensor) -> None:
        super().__init__()
        self.features = features
        self.fc_weight = nn.Parameter(fc_weight.detach().clone(), requires_grad=False)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        pool3 = self.features(images)
        return pool3, pool3 @ self.fc_weight.T


def load_fid_weights(path: str | os.PathLike) -> tuple[dict[str, Tensor], str]:
    """pytorch-fid's weights file (a plain state dict, loaded with ``weights_only=True``) and its SHA-256."""
    from gen_eval.trainers.checkpoint import load_checkpoint

    path = Path(path)
    if not path.is_file():
        raise UserError(f"Inception weights {path} do not exist; get {FID_WEIGHTS_NAME} with "
                        "'gen-eval fetch-inception --out PATH' on a machine with network, then pass its path")
    if path.stat().st_size == 0:
        raise UserError(f"Inception weights {path} are empty (0 bytes); download {FID_WEIGHTS_NAME} again with "
                        "'gen-eval fetch-inception --out PATH'")
    digest = check_weights_file(path)
    state_dict = load_checkpoint(path)
    if not isinstance(state_dict, dict) or not all(isinstance(v, Tensor) for v in state_dict.values()):
        raise UserError(f"{path} is not a state dict of tensors; give pytorch-fid's {FID_WEIGHTS_NAME}")
    return state_dict, digest


def build_fid_features(state_dict: dict[str, Tensor] | None, source: str = "weights", *,
                       preprocessing: str = "pytorch-fid", logits: bool = False) -> nn.Module:
    """The features module from a pytorch-fid state dict; a one-line error if the keys or shapes do not fit.
    ``logits=True``: the module returns (features, logits), see :class:`FIDInceptionWithLogits`."""
    try:
        inception = fid_inception_v3(state_dict)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())
        raise UserError(f"{source} do not fit pytorch-fid's Inception-v3 ({detail[:200]}); "
                        f"give pytorch-fid's {FID_WEIGHTS_NAME}") from None
    features = FIDInceptionFeatures(inception, preprocessing).eval()
    return FIDInceptionWithLogits(features, inception.fc.weight).eval() if logits else features


def random_fid_weights(seed: int = 0, calibration_batch: int = 4) -> dict[str, Tensor]:
    """A random state dict in pytorch-fid's format, for tests and benchmarks where the real file is absent.

    torchvision's initialisation alone makes pool3 features explode (~1e10) through 90 layers, so
    each BatchNorm is set, in one forward pass over random 64x64 images, to divide by the RMS of
    its input (running_mean 0, running_var = mean square). Features stay O(1) as with the real
    weights, and, unlike mean-centring calibration, rounding errors are not amplified layer after
    layer, so float32 parity numbers stay meaningful.
    """
    def normalise_by_rms(norm: nn.BatchNorm2d, args: tuple[Tensor, ...]) -> None:
        norm.running_mean.zero_()
        norm.running_var.copy_((args[0].pow(2).mean(dim=(0, 2, 3)) - norm.eps).clamp(min=0))

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        inception = fid_inception_v3(None)
        features = FIDInceptionFeatures(inception).eval()
        hooks = [m.register_forward_pre_hook(normalise_by_rms) for m in features.modules()
                 if isinstance(m, nn.BatchNorm2d)]
        try:
            with torch.no_grad():
                features(torch.rand(calibration_batch, 3, 64, 64))
        finally:
            for hook in hooks:
                hook.remove()
    return {key: value.clone() for key, value in inception.state_dict().items()}


def inception_graph(features: nn.Module, example_size: int = 64) -> ExportGraph:
    """The features ExportGraph (features and logits when ``features`` is a :class:`FIDInceptionWithLogits`);
    parity runs on ``example_size`` images so the in-graph resize is exercised."""
    shape = (3, example_size, example_size)
    outputs = [contract.OUTPUT_FEATURES]
    if isinstance(features, FIDInceptionWithLogits):
        outputs.append(contract.OUTPUT_LOGITS)
    return ExportGraph("features", features, [contract.INPUT_IMAGE], [shape], outputs,
                       image_shape=shape, value_range=(0.0, 1.0))


def export_inception(weights: str | os.PathLike, out: str | os.PathLike, *, verify: bool = True,
                     force: bool = False, preprocessing: str = "pytorch-fid") -> ExportResult:
    """pytorch-fid's weights file -> ``features`` ONNX model (input [B,3,H,W] in [0,1], any H,W; outputs
    ``features`` [B,2048] and ``logits`` [B,1008]).

    The weights' SHA-256 goes into the metadata (``gen_eval.weights_sha256``)
    so reports can tell the published FID weights from others; the family names the preprocessing, and
    ends in ``-other-weights`` for any file but the published one (a warning says so).
    """
    if preprocessing not in PREPROCESSINGS:
        raise UserError(f"preprocessing {preprocessing!r} is unknown; choose one of {', '.join(PREPROCESSINGS)}")
    ensure_can_write(out, force)
    state_dict, digest = load_fid_weights(weights)
    module = build_fid_features(state_dict, source=str(weights), preprocessing=preprocessing, logits=True)
    family = inception_family(preprocessing, digest)
    if digest != FID_WEIGHTS_SHA256:
        log.warning("%s is not the published %s (SHA-256 %s...); the model is exported as %s, with the file's "
                    "hash in its metadata", weights, FID_WEIGHTS_NAME, digest[:16], family)
    return export_graph(inception_graph(module), out, family=family, verify=verify, force=force,
                        dynamic_image_size=True, extra_metadata={contract.KEY_WEIGHTS_SHA256: digest})
