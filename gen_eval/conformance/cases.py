"""The conformance inputs: fixed, seeded, integer-exact, so every machine feeds the same bytes.

numpy's PCG64 integers are the same on every platform, and the noise comes from the evaluator's own
``latent_noise``; nothing here depends on a CPU's float32 arithmetic.
"""

from __future__ import annotations

import numpy as np

from gen_eval.data.labels import LabelSpace

IMAGE_SIZE = 16
FEATURES_SIZE = 24         # the features model takes 24x24: the evaluator's bilinear resize is checked too
LATENT_DIM = 16
VAE_LATENT_DIM = 8
FEATURE_DIM = 32
NOISE_SEED = 0
CONDITIONS = 32            # rows of the score check
REAL_IMAGES = 200          # each of the two real sets (more than FEATURE_DIM: full-rank covariances)
GENERATED_IMAGES = 200
ARRAY_ROWS = 16            # rows of each array check (images, probabilities, features, mu)
LABEL_SPACE = LabelSpace.multilabel(["red cube", "blue cube", "red sphere", "blue sphere", "red cylinder",
                                     "blue cylinder"])


def conditions() -> np.ndarray:
    """CONDITIONS multilabel rows with 1 to 3 labels each."""
    rng = np.random.default_rng(3)
    out = np.zeros((CONDITIONS, LABEL_SPACE.size), dtype=np.float32)
    for row in out:
        row[rng.choice(LABEL_SPACE.size, size=int(rng.integers(1, 4)), replace=False)] = 1.0
    return out


def real_images(which: str) -> np.ndarray:
    """uint8 [N, H, W, 3]: set "a" spans 0..255, set "b" has half the contrast (a different distribution)."""
    rng = np.random.default_rng({"a": 1, "b": 2}[which])
    coarse = rng.integers(0, 256, size=(REAL_IMAGES, 4, 4, 3), dtype=np.int64)
    fine = rng.integers(-24, 25, size=(REAL_IMAGES, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.int64)
    images = np.clip(coarse.repeat(4, axis=1).repeat(4, axis=2) + fine, 0, 255)
    if which == "b":
        images = images // 2 + 64
    return images.astype(np.uint8)
