"""Vision transformers as ONNX ``features`` graphs, built with the ``onnx`` package from numpy weights.

Two published extractors, each with its reference's preprocessing inside the graph (input: float32
[B, 3, H, W] in [0, 1], any size):

- ``dinov2-vitl14``: the DINOv2 ViT-L/14 backbone of ``torch.hub.load('facebookresearch/dinov2',
  'dinov2_vitl14')``, as EDM2's ``calculate_metrics`` (``fd_dinov2``) and dgm-eval run it: bicubic
  resize to 224 (torch's ``interpolate(..., 'bicubic', antialias=True)``, EDM2's default), ImageNet
  mean and std, the CLS token after the final LayerNorm (1024). The positional embedding, trained on a
  37x37 grid (518 pixels), is resized to the 16x16 grid of 224 pixels once, here, as the model's
  ``interpolate_pos_encoding`` does on every call (bicubic, a = -0.75, scale factor (16 + 0.1) / 37).
- ``clip-vitl14-336``: OpenAI CLIP ViT-L/14@336px's image tower as the CMMD reference code runs it
  (google-research/cmmd: ``jax.image.resize(..., 'bicubic')`` to 336, which is Keys' cubic a = -0.5
  with antialiasing, like torch's ``antialias=True``; CLIP's mean and std; the projected image
  embedding (768), L2-normalised).

The graph: Resize, normalise, patch Conv, CLS token and positions, pre-norm transformer blocks
(LayerNorm, multi-head attention, optional LayerScale, MLP with GELU or CLIP's QuickGELU), final
LayerNorm on the CLS token, optional projection and L2 normalisation. Weights are taken from the
published state dicts' own key names; a file that does not fit gets one line saying so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from gen_eval import contract
from gen_eval.errors import UserError

OPSET = 20
HEAD_DIM = 64  # both DINOv2 and CLIP: heads = width // 64

DINOV2_FAMILY = "dinov2-vitl14"
CLIP_FAMILY = "clip-vitl14-336"
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
DINOV2_INTERPOLATE_OFFSET = 0.1  # dinov2's interpolate_offset (hub models)


@dataclass
class _Block:
    norm1: tuple[np.ndarray, np.ndarray]
    qkv_weight: np.ndarray  # [3D, D], rows q then k then v (torch Linear / in_proj layout)
    qkv_bias: np.ndarray
    proj_weight: np.ndarray
    proj_bias: np.ndarray
    scale1: np.ndarray | None  # LayerScale gamma
    norm2: tuple[np.ndarray, np.ndarray]
    fc1_weight: np.ndarray
    fc1_bias: np.ndarray
    fc2_weight: np.ndarray
    fc2_bias: np.ndarray
    scale2: np.ndarray | None


@dataclass
class ViT:
    """A ViT's weights in one layout, whatever its publisher's key names."""
    family: str
    image_size: int
    patch_weight: np.ndarray  # [D, 3, p, p]
    patch_bias: np.ndarray | None
    cls_token: np.ndarray  # [D]
    positions: np.ndarray  # [1 + g*g, D] for the graph's grid
    pre_norm: tuple[np.ndarray, np.ndarray] | None
    blocks: list[_Block]
    final_norm: tuple[np.ndarray, np.ndarray]
    projection: np.ndarray | None  # [D, E]: features = cls @ projection
    eps: float
    activation: str  # "gelu" (erf) or "quick_gelu"
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    l2_normalise: bool

    @property
    def width(self) -> int:
        return self.patch_weight.shape[0]

    @property
    def output_size(self) -> int:
        return self.width if self.projection is None else self.projection.shape[1]


class _Weights:
    """Reads keys of a state dict with one-line errors, and remembers which were read."""

    def __init__(self, state: Mapping[str, np.ndarray], source: str, what: str, hint: str) -> None:
        self.state, self.source, self.what, self.hint = state, source, what, hint
        self.used: set[str] = set()

    def refuse(self, problem: str) -> UserError:
        return UserError(f"{self.source}: {problem}; it is not {self.what}: {self.hint}")

    def get(self, key: str, shape: tuple | None = None) -> np.ndarray:
        if key not in self.state:
            raise self.refuse(f"no {key}")
        value = np.asarray(self.state[key], dtype=np.float64)
        if shape is not None and value.shape != shape:
            raise self.refuse(f"{key} is {value.shape}, {shape} expected")
        if not np.all(np.isfinite(value)):
            raise self.refuse(f"{key} holds NaN or infinite values")
        self.used.add(key)
        return value

    def norm(self, prefix: str, width: int) -> tuple[np.ndarray, np.ndarray]:
        return self.get(f"{prefix}.weight", (width,)), self.get(f"{prefix}.bias", (width,))

    def count(self, prefix: str) -> int:
        """How many numbered children ``prefix.<i>.`` the state dict has (0, 1, ... without a gap)."""
        n = 0
        while any(key.startswith(f"{prefix}.{n}.") for key in self.state):
            n += 1
        return n

    def unused(self, within: str = "") -> None:
        left = sorted(key for key in set(self.state) - self.used if key.startswith(within))
        if left:
            raise self.refuse(f"it has weights the architecture does not use ({', '.join(left[:3])}"
                              f"{', ...' if len(left) > 3 else ''})")


def _cubic_weights(t: np.ndarray, a: float) -> np.ndarray:
    """Keys' cubic convolution weights of the four taps at offsets -1, 0, 1, 2 (torch's order)."""
    def near(x):
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return np.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], axis=-1)


def _bicubic_matrix(size_in: int, size_out: int, scale: float) -> np.ndarray:
    """[out, in] matrix of torch's ``interpolate(mode='bicubic', align_corners=False, scale_factor=scale)``
    along one axis: source x = (i + 0.5) / scale - 0.5, taps clamped to the edge, a = -0.75."""
    matrix = np.zeros((size_out, size_in))
    for i in range(size_out):
        x = (i + 0.5) / scale - 0.5
        left = int(np.floor(x))
        weights = _cubic_weights(np.array(x - left), -0.75)
        for tap, weight in zip(range(left - 1, left + 3), weights):
            matrix[i, min(max(tap, 0), size_in - 1)] += weight
    return matrix


def dinov2_positions(pos_embed: np.ndarray, grid: int) -> np.ndarray:
    """DINOv2's ``interpolate_pos_encoding`` for a ``grid`` x ``grid`` patch grid, in float64."""
    cls, patches = pos_embed[0, :1], pos_embed[0, 1:]
    m = int(round(np.sqrt(len(patches))))
    if grid == m:
        return pos_embed[0]
    scale = (grid + DINOV2_INTERPOLATE_OFFSET) / m
    if int(np.floor(m * scale)) != grid:
        raise UserError(f"DINOv2 positions for a {grid}x{grid} grid cannot come from a {m}x{m} grid")
    matrix = _bicubic_matrix(m, grid, scale)
    table = patches.reshape(m, m, -1)
    resized = np.einsum("ij,jkc,lk->ilc", matrix, table, matrix)
    return np.concatenate([cls, resized.reshape(grid * grid, -1)])


