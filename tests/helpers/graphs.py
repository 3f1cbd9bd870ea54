"""Small ONNX graphs for the evaluator tests, built with onnx.helper (no torch).

Each graph is a few dense layers with fixed random weights, so outputs depend on every input value
and on nothing else. ``ICLEVR_NAMES`` / ``ICLEVR_SPACE`` are the 24 iCLEVR object labels the
conditional graphs use unless told otherwise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from gen_eval.data.labels import LabelSpace

ICLEVR_NAMES = [f"{c} {s}" for s in ("cube", "sphere", "cylinder")
                for c in ("gray", "red", "blue", "green", "brown", "purple", "cyan", "yellow")]
ICLEVR_SPACE = LabelSpace.multilabel(ICLEVR_NAMES)


def save_model(model: onnx.ModelProto, path: Path, metadata: dict | None) -> Path:
    """Attach ``metadata`` as metadata_props, check the model and write it to ``path``."""
    if metadata:
        for key, value in metadata.items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, str(value)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def onnx_model(nodes, inputs, outputs, initializers) -> onnx.ModelProto:
    """One graph ``g`` at opset 17, IR version 9."""
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return model


def _dims(batch, *rest):
    return [batch, *rest]


def make_generator(path: Path, *, latent_dim=8, image_shape=(3, 8, 8), labels=0, seed=0, metadata=True,
                   value_range="-1,1", z_name="z", labels_name="labels", out_name="image", dynamic_z=False,
                   z_rank4=False, static_batch=None, nan=False, label_space: LabelSpace | None = None) -> Path:
    """z [B, latent] (+ labels [B, L]) -> tanh(dense) -> image [B, C, H, W]."""
    rng = np.random.default_rng(seed)
    c, h, w = image_shape
    size = c * h * w
    batch = static_batch or "B"
    zdim = "Z" if dynamic_z else latent_dim
    z_shape = _dims(batch, zdim, 1, 1) if z_rank4 else _dims(batch, zdim)
    inputs = [helper.make_tensor_value_info(z_name, TensorProto.FLOAT, z_shape)]
    nodes, init = [], []
    flat_z = z_name
    if z_rank4:
        init.append(numpy_helper.from_array(np.array([0, -1], dtype=np.int64), "flat2"))
        nodes.append(helper.make_node("Reshape", [z_name, "flat2"], ["zflat"]))
        flat_z = "zflat"
    width = latent_dim + labels
    if labels:
        inputs.append(helper.make_tensor_value_info(labels_name, TensorProto.FLOAT, _dims(batch, labels)))
        nodes.append(helper.make_node("Concat", [flat_z, labels_name], ["zl"], axis=1))
        flat_z = "zl"
    weight = (rng.standard_normal((width, size)) / np.sqrt(width)).astype(np.float32)
    init += [numpy_helper.from_array(weight, "W"),
             numpy_helper.from_array(np.array([-1, c, h, w], dtype=np.int64), "shape")]
    nodes += [helper.make_node("MatMul", [flat_z, "W"], ["lin"])]
    if nan:  # log of a negative number -> NaN
        nodes += [helper.make_node("Log", ["lin"], ["act"])]
    else:
        nodes += [helper.make_node("Tanh", ["lin"], ["act"])]
    if value_range == "0,1":
        init.append(numpy_helper.from_array(np.array(0.5, dtype=np.float32), "half"))
        nodes += [helper.make_node("Mul", ["act", "half"], ["m"]), helper.make_node("Add", ["m", "half"], ["act01"])]
        last = "act01"
    else:
        last = "act"
    nodes.append(helper.make_node("Reshape", [last, "shape"], [out_name]))
    outputs = [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, _dims(batch, c, h, w))]
    meta = None
    if metadata:
        meta = {"gen_eval.role": "generator", "gen_eval.family": "test", "gen_eval.latent_dim": latent_dim,
                "gen_eval.image_shape": f"{c},{h},{w}", "gen_eval.value_range": value_range, "gen_eval.contract": "1"}
        if labels:
            meta["gen_eval.label_space"] = (label_space or ICLEVR_SPACE).to_json()
    return save_model(onnx_model(nodes, inputs, outputs, init), path, meta)


def make_dense_head(path: Path, *, role: str, image_shape=(3, 8, 8), out_dim=24, seed=1, metadata=True,
                    value_range="-1,1", activation="Sigmoid", in_name="image", out_name=None,
                    dynamic_hw=False, label_space: LabelSpace | None = None, extra_meta=None,
                    logits_dim: int = 0) -> Path:
    """image [B, C, H, W] -> activation(dense(flatten)) -> [B, out_dim] (classifier / features);
    ``logits_dim``: a features model's second output ``logits`` = features @ dense [B, logits_dim]."""
    rng = np.random.default_rng(seed)
    c, h, w = image_shape
    out_name = out_name or {"classifier": "probs", "features": "features"}[role]
    weight = (rng.standard_normal((c * h * w, out_dim)) / np.sqrt(c * h * w) * 3).astype(np.float32)
    in_shape = ["B", c, "H", "W"] if dynamic_hw else ["B", c, h, w]
    nodes = [helper.make_node("Flatten", [in_name], ["flat"], axis=1), helper.make_node("MatMul", ["flat", "W"], ["lin"])]
    if dynamic_hw:  # average-pool to a fixed size first so any H, W works
        nodes = [helper.make_node("GlobalAveragePool", [in_name], ["pooled"]),
                 helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
                 helper.make_node("MatMul", ["flat", "W"], ["lin"])]
        weight = rng.standard_normal((c, out_dim)).astype(np.float32)
    nodes.append(helper.make_node(activation, ["lin"], [out_name]))
    outputs = [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, ["B", out_dim])]
    initializers = [numpy_helper.from_array(weight, "W")]
    if logits_dim:
        nodes.append(helper.make_node("MatMul", [out_name, "W_logits"], ["logits"]))
        outputs.append(helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["B", logits_dim]))
        initializers.append(numpy_helper.from_array(
            (rng.standard_normal((out_dim, logits_dim)) * 2).astype(np.float32), "W_logits"))
    model = onnx_model(nodes, [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, in_shape)], outputs,
                       initializers)
    meta = None
    if metadata:
        meta = {"gen_eval.role": role, "gen_eval.value_range": value_range, "gen_eval.contract": "1"}
        if not dynamic_hw:
            meta["gen_eval.image_shape"] = f"{c},{h},{w}"
        if role == "classifier":
            meta["gen_eval.label_space"] = (label_space or ICLEVR_SPACE).to_json()
        meta.update(extra_meta or {})
    return save_model(model, path, meta)


