"""Reading, writing and converting images (numpy + Pillow, torch-free).

Arrays are uint8 HxWxC for single images. :func:`to_uint8` and :func:`from_uint8` work on batches in
NCHW layout (what models take and give) — see their docstrings.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from gen_eval.errors import UserError
from gen_eval.fileio import atomic_path
from gen_eval.inputfiles import open_input

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")

# Fixed PNG parameters so the same pixels always give the same bytes (Pillow writes no timestamp).
PNG_COMPRESS_LEVEL = 6
# An image file larger than this is refused before it is decoded (a 4096x4096 RGB PNG is under 50 MB).
MAX_IMAGE_FILE_BYTES = 256 * 2**20
# Pillow's modes for 16-bit greyscale; converting them to "L"/"RGB" clips every value above 255 to 255.
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")


def is_image_name(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def load_image(path: str | os.PathLike, mode: str = "RGB") -> np.ndarray:
    """Load one image as uint8 HxWxC (C=3 for ``"RGB"``, 1 for ``"L"``).

    Zero-byte, truncated, corrupt or non-image files and decompression bombs (more pixels than
    Pillow's ``Image.MAX_IMAGE_PIXELS``) raise :class:`UserError` naming the file and the problem.
    """
    path = Path(path)
    try:
        with open_input(path, "image file", MAX_IMAGE_FILE_BYTES) as handle:
            size = os.fstat(handle.fileno()).st_size
            if size == 0:
                raise UserError(f"{path}: empty file (0 bytes); replace it with a valid image or remove it")
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(handle) as img:
                    img.load()
                    converted = _to_mode(img, mode, path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UserError(
            f"{path}: image is too large (over {Image.MAX_IMAGE_PIXELS} pixels, a possible decompression bomb); "
            "remove it or shrink it"
        ) from None
    except UnidentifiedImageError:
        raise UserError(f"{path}: not an image file Pillow can read; remove it or convert it to PNG") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise UserError(f"{path}: corrupt or truncated image ({exc}); replace it") from None
    array = np.asarray(converted, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return array


def _to_mode(img: Image.Image, mode: str, path: Path) -> Image.Image:
    """``img.convert(mode)``, except that 16-bit greyscale keeps its top 8 bits (Pillow would clip it to
    255) and 32-bit integer or float images, whose scale is unknown, are refused."""
    if img.mode in SIXTEEN_BIT_MODES:
        grey = (np.asarray(img).astype(np.uint16) >> 8).astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert(mode)
    if img.mode in ("I", "F"):
        raise UserError(f"{path}: {'32-bit integer' if img.mode == 'I' else 'floating-point'} image; its value scale "
                        "is unknown: convert it to an 8-bit PNG")
    with warnings.catch_warnings():
        # Pillow warns on palette images whose transparency is a byte string; convert(mode) drops the
        # alpha as pytorch-fid's Image.open().convert('RGB') does, so the warning is only noise on stderr
        warnings.filterwarnings("ignore", message="Palette images with Transparency", category=UserWarning)
        return img.convert(mode)


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files directly inside ``folder`` (by extension), sorted by name."""
    folder = Path(folder)
    if not folder.exists():
        raise UserError(f"{folder}: folder not found; check the path")
    if not folder.is_dir():
        raise UserError(f"{folder}: is not a folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and is_image_name(p) and not p.name.startswith("."))
    if not files:
        raise UserError(f"{folder}: holds no image files ({', '.join(IMAGE_SUFFIXES[:4])}, ...)")
    return files


def png_bytes(image: np.ndarray, text: dict[str, str] | None = None) -> bytes:
    """Encode a uint8 HxWxC (C=1 or 3) or HxW array as PNG with fixed parameters; ``text``: PNG text chunks
    (key -> value; tEXt, or iTXt for text outside Latin-1), as Pillow's ``Image.open(path).text`` reads them."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise ValueError(f"expected an HxW or HxWxC image with C in 1, 3, 4; got shape {image.shape}")
    buffer = io.BytesIO()
    info = None
    if text:
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        for key, value in text.items():
            info.add_text(key, value)
    Image.fromarray(image).save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL, pnginfo=info)
    return buffer.getvalue()


def save_png(image_uint8_hwc: np.ndarray, path: str | os.PathLike, force: bool = False,
             clean_stale: bool = True, text: dict[str, str] | None = None) -> Path:
    """Write a uint8 HxWxC image to ``path`` as PNG (with ``text`` chunks, see :func:`png_bytes`), atomically;
    never overwrites without ``force``."""
    data = png_bytes(image_uint8_hwc, text)
    with atomic_path(path, force, clean_stale=clean_stale) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def _check_range(value_range: Sequence[float]) -> tuple[float, float]:
    lo, hi = (float(v) for v in value_range)
    if not lo < hi:
        raise ValueError(f"value range needs low < high, got {value_range!r}")
    return lo, hi


def to_uint8(images_float: np.ndarray, value_range: Sequence[float]) -> np.ndarray:
    """Quantise float images in ``value_range`` to uint8 exactly as ``torchvision.utils.save_image``.

    Layout is kept (NCHW in, NCHW out; any layout works since the op is elementwise). Values are
    mapped to [0, 1], then ``floor(clamp(x * 255 + 0.5, 0, 255))`` — torchvision's
    ``mul(255).add_(0.5).clamp_(0, 255)`` followed by the uint8 cast, in float32 like torch.
    """
    lo, hi = _check_range(value_range)
    x = np.asarray(images_float, dtype=np.float32)
    if (lo, hi) != (0.0, 1.0):
        # torchvision's normalize(value_range=...) : clamp to range, then (x - low) / (high - low)
        x = (np.clip(x, lo, hi) - np.float32(lo)) / np.float32(max(hi - lo, 1e-5))
    x = np.clip(x * np.float32(255) + np.float32(0.5), 0, 255)
    return x.astype(np.uint8)


def from_uint8(images_uint8: np.ndarray, value_range: Sequence[float]) -> np.ndarray:
    """Map uint8 images to float32 in ``value_range`` (``x / 255 * (high - low) + low``); layout kept."""
    lo, hi = _check_range(value_range)
    x = np.asarray(images_uint8, dtype=np.float32) / np.float32(255)
    if (lo, hi) != (0.0, 1.0):
        x = x * np.float32(hi - lo) + np.float32(lo)
    return x