def dinov2_vit(state: Mapping[str, np.ndarray], source: str, image_size: int = 224) -> ViT:
    """The ViT of a DINOv2 hub state dict (``dinov2_vit*14_pretrain.pth``, without registers)."""
    w = _Weights(state, source, "a DINOv2 backbone state dict", "give dinov2_vitl14_pretrain.pth as Meta publishes it")
    patch = w.get("patch_embed.proj.weight")
    if patch.ndim != 4 or patch.shape[1] != 3 or patch.shape[2] != patch.shape[3]:
        raise w.refuse(f"patch_embed.proj.weight is {patch.shape}, [D, 3, p, p] expected")
    d, p = patch.shape[0], patch.shape[2]
    if d % HEAD_DIM or image_size % p:
        raise w.refuse(f"a width of {d} and patches of {p}")
    pos = w.get("pos_embed")
    m = int(round(np.sqrt(pos.shape[1] - 1))) if pos.ndim == 3 else 0
    if pos.shape != (1, 1 + m * m, d):
        raise w.refuse(f"pos_embed is {pos.shape}, [1, 1 + M*M, {d}] expected")
    if "register_tokens" in state:
        raise w.refuse("register tokens (the *_reg4 models)")
    w.used.add("mask_token")  # training only
    blocks = []
    for i in range(w.count("blocks")):
        b = f"blocks.{i}"
        hidden = w.get(f"{b}.mlp.fc1.weight").shape[0]
        blocks.append(_Block(
            w.norm(f"{b}.norm1", d), w.get(f"{b}.attn.qkv.weight", (3 * d, d)), w.get(f"{b}.attn.qkv.bias", (3 * d,)),
            w.get(f"{b}.attn.proj.weight", (d, d)), w.get(f"{b}.attn.proj.bias", (d,)),
            w.get(f"{b}.ls1.gamma", (d,)) if f"{b}.ls1.gamma" in state else None, w.norm(f"{b}.norm2", d),
            w.get(f"{b}.mlp.fc1.weight", (hidden, d)), w.get(f"{b}.mlp.fc1.bias", (hidden,)),
            w.get(f"{b}.mlp.fc2.weight", (d, hidden)), w.get(f"{b}.mlp.fc2.bias", (d,)),
            w.get(f"{b}.ls2.gamma", (d,)) if f"{b}.ls2.gamma" in state else None))
    if not blocks:
        raise w.refuse("no blocks.0 (a block_chunks layout or another model)")
    vit = ViT(DINOV2_FAMILY, image_size, patch, w.get("patch_embed.proj.bias", (d,)),
              w.get("cls_token", (1, 1, d))[0, 0], dinov2_positions(pos, image_size // p), None, blocks,
              w.norm("norm", d), None, 1e-6, "gelu", IMAGENET_MEAN, IMAGENET_STD, False)
    w.unused()
    return vit


def clip_vit(state: Mapping[str, np.ndarray], source: str) -> ViT:
    """The image tower of an OpenAI CLIP ViT state dict (``visual.*`` of ``ViT-L-14-336px.pt``)."""
    w = _Weights(state, source, "an OpenAI CLIP ViT", "give ViT-L-14-336px.pt as OpenAI publishes it")
    patch = w.get("visual.conv1.weight")
    if patch.ndim != 4 or patch.shape[1] != 3 or patch.shape[2] != patch.shape[3]:
        raise w.refuse(f"visual.conv1.weight is {patch.shape}, [D, 3, p, p] expected")
    d, p = patch.shape[0], patch.shape[2]
    positions = w.get("visual.positional_embedding")
    grid = int(round(np.sqrt(positions.shape[0] - 1))) if positions.ndim == 2 else 0
    if d % HEAD_DIM or positions.shape != (1 + grid * grid, d) or grid == 0:
        raise w.refuse(f"visual.positional_embedding is {positions.shape} for a width of {d}")
    blocks = []
    for i in range(w.count("visual.transformer.resblocks")):
        b = f"visual.transformer.resblocks.{i}"
        hidden = w.get(f"{b}.mlp.c_fc.weight").shape[0]
        blocks.append(_Block(
            w.norm(f"{b}.ln_1", d), w.get(f"{b}.attn.in_proj_weight", (3 * d, d)),
            w.get(f"{b}.attn.in_proj_bias", (3 * d,)), w.get(f"{b}.attn.out_proj.weight", (d, d)),
            w.get(f"{b}.attn.out_proj.bias", (d,)), None, w.norm(f"{b}.ln_2", d),
            w.get(f"{b}.mlp.c_fc.weight", (hidden, d)), w.get(f"{b}.mlp.c_fc.bias", (hidden,)),
            w.get(f"{b}.mlp.c_proj.weight", (d, hidden)), w.get(f"{b}.mlp.c_proj.bias", (d,)), None))
    if not blocks:
        raise w.refuse("no visual.transformer.resblocks.0")
    projection = w.get("visual.proj")
    if projection.ndim != 2 or projection.shape[0] != d:
        raise w.refuse(f"visual.proj is {projection.shape}, [{d}, E] expected")
    vit = ViT(CLIP_FAMILY, grid * p, patch, None, w.get("visual.class_embedding", (d,)), positions,
              w.norm("visual.ln_pre", d), blocks, w.norm("visual.ln_post", d), projection, 1e-5, "quick_gelu",
              CLIP_MEAN, CLIP_STD, True)
    w.unused("visual.")
    return vit


class _Graph:
    def __init__(self) -> None:
        self.nodes: list = []
        self.initializers: list = []
        self.count = 0

    def constant(self, hint: str, value, dtype=np.float32) -> str:
        from onnx import numpy_helper

        self.count += 1
        name = f"{hint}_{self.count}"
        self.initializers.append(numpy_helper.from_array(np.array(value, dtype=dtype, order="C"), name))  # 0-d stays 0-d
        return name

    def node(self, op: str, inputs: list[str], hint: str, output: str | None = None, **attributes) -> str:
        from onnx import helper

        self.count += 1
        out = output or f"{hint}_{self.count}"
        self.nodes.append(helper.make_node(op, inputs, [out], name=f"{hint}_{self.count}", **attributes))
        return out

    def linear(self, x: str, weight: np.ndarray, bias: np.ndarray | None, hint: str) -> str:
        out = self.node("MatMul", [x, self.constant(hint + ".w", weight.T)], hint)
        return out if bias is None else self.node("Add", [out, self.constant(hint + ".b", bias)], hint + ".bias")

    def layer_norm(self, x: str, norm: tuple[np.ndarray, np.ndarray], eps: float, hint: str) -> str:
        return self.node("LayerNormalization", [x, self.constant(hint + ".w", norm[0]),
                                                self.constant(hint + ".b", norm[1])], hint, axis=-1, epsilon=eps)

    def activation(self, x: str, kind: str, hint: str) -> str:
        if kind == "quick_gelu":  # CLIP: x * sigmoid(1.702 x)
            gate = self.node("Sigmoid", [self.node("Mul", [x, self.constant("k", 1.702)], hint)], hint)
            return self.node("Mul", [x, gate], hint)
        erf = self.node("Erf", [self.node("Mul", [x, self.constant("r", 1 / np.sqrt(2.0))], hint)], hint)
        half = self.node("Mul", [x, self.constant("h", 0.5)], hint)
        return self.node("Mul", [half, self.node("Add", [erf, self.constant("one", 1.0)], hint)], hint)


def _attention(g: _Graph, x: str, block: _Block, heads: int, hint: str) -> str:
    d = block.proj_weight.shape[0]
    qkv = g.linear(x, block.qkv_weight, block.qkv_bias, hint + ".qkv")
    qkv = g.node("Reshape", [qkv, g.constant("shape", [0, 0, 3, heads, d // heads], np.int64)], hint)
    qkv = g.node("Transpose", [qkv], hint, perm=[2, 0, 3, 1, 4])  # [3, B, heads, N, hd]
    q, k, v = (g.node("Gather", [qkv, g.constant("i", i, np.int64)], hint, axis=0) for i in range(3))
    q = g.node("Mul", [q, g.constant("scale", (d // heads) ** -0.5)], hint)
    scores = g.node("MatMul", [q, g.node("Transpose", [k], hint, perm=[0, 1, 3, 2])], hint)
    out = g.node("MatMul", [g.node("Softmax", [scores], hint, axis=-1), v], hint)
    out = g.node("Reshape", [g.node("Transpose", [out], hint, perm=[0, 2, 1, 3]),
                             g.constant("shape", [0, 0, d], np.int64)], hint)
    return g.linear(out, block.proj_weight, block.proj_bias, hint + ".proj")


def _preprocess(g: _Graph, vit: ViT) -> str:
    """Bicubic resize (Keys a = -0.5, antialiased when shrinking, weights renormalised at the border, as
    torch's ``antialias=True`` and jax.image.resize), then (x - mean) / std."""
    shape = g.node("Shape", [contract.INPUT_IMAGE], "shape")
    batch_channels = g.node("Slice", [shape, g.constant("start", [0], np.int64), g.constant("stop", [2], np.int64)],
                            "batch_channels")
    sizes = g.node("Concat", [batch_channels, g.constant("size", [vit.image_size] * 2, np.int64)], "sizes", axis=0)
    resized = g.node("Resize", [contract.INPUT_IMAGE, "", "", sizes], "resize", mode="cubic", cubic_coeff_a=-0.5,
                     antialias=1, exclude_outside=1, coordinate_transformation_mode="half_pixel")
    centred = g.node("Sub", [resized, g.constant("mean", np.reshape(vit.mean, (1, 3, 1, 1)))], "mean")
    return g.node("Div", [centred, g.constant("std", np.reshape(vit.std, (1, 3, 1, 1)))], "std")


def vit_model(vit: ViT, weights_sha256: str, published_sha256: str):
    """The features ``ModelProto`` (output ``features`` [B, D]) with gen-eval's metadata; the family is
    the published name only when ``weights_sha256`` is the published file's."""
    import onnx
    from onnx import TensorProto, helper

    g = _Graph()
    d, p = vit.width, vit.patch_weight.shape[2]
    heads = d // HEAD_DIM
    x = _preprocess(g, vit)
    conv_inputs = [x, g.constant("patch.w", vit.patch_weight)]
    if vit.patch_bias is not None:
        conv_inputs.append(g.constant("patch.b", vit.patch_bias))
    x = g.node("Conv", conv_inputs, "patch", kernel_shape=[p, p], strides=[p, p])
    x = g.node("Transpose", [x], "nhwc", perm=[0, 2, 3, 1])  # tokens row by row, as torch's flatten(2)
    x = g.node("Reshape", [x, g.constant("shape", [0, -1, d], np.int64)], "tokens")  # [B, g*g, D]
    batch = g.node("Slice", [g.node("Shape", [x], "shape"), g.constant("start", [0], np.int64),
                             g.constant("stop", [1], np.int64)], "batch")
    cls_shape = g.node("Concat", [batch, g.constant("one_d", [1, d], np.int64)], "cls_shape", axis=0)
    cls = g.node("Expand", [g.constant("cls", vit.cls_token.reshape(1, 1, d)), cls_shape], "cls")
    x = g.node("Concat", [cls, x], "with_cls", axis=1)
    x = g.node("Add", [x, g.constant("positions", vit.positions[None])], "positions")
    if vit.pre_norm is not None:
        x = g.layer_norm(x, vit.pre_norm, vit.eps, "pre_norm")
    for i, block in enumerate(vit.blocks):
        h = _attention(g, g.layer_norm(x, block.norm1, vit.eps, f"block{i}.norm1"), block, heads, f"block{i}.attn")
        if block.scale1 is not None:
            h = g.node("Mul", [h, g.constant(f"block{i}.ls1", block.scale1)], f"block{i}.ls1")
        x = g.node("Add", [x, h], f"block{i}.residual1")
        h = g.linear(g.layer_norm(x, block.norm2, vit.eps, f"block{i}.norm2"), block.fc1_weight, block.fc1_bias,
                     f"block{i}.fc1")
        h = g.linear(g.activation(h, vit.activation, f"block{i}.act"), block.fc2_weight, block.fc2_bias,
                     f"block{i}.fc2")
        if block.scale2 is not None:
            h = g.node("Mul", [h, g.constant(f"block{i}.ls2", block.scale2)], f"block{i}.ls2")
        x = g.node("Add", [x, h], f"block{i}.residual2")
    cls_out = g.node("Gather", [x, g.constant("first", 0, np.int64)], "cls_token", axis=1)  # [B, D]
    x = g.layer_norm(cls_out, vit.final_norm, vit.eps, "final_norm")
    if vit.projection is not None:
        x = g.node("MatMul", [x, g.constant("projection", vit.projection)], "projection")
    if vit.l2_normalise:
        x = g.node("Div", [x, g.node("ReduceL2", [x, g.constant("axes", [-1], np.int64)], "norm", keepdims=1)],
                   "l2", output=contract.OUTPUT_FEATURES)
    else:
        x = g.node("Identity", [x], "features", output=contract.OUTPUT_FEATURES)
    graph = helper.make_graph(
        g.nodes, vit.family.replace("-", "_"),
        [helper.make_tensor_value_info(contract.INPUT_IMAGE, TensorProto.FLOAT, ["batch", 3, "height", "width"])],
        [helper.make_tensor_value_info(contract.OUTPUT_FEATURES, TensorProto.FLOAT, ["batch", vit.output_size])],
        g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="gen-eval")
    model.ir_version = 10
    published = weights_sha256 == published_sha256
    helper.set_model_props(model, {
        contract.KEY_ROLE: "features",
        contract.KEY_FAMILY: vit.family if published else vit.family + "-other-weights",
        contract.KEY_VALUE_RANGE: contract.format_value_range((0.0, 1.0)),
        contract.KEY_CONTRACT: contract.CONTRACT_VERSION,
        contract.KEY_WEIGHTS_SHA256: weights_sha256,
    })
    onnx.checker.check_model(model)
    return model