def make_encoder(path: Path, decoder_weight: np.ndarray | None = None, *, latent_dim=8, image_shape=(3, 8, 8),
                 seed=2, metadata=True, value_range="0,1") -> Path:
    """image -> mu = flatten @ W, logvar = zeros (W: pseudo-inverse of the decoder's, when given)."""
    rng = np.random.default_rng(seed)
    c, h, w = image_shape
    weight = ((rng.standard_normal((c * h * w, latent_dim)) / np.sqrt(c * h * w)).astype(np.float32)
              if decoder_weight is None else decoder_weight.astype(np.float32))
    nodes = [helper.make_node("Flatten", ["image"], ["flat"], axis=1),
             helper.make_node("MatMul", ["flat", "W"], ["mu"]),
             helper.make_node("Mul", ["mu", "zero"], ["logvar"])]
    model = onnx_model(nodes, [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["B", c, h, w])],
                   [helper.make_tensor_value_info("mu", TensorProto.FLOAT, ["B", latent_dim]),
                    helper.make_tensor_value_info("logvar", TensorProto.FLOAT, ["B", latent_dim])],
                   [numpy_helper.from_array(weight, "W"), numpy_helper.from_array(np.array(0, np.float32), "zero")])
    meta = {"gen_eval.role": "encoder", "gen_eval.latent_dim": latent_dim, "gen_eval.value_range": value_range,
            "gen_eval.image_shape": f"{c},{h},{w}"} if metadata else None
    return save_model(model, path, meta)


def make_linear_decoder(path: Path, weight: np.ndarray, *, image_shape=(3, 8, 8), metadata=True, value_range="0,1"):
    """z -> image = reshape(z @ W) (no activation): exact reconstructions for tests of the MSE."""
    c, h, w = image_shape
    latent = weight.shape[0]
    nodes = [helper.make_node("MatMul", ["z", "W"], ["lin"]), helper.make_node("Reshape", ["lin", "shape"], ["image"])]
    model = onnx_model(nodes, [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["B", latent])],
                   [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["B", c, h, w])],
                   [numpy_helper.from_array(weight.astype(np.float32), "W"),
                    numpy_helper.from_array(np.array([-1, c, h, w], dtype=np.int64), "shape")])
    meta = {"gen_eval.role": "generator", "gen_eval.latent_dim": latent, "gen_eval.value_range": value_range,
            "gen_eval.image_shape": f"{c},{h},{w}"} if metadata else None
    return save_model(model, path, meta)
