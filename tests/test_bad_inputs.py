"""Bad input through the command line: one table of cases across every command.

Each row builds its inputs in a fresh folder, runs ``gen-eval ...`` and checks what a user relies on:
- the exit code (2 for bad input, 1 for a missed gate);
- exactly one ``error: ...`` line on stderr (besides the informational ``runtime:`` line the
  evaluator prints), holding key words for the problem AND for the fix; no traceback;
- nothing written and nothing changed: every file under the row's folder and under the shared
  inputs has the same bytes afterwards, and no file or folder appeared (no temp file, no partial
  output, no folder created for an output that was never written).

Rows run in this process through click's CliRunner (an uncaught exception fails the row even though
CliRunner hides it from stderr); rows marked ``process=True`` run ``python -m gen_eval.cli`` in a real
process, for what CliRunner cannot see (onnxruntime's C++ logger writes to file descriptor 2, and
only a real process shows what the user's terminal shows).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from gen_eval.evaluator.stats import FeatureStats
from helpers.assets import GENERATOR_META, Assets, build_assets, reference_stats, write_stats
from helpers.cli import REPO, error_line, run_gen_eval
from helpers.graphs import ICLEVR_NAMES, ICLEVR_SPACE, make_dense_head, make_generator, onnx_model, save_model
from helpers.images import write_images

BIG_JSON_BYTES = 50 * 2**20  # "very large JSON": a 50 MB condition file

UNSAFE_ADVICE = ("unsafe", "weights_only", "allow_pickle", "trust")


# -- graphs the evaluator's builders do not make: broken generators ---------------------------------
def _tensor(name: str, shape) -> object:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _broken_generator(path: Path, kind: str) -> Path:
    """A generator graph broken in one way (``kind``), with gen-eval metadata that says 3x8x8 images."""
    rng = np.random.default_rng(0)
    weight = lambda rows, cols: numpy_helper.from_array(rng.standard_normal((rows, cols)).astype(np.float32), "W")  # noqa: E731
    shape = lambda *dims: numpy_helper.from_array(np.array(dims, dtype=np.int64), "shape")  # noqa: E731
    meta = dict(GENERATOR_META)
    z = _tensor("z", ["B", 8])
    image = _tensor("image", ["B", 3, 8, 8])
    if kind == "inf":  # 1 / (x * 0) = inf everywhere
        nodes = [helper.make_node("MatMul", ["z", "W"], ["lin"]), helper.make_node("Mul", ["lin", "zero"], ["zeros"]),
                 helper.make_node("Reciprocal", ["zeros"], ["inf"]), helper.make_node("Reshape", ["inf", "shape"], ["image"])]
        init = [weight(8, 192), shape(-1, 3, 8, 8), numpy_helper.from_array(np.array(0, np.float32), "zero")]
        inputs, outputs = [z], [image]
    elif kind == "flat":  # image [B, 192]: rank 2 where the contract says [B, C, H, W]
        nodes = [helper.make_node("MatMul", ["z", "W"], ["lin"]), helper.make_node("Tanh", ["lin"], ["image"])]
        init, inputs, outputs = [weight(8, 192)], [z], [_tensor("image", ["B", 192])]
    elif kind == "small":  # declares dynamic C, H, W and makes 3x4x4 images; its metadata says 3,8,8
        nodes = [helper.make_node("MatMul", ["z", "W"], ["lin"]), helper.make_node("Tanh", ["lin"], ["act"]),
                 helper.make_node("Reshape", ["act", "shape"], ["image"])]
        init, inputs, outputs = [weight(8, 48), shape(-1, 3, 4, 4)], [z], [_tensor("image", ["B", "C", "H", "W"])]
    elif kind == "static16":  # static output 3x16x16 against metadata 3,8,8
        nodes = [helper.make_node("MatMul", ["z", "W"], ["lin"]), helper.make_node("Tanh", ["lin"], ["act"]),
                 helper.make_node("Reshape", ["act", "shape"], ["image"])]
        init, inputs, outputs = [weight(8, 768), shape(-1, 3, 16, 16)], [z], [_tensor("image", ["B", 3, 16, 16])]
    elif kind == "three_inputs":  # z, labels and an input the contract does not know
        nodes = [helper.make_node("Concat", ["z", "labels", "extra"], ["cat"], axis=1),
                 helper.make_node("MatMul", ["cat", "W"], ["lin"]), helper.make_node("Tanh", ["lin"], ["act"]),
                 helper.make_node("Reshape", ["act", "shape"], ["image"])]
        init, outputs = [weight(33, 192), shape(-1, 3, 8, 8)], [image]
        inputs = [z, _tensor("labels", ["B", 24]), _tensor("extra", ["B", 1])]
        meta["gen_eval.label_space"] = ICLEVR_SPACE.to_json()
    elif kind == "swapped":  # inputs named cond [B, 24], noise [B, 8]: by position "z" is the 24-wide one
        nodes = [helper.make_node("Concat", ["noise", "cond"], ["cat"], axis=1),
                 helper.make_node("MatMul", ["cat", "W"], ["lin"]), helper.make_node("Tanh", ["lin"], ["act"]),
                 helper.make_node("Reshape", ["act", "shape"], ["image"])]
        init, outputs = [weight(32, 192), shape(-1, 3, 8, 8)], [image]
        inputs = [_tensor("cond", ["B", 24]), _tensor("noise", ["B", 8])]
        meta["gen_eval.label_space"] = ICLEVR_SPACE.to_json()
    elif kind == "rank3_z":  # z [B, 8, 1]
        nodes = [helper.make_node("Reshape", ["z", "flat"], ["zf"]), helper.make_node("MatMul", ["zf", "W"], ["lin"]),
                 helper.make_node("Tanh", ["lin"], ["act"]), helper.make_node("Reshape", ["act", "shape"], ["image"])]
        init = [weight(8, 192), shape(-1, 3, 8, 8), numpy_helper.from_array(np.array([0, -1], np.int64), "flat")]
        inputs, outputs = [_tensor("z", ["B", 8, 1])], [image]
    elif kind == "int_z":  # z declared int64: the evaluator's float noise does not fit
        nodes = [helper.make_node("Cast", ["z", ], ["zf"], to=TensorProto.FLOAT),
                 helper.make_node("MatMul", ["zf", "W"], ["lin"]), helper.make_node("Tanh", ["lin"], ["act"]),
                 helper.make_node("Reshape", ["act", "shape"], ["image"])]
        init, outputs = [weight(8, 192), shape(-1, 3, 8, 8)], [image]
        inputs = [helper.make_tensor_value_info("z", TensorProto.INT64, ["B", 8])]
    elif kind == "fails_when_run":  # 192 values per row cannot be reshaped to 3x7x7
        nodes = [helper.make_node("MatMul", ["z", "W"], ["lin"]), helper.make_node("Tanh", ["lin"], ["act"]),
                 helper.make_node("Reshape", ["act", "shape"], ["image"])]
        init, inputs, outputs = [weight(8, 192), shape(-1, 3, 7, 7)], [z], [_tensor("image", ["B", 3, "H", "W"])]
        meta["gen_eval.image_shape"] = "3,7,7"
    elif kind == "bad_metadata":
        nodes = [helper.make_node("MatMul", ["z", "W"], ["lin"]), helper.make_node("Tanh", ["lin"], ["act"]),
                 helper.make_node("Reshape", ["act", "shape"], ["image"])]
        init, inputs, outputs = [weight(8, 192), shape(-1, 3, 8, 8)], [z], [image]
        meta["gen_eval.latent_dim"] = "eight"
    elif kind == "wide_z":  # static z of 16 against metadata latent_dim 8
        nodes = [helper.make_node("MatMul", ["z", "W"], ["lin"]), helper.make_node("Tanh", ["lin"], ["act"]),
                 helper.make_node("Reshape", ["act", "shape"], ["image"])]
        init, inputs, outputs = [weight(16, 192), shape(-1, 3, 8, 8)], [_tensor("z", ["B", 16])], [image]
    else:
        raise ValueError(kind)
    return save_model(onnx_model(nodes, inputs, outputs, init), path, meta)


# -- files that are not what they claim -----------------------------------------------------------
def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png_bomb(path: Path, side: int = 100_000) -> Path:
    """A 1-bit greyscale PNG that claims side x side pixels (10^10) in a few hundred bytes."""
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    body = zlib.compress(row * 4, 9)  # a few rows; Pillow must refuse on the header alone
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", body)
                     + _png_chunk(b"IEND", b""))
    return path


class PicklePayload:
    """Unpickling this calls open(marker, 'w'): a file that carries code which runs on load."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


# -- the shared inputs -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> Assets:
    return build_assets(tmp_path_factory.mktemp("assets"))


@pytest.fixture(scope="module")
def torch_assets(tmp_path_factory) -> dict[str, Path]:
    """A tiny DCGAN checkpoint and a TA-format judge file with 10 labels (torch is needed to write them)."""
    import torch

    from gen_eval.trainers import get_family
    from gen_eval.trainers.checkpoint import save_checkpoint
    from gen_eval.trainers.judge import ta_resnet18

    root = tmp_path_factory.mktemp("torch-assets")
    cls = get_family("dcgan")
    family = cls(cls.resolve_config({"image_size": 16, "g_width": 8, "d_width": 8, "latent_dim": 16}), None)
    networks = family.build_networks()
    checkpoint = save_checkpoint(root / "dcgan.pt", {
        "family": "dcgan", "config": family.config_dict(), "label_space": None, "step": 1, "epoch": 0,
        "networks": {k: v.state_dict() for k, v in networks.items()}, "optimizers": {}, "rng": {}, "extra": {}})
    ta10 = root / "ta10.pth"
    torch.save({"model": ta_resnet18(10).state_dict()}, ta10)
    return {"checkpoint": checkpoint, "ta10": ta10}


