"""Named feature extractors: the file its authors publish, its pinned SHA-256, and its conversion to ONNX.

``get_weights("inception")`` downloads the published file (or takes ``source``: a file the user has, or
a mirror's URL), checks its SHA-256, converts it to a ``features`` ONNX model and puts that in the
cache folder (:mod:`gen_eval.weights.cache`); ``--features inception`` then finds it by name
(:func:`resolve_features`). Only the published file is ever cached under the name: a file with another
hash (fine-tuned, random weights) needs its hash stated (``sha256``) and is cached as
``<name>-<hash prefix>.onnx``, its family marked as other weights. Nothing is downloaded implicitly.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gen_eval.errors import UserError, param

log = logging.getLogger("gen_eval")
_CHUNK = 1 << 20
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
WEIGHTS_FOLDER = "weights"


@dataclass(frozen=True)
class Extractor:
    name: str
    file_name: str  # as its authors publish it
    url: str
    sha256: str
    size: int | None  # bytes of the published file, where known
    description: str
    needs: str  # what the conversion needs installed
    format: str  # the published file's format, as `weights list` shows it
    convert: Callable[[Path, str], bytes]  # (verified source file, its SHA-256) -> .onnx bytes


def _convert_inception(preprocessing: str) -> Callable[[Path, str], bytes]:
    def convert(source: Path, digest: str) -> bytes:
        from gen_eval.weights.inception_onnx import inception_model
        from gen_eval.weights.torchfile import load_state_dict

        state_dict = load_state_dict(source)
        return inception_model(state_dict, digest, source=str(source), preprocessing=preprocessing).SerializeToString()

    return convert


def _convert_vit(read: str, make: str, published_sha256: str) -> Callable[[Path, str], bytes]:
    """A ViT converter: ``read`` a torch.save state dict ("state_dict") or a TorchScript archive
    ("script"), ``make`` the ViT of :mod:`gen_eval.weights.vit_onnx` ("dinov2" or "clip")."""
    def convert(source: Path, digest: str) -> bytes:
        from gen_eval.weights import vit_onnx
        from gen_eval.weights.torchfile import load_script_state_dict, load_state_dict

        state = load_script_state_dict(source) if read == "script" else load_state_dict(source)
        vit = vit_onnx.dinov2_vit(state, str(source)) if make == "dinov2" else vit_onnx.clip_vit(state, str(source))
        return vit_onnx.vit_model(vit, digest, published_sha256).SerializeToString()

    return convert


# DINOv2 ViT-L/14 as torch.hub fetches it; Meta publishes no hash: this SHA-256 and size are the ones
# several projects pin for this address (e.g. RoMa-based pipelines), not measured here.
DINOV2_URL = "https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/dinov2_vitl14_pretrain.pth"
DINOV2_SHA256 = "d5383ea8f4877b2472eb973e0fd72d557c7da5d3611bd527ceeb1d7162cbf428"
# OpenAI's CLIP ViT-L/14@336px: the SHA-256 is part of the address, and clip.load checks it.
CLIP_SHA256 = "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02"
CLIP_URL = f"https://openaipublic.azureedge.net/clip/models/{CLIP_SHA256}/ViT-L-14-336px.pt"


def _extractors() -> dict[str, Extractor]:
    from gen_eval.exporter.fid_weights import FID_WEIGHTS_NAME, FID_WEIGHTS_SHA256, FID_WEIGHTS_URL

    common = dict(file_name=FID_WEIGHTS_NAME, url=FID_WEIGHTS_URL, sha256=FID_WEIGHTS_SHA256, size=95_628_359,
                  needs="no torch", format="torch.save state dict (pytorch-fid)")
    return {
        "inception": Extractor(
            "inception", description="pytorch-fid's FID Inception-v3: pool3 features (2048) and the 1008 logits of "
            "IS; pytorch-fid's resize and scaling (its FID)", convert=_convert_inception("pytorch-fid"), **common),
        "inception-torch-fidelity": Extractor(
            "inception-torch-fidelity", description="the same network with torch-fidelity's input handling "
            "(TF1 resize, (x-128)/128): its FID, KID and IS", convert=_convert_inception("torch-fidelity"), **common),
        "dinov2-vitl14": Extractor(
            "dinov2-vitl14", "dinov2_vitl14_pretrain.pth", DINOV2_URL, DINOV2_SHA256, 1_217_586_395,
            description="DINOv2 ViT-L/14: the final norm's CLS token (1024) after a bicubic resize to 224 and "
            "ImageNet normalisation, as EDM2's fd_dinov2 and dgm-eval: FD-DINOv2 (fid / fd on it)",
            needs="no torch", format="torch.save state dict (facebookresearch/dinov2 torch.hub)",
            convert=_convert_vit("state_dict", "dinov2", DINOV2_SHA256)),
        "clip-vitl14-336": Extractor(
            "clip-vitl14-336", "ViT-L-14-336px.pt", CLIP_URL, CLIP_SHA256, None,
            description="OpenAI CLIP ViT-L/14@336px image tower: the projected, L2-normalised embedding (768) "
            "after a bicubic resize to 336 and CLIP's normalisation, as the CMMD reference code: the metric cmmd",
            needs="no torch (the archive's data is read, its code never run)",
            format="TorchScript archive (openai/CLIP)", convert=_convert_vit("script", "clip", CLIP_SHA256)),
    }


EXTRACTORS: dict[str, Extractor] = _extractors()


def extractor(name: str) -> Extractor:
    try:
        return EXTRACTORS[name]
    except KeyError:
        raise UserError(f"no feature extractor is named {name!r}; known: {', '.join(EXTRACTORS)}") from None


def cached_path(name: str, sha256: str | None = None) -> Path:
    """Where ``name``'s ONNX model is cached: ``<cache>/weights/<name>.onnx`` for the published weights,
    ``<name>-<first 16 hex of the hash>.onnx`` for another file's."""
    from gen_eval.weights.cache import cache_folder

    entry = extractor(name)
    stem = name if sha256 in (None, entry.sha256) else f"{name}-{sha256[:16]}"
    return cache_folder() / WEIGHTS_FOLDER / f"{stem}.onnx"


