"""Builds the conformance models and their float64 golden values (needs torch: the ``train`` extra).

    python -m gen_eval.conformance.build [--out DIR]

Each model has seeded weights and is exported by gen-eval's own exporter (parity-checked). Every
golden value is computed by torch in float64 from the same weights and the inputs of
:mod:`gen_eval.conformance.cases`, following the evaluator's documented pipeline step by step
(quantise like torchvision's ``save_image``, ``x / 255``, bilinear resize with align_corners=False,
float64 statistics, Fréchet distance, pooled top-k classifier score, MSE on [0, 1]). Array tolerances follow the
export gate's float32 rule, measured here: ``NOISE_FACTOR`` times torch float32's own distance from
float64, at least ``FLOAT32_FLOOR`` of the array's scale.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gen_eval.conformance import cases
from gen_eval.contract import ExportGraph
from gen_eval.evaluator.frechet import frechet_distance
from gen_eval.evaluator.noise import latent_noise
from gen_eval.evaluator.score import score_probs
from gen_eval.exporter.graphs import export_graph
from gen_eval.exporter.parity import OutputError, float32_tolerance

DATA = Path(__file__).with_name("data")
FID_RELATIVE_TOLERANCE = 1e-4         # Fréchet distance of fixed uint8 images (features differ by float32 noise only)
GENERATED_FID_RELATIVE_TOLERANCE = 1e-3  # generated images: float32 noise may flip a pixel's uint8 rounding
MSE_RELATIVE_TOLERANCE = 1e-5
MIN_SCORE_MARGIN = 1e-3               # every top-k decision of the score check is this far from a tie


class Generator(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(cases.LATENT_DIM + cases.LABEL_SPACE.size, 32 * 4 * 4)
        self.up = nn.Sequential(nn.ConvTranspose2d(32, 16, 4, 2, 1), nn.BatchNorm2d(16), nn.ReLU(),
                                nn.ConvTranspose2d(16, 3, 4, 2, 1), nn.Tanh())

    def forward(self, z, labels):
        return self.up(F.relu(self.fc(torch.cat([z, labels], 1))).view(-1, 32, 4, 4))


class Classifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.ReLU(), nn.Conv2d(16, 32, 3, 2, 1),
                                  nn.BatchNorm2d(32), nn.ReLU(), nn.Flatten(), nn.Linear(32 * 4 * 4, cases.LABEL_SPACE.size))

    def forward(self, image):
        return torch.sigmoid(self.body(image))


class Features(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.ReLU(), nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU(),
                                  nn.Flatten(), nn.Linear(32 * 6 * 6, cases.FEATURE_DIM))

    def forward(self, image):
        return self.body(image)


class Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 16, 4, 2, 1), nn.ReLU(), nn.Flatten())
        self.mu = nn.Linear(16 * 8 * 8, cases.VAE_LATENT_DIM)
        self.logvar = nn.Linear(16 * 8 * 8, cases.VAE_LATENT_DIM)

    def forward(self, image):
        h = self.body(image)
        return self.mu(h), self.logvar(h)


class Decoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(cases.VAE_LATENT_DIM, 16 * 8 * 8)
        self.up = nn.ConvTranspose2d(16, 3, 4, 2, 1)

    def forward(self, z):
        return torch.sigmoid(self.up(F.relu(self.fc(z)).view(-1, 16, 8, 8)))


def build_modules() -> dict[str, nn.Module]:
    """The five networks with seeded weights (torch's CPU generator gives the same weights everywhere)."""
    torch.manual_seed(20261127)
    modules = {"generator": Generator(), "classifier": Classifier(), "features": Features(),
               "encoder": Encoder(), "decoder": Decoder()}
    with torch.no_grad():
        bn = modules["generator"].up[1]
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 1.5)
        modules["classifier"].body[-1].weight.mul_(8.0)  # confident probabilities: top-k far from ties
        modules["features"].body[-1].weight.mul_(30.0)   # distances of a readable size (FID-like tens)
    return {name: m.eval() for name, m in modules.items()}


def graphs(modules: dict[str, nn.Module]) -> dict[str, ExportGraph]:
    s, f = cases.IMAGE_SIZE, cases.FEATURES_SIZE
    return {
        "generator": ExportGraph("generator", modules["generator"], ["z", "labels"],
                                 [(cases.LATENT_DIM,), (cases.LABEL_SPACE.size,)], ["image"], (3, s, s), (-1.0, 1.0),
                                 latent_dim=cases.LATENT_DIM, label_space=cases.LABEL_SPACE),
        "classifier": ExportGraph("classifier", modules["classifier"], ["image"], [(3, s, s)], ["probs"], (3, s, s),
                                  (-1.0, 1.0), label_space=cases.LABEL_SPACE),
        "features": ExportGraph("features", modules["features"], ["image"], [(3, f, f)], ["features"], (3, f, f),
                                (0.0, 1.0)),
        "encoder": ExportGraph("encoder", modules["encoder"], ["image"], [(3, s, s)], ["mu", "logvar"], (3, s, s),
                               (0.0, 1.0), latent_dim=cases.VAE_LATENT_DIM),
        "decoder": ExportGraph("generator", modules["decoder"], ["z"], [(cases.VAE_LATENT_DIM,)], ["image"], (3, s, s),
                               (0.0, 1.0), latent_dim=cases.VAE_LATENT_DIM),
    }


def _run(module: nn.Module, *arrays: np.ndarray, dtype=torch.float64) -> list[np.ndarray]:
    m = module.to(dtype)
    with torch.no_grad():
        out = m(*(torch.from_numpy(np.asarray(a)).to(dtype) for a in arrays))
    module.float()
    return [o.numpy().astype(np.float64) for o in (out if isinstance(out, tuple) else (out,))]


