"""gen_eval.data.images: loading with one-line errors, listing, atomic PNG, uint8 conversion."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gen_eval.data import images
from gen_eval.errors import UserError


def write_png(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path)
    return path


@pytest.fixture
def rgb() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (8, 6, 3), dtype=np.uint8)


def test_load_rgb_and_gray(tmp_path: Path, rgb: np.ndarray) -> None:
    path = write_png(tmp_path / "a.png", rgb)
    np.testing.assert_array_equal(images.load_image(path), rgb)
    gray = images.load_image(path, mode="L")
    assert gray.shape == (8, 6, 1) and gray.dtype == np.uint8


# Malformed image files: (case, how to make the file, expected words in the error).
BAD_IMAGES = [
    ("missing", None, "not found"),
    ("zero bytes", b"", "empty file"),
    ("text file", b"hello, not an image\n", "not an image"),
    ("truncated png", "truncated", "corrupt or truncated"),
    ("folder", "folder", "is a folder"),
]


@pytest.mark.parametrize("case, content, words", BAD_IMAGES, ids=[c[0] for c in BAD_IMAGES])
def test_load_image_errors(tmp_path: Path, rgb: np.ndarray, case: str, content, words: str) -> None:
    path = tmp_path / "bad.png"
    if content == "truncated":
        buffer = io.BytesIO()
        Image.fromarray(np.tile(rgb, (20, 20, 1))).save(buffer, format="PNG")
        path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    elif content == "folder":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(UserError) as info:
        images.load_image(path)
    message = str(info.value)
    assert words in message and str(path) in message and "\n" not in message


def test_decompression_bomb_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_png(tmp_path / "big.png", np.zeros((64, 64, 3), np.uint8))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3000)  # 4096 pixels: over the limit, under 2x (a warning)
    with pytest.raises(UserError, match="too large"):
        images.load_image(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # > 2x the limit: Pillow's DecompressionBombError
    with pytest.raises(UserError, match="too large"):
        images.load_image(path)


def test_list_images(tmp_path: Path, rgb: np.ndarray) -> None:
    for name in ("b.png", "a.jpg", "c.PNG"):
        Image.fromarray(rgb).save(tmp_path / name, format="PNG")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / ".hidden.png").write_bytes(b"")
    (tmp_path / "sub.png").mkdir()
    assert [p.name for p in images.list_images(tmp_path)] == ["a.jpg", "b.png", "c.PNG"]
    with pytest.raises(UserError, match="not found"):
        images.list_images(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="holds no image files"):
        images.list_images(tmp_path / "empty")


def test_save_png_is_atomic_and_does_not_overwrite(tmp_path: Path, rgb: np.ndarray) -> None:
    path = images.save_png(rgb, tmp_path / "out.png")
    np.testing.assert_array_equal(images.load_image(path), rgb)
    with pytest.raises(UserError, match="force=True"):
        images.save_png(rgb[::-1], path)
    np.testing.assert_array_equal(images.load_image(path), rgb)
    images.save_png(rgb[::-1].copy(), path, force=True)
    np.testing.assert_array_equal(images.load_image(path), rgb[::-1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]
    gray = rgb[:, :, :1].copy()
    np.testing.assert_array_equal(images.load_image(images.save_png(gray, tmp_path / "g.png"), "L"), gray)


def test_png_bytes_are_deterministic(rgb: np.ndarray) -> None:
    assert images.png_bytes(rgb) == images.png_bytes(rgb.copy())


@pytest.mark.parametrize("value_range", [(-1.0, 1.0), (0.0, 1.0)])
def test_to_uint8_matches_torchvision_save_image(tmp_path: Path, value_range) -> None:
    torch = pytest.importorskip("torch")
    torchvision_utils = pytest.importorskip("torchvision.utils")
    lo, hi = value_range
    rng = np.random.default_rng(1)
    x = rng.uniform(lo - 0.2, hi + 0.2, (1, 3, 16, 16)).astype(np.float32)
    # values exactly on quantisation edges, where rounding differences would show
    x[0, 0, 0, :11] = (np.arange(11, dtype=np.float32) / 10) * (hi - lo) + lo
    x[0, 1, 0, :6] = np.array([0.5, 1.5, 2.5, 127.5, 128.5, 254.5], np.float32) / 255 * (hi - lo) + lo
    ours = images.to_uint8(x, value_range)
    path = tmp_path / "tv.png"
    tensor = torch.from_numpy(x)
    if value_range == (0.0, 1.0):
        torchvision_utils.save_image(tensor, path)
    else:
        torchvision_utils.save_image(tensor, path, normalize=True, value_range=value_range)
    reference = np.asarray(Image.open(path).convert("RGB")).transpose(2, 0, 1)
    np.testing.assert_array_equal(ours[0], reference)


def test_from_uint8_inverts_to_uint8() -> None:
    u = np.arange(256, dtype=np.uint8).reshape(1, 1, 16, 16)
    for value_range in ((-1, 1), (0, 1)):
        f = images.from_uint8(u, value_range)
        assert f.dtype == np.float32 and f.min() == value_range[0] and f.max() == value_range[1]
        np.testing.assert_array_equal(images.to_uint8(f, value_range), u)
    with pytest.raises(ValueError):
        images.to_uint8(u.astype(np.float32), (1, 1))
