"""pytorch-fid's FID Inception-v3 as an ONNX graph, built with the ``onnx`` package from a numpy state dict.

The same network and input handling as :mod:`gen_eval.exporter.inception` (torchvision's Inception3
with pytorch-fid's three patches), node for node as torch's exporter writes it: each BasicConv2d is
one Conv (its BatchNorm folded in, here in float64) and a Relu; the A, C and first E blocks pool with
an average that ignores padded zeros, the last E block with a max; pool3 is a global average; the
logits are pool3 times ``fc.weight`` without the bias (torch-fidelity's ``logits_unbiased``). The
image input is float32 [B, 3, H, W] in [0, 1] of any size, resized to 299 inside the graph.

No torch: this is how ``gen-eval weights get inception`` converts the published weights file.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from gen_eval import contract
from gen_eval.errors import UserError
from gen_eval.exporter.fid_weights import (
    FID_INPUT_SIZE,
    FID_NUM_CLASSES,
    FID_WEIGHTS_NAME,
    PREPROCESSINGS,
    inception_family,
)

OPSET = 20  # as gen_eval.exporter.convert
BN_EPS = 0.001  # torchvision's BasicConv2d
FEATURE_DIM = 2048

# (name, stride, padding): padding "same" keeps the size (kernel // 2 on each side)
_STEM = [("Conv2d_1a_3x3", 2, 0), ("Conv2d_2a_3x3", 1, 0), ("Conv2d_2b_3x3", 1, "same"), "maxpool",
         ("Conv2d_3b_1x1", 1, 0), ("Conv2d_4a_3x3", 1, 0), "maxpool"]
_BLOCKS = [("Mixed_5b", "A"), ("Mixed_5c", "A"), ("Mixed_5d", "A"), ("Mixed_6a", "B"), ("Mixed_6b", "C"),
           ("Mixed_6c", "C"), ("Mixed_6d", "C"), ("Mixed_6e", "C"), ("Mixed_7a", "D"), ("Mixed_7b", "E"),
           ("Mixed_7c", "E_max")]


class _Builder:
    def __init__(self, state_dict: Mapping[str, np.ndarray], source: str) -> None:
        self.state = state_dict
        self.source = source
        self.used: set[str] = set()
        self.nodes: list = []
        self.initializers: list = []
        self.count = 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def weight(self, key: str) -> np.ndarray:
        if key not in self.state:
            raise UserError(f"{self.source} has no {key}; it does not fit pytorch-fid's Inception-v3: "
                            f"give pytorch-fid's {FID_WEIGHTS_NAME}")
        self.used.add(key)
        return np.asarray(self.state[key], dtype=np.float64)

    def constant(self, hint: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], hint: str, **attributes) -> str:
        from onnx import helper

        out = self.name(hint)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attributes))
        return out

    def conv(self, x: str, key: str, stride: int = 1, padding: int | str = "same") -> str:
        """torchvision's BasicConv2d (conv without bias, BatchNorm eps 0.001, ReLU), the BN folded in."""
        kernel = self.weight(f"{key}.conv.weight")
        gamma, beta = self.weight(f"{key}.bn.weight"), self.weight(f"{key}.bn.bias")
        mean, var = self.weight(f"{key}.bn.running_mean"), self.weight(f"{key}.bn.running_var")
        self.used.add(f"{key}.bn.num_batches_tracked")
        if kernel.ndim != 4 or not gamma.shape == beta.shape == mean.shape == var.shape == (kernel.shape[0],):
            raise UserError(f"{self.source}: {key} has shapes that do not fit pytorch-fid's Inception-v3; "
                            f"give pytorch-fid's {FID_WEIGHTS_NAME}")
        scale = gamma / np.sqrt(var + BN_EPS)
        folded = (kernel * scale[:, None, None, None]).astype(np.float32)
        bias = (beta - mean * scale).astype(np.float32)
        kh, kw = kernel.shape[2:]
        ph, pw = (kh // 2, kw // 2) if padding == "same" else (padding, padding)
        out = self.node("Conv", [x, self.constant(f"{key}.weight", folded), self.constant(f"{key}.bias", bias)], key,
                        kernel_shape=[kh, kw], strides=[stride, stride], pads=[ph, pw, ph, pw])
        return self.node("Relu", [out], key + ".relu")

    def max_pool(self, x: str, stride: int = 2, pad: int = 0) -> str:
        return self.node("MaxPool", [x], "maxpool", kernel_shape=[3, 3], strides=[stride, stride], pads=[pad] * 4)

    def avg_pool(self, x: str) -> str:
        """TensorFlow's 3x3 average pool, stride 1: padded zeros do not count."""
        return self.node("AveragePool", [x], "avgpool", kernel_shape=[3, 3], strides=[1, 1], pads=[1] * 4,
                         count_include_pad=0)

    def concat(self, parts: list[str], hint: str) -> str:
        return self.node("Concat", parts, hint, axis=1)

    def block(self, x: str, key: str, kind: str) -> str:
        c = lambda inp, branch, **kw: self.conv(inp, f"{key}.{branch}", **kw)  # noqa: E731
        if kind == "A":
            dbl = c(c(c(x, "branch3x3dbl_1"), "branch3x3dbl_2"), "branch3x3dbl_3")
            parts = [c(x, "branch1x1"), c(c(x, "branch5x5_1"), "branch5x5_2"), dbl, c(self.avg_pool(x), "branch_pool")]
        elif kind == "B":
            dbl = c(c(c(x, "branch3x3dbl_1"), "branch3x3dbl_2"), "branch3x3dbl_3", stride=2, padding=0)
            parts = [c(x, "branch3x3", stride=2, padding=0), dbl, self.max_pool(x)]
        elif kind == "C":
            seven = c(c(c(x, "branch7x7_1"), "branch7x7_2"), "branch7x7_3")
            dbl = x
            for i in range(1, 6):
                dbl = c(dbl, f"branch7x7dbl_{i}")
            parts = [c(x, "branch1x1"), seven, dbl, c(self.avg_pool(x), "branch_pool")]
        elif kind == "D":
            three = c(c(x, "branch3x3_1"), "branch3x3_2", stride=2, padding=0)
            seven = c(c(c(c(x, "branch7x7x3_1"), "branch7x7x3_2"), "branch7x7x3_3"), "branch7x7x3_4", stride=2, padding=0)
            parts = [three, seven, self.max_pool(x)]
        else:  # E, and the last block's E with a max pool
            first = c(x, "branch3x3_1")
            three = self.concat([c(first, "branch3x3_2a"), c(first, "branch3x3_2b")], f"{key}.3x3")
            dbl = c(c(x, "branch3x3dbl_1"), "branch3x3dbl_2")
            dbl = self.concat([c(dbl, "branch3x3dbl_3a"), c(dbl, "branch3x3dbl_3b")], f"{key}.3x3dbl")
            pooled = self.max_pool(x, stride=1, pad=1) if kind == "E_max" else self.avg_pool(x)
            parts = [c(x, "branch1x1"), three, dbl, c(pooled, "branch_pool")]
        return self.concat(parts, key)

    def preprocess(self, image: str, preprocessing: str) -> str:
        """pytorch-fid: bilinear resize to 299 (half-pixel centres, as F.interpolate with
        align_corners=False), then 2x-1; torch-fidelity: x*255, TensorFlow 1's resize (asymmetric
        coordinates), then (x-128)/128."""
        shape = self.node("Shape", [image], "shape")
        batch_channels = self.node("Slice", [shape, self.constant("start", np.array([0], np.int64)),
                                             self.constant("stop", np.array([2], np.int64))], "batch_channels")
        size = self.constant("size", np.array([FID_INPUT_SIZE, FID_INPUT_SIZE], np.int64))
        sizes = self.node("Concat", [batch_channels, size], "sizes", axis=0)

        def scalar(value: float) -> str:
            return self.constant("scalar", np.array(value, np.float32))

        if preprocessing == "pytorch-fid":
            resized = self.node("Resize", [image, "", "", sizes], "resize", mode="linear",
                                coordinate_transformation_mode="half_pixel")
            return self.node("Sub", [self.node("Mul", [resized, scalar(2.0)], "scale"), scalar(1.0)], "shift")
        scaled = self.node("Mul", [image, scalar(255.0)], "to255")
        resized = self.node("Resize", [scaled, "", "", sizes], "resize", mode="linear",
                            coordinate_transformation_mode="asymmetric")
        return self.node("Div", [self.node("Sub", [resized, scalar(128.0)], "centre"), scalar(128.0)], "scale")


def inception_model(state_dict: Mapping[str, np.ndarray], weights_sha256: str, *, source: str = "weights",
                    preprocessing: str = "pytorch-fid"):
    """The features ``ModelProto`` (outputs ``features`` [B, 2048], ``logits`` [B, 1008]) with gen-eval's
    metadata; a one-line error when the state dict is not pytorch-fid's Inception-v3."""
    import onnx
    from onnx import TensorProto, helper

    if preprocessing not in PREPROCESSINGS:
        raise UserError(f"preprocessing {preprocessing!r} is unknown; choose one of {', '.join(PREPROCESSINGS)}")
    builder = _Builder(state_dict, source)
    x = builder.preprocess(contract.INPUT_IMAGE, preprocessing)
    for step in _STEM:
        x = builder.max_pool(x) if step == "maxpool" else builder.conv(x, step[0], stride=step[1], padding=step[2])
    for key, kind in _BLOCKS:
        x = builder.block(x, key, kind)
    pooled = builder.node("GlobalAveragePool", [x], "pool3")
    fc = builder.weight("fc.weight")
    builder.used.add("fc.bias")
    if fc.shape != (FID_NUM_CLASSES, FEATURE_DIM):
        raise UserError(f"{source}: fc.weight is {fc.shape}, pytorch-fid's Inception-v3 has "
                        f"{(FID_NUM_CLASSES, FEATURE_DIM)}; give pytorch-fid's {FID_WEIGHTS_NAME}")
    builder.nodes.append(helper.make_node("Flatten", [pooled], [contract.OUTPUT_FEATURES], axis=1, name="flatten"))
    builder.nodes.append(helper.make_node("MatMul", [contract.OUTPUT_FEATURES,
                                                     builder.constant("fc_weight_t", fc.T.astype(np.float32))],
                                          [contract.OUTPUT_LOGITS], name="logits"))
    unused = sorted(set(state_dict) - builder.used)
    if unused:
        raise UserError(f"{source} has weights pytorch-fid's Inception-v3 does not use ({', '.join(unused[:3])}"
                        f"{', ...' if len(unused) > 3 else ''}); give pytorch-fid's {FID_WEIGHTS_NAME}")
    graph = helper.make_graph(
        builder.nodes, "fid_inception_v3",
        [helper.make_tensor_value_info(contract.INPUT_IMAGE, TensorProto.FLOAT, ["batch", 3, "height", "width"])],
        [helper.make_tensor_value_info(contract.OUTPUT_FEATURES, TensorProto.FLOAT, ["batch", FEATURE_DIM]),
         helper.make_tensor_value_info(contract.OUTPUT_LOGITS, TensorProto.FLOAT, ["batch", FID_NUM_CLASSES])],
        builder.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="gen-eval")
    model.ir_version = 10  # what onnxruntime >= 1.17 reads
    helper.set_model_props(model, {
        contract.KEY_ROLE: "features",
        contract.KEY_FAMILY: inception_family(preprocessing, weights_sha256),
        contract.KEY_VALUE_RANGE: contract.format_value_range((0.0, 1.0)),
        contract.KEY_CONTRACT: contract.CONTRACT_VERSION,
        contract.KEY_WEIGHTS_SHA256: weights_sha256,
    })
    onnx.checker.check_model(model)
    return model
