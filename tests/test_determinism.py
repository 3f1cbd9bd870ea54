"""What is bit-identical and what is only within tolerance (README, "Same numbers on every machine").

Bit-identical on every machine: the latent noise (per sample index, whatever the batch size or
shard; also `selftest`'s sha256 check) and the index ranges of shards. Bit-identical on one machine
with the same settings: every model output and every number computed from them. Across batch sizes
and thread counts (as across CPUs and GPUs) float32 kernels may round differently: model outputs are
equal within the float32 rule of the export gate and `selftest`, never asserted bit for bit here.
"""

from __future__ import annotations

import numpy as np

import gen_eval.conformance as conformance
from gen_eval.conformance import cases
from gen_eval.evaluator.features import features_of_uint8
from gen_eval.evaluator.model import load_model
from gen_eval.evaluator.noise import latent_noise
from gen_eval.evaluator.runtime import Runtime
from gen_eval.evaluator.sampling import shard_indices
from gen_eval.evaluator.stats import FeatureStats


def _outputs(threads: int, batch_size: int) -> dict[str, np.ndarray]:
    runtime = Runtime("cpu", threads=threads)
    generator, classifier, features = (load_model(conformance.DATA / f"{name}.onnx", runtime=runtime,
                                                  batch_size=batch_size)
                                       for name in ("generator", "classifier", "features"))
    conds = cases.conditions()
    images = generator.generate(latent_noise(0, np.arange(len(conds)), cases.LATENT_DIM), conds)
    real = np.ascontiguousarray(cases.real_images("a")[:40].transpose(0, 3, 1, 2))
    return {"images": images, "probs": classifier.run(image=images)["probs"], "features": features_of_uint8(features, real)}


def test_same_settings_twice_are_bit_identical():
    first, second = _outputs(2, 8), _outputs(2, 8)
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)


def test_other_batch_sizes_and_thread_counts_agree_within_float32_precision():
    reference = _outputs(2, 64)
    for threads, batch_size in ((2, 1), (2, 7), (1, 64)):
        other = _outputs(threads, batch_size)
        for key, value in reference.items():
            scale = float(np.max(np.abs(value)))
            np.testing.assert_allclose(other[key], value, rtol=0, atol=2.0 ** -16 * scale, err_msg=key)


def test_noise_and_shards_are_bit_identical_whatever_the_split():
    whole = latent_noise(5, np.arange(1000), 16)
    pieces = np.concatenate([latent_noise(5, shard_indices(1000, (k, 3)), 16) for k in range(1, 4)])
    np.testing.assert_array_equal(pieces, whole)
    assert [shard_indices(1000, (k, 3)) for k in (1, 2, 3)] == [range(0, 333), range(333, 666), range(666, 1000)]


def test_statistics_of_the_same_features_agree_across_batchings_to_float64_rounding():
    x = np.random.default_rng(0).standard_normal((500, 32)).astype(np.float32)
    whole, batched = FeatureStats(32), FeatureStats(32)
    whole.update(x)
    for start in range(0, 500, 7):
        batched.update(x[start : start + 7])
    assert whole.n == batched.n
    np.testing.assert_allclose(batched.mu, whole.mu, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(batched.sigma, whole.sigma, rtol=1e-12, atol=1e-15)