@dataclass
class GetResult:
    name: str
    path: Path
    sha256: str
    published: bool
    already_cached: bool

    def describe(self) -> str:
        if self.already_cached:
            return f"{self.name} is cached: {self.path} (pass {param('force', True)} to fetch and convert it again)"
        what = "the published file" if self.published else "NOT the published file"
        use = self.name if self.published else str(self.path)
        return f"wrote {self.path} ({what}, SHA-256 {self.sha256[:16]}...); use it with --features {use}"


def _is_url(text: str) -> bool:
    return urllib.parse.urlsplit(text).scheme in ("http", "https", "file", "ftp")


def _check_hex(sha256: str) -> str:
    text = sha256.strip().lower()
    if not _HEX64.match(text):
        raise UserError(f"{param('sha256', sha256)} is not a SHA-256: give its 64 hex digits (sha256sum FILE)")
    return text


def _download(url: str, tmp: Path, entry: Extractor, progress: bool, timeout: float) -> None:
    """``url`` into ``tmp``; one-line errors for no network, a server error and a transfer cut short."""
    from tqdm import tqdm

    try:
        response = urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 - the published address or the user's
    except urllib.error.HTTPError as exc:
        raise UserError(f"{url} answered HTTP {exc.code} ({exc.reason}); try again later, or download "
                        f"{entry.file_name} elsewhere and pass it with {param('source', 'FILE')}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = str(getattr(exc, "reason", None) or exc).strip()[:150]
        raise UserError(f"cannot download {url} ({reason}); without network, download {entry.file_name} on a "
                        f"machine that has it (from {entry.url}) and pass the file with "
                        f"{param('source', entry.file_name)}") from None
    with response:
        expected = response.headers.get("Content-Length")
        expected = int(expected) if expected and expected.isdigit() else None
        received = 0
        with open(tmp, "wb") as handle, tqdm(total=expected, unit="B", unit_scale=True, desc=entry.file_name,
                                             disable=None if progress else True, leave=False) as bar:
            while True:
                try:
                    block = response.read(_CHUNK)
                except (OSError, ValueError) as exc:
                    raise UserError(f"the download of {url} broke off after {received} bytes ({exc}); "
                                    "run the command again") from None
                if not block:
                    break
                handle.write(block)
                received += len(block)
                bar.update(len(block))
        if expected is not None and received != expected:
            raise UserError(f"the download of {url} broke off after {received} of {expected} bytes; nothing was "
                            "cached: run the command again")


def _check_hash(digest: str, wanted: str | None, entry: Extractor, where: str) -> bool:
    """True for the published file; a one-line error when the file is neither it nor the stated one."""
    if wanted is not None:
        if digest != wanted:
            raise UserError(f"{where} has SHA-256 {digest}, not the stated {wanted}; nothing was cached: "
                            "check the file or the hash")
        return digest == entry.sha256
    if digest != entry.sha256:
        raise UserError(f"{where} has SHA-256 {digest[:16]}..., not the published {entry.sha256[:16]}... of "
                        f"{entry.file_name}; nothing was cached: if it is another file in the same format "
                        f"(fine-tuned, random weights), state its hash with {param('sha256', digest)}")
    return True


def get_weights(name: str, *, source: str | os.PathLike | None = None, sha256: str | None = None,
                force: bool = False, progress: bool = False, timeout: float = 60.0) -> GetResult:
    """Fetch (from the published address, or ``source``: a local file or a URL), check, convert and cache
    the feature extractor ``name``; returns at once when it is cached already (unless ``force``).

    ``sha256`` states the hash of a file that is not the published one; such a file is cached apart
    (:func:`cached_path`). A download lands in a temporary file in the cache folder and is deleted
    after the conversion; only the converted model, complete, is renamed into place.
    """
    from gen_eval.fileio import atomic_path
    from gen_eval.weights.cache import entry_lock

    entry = extractor(name)
    wanted = _check_hex(sha256) if sha256 is not None else None
    local = None
    if source is not None and not _is_url(str(source)):
        from gen_eval.exporter.fid_weights import sha256_of

        local = Path(source)  # checked before anything is written (no cache folder for a bad file)
        digest = sha256_of(local)
        published = _check_hash(digest, wanted, entry, str(local))
    target = cached_path(name, wanted)
    with entry_lock(target):
        if target.is_file() and not force:
            return GetResult(name, target, wanted or entry.sha256, wanted in (None, entry.sha256), True)
        with atomic_path(target, force=True) as onnx_tmp:
            if local is not None:
                data = entry.convert(local, digest)
            else:
                url = str(source) if source is not None else entry.url
                download = onnx_tmp.with_name(onnx_tmp.name + ".download")
                try:
                    _download(url, download, entry, progress, timeout)
                    digest = _file_sha256(download)
                    published = _check_hash(digest, wanted, entry, url)
                    data = entry.convert(download, digest)
                finally:
                    download.unlink(missing_ok=True)
            _check_runs(data, name)
            onnx_tmp.write_bytes(data)
    return GetResult(name, target, digest, published, False)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _check_runs(data: bytes, name: str) -> None:
    """The converted model loads in onnxruntime and gives finite features for one small image."""
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    image = np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32)
    features = session.run(["features"], {"image": image})[0]
    if not np.all(np.isfinite(features)):
        raise UserError(f"the converted {name} gives non-finite features; its weights file is damaged")