# -- making a folder unwritable, also for root ------------------------------------------------------
@contextmanager
def unwritable(folder: Path):
    """``folder`` refuses new files for the duration. chmod does not stop root, so as root the folder is
    made immutable (chattr +i, needs CAP_LINUX_IMMUTABLE); if neither works the row is skipped."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        mode = folder.stat().st_mode
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(mode)
        return
    chattr = shutil.which("chattr")
    made = chattr and subprocess.run([chattr, "+i", str(folder)], capture_output=True).returncode == 0
    if not made:
        pytest.skip("running as root (chmod cannot stop root) and chattr +i is not permitted here: "
                    "no way to make a truly read-only folder; the 'parent is a file' rows still run")
    try:
        probe = folder / ".probe"
        try:
            probe.write_bytes(b"")
        except OSError:
            pass
        else:  # pragma: no cover - a file system that ignores the immutable flag
            probe.unlink()
            pytest.skip("chattr +i did not make the folder read-only on this file system")
        yield
    finally:
        subprocess.run([chattr, "-i", str(folder)], capture_output=True)


# -- the table ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    id: str
    make: Callable[[Assets, Path], list]  # builds the row's inputs in its folder, returns gen-eval's arguments
    says: tuple[str, ...]  # key words of the one error line: the problem and the fix
    code: int = 2
    process: bool = False  # run in a real process (python -m gen_eval.cli) instead of CliRunner
    readonly: str | None = None  # a folder (relative to the row's) made unwritable during the run
    needs_torch: bool = False  # uses torch_assets
    marker: str | None = None  # a file a pickle payload would create: must not exist afterwards
    never: tuple[str, ...] = ()  # words the error line must not hold (e.g. advice to load a file unsafely)
    xfail: str | None = None

    @property
    def command(self) -> str:
        return self.id.split(":")[0]


def _write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def _conditions(t: Path, content: bytes | str, name: str = "cond.json") -> Path:
    return _write(t / name, content)


def _big_conditions(t: Path) -> Path:
    item = b'["red cube", "blue sphere"], '
    count = BIG_JSON_BYTES // len(item)
    return _write(t / "big.json", b"[" + item * count + b'["red cube"]]')


def _iclevr(t: Path, train_json: bytes | str) -> Path:
    root = t / "iclevr"
    write_images(root / "images", 2)
    _write(root / "objects.json", json.dumps({name: i for i, name in enumerate(ICLEVR_NAMES)}))
    _write(root / "train.json", train_json)
    return root


def _existing(t: Path, name: str, data: bytes = b"precious bytes, must survive") -> Path:
    return _write(t / name, data)


def _sample(a: Assets, t: Path, *extra, model=None) -> list:
    return ["sample", "--model", model or a.gen, "--n", 4, "--out", t / "out", *extra]


def _sample_cond(a: Assets, t: Path, conditions: Path, model=None) -> list:
    return ["sample", "--model", model or a.gen_cond, "--conditions", conditions, "--out", t / "out"]


def _score(a: Assets, t: Path, *extra, model=None, classifier=None, test=None) -> list:
    return ["score", "--model", model or a.gen_cond, "--test", test or a.test_json,
            "--classifier", classifier or a.classifier, *extra]


def _fid(a: Assets, t: Path, *extra, ref=None, data=None) -> list:
    return ["fid", "--features", a.features, "--ref", ref or a.stats, "--data", data or a.images, *extra]


def _corrupt_folder(t: Path, bad_name: str, data: bytes) -> Path:
    folder = write_images(t / "imgs", 3)
    _write(folder / bad_name, data)
    return folder


def _truncated_png(t: Path) -> bytes:
    write_images(t / "src", 1, size=32)
    data = (t / "src" / "000.png").read_bytes()
    shutil.rmtree(t / "src")
    return data[: len(data) // 2]


def _npz_with_pickle(t: Path) -> Path:
    """An .npz whose 'mu' is an object array: loading it with pickle allowed would run the payload."""
    path = t / "evil.npz"
    payload = np.empty(1, dtype=object)
    payload[0] = PicklePayload(t / "payload-ran")
    with open(path, "wb") as handle:
        np.savez(handle, mu=payload, sigma=np.eye(16))
    return path


def _evil_checkpoint(t: Path, name: str = "evil.pt", ta: bool = False) -> Path:
    import torch

    payload = PicklePayload(t / "payload-ran")
    data = ({"model": {"fc.0.weight": payload}} if ta else
            {"format": "gen_eval.checkpoint", "version": 1, "family": "dcgan", "config": {},
             "networks": {"generator": payload}})
    path = t / name
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(data, path)
    return path


def _truncated(src: Path, dst: Path) -> Path:
    data = src.read_bytes()
    return _write(dst, data[: len(data) // 2])


def _future_opset(src: Path, dst: Path) -> Path:
    import onnx

    model = onnx.load(str(src))
    model.opset_import[0].version = 99
    onnx.save(model, str(dst))
    return dst


def _external_data(src: Path, dst: Path) -> Path:
    """A model whose weights live in a sidecar file, which is then lost."""
    import onnx

    model = onnx.load(str(src))
    onnx.save(model, str(dst), save_as_external_data=True, all_tensors_to_one_file=True, location="ext.data",
              size_threshold=0)
    (dst.parent / "ext.data").unlink()
    return dst


def _copy(src: Path, folder: Path) -> Path:
    return Path(shutil.copy(src, folder / src.name))


def _run_with_last(t: Path, last: Path) -> Path:
    """A run folder whose checkpoints/last.pt is ``last`` (for --resume)."""
    run = t / "run"
    (run / "checkpoints").mkdir(parents=True)
    shutil.move(last, run / "checkpoints" / "last.pt")
    return run


CASES: list[Case] = [
    # ---- data check / data shapes -----------------------------------------------------------------
    Case("data check: empty folder", lambda a, t: ["data", "check", _mkdir(t / "empty")],
         ("holds no image files",)),
    Case("data check: zero-byte image", lambda a, t: ["data", "check", "--full", _corrupt_folder(t, "bad.png", b"")],
         ("bad.png", "empty file", "replace it")),
    Case("data check: corrupt image", lambda a, t: ["data", "check", "--full",
                                                    _corrupt_folder(t, "bad.png", os.urandom(300))],
         ("bad.png", "not an image", "remove it")),
    Case("data check: truncated image", lambda a, t: ["data", "check", "--full",
                                                      _corrupt_folder(t, "bad.png", _truncated_png(t))],
         ("bad.png", "truncated", "replace it")),
    Case("data check: decompression bomb", lambda a, t: ["data", "check", "--full",
                                                         write_png_bomb(write_images(t / "imgs", 2) / "bomb.png").parent],
         ("bomb.png", "decompression bomb", "remove it")),
    Case("data check: malformed label JSON", lambda a, t: ["data", "check", _iclevr(t, '{"000.png": ["red cube"],')],
         ("train.json", "invalid JSON")),
    Case("data check: empty label JSON", lambda a, t: ["data", "check", _iclevr(t, "")],
         ("train.json", "empty", "replace it")),
    Case("data check: unknown label name", lambda a, t: ["data", "check", _iclevr(
        t, json.dumps({"000.png": ["red cube"], "001.png": ["pink cube"]}))],
         ("001.png", "unknown label 'pink cube'", "valid names include")),
    Case("data check: deeply nested JSON", lambda a, t: ["data", "check", _iclevr(t, "[" * 100_000 + "]" * 100_000)],
         ("train.json", "nested too deeply", "right file")),
    Case("data check: 50 MB label JSON", lambda a, t: ["data", "check", _iclevr_big(t)],
         ("train.json", "MiB", "limit")),
    Case("data shapes: output exists", lambda a, t: ["data", "shapes", "--out", _existing(t / "ds", "mine.txt").parent,
                                                     "--train", 2, "--heldout", 0],
         ("exists", "--force")),
    Case("data shapes: output under a file", lambda a, t: ["data", "shapes", "--out", _existing(t, "file") / "ds",
                                                           "--train", 2, "--heldout", 0],
         ("is a file, not a folder", "choose another --out")),
    Case("data shapes: read-only folder", lambda a, t: ["data", "shapes", "--out", t / "ro" / "ds", "--train", 2,
                                                        "--heldout", 0],
         ("cannot write", "ro", "--out"), readonly="ro"),

    # ---- train ------------------------------------------------------------------------------------
    Case("train: unknown family", lambda a, t: ["train", "no-such-gan", "--data", a.images, "--out", t / "run"],
         ("no-such-gan", "dcgan")),
    Case("train: missing data", lambda a, t: ["train", "dcgan", "--data", t / "nowhere", "--out", t / "run"],
         ("nowhere", "not found")),
    Case("train: empty data folder", lambda a, t: ["train", "dcgan", "--data", _mkdir(t / "empty"), "--out", t / "run"],
         ("holds no image files",)),
    Case("train: corrupt image in data", lambda a, t: ["train", "dcgan", "--data", _corrupt_folder(t, "bad.png", b"xx"),
                                                       "--out", t / "run", "--steps", 1, "--set", "image_size=8",
                                                       "--workers", 0, "--no-progress"],
         ("bad.png", "not an image", "remove it")),
    Case("train: conditional family on unlabelled data", lambda a, t: [
        "train", "acgan", "--data", a.images, "--out", t / "run", "--steps", 1],
         ("needs labels", "gen-eval data shapes")),
    Case("train: --set without =", lambda a, t: ["train", "dcgan", "--data", a.images, "--out", t / "run",
                                                 "--set", "lr_g"],
         ("KEY=VALUE", "--set lr_g=1e-4")),
    Case("train: out not empty", lambda a, t: ["train", "dcgan", "--data", a.images,
                                               "--out", _existing(t / "run", "notes.txt").parent],
         ("not empty", "--resume", "--force")),
    Case("train: out under a file", lambda a, t: ["train", "dcgan", "--data", a.images, "--out", _existing(t, "f") / "run",
                                                  "--steps", 1, "--set", "image_size=8"],
         ("is a file, not a folder", "choose another")),
    Case("train: resume truncated checkpoint", lambda a, t: [
        "train", "dcgan", "--data", a.images, "--resume",
        "--out", _run_with_last(t, _truncated(_ta(a, "checkpoint"), t / "half.pt"))],
         ("last.pt", "truncated"), needs_torch=True),
    Case("train: resume checkpoint with pickle payload", lambda a, t: [
        "train", "dcgan", "--data", a.images, "--resume", "--out", _run_with_last(t, _evil_checkpoint(t))],
         ("refusing to load", "last.pt"), needs_torch=True, marker="payload-ran", never=UNSAFE_ADVICE),

    Case("train: resume without a checkpoint", lambda a, t: ["train", "dcgan", "--data", a.images, "--resume",
                                                             "--out", _mkdir(t / "run")],
         ("nothing to resume", "without --resume")),
    Case("train: resume and force", lambda a, t: ["train", "dcgan", "--data", a.images, "--resume", "--force",
                                                  "--out", t / "run"],
         ("--resume and --force exclude each other",)),
    Case("train: resume another family's run", lambda a, t: [
        "train", "vae", "--data", a.images, "--resume", "--out", _run_with_last(t, _copy(_ta(a, "checkpoint"), t))],
         ("is a dcgan run", "gen-eval train dcgan"), needs_torch=True),
    Case("train: resume with other settings", lambda a, t: [
        "train", "dcgan", "--data", a.images, "--resume", "--set", "g_width=4",
        "--out", _run_with_last(t, _copy(_ta(a, "checkpoint"), t))],
         ("g_width=8", "drop --set g_width", "--force"), needs_torch=True),
    Case("train: unknown setting", lambda a, t: ["train", "dcgan", "--data", a.images, "--out", t / "run",
                                                 "--set", "no_such_setting=1"],
         ("has no setting 'no_such_setting'", "valid --set keys")),
    Case("train: setting of the wrong type", lambda a, t: ["train", "dcgan", "--data", a.images, "--out", t / "run",
                                                           "--set", "lr=fast"],
         ("lr", "fast", "number")),
    Case("train: zero steps", lambda a, t: ["train", "dcgan", "--data", a.images, "--out", t / "run", "--steps", 0],
         ("--steps", "positive integer")),
    Case("train: --amp on CPU", lambda a, t: ["train", "dcgan", "--data", a.images, "--out", t / "run", "--amp",
                                              "--device", "cpu"],
         ("--amp needs a CUDA device", "drop --amp")),
    Case("train: images of another size", lambda a, t: ["train", "dcgan", "--data", a.images, "--out", t / "run",
                                                        "--steps", 1, "--set", "image_size=16"],
         ("8x8", "16x16", "data.resize=true")),
    # ---- train: settings checked by type and range before any file (issue 11 trainers / issue 12 item 7) ----
    *[Case(f"train: --set {setting}", lambda a, t, family=family, setting=setting: [
        "train", family, "--data", a.images, "--out", t / "run", "--steps", 1, "--set", setting], says)
      for family, setting, says in (
          ("dcgan", "lr=nan", ("lr=nan", "lr must be a finite number > 0")),
          ("dcgan", "lr=inf", ("lr=inf", "finite number > 0")),
          ("dcgan", "lr=-1e-4", ("lr=-1e-4", "> 0")),
          ("dcgan", "lr=0", ("lr=0", "> 0")),
          ("dcgan", "betas=[2,3]", ("betas=[2,3]", "two numbers in [0, 1)")),
          ("dcgan", "betas=[0.5]", ("betas=[0.5]", "two numbers in [0, 1)")),
          ("dcgan", "betas=fast", ("betas=fast", "list of numbers", "--set betas=[0.5, 0.999]")),
          ("acgan", "beta1=1", ("beta1=1", "[0, 1)")),
          ("dcgan", "image_size=0", ("image_size=0", "power of two in [8, 1024]")),
          ("dcgan", "image_size=48", ("image_size=48", "power of two")),
          ("vae", "image_size=20", ("image_size=20", "multiple of 8")),
          ("classifier", "image_size=-64", ("image_size=-64", "[8, 1024]")),
          ("dcgan", "latent_dim=0", ("latent_dim=0", "[1, 65536]")),
          ("dcgan", "latent_dim=1000000000", ("latent_dim=1000000000", "[1, 65536]")),
          ("dcgan", "g_width=-4", ("g_width=-4", "[1, 8192]")),
          ("vae", "width=0", ("width=0", "[1, 8192]")),
          ("mlp-vae", "hidden=[512,-1]", ("hidden=[512,-1]", "integers in [1, 8192]")),
          ("mlp-gan", "g_hidden=[1.5]", ("g_hidden=[1.5]", "list of integers")),
          ("acgan", "cond_embed=-1", ("cond_embed=-1", "[0, 8192]")),
          ("acgan", "discriminator=vgg", ("discriminator=vgg", "one of dcgan, srgan")),
          ("mlp-gan", "schedule=weekly", ("schedule=weekly", "one of every-step, epoch-digit")),
          ("mlp-vae", "bce_reduction=median", ("bce_reduction=median", "one of sum, mean")),
          ("vae-gan", "lr_d=0", ("lr_d=0", "> 0")),
          ("classifier", "bn_images=-1", ("bn_images=-1", "[0, 1000000000]")),
          ("acgan", "n_d=0", ("n_d=0", "[1, 100]")),
          ("acgan", "real_label=0", ("real_label=0", "(0, 1]")),
          ("acgan", "l2_weight=-1", ("l2_weight=-1", ">= 0")),
          ("acgan", "image_channels=0", ("image_channels=0", "[1, 4]")),
          ("mlp-vae", "dropout=1", ("dropout=1", "[0, 1)")),
          ("wgan-gp", "n_critic=0", ("n_critic=0", "[1, 100]")),
          ("vae", "kl_weight=nan", ("kl_weight=nan", ">= 0")),
          ("classifier", "flip=maybe", ("flip=maybe", "boolean")),
      )],
    Case("train: negative seed", lambda a, t: ["train", "dcgan", "--data", a.images, "--out", t / "run",
                                               "--steps", 1, "--seed", -5],
         ("--seed -5", "[0, 2^63-1]")),
    Case("train: seed of 2^63", lambda a, t: ["train", "dcgan", "--data", a.images, "--out", t / "run",
                                              "--steps", 1, "--seed", 2**63],
         ("--seed 9223372036854775808", "[0, 2^63-1]")),
    Case("train: zero epochs", lambda a, t: ["train", "dcgan", "--data", a.images, "--out", t / "run", "--epochs", 0],
         ("--epochs", "positive integer")),
    Case("train: negative workers", lambda a, t: ["train", "dcgan", "--data", a.images, "--out", t / "run",
                                                  "--workers", -1],
         ("--workers", "0")),
    Case("train: device not in the grammar", lambda a, t: ["train", "dcgan", "--data", a.images, "--out", t / "run",
                                                           "--device", "cudax"],
         ("'cudax'", "auto, cpu, cuda or cuda:N")),
    Case("train: device index not a number", lambda a, t: ["train", "dcgan", "--data", a.images, "--out", t / "run",
                                                           "--device", "cuda:x"],
         ("'cuda:x'", "cuda:N")),
    Case("train: --force with a bad setting keeps the earlier run", lambda a, t: [
        "train", "dcgan", "--data", a.images, "--force", "--set", "lr=nan",
        "--out", _existing(_existing(t / "run", "log.csv").parent, "run.json").parent],
         ("lr=nan", "> 0")),
    Case("train: --colour-by on data without labels", lambda a, t: ["train", "vae", "--data", a.images, "--out",
                                                                    t / "run", "--colour-by", "Male"],
         ("cannot colour the latent plot by 'Male'", "no labels")),
    # ---- end of train settings rows ------------------------------------------------------------------

    # ---- export / export-classifier / export-inception / fetch-inception ----------------------------
    Case("export: zero-byte checkpoint", lambda a, t: ["export", _write(t / "empty.pt", b""), "--out", t / "g.onnx"],
         ("empty (0 bytes)", "use another checkpoint")),
    Case("export: truncated checkpoint", lambda a, t: [
        "export", _truncated(_ta(a, "checkpoint"), t / "half.pt"), "--out", t / "g.onnx"],
         ("half.pt", "truncated"), needs_torch=True),
    Case("export: checkpoint with pickle payload", lambda a, t: ["export", _evil_checkpoint(t), "--out", t / "g.onnx"],
         ("refusing to load", "evil.pt"), needs_torch=True, marker="payload-ran", process=True, never=UNSAFE_ADVICE),
    Case("export: not a checkpoint", lambda a, t: ["export", _write(t / "notes.pt", "just text\n"), "--out", t / "g.onnx"],
         ("cannot read checkpoint", "notes.pt", "not a complete PyTorch file", "gen-eval train")),
    Case("export: ONNX given as checkpoint", lambda a, t: ["export", a.gen, "--out", t / "g.onnx"],
         ("cannot read checkpoint", "gen.onnx", "not a complete PyTorch file", "gen-eval train")),
    Case("export: output exists", lambda a, t: ["export", _ta(a, "checkpoint"), "--out", _existing(t, "g.onnx")],
         ("already exists", "--force"), needs_torch=True),
    Case("export: read-only output folder", lambda a, t: ["export", _ta(a, "checkpoint"), "--out", t / "ro" / "g.onnx"],
         ("not writable", "ro"), needs_torch=True, readonly="ro"),
    Case("export: output under a file", lambda a, t: ["export", _ta(a, "checkpoint"), "--out", _existing(t, "f") / "g.onnx"],
         ("not a folder", "choose another output path"), needs_torch=True),
    Case("export-classifier: label count differs from objects.json", lambda a, t: [
        "export-classifier", _ta(a, "ta10"), "--objects", a.objects, "--out", t / "c.onnx"],
         ("predicts 10 labels", "24 names", "objects.json"), needs_torch=True),
    Case("export-classifier: no label names", lambda a, t: ["export-classifier", _ta(a, "ta10"), "--out", t / "c.onnx"],
         ("does not record its label names", "--objects"), needs_torch=True),
    Case("export-classifier: pickle payload", lambda a, t: [
        "export-classifier", _evil_checkpoint(t, "ta.pth", ta=True), "--objects", a.objects, "--out", t / "c.onnx"],
         ("refusing to load", "ta.pth"), needs_torch=True, marker="payload-ran", never=UNSAFE_ADVICE),
    Case("export-classifier: malformed objects.json", lambda a, t: [
        "export-classifier", _ta(a, "ta10"), "--objects", _write(t / "objects.json", '{"red cube": 0,'),
        "--out", t / "c.onnx"],
         ("objects.json", "invalid JSON"), needs_torch=True),
    Case("export-inception: zero-byte weights", lambda a, t: [
        "export-inception", _write(t / "pt_inception.pth", b""), "--out", t / "i.onnx"],
         ("empty (0 bytes)", "fetch-inception"), never=("last.pt",)),
    Case("export-inception: damaged weights file", lambda a, t: [
        "export-inception", _write(t / "pt_inception-2015-12-05-6726825d.pth", os.urandom(1000)), "--out", t / "i.onnx"],
         ("SHA-256", "fetch-inception")),
    Case("fetch-inception: output exists", lambda a, t: ["fetch-inception", "--out", _existing(t, "w.pth"),
                                                         "--url", "http://127.0.0.1:9/none"],
         ("already exists", "--force")),

    # ---- weights get (only rows that fail before the cache folder is touched) ----------------------
    Case("weights get: zero-byte file", lambda a, t: ["weights", "get", "inception", "--from", _write(t / "w.pth", b"")],
         ("not the published", "--sha256")),
    Case("weights get: FIFO", lambda a, t: ["weights", "get", "inception", "--from", _fifo(t / "w.pth")],
         ("w.pth", "FIFO")),
    Case("weights get: unknown name", lambda a, t: ["weights", "get", "resnet50", "--from", a.gen],
         ("no feature extractor is named 'resnet50'", "inception")),
    Case("weights get: hash of another file", lambda a, t: [
        "weights", "get", "inception", "--from", _write(t / "w.pth", b"x"), "--sha256", "0" * 64],
         ("not the stated", "check the file or the hash")),

    # ---- info -------------------------------------------------------------------------------------
    Case("info: not ONNX (text)", lambda a, t: ["info", _write(t / "model.onnx", "hello, I am not a model\n")],
         ("cannot load this model", "valid .onnx"), process=True),
    Case("info: zero-byte model", lambda a, t: ["info", _write(t / "model.onnx", b"")],
         ("empty file (0 bytes)", "export the model again")),
    Case("info: truncated ONNX", lambda a, t: ["info", _truncated(a.classifier, t / "half.onnx")],
         ("half.onnx", "cannot load this model"), process=True),
    Case("info: ONNX from a newer opset", lambda a, t: ["info", _future_opset(a.gen, t / "future.onnx")],
         ("future.onnx", "cannot load this model", "valid .onnx"), process=True),
    Case("info: ONNX with missing external weights", lambda a, t: ["info", _external_data(a.gen, t / "ext.onnx")],
         ("ext.onnx", "cannot load this model")),
    Case("info: a PyTorch checkpoint", lambda a, t: ["info", _ta(a, "checkpoint")],
         ("PyTorch checkpoint", "gen-eval export"), needs_torch=True),

    # ---- sample -----------------------------------------------------------------------------------
    Case("sample: --pair-noise on an unconditional generator", lambda a, t: ["sample", "--model", a.gen, "--n", 4,
                                                                             "--pair-noise", "--out", t / "x.png"],
         ("unconditional", "needs a conditional generator")),
    Case("sample: generator outputs NaN", lambda a, t: _sample(a, t, model=make_generator(t / "nan.onnx", nan=True)),
         ("NaN/Inf", "re-export"), process=True),
    Case("sample: generator outputs Inf", lambda a, t: ["sample", "--model", _broken_generator(t / "inf.onnx", "inf"),
                                                        "--n", 4, "--out", t / "grid.png"],
         ("NaN/Inf", "re-export")),
    Case("sample: generator output rank 2", lambda a, t: _sample(a, t, model=_broken_generator(t / "flat.onnx", "flat")),
         ("flat.onnx", "rank 4")),
    Case("sample: generator makes images of the wrong size", lambda a, t: _sample(
        a, t, model=_broken_generator(t / "small.onnx", "small")),
         ("small.onnx", "(3, 4, 4)", "(3, 8, 8)", "re-export")),
    Case("sample: output shape contradicts metadata", lambda a, t: _sample(
        a, t, model=_broken_generator(t / "g16.onnx", "static16")),
         ("image shape", "re-export")),
    Case("sample: three inputs", lambda a, t: _sample(a, t, model=_broken_generator(t / "g3.onnx", "three_inputs")),
         ("at most 2 inputs", "extra", "names")),
    Case("sample: input names not the contract's", lambda a, t: _sample(
        a, t, "--conditions", a.test_json, model=_broken_generator(t / "gs.onnx", "swapped")),
         ("latent dim", "re-export")),
    Case("sample: noise of rank 3", lambda a, t: _sample(a, t, model=_broken_generator(t / "g.onnx", "rank3_z")),
         ("rank 2 or rank 4",)),
    Case("sample: noise size contradicts metadata", lambda a, t: _sample(a, t, model=_broken_generator(t / "g.onnx", "wide_z")),
         ("latent dim", "16", "8", "re-export")),
    Case("sample: noise input of integer type", lambda a, t: _sample(a, t, model=_broken_generator(t / "gi.onnx", "int_z")),
         ("gi.onnx", "float")),
    Case("sample: generator fails when run", lambda a, t: _sample(
        a, t, model=_broken_generator(t / "gf.onnx", "fails_when_run")),
         ("gf.onnx", "onnxruntime", "re-export"), process=True),
    Case("sample: unreadable metadata", lambda a, t: _sample(a, t, model=_broken_generator(t / "gm.onnx", "bad_metadata")),
         ("gen_eval.latent_dim='eight'", "re-export")),
    Case("sample: batch size 0", lambda a, t: _sample(a, t, "--batch-size", 0), ("--batch-size", "at least 1")),
    Case("sample: negative batch size", lambda a, t: _sample(a, t, "--batch-size", -4), ("--batch-size", "at least 1")),
    Case("sample: malformed condition JSON", lambda a, t: _sample_cond(a, t, _conditions(t, '[["red cube"], ["blue')),
         ("cond.json", "invalid JSON")),
    Case("sample: empty condition file", lambda a, t: _sample_cond(a, t, _conditions(t, "  \n")),
         ("cond.json", "empty", "replace it")),
    Case("sample: empty condition list", lambda a, t: _sample_cond(a, t, _conditions(t, "[]")),
         ("holds no conditions", "add at least one")),
    Case("sample: 50 MB condition file", lambda a, t: _sample_cond(a, t, _big_conditions(t)),
         ("big.json", "MiB", "limit")),
    Case("sample: deeply nested condition JSON", lambda a, t: _sample_cond(a, t, _conditions(t, "[" * 100_000 + "]" * 100_000)),
         ("cond.json", "nested too deeply", "right file")),
    Case("sample: unknown label name", lambda a, t: _sample_cond(a, t, _conditions(t, '[["red cube"], ["pink cube"]]')),
         ("item 1", "unknown label 'pink cube'", "valid names include")),
    Case("sample: condition is not a list of names", lambda a, t: _sample_cond(a, t, _conditions(t, '["red cube"]')),
         ("item 0", "expected a list of label names")),
    Case("sample: condition file is an object", lambda a, t: _sample_cond(a, t, _conditions(t, '{"a": "red cube"}')),
         ("expected a JSON list of conditions",)),
    Case("sample: label repeated in a condition", lambda a, t: _sample_cond(a, t, _conditions(t, '[["red cube", "red cube"]]')),
         ("appears twice", "list each label once")),
    Case("sample: conditions do not fit a categorical space", lambda a, t: _sample_cond(
        a, t, _conditions(t, '[["hair:h0", "hair:h1", "eye:e0"]]'), model=a.gen_cartoon),
         ("item 0", "head:value")),
    Case("sample: iCLEVR names for a categorical model", lambda a, t: _sample_cond(
        a, t, _conditions(t, '[["red cube"]]'), model=a.gen_cartoon),
         ("unknown label 'red cube'", "hair:h0")),
    Case("sample: --objects with other label count", lambda a, t: [
        "sample", "--model", a.gen_cond_bare, "--conditions", a.test_json, "--out", t / "out", "--value-range", "-1,1",
        "--objects", _write(t / "objects10.json", json.dumps({n: i for i, n in enumerate(ICLEVR_NAMES[:10])}))],
         ("24 values", "10", "objects.json")),
    Case("sample: --objects differs from the model's labels", lambda a, t: [
        "sample", "--model", a.gen_cond, "--conditions", a.test_json, "--out", t / "out",
        "--objects", _write(t / "objects10.json", json.dumps({n: i for i, n in enumerate(ICLEVR_NAMES[:10])}))],
         ("differs from the model's metadata", "matching")),
    Case("sample: conditional model without conditions", lambda a, t: _sample(a, t, model=a.gen_cond),
         ("conditional generator", "--conditions")),
    Case("sample: conditions for an unconditional model", lambda a, t: _sample(a, t, "--conditions", a.test_json),
         ("unconditional", "leave out --conditions")),
    Case("sample: bad shard", lambda a, t: _sample(a, t, "--shard", "3/2"), ("--shard", "k/N")),
    Case("sample: zero images", lambda a, t: ["sample", "--model", a.gen, "--n", 0, "--out", t / "out"],
         ("--n", "at least 1")),
    Case("sample: bad --value-range", lambda a, t: [
        "sample", "--model", a.gen_cond_bare, "--conditions", a.test_json, "--objects", a.objects,
        "--value-range", "1,-1", "--out", t / "out"],
         ("--value-range",)),
    Case("sample: unknown device", lambda a, t: _sample(a, t, "--device", "tpu"), ("unknown device", "cpu")),
    Case("sample: grid exists", lambda a, t: ["sample", "--model", a.gen, "--n", 4, "--out", _existing(t, "grid.png")],
         ("already exists", "--force")),
    Case("sample: npz exists", lambda a, t: ["sample", "--model", a.gen, "--n", 4, "--out", _existing(t, "s.npz")],
         ("already exists", "--force")),
    Case("sample: folder holds other PNGs", lambda a, t: ["sample", "--model", a.gen, "--n", 4,
                                                          "--out", write_images(t / "out", 2)],
         ("already holds PNG files", "--force")),
    Case("sample: read-only output folder", lambda a, t: ["sample", "--model", a.gen, "--n", 4, "--out", t / "ro" / "out"],
         ("cannot create folder", "ro/out", "choose another"), readonly="ro"),
    Case("sample: read-only grid folder", lambda a, t: ["sample", "--model", a.gen, "--n", 4, "--out", t / "ro" / "g.png"],
         ("ro", "not writable"), readonly="ro"),
    Case("sample: output under a file", lambda a, t: ["sample", "--model", a.gen, "--n", 4,
                                                      "--out", _existing(t, "f") / "out"],
         ("is a file, not a folder", "choose another")),
    Case("sample: model is a folder", lambda a, t: ["sample", "--model", _mkdir(t / "m.onnx"), "--n", 4, "--out", t / "o"],
         ("m.onnx", "is a directory", "--help")),
    Case("sample: model file missing", lambda a, t: ["sample", "--model", t / "none.onnx", "--n", 4, "--out", t / "o"],
         ("none.onnx", "not found")),

    # ---- score ------------------------------------------------------------------------------------
    Case("score: classifier label count differs", lambda a, t: _score(a, t, classifier=a.classifier10),
         ("24", "10", "matching")),
    Case("score: classifier without metadata, other label count", lambda a, t: _score(
        a, t, "--classifier-value-range", "-1,1", "--objects", a.objects, classifier=a.classifier10_bare),
         ("10 probabilities", "24")),
    Case("score: classifier label count differs from the conditions", lambda a, t: _score(
        a, t, "--classifier-value-range", "-1,1", classifier=a.classifier10_bare),
         ("10 probabilities", "24 labels", "use the classifier trained on this label space")),
    Case("score: classifier outputs NaN", lambda a, t: _score(
        a, t, classifier=make_dense_head(t / "nan_judge.onnx", role="classifier", activation="Log")),
         ("nan_judge.onnx", "NaN/Inf", "re-export")),
    Case("score: classifier takes grey images", lambda a, t: _score(a, t, classifier=a.classifier_grey),
         ("classifier_grey.onnx", "3 channels", "takes 1")),
    Case("score: classifier is not ONNX", lambda a, t: _score(a, t, classifier=_write(t / "judge.onnx", os.urandom(512))),
         ("judge.onnx", "valid .onnx"), process=True),
    Case("score: classifier is a PyTorch file", lambda a, t: _score(a, t, classifier=_ta(a, "ta10")),
         ("PyTorch checkpoint", "gen-eval export"), needs_torch=True),
    Case("score: generator given as classifier", lambda a, t: _score(a, t, classifier=a.gen),
         ("is a generator", "classifier is needed")),
    Case("score: unconditional generator", lambda a, t: _score(a, t, model=a.gen), ("unconditional",)),
    Case("score: unknown label in test file", lambda a, t: _score(
        a, t, test=_conditions(t, '[["red cube"], ["golden cube"]]')),
         ("item 1", "'golden cube'", "valid names include")),
    Case("score: malformed test file", lambda a, t: _score(a, t, test=_conditions(t, '[["red cube"]')),
         ("invalid JSON",)),
    Case("score: repeats 0", lambda a, t: _score(a, t, "--repeats", 0), ("--repeats", "at least 1")),
    Case("score: report exists", lambda a, t: _score(a, t, "--report", _existing(t, "r.json")),
         ("already exists", "--force")),
    Case("score: read-only report folder", lambda a, t: _score(a, t, "--report", t / "ro" / "r.json"),
         ("not writable", "ro"), readonly="ro"),
    Case("score: grid under a file", lambda a, t: _score(a, t, "--grid", _existing(t, "f") / "g.png"),
         ("not a folder", "choose another output path")),

    # ---- fid --------------------------------------------------------------------------------------
    Case("fid: statistics without sigma", lambda a, t: _fid(a, t, ref=write_stats(t / "s.npz", mu=np.zeros(16))),
         ("'mu' and 'sigma'", "statistics file")),
    Case("fid: statistics of wrong shape", lambda a, t: _fid(
        a, t, ref=write_stats(t / "s.npz", mu=np.zeros(16), sigma=np.eye(16)[:, :15])),
         ("do not fit", "[D, D]", "gen-eval stats")),
    Case("fid: statistics of another dimension", lambda a, t: _fid(
        a, t, ref=write_stats(t / "s.npz", mu=np.zeros(8), sigma=np.eye(8))),
         ("8-d", "16-d", "feature model")),
    Case("fid: statistics file is not an npz", lambda a, t: _fid(a, t, ref=_write(t / "s.npz", os.urandom(200))),
         ("not a readable .npz", "gen-eval stats"), never=UNSAFE_ADVICE),
    Case("fid: statistics with a pickle payload", lambda a, t: _fid(a, t, ref=_npz_with_pickle(t)),
         ("evil.npz", "gen-eval stats"), marker="payload-ran", never=("unsafely",)),
    Case("fid: one image", lambda a, t: _fid(a, t, data=a.one_image), ("one_image", "at least 2", "more images")),
    Case("fid: statistics of one image", lambda a, t: _fid(a, t, ref=_one_image_stats(t)),
         ("1 image", "merge")),
    Case("fid: empty folder", lambda a, t: _fid(a, t, data=_mkdir(t / "empty")), ("holds no image files",)),
    Case("fid: corrupt image", lambda a, t: _fid(a, t, data=_corrupt_folder(t, "bad.png", os.urandom(100))),
         ("bad.png", "not an image", "remove it")),
    Case("fid: decompression bomb", lambda a, t: _fid(a, t, data=write_png_bomb(write_images(t / "im", 3) / "b.png").parent),
         ("b.png", "decompression bomb", "remove it")),
    Case("fid: generator as features model", lambda a, t: ["fid", "--features", a.gen, "--ref", a.stats,
                                                           "--data", a.images],
         ("is a generator", "features is needed")),
    Case("fid: neither --data nor --model", lambda a, t: ["fid", "--features", a.features, "--ref", a.stats],
         ("exactly one of", "--data", "--model")),
    Case("fid: missed gate", lambda a, t: _fid(a, t, "--max-fid", "0"), ("--max-fid",), code=1),
    Case("fid: report exists", lambda a, t: _fid(a, t, "--report", _existing(t, "r.json")),
         ("already exists", "--force")),

    # ---- stats compute / merge ----------------------------------------------------------------------
    Case("stats: one image", lambda a, t: ["stats", "--features", a.features, "--data", a.one_image, "--out", t / "s.npz"],
         ("one_image", "at least 2", "more images")),
    Case("stats: output exists", lambda a, t: ["stats", "--features", a.features, "--data", a.images,
                                               "--out", _existing(t, "s.npz")],
         ("already exists", "--force")),
    Case("stats: output not .npz", lambda a, t: ["stats", "--features", a.features, "--data", a.images,
                                                 "--out", t / "s.json"],
         (".npz",)),
    Case("stats: read-only output folder", lambda a, t: ["stats", "--features", a.features, "--data", a.images,
                                                         "--out", t / "ro" / "s.npz"],
         ("not writable", "ro"), readonly="ro"),
    Case("stats merge: pytorch-fid file", lambda a, t: ["stats", "merge", a.stats, a.stats_pytorch_fid, "--out", t / "m.npz"],
         ("cannot be merged exactly", "gen-eval stats")),
    Case("stats merge: other dimension", lambda a, t: ["stats", "merge", a.stats, _stats_of_dim(t, 8), "--out", t / "m.npz"],
         ("dimension", "one feature model")),
    Case("stats merge: sums do not fit", lambda a, t: ["stats", "merge", a.stats, _damaged_stats(t), "--out", t / "m.npz"],
         ("do not match", "damaged", "gen-eval stats")),
    Case("stats merge: zero-byte file", lambda a, t: ["stats", "merge", a.stats, _write(t / "z.npz", b""), "--out",
                                                      t / "m.npz"],
         ("z.npz",)),

    # ---- mse --------------------------------------------------------------------------------------
    Case("mse: encoder and decoder do not fit", lambda a, t: ["mse", "--model", a.decoder, "--encoder", a.encoder4,
                                                              "--data", a.images],
         ("4-d", "8-d", "one VAE")),
    Case("mse: zero-byte image", lambda a, t: ["mse", "--model", a.decoder, "--encoder", a.encoder,
                                               "--data", _corrupt_folder(t, "zero.png", b"")],
         ("zero.png", "empty file")),
    Case("mse: images of another size", lambda a, t: ["mse", "--model", a.decoder, "--encoder", a.encoder,
                                                      "--data", write_images(t / "big", 2, size=16)],
         ("16x16", "8x8", "resolution")),
    Case("mse: classifier as encoder", lambda a, t: ["mse", "--model", a.decoder, "--encoder", a.classifier,
                                                     "--data", a.images],
         ("is a classifier", "encoder is needed")),
    Case("mse: missed gate", lambda a, t: ["mse", "--model", a.decoder, "--encoder", a.encoder,
                                           "--data", a.images, "--max-mse", "-1"],
         ("--max-mse",), code=1),

    # ---- demo -------------------------------------------------------------------------------------
    Case("demo: output under a file", lambda a, t: ["demo", "--quick", "--device", "cpu", "--out", _existing(t, "f") / "d"],
         ("is a file, not a folder", "choose another")),
    Case("demo: output is a file", lambda a, t: ["demo", "--quick", "--device", "cpu", "--out", _existing(t, "f")],
         ("is a file",)),
    Case("demo: unknown device", lambda a, t: ["demo", "--quick", "--device", "tpu", "--out", t / "d"],
         ("unknown device 'tpu'", "auto, cpu, cuda or cuda:N")),

    # ---- metrics ----------------------------------------------------------------------------------
    Case("metrics: unknown metric", lambda a, t: ["metrics", "--features", a.features, "--ref", a.images, "--data",
                                                  a.images, "--metrics", "fid,sharpness"],
         ("unknown metric 'sharpness'", "known: ", "kid")),
    Case("metrics: statistics as reference", lambda a, t: ["metrics", "--features", a.features, "--ref", a.stats,
                                                           "--data", a.images, "--metrics", "kid"],
         ("statistics hold no features", "reference images")),
    Case("metrics: Inception Score without logits", lambda a, t: ["metrics", "--features", a.features, "--ref",
                                                                  a.images, "--data", a.images, "--metrics", "is"],
         ("logits", "leave out 'is'")),

    # ---- compare ----------------------------------------------------------------------------------
    Case("compare: not a report", lambda a, t: ["compare", _write(t / "n.json", "[1, 2]"), _write(t / "b.json", "{}")],
         ("not a gen-eval report", "gen-eval score --report")),
    Case("compare: a fid report", lambda a, t: ["compare", _write(t / "n.json", '{"metric": "fid"}'),
                                                _write(t / "b.json", '{"metric": "fid"}')],
         ("'fid' report", "classifier_score")),
    Case("compare: no per-image hits", lambda a, t: ["compare", _write(t / "n.json", '{"metric": "classifier_score"}'),
                                                     _write(t / "b.json", '{"metric": "classifier_score"}')],
         ("no per-image hits", "score it again")),
    Case("compare: missing file", lambda a, t: ["compare", t / "absent.json", _write(t / "b.json", "{}")],
         ("absent.json", "not found")),

    # ---- config -----------------------------------------------------------------------------------
    Case("config: unknown setting", lambda a, t: ["config", "--file", _write(t / "gen-eval.toml", 'classifer = "j.onnx"\n')],
         ("unknown setting 'classifer'", "valid: classifier")),
    Case("config: invalid TOML", lambda a, t: ["config", "--file", _write(t / "gen-eval.toml", "device = 'cpu\n")],
         ("invalid TOML", "fix the file")),
    Case("config: wrong type", lambda a, t: ["config", "--file", _write(t / "gen-eval.toml", "threads = 'two'\n")],
         ("threads", "not an integer")),
    Case("config: missing file", lambda a, t: ["config", "--file", t / "absent.toml"],
         ("absent.toml", "check the path")),

    # ---- selftest ---------------------------------------------------------------------------------
    Case("selftest: unknown device", lambda a, t: ["selftest", "--device", "cudax"],
         ("unknown device 'cudax'", "auto, cpu, cuda or cuda:N")),
    Case("selftest: zero threads", lambda a, t: ["selftest", "--device", "cpu", "--threads", "0"],
         ("--threads must be at least 1",)),
    Case("selftest: report exists", lambda a, t: ["selftest", "--device", "cpu", "--report", _existing(t, "r.json")],
         ("already exists", "--force")),
]


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _iclevr_big(t: Path) -> Path:
    item = b'"000.png": ["red cube"], '
    return _iclevr(t, b"{" + item * (BIG_JSON_BYTES // len(item)) + b'"001.png": ["red cube"]}')


def _one_image_stats(t: Path) -> Path:
    stats = FeatureStats(16, "test-features")
    stats.update(np.ones((1, 16)))
    return stats.save(t / "one.npz")


def _stats_of_dim(t: Path, dim: int) -> Path:
    stats = FeatureStats(dim, "test-features")
    stats.update(np.random.default_rng(0).standard_normal((4, dim)))
    return stats.save(t / f"d{dim}.npz")


def _damaged_stats(t: Path) -> Path:
    stats = FeatureStats(16, "test-features")
    stats.update(np.random.default_rng(0).standard_normal((4, 16)))
    return write_stats(t / "damaged.npz", mu=stats.mu, sigma=stats.sigma, n=np.int64(4), sum=stats.sum[:8],
                       sum_outer=stats.sum_outer)


def _ta(a: Assets, key: str) -> Path:
    return a.torch_files[key]


# == round 2 (issue 12): files a model can read, outputs that destroy, memory, silently wrong numbers ==
def _with_meta(src: Path, dst: Path, **meta: str) -> Path:
    """A copy of the model ``src`` whose metadata entries ``meta`` are set (keys with '.' given as '__')."""
    import onnx

    model = onnx.load(str(src))
    for key, value in meta.items():
        key = key.replace("__", ".")
        for entry in model.metadata_props:
            if entry.key == key:
                entry.value = value
                break
        else:
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
    onnx.save(model, str(dst))
    return dst


def _non_utf8_metadata(src: Path, dst: Path) -> Path:
    import onnx

    model = onnx.load(str(src))
    entry = model.metadata_props.add()
    entry.key, entry.value = "note", "MARKMARKMARK"
    dst.write_bytes(model.SerializeToString().replace(b"MARKMARKMARK", b"\xff\xfe\xfdMARKMARK\x80"))
    return dst


def _external_at(src: Path, folder: Path, location: str, secret: Path | None = None) -> Path:
    """A model in ``folder`` whose weight W is external data at ``location`` (a secret file elsewhere)."""
    import onnx

    folder.mkdir(parents=True, exist_ok=True)
    model = onnx.load(str(src))
    onnx.save(model, str(folder / "m.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
              location="w.bin", size_threshold=0)
    data = (folder / "w.bin").read_bytes()
    (folder / "w.bin").unlink()
    if secret is not None:
        _write(secret, data)  # readable bytes of the right size: only the location check can stop it
    model = onnx.load(str(folder / "m.onnx"), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    onnx.save(model, str(folder / "m.onnx"))
    return folder / "m.onnx"


def _linked_external(src: Path, t: Path) -> Path:
    model = _external_at(src, t / "model", "link.bin", secret=t / "outside" / "secret.bin")
    os.symlink(t / "outside" / "secret.bin", t / "model" / "link.bin")
    return model


def _dynamic_shape_generator(path: Path) -> Path:
    """Declares image [B, C, H, W] (shape unknowable before a run) and makes 3x4x4; its metadata says 3,8,8."""
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("MatMul", ["z", "W"], ["lin"]), helper.make_node("Tanh", ["lin"], ["act"]),
             helper.make_node("ReduceMin", ["act"], ["mn"], keepdims=0), helper.make_node("Mul", ["mn", "zero"], ["z0"]),
             helper.make_node("Add", ["z0", "dims"], ["fd"]),
             helper.make_node("Cast", ["fd"], ["shape"], to=TensorProto.INT64),
             helper.make_node("Reshape", ["act", "shape"], ["image"])]
    init = [numpy_helper.from_array(rng.standard_normal((8, 48)).astype(np.float32), "W"),
            numpy_helper.from_array(np.array(0, np.float32), "zero"),
            numpy_helper.from_array(np.array([-1, 3, 4, 4], np.float32), "dims")]
    return save_model(onnx_model(nodes, [_tensor("z", ["B", 8])], [_tensor("image", ["B", "C", "H", "W"])], init),
                      path, GENERATOR_META)


def _huge_input_features(path: Path) -> Path:
    """A features model declaring image [B, 3, 2048, 2048] (cheap inside: average pool, then 3 -> 16)."""
    nodes = [helper.make_node("GlobalAveragePool", ["image"], ["p"]), helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("MatMul", ["f", "W"], ["features"])]
    init = [numpy_helper.from_array(np.ones((3, 16), np.float32), "W")]
    return save_model(onnx_model(nodes, [_tensor("image", ["B", 3, 2048, 2048])], [_tensor("features", ["B", 16])],
                                 init),
                      path, {"gen_eval.role": "features", "gen_eval.value_range": "0,1", "gen_eval.contract": "1"})


def _fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


def _char_device(path: Path) -> Path:
    """A character device like /dev/null (major 1, minor 3) in the row's folder; skipped where mknod is not allowed."""
    import stat

    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except (PermissionError, OSError) as exc:
        pytest.skip(f"cannot create a device node here ({exc}); the FIFO and symlink rows still run")
    return path


