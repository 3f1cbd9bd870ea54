"""Conformance: the evaluator's numbers on this machine against float64 golden values in the package.

``selftest(device)`` runs five small seeded ONNX models (generator, classifier, features, VAE
encoder and decoder) through the evaluator's own pipeline with onnxruntime only (no torch) and
compares every result with golden values that torch computed in float64 from the same weights and
inputs (``gen_eval/conformance/build.py``). Tolerances: arrays by the export gate's float32 rule
(largest and RMS deviation), the classifier score exactly (the inputs keep every top-k decision at
least 1e-3 from a tie), the noise bit for bit, Fréchet distances and MSE within a stated relative
bound. Run it on a new machine or GPU before trusting its numbers: ``gen-eval selftest``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from gen_eval.conformance import cases
from gen_eval.data.imageset import ArrayImageSet

DATA = Path(__file__).with_name("data")


@dataclass
class Check:
    name: str
    value: float | str
    golden: float | str
    tolerance: str          # in words: "exact", "max 2.6e-06, rms 9.5e-07", "relative 1e-04"
    passed: bool


@dataclass
class SelftestReport:
    provider: str
    runtime: str
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def table(self) -> str:
        rows = [("check", "value", "golden", "tolerance", "pass")]
        rows += [(c.name, _fmt(c.value), _fmt(c.golden), c.tolerance, "ok" if c.passed else "FAIL") for c in self.checks]
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)

    def to_dict(self) -> dict:
        return {"passed": self.passed, "provider": self.provider, "runtime": self.runtime,
                "checks": [asdict(c) for c in self.checks]}


def _fmt(value: float | str) -> str:
    if isinstance(value, str):
        return value[:16]
    return f"{value:.10g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3e}"


def _array(name: str, got: np.ndarray, golden: np.ndarray, spec: dict) -> Check:
    diff = np.abs(np.asarray(got, np.float64) - golden)
    worst, rms = float(diff.max()), float(np.sqrt(np.mean(diff * diff)))
    passed = bool(np.isfinite(worst) and worst <= spec["tolerance_max"] and rms <= spec["tolerance_rms"])
    return Check(f"{name} (max |diff|)", worst, "float64",
                 f"max {spec['tolerance_max']:.1e}, rms {spec['tolerance_rms']:.1e} (rms {rms:.1e})", passed)


def _relative(name: str, got: float, spec: dict) -> Check:
    golden, bound = spec["value"], spec["relative_tolerance"]
    passed = bool(np.isfinite(got) and abs(got - golden) <= bound * abs(golden))
    return Check(name, got, golden, f"relative {bound:.0e}", passed)


def selftest(device: str = "auto", *, threads: int | None = None, batch_size: int | None = None) -> SelftestReport:
    """Run the conformance suite on ``device`` (auto, cpu, cuda, cuda:N); never raises on a miss."""
    from gen_eval.evaluator.features import features_of_uint8, generator_stats, imageset_stats
    from gen_eval.evaluator.frechet import frechet_distance
    from gen_eval.evaluator.model import load_model
    from gen_eval.evaluator.mse import reconstruction_mse
    from gen_eval.evaluator.noise import latent_noise
    from gen_eval.evaluator.runtime import Runtime
    from gen_eval.evaluator.score import classify_generated, score_generator

    golden = json.loads((DATA / "golden.json").read_text())["checks"]
    with np.load(DATA / "golden.npz") as stored:
        arrays = {k: stored[k] for k in stored.files}
    runtime = Runtime(device, threads=threads)
    models = {name: load_model(DATA / f"{name}.onnx", runtime=runtime, batch_size=batch_size)
              for name in ("generator", "classifier", "features", "encoder", "decoder")}
    report = SelftestReport(runtime.provider or "?", runtime.describe())
    rows, conds = cases.ARRAY_ROWS, cases.conditions()
    real_a, real_b = cases.real_images("a"), cases.real_images("b")

    noise = latent_noise(cases.NOISE_SEED, np.arange(cases.GENERATED_IMAGES), cases.LATENT_DIM)
    digest = hashlib.sha256(noise.tobytes()).hexdigest()
    report.checks.append(Check("noise (sha256)", digest, golden["noise"]["sha256"], "exact",
                               digest == golden["noise"]["sha256"]))

    generator, classifier = models["generator"], models["classifier"]
    report.checks.append(_array("generator.images", generator.generate(noise[:rows], conds[:rows]),
                                arrays["generator.images"], golden["generator.images"]))
    score, images = score_generator(generator, classifier, conds, cases.NOISE_SEED, label_space=cases.LABEL_SPACE)
    probs = classify_generated(classifier, images[:rows], generator.info.value_range)
    report.checks.append(_array("classifier.probs", probs, arrays["classifier.probs"], golden["classifier.probs"]))
    expected = golden["classifier.score"]["value"]
    report.checks.append(Check("classifier.score", score.value, expected, "exact", score.value == expected))

    features = models["features"]
    nchw_a = np.ascontiguousarray(real_a.transpose(0, 3, 1, 2))
    report.checks.append(_array("features", features_of_uint8(features, nchw_a[:rows]), arrays["features"],
                                golden["features"]))
    stats_a = imageset_stats(features, ArrayImageSet(real_a, format="conformance", source="real a"), progress=False)
    stats_b = imageset_stats(features, ArrayImageSet(real_b, format="conformance", source="real b"), progress=False)
    report.checks.append(_relative("fid.real", frechet_distance(stats_a.mu, stats_a.sigma, stats_b.mu, stats_b.sigma),
                                   golden["fid.real"]))
    stats_g = generator_stats(features, generator, cases.GENERATED_IMAGES, cases.NOISE_SEED, conditions=conds,
                              progress=False)
    report.checks.append(_relative("fid.generator",
                                   frechet_distance(stats_g.mu, stats_g.sigma, stats_a.mu, stats_a.sigma),
                                   golden["fid.generator"]))

    encoder, decoder = models["encoder"], models["decoder"]
    target = (nchw_a[:rows].astype(np.float32) / np.float32(255))
    report.checks.append(_array("encoder.mu", encoder.run(image=target)["mu"], arrays["encoder.mu"],
                                golden["encoder.mu"]))
    mse = reconstruction_mse(encoder, decoder, ArrayImageSet(real_a[:64], format="conformance", source="real a"),
                             progress=False)
    report.checks.append(_relative("mse", mse.value, golden["mse"]))
    return report


__all__ = ["Check", "SelftestReport", "selftest"]
