"""Classifier/feature input preparation matches torch: bilinear resize, rescaling, quantisation, grids."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.utils import make_grid as tv_make_grid

from gen_eval.evaluator.grid import make_grid
from gen_eval.evaluator.preprocess import quantize, rescale, resize_bilinear, to_model_input


@pytest.mark.parametrize("src, dst", [((8, 8), (12, 12)), ((64, 64), (299, 299)), ((28, 20), (7, 9)), ((5, 5), (5, 5))])
def test_resize_equals_torch_bilinear_align_corners_false(src, dst):
    x = np.random.default_rng(0).random((2, 3, *src), dtype=np.float32)
    expected = F.interpolate(torch.from_numpy(x), size=dst, mode="bilinear", align_corners=False).numpy()
    np.testing.assert_allclose(resize_bilinear(x, dst), expected, atol=2e-6)


def test_to_model_input_rescales_and_repeats_grey():
    x = np.random.default_rng(1).random((2, 1, 8, 8), dtype=np.float32)  # [0, 1], grey
    out = to_model_input(x, (0, 1), (-1, 1), (3, 16, 16))
    expected = F.interpolate(torch.from_numpy(x).repeat(1, 3, 1, 1), size=(16, 16), mode="bilinear",
                             align_corners=False) * 2 - 1
    np.testing.assert_allclose(out, expected.numpy(), atol=3e-6)
    np.testing.assert_allclose(rescale(out, (-1, 1), (0, 1)), (expected.numpy() + 1) / 2, atol=3e-6)


def test_quantize_matches_torchvision_save_image_rounding():
    x = np.random.default_rng(2).uniform(-1.2, 1.2, (2, 3, 5, 5)).astype(np.float32)
    t = torch.from_numpy(x)
    u8 = ((t.clamp(-1, 1) + 1) / 2).mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8)
    np.testing.assert_allclose(quantize(x, (-1, 1)), (u8.float() / 255 * 2 - 1).numpy(), atol=1e-6)


@pytest.mark.parametrize("n, nrow, channels", [(32, 8, 3), (5, 8, 3), (10, 4, 1)])
def test_grid_equals_torchvision_make_grid(n, nrow, channels):
    images = np.random.default_rng(3).integers(0, 256, (n, channels, 6, 7), dtype=np.uint8)
    expected = tv_make_grid(torch.from_numpy(images), nrow=nrow, padding=2).permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(make_grid(images, nrow), expected)