def _symlink_to(t: Path, name: str, target: Path) -> Path:
    os.symlink(target, t / name)
    return t / name


def _copy_as(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(src, dst))


def _stats_with(t: Path, name: str = "s.npz", **changes) -> Path:
    """Our statistics of 4 random 16-d features, with entries replaced by ``changes``."""
    stats = FeatureStats(16, "test-features")
    stats.update(np.random.default_rng(0).standard_normal((4, 16)))
    arrays = dict(mu=stats.mu, sigma=stats.sigma, n=np.int64(4), sum=stats.sum, sum_outer=stats.sum_outer,
                  feature_model=np.str_("test-features"))
    arrays.update(changes)
    return write_stats(t / name, **arrays)


def _npz_bomb(t: Path) -> Path:
    """An .npz whose sum_outer header declares 100000 x 100000 float64 (80 GB) in a few bytes of data."""
    import io
    import zipfile

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (100_000, 100_000)})
    path = _stats_with(t, "bomb.npz")
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("sum_outer_big.npy", header.getvalue() + b"\x00" * 64)
    data = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            data[info.filename] = archive.read(info)
    data["sum_outer.npy"] = data.pop("sum_outer_big.npy")
    with zipfile.ZipFile(path, "w") as archive:
        for name, payload in data.items():
            archive.writestr(name, payload)
    return path


