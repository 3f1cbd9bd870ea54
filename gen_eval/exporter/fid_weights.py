"""pytorch-fid's Inception weights file: its name, URL and checksum, checking it, and the one explicit download.

Torch-free, so ``gen-eval fetch-inception`` runs where only the evaluator is installed. Nothing in
gen-eval downloads implicitly; :func:`fetch_inception` runs only when asked.
"""

from __future__ import annotations

import hashlib
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

from gen_eval.errors import UserError
from gen_eval.fileio import atomic_path, ensure_can_write

FID_WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{FID_WEIGHTS_NAME}"
# SHA-256 of the published file (95,628,359 bytes); its first 8 hex digits are the "6726825d" in the
# name (torch.hub convention). Recorded by torch-fidelity and other projects that pin this file.
FID_WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
FID_NUM_CLASSES = 1008
FID_INPUT_SIZE = 299
INCEPTION_FAMILY = "pytorch-fid-inception-v3"  # gen_eval.family of the exported model
PREPROCESSINGS = {"pytorch-fid": INCEPTION_FAMILY, "torch-fidelity": "torch-fidelity-inception-v3"}
OTHER_WEIGHTS_SUFFIX = "-other-weights"
_HUB_HASH_PREFIX = re.compile(r"-([0-9a-f]{8,64})\.[^.]+$")
_CHUNK = 1 << 20


def sha256_of(path: str | os.PathLike, chunk_size: int = _CHUNK) -> str:
    from gen_eval.inputfiles import open_input

    digest = hashlib.sha256()
    with open_input(path, "weights file", 16 * 2**30) as handle:
        while block := handle.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def inception_family(preprocessing: str, weights_sha256: str) -> str:
    """The family an exported Inception records: the published name only for the published weights file;
    any other file (fine-tuned, random) gets ``...-other-weights`` and its hash in the metadata."""
    family = PREPROCESSINGS[preprocessing]
    return family if weights_sha256 == FID_WEIGHTS_SHA256 else family + OTHER_WEIGHTS_SUFFIX


def check_weights_file(path: str | os.PathLike) -> str:
    """Return the file's SHA-256; refuse the known file name (or a torch.hub-style hash name) if it does not match."""
    path = Path(path)
    digest = sha256_of(path)
    if path.name == FID_WEIGHTS_NAME:
        if digest != FID_WEIGHTS_SHA256:
            raise UserError(
                f"{path} has SHA-256 {digest[:16]}..., not the published {FID_WEIGHTS_SHA256[:16]}... of {FID_WEIGHTS_NAME}; "
                "the file is damaged or not the FID weights: fetch it again with 'gen-eval fetch-inception'"
            )
    elif match := _HUB_HASH_PREFIX.search(path.name):
        prefix = match.group(1)
        if not digest.startswith(prefix):
            raise UserError(
                f"{path}: its name promises a SHA-256 starting {prefix}, the file's starts {digest[:len(prefix)]}; "
                "the file is damaged or misnamed: download it again or rename it"
            )
    return digest


def fetch_inception(out: str | os.PathLike, *, url: str = FID_WEIGHTS_URL, sha256: str = FID_WEIGHTS_SHA256,
                    force: bool = False, timeout: float = 60.0, progress: bool = True) -> Path:
    """Download pytorch-fid's Inception weights to ``out``, checking the SHA-256; atomic (no partial file)."""
    from tqdm import tqdm

    out = ensure_can_write(out, force)
    try:
        response = urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 - pytorch-fid's URL or the user's mirror
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise UserError(f"cannot download {url}: {str(reason).strip()[:150]}; on a machine without network, download "
                        f"{FID_WEIGHTS_NAME} elsewhere and pass its path to 'gen-eval export-inception'") from None
    digest = hashlib.sha256()
    with response, atomic_path(out, force=force) as tmp:
        total = int(response.headers.get("Content-Length") or 0) or None
        with open(tmp, "wb") as handle, tqdm(total=total, unit="B", unit_scale=True, desc=out.name,
                                             disable=not progress) as bar:
            while True:
                try:
                    block = response.read(_CHUNK)
                except OSError as exc:
                    raise UserError(f"download of {url} broke off ({exc}); run the command again") from None
                if not block:
                    break
                handle.write(block)
                digest.update(block)
                bar.update(len(block))
        if digest.hexdigest() != sha256:
            raise UserError(f"{url} gave a file with SHA-256 {digest.hexdigest()[:16]}..., expected {sha256[:16]}...; "
                            "nothing was written: check the URL (or a proxy rewriting downloads) and try again")
    return out