def _array_check(module: nn.Module, *inputs: np.ndarray, output: int = 0) -> tuple[np.ndarray, dict]:
    """Golden float64 output and its float32 tolerance (the export gate's rule, measured on these inputs)."""
    exact = _run(module, *inputs)[output]
    torch_error = OutputError.between(_run(module, *inputs, dtype=torch.float32)[output], exact)
    tolerance = float32_tolerance(exact, torch_error)
    return exact, {"tolerance_max": tolerance.max, "tolerance_rms": tolerance.rms,
                   "torch_float32_max": torch_error.max, "torch_float32_rms": torch_error.rms}


def _uint8_to_model(images_u8_nhwc: np.ndarray, size: int) -> np.ndarray:
    """x / 255 in float64, NCHW, bilinearly resized (align_corners=False) to ``size`` when it differs."""
    x = torch.from_numpy(images_u8_nhwc.transpose(0, 3, 1, 2).astype(np.float64) / 255.0)
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x.numpy()


def _quantise(images: np.ndarray, value_range=(-1.0, 1.0)) -> np.ndarray:
    """torchvision's save_image rounding: floor(clamp(x01 * 255 + 0.5, 0, 255)), NCHW -> NHWC uint8."""
    lo, hi = value_range
    x01 = (images - lo) / (hi - lo)
    return np.floor(np.clip(x01 * 255 + 0.5, 0, 255)).astype(np.uint8).transpose(0, 2, 3, 1)


def _frechet(a: np.ndarray, b: np.ndarray) -> float:
    return frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def _score_margin(probs: np.ndarray, conds: np.ndarray) -> float:
    """The smallest gap between the k-th and (k+1)-th probability over all rows (k = true labels)."""
    ordered = -np.sort(-probs, axis=1)
    ks = conds.sum(1).astype(int)
    return float(min(ordered[i, k - 1] - ordered[i, k] for i, k in enumerate(ks)))


def goldens(modules: dict[str, nn.Module]) -> tuple[dict, dict[str, np.ndarray]]:
    rows = cases.ARRAY_ROWS
    conds = cases.conditions()
    z = latent_noise(cases.NOISE_SEED, np.arange(cases.GENERATED_IMAGES), cases.LATENT_DIM)
    real_a, real_b = cases.real_images("a"), cases.real_images("b")
    arrays: dict[str, np.ndarray] = {}
    checks: dict[str, dict] = {}

    generated, checks["generator.images"] = _array_check(modules["generator"], z[:rows], conds[:rows])
    arrays["generator.images"] = generated
    images = _run(modules["generator"], z[: cases.CONDITIONS], conds)[0]
    probs = _run(modules["classifier"], images)[0]
    arrays["classifier.probs"], checks["classifier.probs"] = _array_check(modules["classifier"], images[:rows])
    margin = _score_margin(probs, conds)
    if margin < MIN_SCORE_MARGIN:
        raise RuntimeError(f"the score check's closest top-k decision is {margin:.2g} from a tie; change the seed")
    checks["classifier.score"] = {"value": score_probs(probs, conds, cases.LABEL_SPACE).value, "exact": True,
                                  "margin": margin}

    model_a = _uint8_to_model(real_a, cases.FEATURES_SIZE)
    arrays["features"], checks["features"] = _array_check(modules["features"], model_a[:rows])
    feats_a = _run(modules["features"], model_a)[0]
    feats_b = _run(modules["features"], _uint8_to_model(real_b, cases.FEATURES_SIZE))[0]
    checks["fid.real"] = {"value": _frechet(feats_a, feats_b), "relative_tolerance": FID_RELATIVE_TOLERANCE}

    all_conds = conds[np.arange(cases.GENERATED_IMAGES) % len(conds)]
    generated_u8 = _quantise(_run(modules["generator"], z, all_conds)[0])
    feats_g = _run(modules["features"], _uint8_to_model(generated_u8, cases.FEATURES_SIZE))[0]
    checks["fid.generator"] = {"value": _frechet(feats_g, feats_a),
                               "relative_tolerance": GENERATED_FID_RELATIVE_TOLERANCE}

    target = real_a[:64].transpose(0, 3, 1, 2).astype(np.float64) / 255.0
    arrays["encoder.mu"], checks["encoder.mu"] = _array_check(modules["encoder"], target[:rows])
    recon = _run(modules["decoder"], _run(modules["encoder"], target)[0])[0]
    checks["mse"] = {"value": float(np.mean((recon - target) ** 2)), "relative_tolerance": MSE_RELATIVE_TOLERANCE}

    noise = latent_noise(cases.NOISE_SEED, np.arange(cases.GENERATED_IMAGES), cases.LATENT_DIM)
    checks["noise"] = {"sha256": hashlib.sha256(noise.tobytes()).hexdigest(), "exact": True}
    return checks, arrays


def build(out: Path = DATA) -> None:
    modules = build_modules()
    out.mkdir(parents=True, exist_ok=True)
    for name, graph in graphs(modules).items():
        export_graph(graph, out / f"{name}.onnx", family="conformance", force=True)
    checks, arrays = goldens(modules)
    (out / "golden.json").write_text(json.dumps({"version": 1, "checks": checks}, indent=1) + "\n")
    with open(out / "golden.npz", "wb") as handle:
        np.savez_compressed(handle, **arrays)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DATA)
    build(parser.parse_args().out)


if __name__ == "__main__":
    main()