def _idx_gz(t: Path, count: int, rows: int, cols: int, body: bytes = b"") -> Path:
    import gzip

    folder = t / "mnist"
    folder.mkdir(parents=True, exist_ok=True)
    header = bytes([0, 0, 8, 3]) + b"".join(v.to_bytes(4, "big") for v in (count, rows, cols))
    with gzip.open(folder / "train-images-idx3-ubyte.gz", "wb") as handle:
        handle.write(header + body)
    return folder


def _sample_shard(a: Assets, t: Path) -> Path:
    out = t / "samples"
    code, _, stderr = run_gen_eval(["sample", "--model", a.gen, "--n", 8, "--shard", "1/4", "--out", out], False)
    assert code == 0, stderr
    return out


def _other_features_stats(a: Assets, t: Path) -> Path:
    """Statistics (16-d, like a.features) made with another features model."""
    other = make_dense_head(t / "other_features.onnx", role="features", out_dim=16, value_range="0,1",
                            activation="Tanh", seed=7)
    reference_stats(other, a.images, t / "other.npz")
    return t / "other.npz"


def _checkpoint_with(a: Assets, t: Path, name: str = "ck.pt", drop: tuple = (), **changes) -> Path:
    import torch

    from gen_eval.trainers.checkpoint import load_checkpoint

    data = load_checkpoint(_ta(a, "checkpoint"))
    data.update(changes)
    for key in drop:
        data.pop(key, None)
    path = t / name
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(data, path)
    return path