@dataclass
class WeightsStatus:
    extractor: Extractor
    path: Path
    cached: bool


def weights_status() -> list[WeightsStatus]:
    """Every named extractor with its cache path and whether it is there."""
    out = []
    for name, entry in EXTRACTORS.items():
        path = cached_path(name)
        out.append(WeightsStatus(entry, path, path.is_file()))
    return out


def is_name(value: str | os.PathLike | None) -> bool:
    return isinstance(value, str) and value in EXTRACTORS


def resolve_features(value: str | os.PathLike | None) -> str | os.PathLike | None:
    """A features model given by name (``inception``) -> its cached file; a path stays as it is.

    A name wins over a file of the same name in the working folder (write ``./inception`` for that).
    Not cached: a one-line error naming the one command that fetches it.
    """
    if not is_name(value):
        return value
    path = cached_path(value)
    if not path.is_file():
        raise UserError(f"the features model {value!r} is not in the cache ({path.parent}); fetch it once with "
                        f"'gen-eval weights get {value}' (add --from FILE where there is no network)")
    return path


def remove_cached(name: str) -> list[Path]:
    """Delete ``name``'s cached models (published and other weights); the paths removed."""
    from gen_eval.weights.cache import entry_lock

    target = cached_path(name)
    removed = []
    with entry_lock(target):
        for path in sorted(target.parent.glob(f"{name}.onnx")) + sorted(target.parent.glob(f"{name}-" + "[0-9a-f]" * 16 + ".onnx")):
            path.unlink()
            removed.append(path)
    return removed


__all__ = ["EXTRACTORS", "Extractor", "GetResult", "WeightsStatus", "cached_path", "get_weights", "is_name",
           "resolve_features", "weights_status"]