def _resumable(a: Assets, t: Path, **kw) -> Path:
    return _run_with_last(t, _checkpoint_with(a, t, **kw))


HELD_LOCKS: list[int] = []


def _locked_run(t: Path) -> Path:
    """A run folder that another (simulated) `gen-eval train` holds locked."""
    import fcntl

    run = _mkdir(t / "run" / "checkpoints").parent
    fd = os.open(run, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    HELD_LOCKS.append(fd)  # released by the fixture below once the row has run
    return run


def _long_condition(t: Path) -> Path:
    names = ICLEVR_NAMES * 2000  # 48,000 names (about 550 KB on one line)
    return _conditions(t, json.dumps([names]))


ROUND_2: list[Case] = [
    # 1. a model reads files it should not; label files naming files outside the data set
    Case("sample: external data at an absolute path", lambda a, t: _sample(
        a, t, model=_external_at(a.gen, t / "model", str(t / "secret.bin"), secret=t / "secret.bin")),
         ("secret.bin", "outside the model's folder", "re-export")),
    Case("info: external data in a parent folder", lambda a, t: ["info", _external_at(
        a.gen, t / "model", "../secret.bin", secret=t / "secret.bin")],
         ("../secret.bin", "outside the model's folder")),
    Case("fid: external data through a symbolic link", lambda a, t: [
        "fid", "--features", _linked_external(a.features, t), "--ref", a.stats, "--data", a.images],
         ("link.bin", "leads outside the model's folder")),
    Case("data check: label file names ../ image", lambda a, t: ["data", "check", _iclevr(
        t, json.dumps({"../../outside.png": ["red cube"], "001.png": ["red cube"]}))],
         ("train.json", "'../../outside.png'", "outside the data set")),
    Case("data check: label file names an absolute image path", lambda a, t: ["data", "check", _iclevr(
        t, json.dumps({str(a.images / "000.png"): ["red cube"]}))],
         ("train.json", "outside the data set")),
    Case("data check: label file names a link out of the data set", lambda a, t: ["data", "check", _iclevr_link(a, t)],
         ("train.json", "link.png", "leads outside")),

    # 2. outputs that destroy
    Case("score: --report is a symbolic link (--force)", lambda a, t: _score(
        a, t, "--force", "--report", _symlink_to(t, "r.json", _existing(t, "target.json"))),
         ("r.json", "symbolic link", "not a regular file", "choose another output path")),
    Case("sample: grid output is a FIFO (--force)", lambda a, t: ["sample", "--model", a.gen, "--n", 4, "--force",
                                                                  "--out", _fifo(t / "grid.png")],
         ("grid.png", "FIFO", "never replaces it")),
    Case("fid: --report is a device node (--force)", lambda a, t: _fid(a, t, "--force", "--report",
                                                                     _char_device(t / "null")),
         ("null", "character device", "never replaces it")),
    Case("sample: .npz output is a folder (--force)", lambda a, t: ["sample", "--model", a.gen, "--n", 4, "--force",
                                                                    "--out", _mkdir(t / "s.npz")],
         ("s.npz", "is a folder", "file path")),
    Case("export: --out is the checkpoint (--force)", lambda a, t: [
        "export", _copy_as(_ta(a, "checkpoint"), t / "last.pt"), "--out", t / "last.pt", "--force"],
         ("last.pt", "would destroy the input", "choose another output path"), needs_torch=True),
    Case("score: --report is the --test file (--force)", lambda a, t: _score(
        a, t, "--force", "--report", t / "test.json", test=_copy_as(a.test_json, t / "test.json")),
         ("--report", "--test", "would destroy the input")),
    Case("fid: --save-stats is the --ref file (--force)", lambda a, t: _fid(
        a, t, "--force", "--save-stats", t / "ref.npz", ref=_copy_as(a.stats, t / "ref.npz")),
         ("--save-stats", "--ref", "would destroy the input")),
    Case("stats merge: --out is an input (--force)", lambda a, t: [
        "stats", "merge", _copy_as(a.stats, t / "a.npz"), _stats_with(t), "--out", t / "a.npz", "--force"],
         ("a.npz", "would destroy the input")),
    Case("mse: --report is the encoder (--force)", lambda a, t: [
        "mse", "--model", a.decoder, "--encoder", _copy_as(a.encoder, t / "enc.onnx"), "--data", a.images,
        "--report", t / "enc.onnx", "--force"],
         ("--report", "--encoder", "would destroy the input")),
    Case("fid: --report and --save-stats on one path", lambda a, t: _fid(
        a, t, "--report", t / "s.npz", "--save-stats", t / "s.npz"),
         ("--save-stats and --report are both", "its own path")),
    Case("train: --out is the --data folder", lambda a, t: [
        "train", "dcgan", "--data", write_images(t / "data", 4), "--out", t / "data", "--force", "--steps", 1],
         ("--out", "--data", "choose another --out")),
    Case("train: --resume while another run holds the folder", lambda a, t: [
        "train", "dcgan", "--data", a.images, "--resume", "--out", _locked_run(t)],
         ("in use by another", "wait for it")),

    # 3. untrusted strings reach the terminal
    Case("sample: escape codes in bad metadata", lambda a, t: _sample(a, t, model=_with_meta(
        a.gen, t / "esc.onnx", gen_eval__latent_dim="\x1b[2J\x1b[31m8\nOK")),
         ("gen_eval.latent_dim", "re-export")),
    Case("sample: output path with a newline and escape code", lambda a, t: [
        "sample", "--model", a.gen, "--n", 4, "--out", _existing(t, "a\nb\x1b[31m.png")],
         ("already exists", "a\\nb\\x1b[31m.png")),

    # 4. memory and time that are not bounded
    Case("sample: condition file is a FIFO", lambda a, t: _sample_cond(a, t, _fifo(t / "cond.json")),
         ("cond.json", "FIFO", "regular file")),
    Case("sample: condition file is /dev/zero", lambda a, t: _sample_cond(a, t, Path("/dev/zero")),
         ("/dev/zero", "character device", "regular file")),
    Case("score: objects file is /dev/urandom", lambda a, t: _score(a, t, "--objects", "/dev/urandom"),
         ("/dev/urandom", "character device")),
    Case("info: model is /dev/urandom", lambda a, t: ["info", "/dev/urandom"],
         ("/dev/urandom", "character device", "regular file")),
    Case("fid: statistics file is a FIFO", lambda a, t: _fid(a, t, ref=_fifo(t / "s.npz")), ("s.npz", "FIFO")),
    Case("fid: statistics .npz bomb", lambda a, t: _fid(a, t, ref=_npz_bomb(t)),
         ("bomb.npz", "sum_outer", "over the limit")),
    Case("data check: MNIST gzip header claims 4 GB", lambda a, t: [
        "data", "check", _idx_gz(t, 60000, 300, 300, b"\x00" * 1000)],
         ("train-images-idx3-ubyte.gz", "limit", "right file")),
    Case("sample: --n 10^12", lambda a, t: ["sample", "--model", a.gen, "--n", 10**12, "--out", t / "out"],
         ("--n 1000000000000", "give a smaller --n")),
    Case("fid: --n 10^12", lambda a, t: ["fid", "--features", a.features, "--ref", a.stats, "--model", a.gen,
                                         "--n", 10**12], ("--n", "give a smaller --n")),
    Case("sample: .npz of 10^9 images", lambda a, t: ["sample", "--model", a.gen, "--n", 10**9, "--out", t / "s.npz"],
         ("GiB", "PNG folder")),
    Case("sample: a condition of 48000 labels", lambda a, t: _sample_cond(a, t, _long_condition(t)),
         ("item 0", "appears twice")),
    Case("fid: features model declares a 2048x2048 input", lambda a, t: [
        "fid", "--features", _huge_input_features(t / "big.onnx"), "--ref", a.stats, "--data", a.images],
         ("big.onnx", "2048", "smaller images")),
    Case("sample: latent_dim 10^9 in metadata", lambda a, t: _sample(a, t, model=_with_meta(
        a.gen, t / "wide.onnx", gen_eval__latent_dim="1000000000")),
         ("gen_eval.latent_dim", "65536", "re-export")),

    # 5. numbers that are silently wrong
    Case("stats merge: negative n", lambda a, t: ["stats", "merge", a.stats, _stats_with(t, n=np.int64(-4)),
                                                  "--out", t / "m.npz"],
         ("n is -4", "positive integer", "gen-eval stats")),
    Case("stats merge: n = 0 with sums", lambda a, t: ["stats", "merge", a.stats, _stats_with(t, n=np.int64(0)),
                                                       "--out", t / "m.npz"],
         ("n is 0", "positive integer")),
    Case("stats merge: fractional n", lambda a, t: ["stats", "merge", a.stats, _stats_with(t, n=np.float64(4.5)),
                                                    "--out", t / "m.npz"],
         ("4.5", "positive integer")),
    Case("stats merge: one shard twice", lambda a, t: ["stats", "merge", _stats_with(t, "a.npz"),
                                                       _copy_as(t / "a.npz", t / "b.npz"), "--out", t / "m.npz"],
         ("b.npz", "same content", "counted twice")),
    Case("sample: value range -inf,inf", lambda a, t: [
        "sample", "--model", a.gen_cond_bare, "--conditions", a.test_json, "--objects", a.objects,
        "--value-range=-inf,inf", "--out", t / "out"],
         ("--value-range", "finite")),
    Case("sample: images differ from image_shape metadata at run time", lambda a, t: _sample(
        a, t, model=_dynamic_shape_generator(t / "dyn.onnx")),
         ("dyn.onnx", "(3, 4, 4)", "(3, 8, 8)", "re-export")),
    Case("data check: MNIST of 0x0 images", lambda a, t: ["data", "check", _idx_gz(t, 5, 0, 0)],
         ("0x0", "at least 1x1")),

    # 6. wrong answers with exit code 0
    Case("fid: reference statistics of another features model", lambda a, t: _fid(a, t, ref=_other_features_stats(a, t)),
         ("other.npz", "features model", "--allow-other-features")),
    Case("fid: sample folder holding one shard of four", lambda a, t: _fid(a, t, data=_sample_shard(a, t)),
         ("holds 2 of the 8 images", "missing shards")),

    # 7. tracebacks instead of one error line
    Case("sample: label-space metadata nested deeply", lambda a, t: _sample_cond(a, t, a.test_json, model=_with_meta(
        a.gen_cond, t / "deep.onnx", gen_eval__label_space="[" * 100_000 + "]" * 100_000)),
         ("gen_eval.label_space", "nested too deeply", "re-export")),
    Case("info: metadata not UTF-8", lambda a, t: ["info", _non_utf8_metadata(a.gen, t / "latin.onnx")],
         ("latin.onnx", "not UTF-8", "re-export")),
    Case("sample: --nrow 0", lambda a, t: ["sample", "--model", a.gen, "--n", 4, "--nrow", 0, "--out", t / "g.png"],
         ("--nrow", "from 1")),
    Case("sample: --seed 2^63", lambda a, t: _sample(a, t, "--seed", 2**63), ("--seed", "2^63-1")),
    Case("score: --seed -5", lambda a, t: _score(a, t, "--seed", -5), ("--seed", "from 0")),
    Case("train: --seed -5", lambda a, t: ["train", "dcgan", "--data", a.images, "--out", t / "run", "--seed", -5,
                                           "--steps", 1], ("--seed -5", "[0, 2^63-1]")),
    Case("fid: statistics n is a string", lambda a, t: _fid(a, t, ref=_stats_with(t, n=np.str_("four"))),
         ("'four'", "positive integer")),
    Case("stats merge: n is an array", lambda a, t: ["stats", "merge", a.stats, _stats_with(t, n=np.arange(3)),
                                                     "--out", t / "m.npz"],
         ("n is [0, 1, 2]", "positive integer")),
    Case("export: checkpoint config of the wrong type", lambda a, t: [
        "export", _checkpoint_with(a, t, config=[1, 2]), "--out", t / "g.onnx"],
         ("'config' is list", "damaged"), needs_torch=True),
    Case("export: checkpoint with negative widths", lambda a, t: [
        "export", _checkpoint_with(a, t, config={**_stored_config(a), "g_width": -8}), "--out", t / "g.onnx"],
         ("ck.pt", "do not build", "damaged"), needs_torch=True),
    Case("train: resume a checkpoint without random state", lambda a, t: [
        "train", "dcgan", "--data", a.images, "--resume", "--out", _resumable(a, t)],
         ("random-number state", "start a new run"), needs_torch=True),
    Case("train: resume a checkpoint without optimiser state", lambda a, t: [
        "train", "dcgan", "--data", a.images, "--resume", "--out", _resumable(a, t, drop=("optimizers",))],
         ("no 'optimizers' entry", "start a new run"), needs_torch=True),
]
CASES += ROUND_2


def _stored_config(a: Assets) -> dict:
    from gen_eval.trainers.checkpoint import load_checkpoint

    return dict(load_checkpoint(_ta(a, "checkpoint"))["config"])


def _iclevr_link(a: Assets, t: Path) -> Path:
    root = _iclevr(t, json.dumps({"000.png": ["red cube"], "link.png": ["red cube"]}))
    os.symlink(a.images / "001.png", root / "images" / "link.png")
    return root


# -- running one row ------------------------------------------------------------------------------
def snapshot(*roots: Path) -> dict[str, str]:
    """Every path under ``roots`` -> 'dir' or the SHA-256 of the file."""
    listing = {}
    import stat

    for root in roots:
        for path in sorted(root.rglob("*")):
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                listing[str(path)] = "link -> " + os.readlink(path)
            elif stat.S_ISDIR(info.st_mode):
                listing[str(path)] = "dir"
            elif not stat.S_ISREG(info.st_mode):  # a FIFO or device node: never read, must stay what it is
                listing[str(path)] = f"special {stat.S_IFMT(info.st_mode):o} {info.st_rdev}"
            else:
                listing[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return listing


def _params():
    for case in CASES:
        marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
        yield pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", list(_params()))
def test_bad_input(case: Case, assets: Assets, request, tmp_path: Path) -> None:
    watched = [assets.root]
    if case.needs_torch:
        assets.torch_files.update(request.getfixturevalue("torch_assets"))
        watched.append(assets.torch_files["checkpoint"].parent)
    folder = tmp_path / "case"
    folder.mkdir()
    args = case.make(assets, folder)
    try:
        with unwritable(folder / case.readonly) if case.readonly else nullcontext():
            before = snapshot(folder, *watched)
            code, stdout, stderr = run_gen_eval(args, case.process)
    finally:
        while HELD_LOCKS:
            os.close(HELD_LOCKS.pop())
    line = error_line(stderr)
    assert code == case.code, (code, stdout, stderr)
    for words in case.says:
        assert words in line, f"{words!r} not in: {line}"
    for words in case.never:
        assert words not in line, f"{words!r} in: {line}"
    assert "\x1b" not in stderr, "terminal escape codes on stderr"
    after = snapshot(folder, *watched)
    appeared = sorted(set(after) - set(before))
    changed = sorted(k for k in before if after.get(k) != before[k])
    assert not appeared and not changed, f"left behind: {appeared}, changed: {changed}"
    if case.marker:
        assert not (folder / case.marker).exists(), "the pickle payload ran"


def test_table_is_at_least_40_rows_across_every_command():
    from gen_eval.cli import cli

    counts = Counter(case.command.split()[0] for case in CASES)
    assert sum(counts.values()) >= 40
    assert set(cli.commands) <= set(counts), set(cli.commands) - set(counts)


def test_gate_failure_still_writes_its_report(assets: Assets, tmp_path: Path) -> None:
    """A missed gate (exit 1) is not bad input: the CI job gets its JSON report, and one error line."""
    report = tmp_path / "r.json"
    code, stdout, stderr = run_gen_eval(_fid(assets, tmp_path, "--max-fid", "0", "--report", report), False)
    assert code == 1 and "--max-fid" in error_line(stderr)
    assert json.loads(report.read_text())["value"] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_the_pickle_payloads_really_run_when_loaded_unsafely(tmp_path: Path) -> None:
    """Control for the payload rows: an unsafe load of the same files does create the marker."""
    import torch

    evil_npz = _npz_with_pickle(tmp_path)
    with np.load(evil_npz, allow_pickle=True) as data:
        data["mu"]
    assert (tmp_path / "payload-ran").exists()
    (tmp_path / "payload-ran").unlink()
    torch.load(_evil_checkpoint(tmp_path), weights_only=False)
    assert (tmp_path / "payload-ran").exists()


# -- round 2: what the rows cannot show -----------------------------------------------------------------
def test_external_data_next_to_the_model_loads_from_any_working_directory(assets: Assets, tmp_path: Path) -> None:
    """A sidecar in the model's folder is found whatever the current directory (here /), and is used."""
    import onnx

    model = onnx.load(str(assets.gen))
    folder = _mkdir(tmp_path / "model")
    onnx.save(model, str(folder / "g.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
              location="g.data", size_threshold=1024)  # W (6 KB) outside, the Reshape target inside, as exporters do
    assert (folder / "g.data").stat().st_size == 8 * 192 * 4
    env = dict(os.environ, PYTHONPATH=str(REPO), NO_COLOR="1")
    outputs = {}
    for name, path in (("sidecar", folder / "g.onnx"), ("inline", assets.gen)):
        out = tmp_path / f"{name}.npz"
        result = subprocess.run([sys.executable, "-m", "gen_eval.cli", "sample", "--model", str(path), "--n", "4",
                                 "--out", str(out)], capture_output=True, text=True, cwd="/", env=env, timeout=120)
        assert result.returncode == 0, result.stderr
        with np.load(out) as data:
            outputs[name] = data["images"]
    np.testing.assert_array_equal(outputs["sidecar"], outputs["inline"])


def test_info_shows_untrusted_metadata_and_names_escaped(assets: Assets, tmp_path: Path) -> None:
    model = _with_meta(assets.gen, tmp_path / "m.onnx", note="\x1b]0;owned\x07\x1b[31mred\nsecond line\u202e")
    code, stdout, stderr = run_gen_eval(["info", model], False)
    assert code == 0, stderr
    assert "\x1b" not in stdout + stderr and "\x07" not in stdout and "\u202e" not in stdout
    line = next(line for line in stdout.splitlines() if line.startswith("metadata note"))
    assert "\\x1b[31mred\\nsecond line\\u202e" in line


def test_sixteen_bit_png_decodes_to_its_top_bits(tmp_path: Path) -> None:
    """Pillow's convert() clips 16-bit greyscale to 255 everywhere; the reader keeps the top 8 bits."""
    from gen_eval.data.images import load_image

    values = (np.arange(64, dtype=np.uint16) * 1000).reshape(8, 8)
    Image.fromarray(values).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode == "I;16"
    for mode, channels in (("RGB", 3), ("L", 1)):
        image = load_image(tmp_path / "deep.png", mode)
        assert image.shape == (8, 8, channels)
        np.testing.assert_array_equal(image[..., 0], (values >> 8).astype(np.uint8))


def test_the_last_batch_is_not_padded_to_the_batch_size(assets: Assets) -> None:
    """4 images at --batch-size 10^6 run as 4 rows (padding them took 1.7 GB); a fixed-batch graph is still padded."""
    from gen_eval.evaluator import batches
    from gen_eval.evaluator.model import load_model
    from helpers.graphs import make_generator

    seen = []
    original = batches.BatchRunner._run_batch

    def record(self, batch):
        seen.append({name: value.shape[0] for name, value in batch.items()})
        return original(self, batch)

    batches.BatchRunner._run_batch = record
    try:
        generator = load_model(assets.gen, role="generator", device="cpu", batch_size=10**6)
        assert generator.generate(np.zeros((4, 8), np.float32)).shape == (4, 3, 8, 8)
        assert seen == [{"z": 4}]
        seen.clear()
        fixed = load_model(make_generator(assets.root.parent / "fixed.onnx", static_batch=8), role="generator",
                           device="cpu")
        assert fixed.generate(np.zeros((3, 8), np.float32)).shape == (3, 3, 8, 8)
        assert seen == [{"z": 8}]
    finally:
        batches.BatchRunner._run_batch = original


def test_allow_other_features_computes_the_distance_with_a_warning(assets: Assets, tmp_path: Path) -> None:
    ref = _other_features_stats(assets, tmp_path)
    code, stdout, stderr = run_gen_eval(_fid(assets, tmp_path, "--allow-other-features", ref=ref), False)
    assert code == 0, stderr
    warnings = [line for line in stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "features model" in warnings[0] and "meaningless" in warnings[0]
    assert "value" in stdout


def test_statistics_record_the_features_model_and_preprocessing(assets: Assets) -> None:
    from gen_eval.evaluator.stats import load_stats

    ref = load_stats(assets.stats)
    digest = hashlib.sha256(assets.features.read_bytes()).hexdigest()
    assert ref.stats is not None and ref.stats.model_sha256 == digest
    assert ref.preprocessing == "uint8 -> float32 [0, 1], bilinear resize to 8x8"


def test_the_feature_function_refuses_float_images(assets: Assets) -> None:
    from gen_eval.evaluator.features import features_of_uint8
    from gen_eval.evaluator.model import load_model

    features = load_model(assets.features, role="features", device="cpu")
    images = np.random.default_rng(0).uniform(-1, 1, (2, 3, 8, 8)).astype(np.float32)
    with pytest.raises(ValueError, match="uint8"):
        features_of_uint8(features, images)
    assert features_of_uint8(features, np.zeros((2, 3, 8, 8), np.uint8)).shape == (2, 16)
