"""Every reader on small files written here: what it yields, and its malformed-input matrix."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from gen_eval.cli import cli
from gen_eval.data.datasets import detect_format, open_dataset
from gen_eval.data.shapes import objects_json_text
from gen_eval.errors import UserError


def png(path: Path, size: tuple[int, int] = (8, 8), value: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, 255 - value, 7)).save(path)


def expect_error(words: str, fn, *args, **kw) -> str:
    with pytest.raises(UserError) as info:
        fn(*args, **kw)
    message = str(info.value)
    assert words in message, message
    assert "\n" not in message
    return message


# ---------------------------------------------------------------------------------------- iCLEVR
ICLEVR_TRAIN = {"a.png": ["red cube"], "b.png": ["blue sphere", "gray cube"]}


@pytest.fixture
def iclevr(tmp_path: Path) -> Path:
    root = tmp_path / "iclevr"
    (root / "images").mkdir(parents=True)
    (root / "objects.json").write_text(objects_json_text())
    (root / "train.json").write_text(json.dumps(ICLEVR_TRAIN))
    (root / "test.json").write_text('[["red cube"]]')
    for i, name in enumerate(ICLEVR_TRAIN):
        png(root / "images" / name, value=40 * i)
    return root


def test_iclevr_reads(iclevr: Path) -> None:
    data = open_dataset(iclevr)
    assert detect_format(iclevr) == "iclevr" and data.format == "iclevr"
    assert len(data) == 2 and data.image_shape == (3, 8, 8)
    assert np.flatnonzero(data.labels[1]).tolist() == [0, 10]
    assert data.image(1)[0, 0].tolist() == [40, 215, 7]
    assert "label space: multilabel, 24 names" in data.describe()


def test_iclevr_images_in_tas_folder(iclevr: Path) -> None:
    (iclevr / "images").rename(iclevr / "iclevr")
    assert open_dataset(iclevr).files[0] == iclevr / "iclevr" / "a.png"


def test_reader_is_lazy_about_pixels(iclevr: Path) -> None:
    (iclevr / "images" / "b.png").write_bytes(b"")  # exists, so the label file validates
    data = open_dataset(iclevr)
    assert data.image(0).shape == (8, 8, 3)
    expect_error("empty file", data.image, 1)


def _set(root: Path, name: str, text: str) -> None:
    (root / name).write_text(text)


# (case, how to break the data set, expected words in the error)
ICLEVR_CASES = [
    ("objects.json missing", lambda r: (r / "objects.json").unlink(), "objects.json not found"),
    ("objects.json bad json", lambda r: _set(r, "objects.json", "{"), "invalid JSON"),
    ("train.json missing", lambda r: (r / "train.json").unlink(), "split 'train' not found"),
    ("train.json empty", lambda r: _set(r, "train.json", ""), "empty label file"),
    ("train.json bad json", lambda r: _set(r, "train.json", '{"a.png": ["red cube"]'), "line 1 column"),
    ("train.json is conditions", lambda r: _set(r, "train.json", '[["red cube"]]'), "is a list of conditions"),
    ("train.json wrong type", lambda r: _set(r, "train.json", '"a.png"'), "expected a JSON object"),
    ("no entries", lambda r: _set(r, "train.json", "{}"), "lists no images"),
    ("unknown label", lambda r: _set(r, "train.json", '{"a.png": ["pink cube"]}'), "entry 'a.png': unknown label 'pink cube'"),
    ("duplicate label", lambda r: _set(r, "train.json", '{"a.png": ["red cube", "red cube"]}'), "appears twice"),
    ("empty label list", lambda r: _set(r, "train.json", '{"a.png": []}'), "entry 'a.png': empty list"),
    ("labels not a list", lambda r: _set(r, "train.json", '{"a.png": "red cube"}'), "expected a list of label names"),
    ("missing image", lambda r: (r / "images" / "b.png").unlink(), "image 'b.png' not found"),
    ("no image folder", lambda r: _set(r, "train.json", '{"zz.png": ["red cube"]}'), "image 'zz.png' not found in"),
]


def test_iclevr_without_objects_json_is_not_taken_for_a_folder(iclevr: Path) -> None:
    (iclevr / "objects.json").unlink()
    expect_error("has train.json but no objects.json", open_dataset, iclevr)


@pytest.mark.parametrize("case, breaker, words", ICLEVR_CASES, ids=[c[0] for c in ICLEVR_CASES])
def test_iclevr_errors(iclevr: Path, case: str, breaker, words: str) -> None:
    breaker(iclevr)
    expect_error(words, open_dataset, iclevr, fmt="iclevr")


# ------------------------------------------------------------------------------------ Cartoon Set
CARTOON_HEADER = "hair_a hair_b hair_c hair_d hair_e hair_f eye_a eye_b eye_c eye_d face_a face_b face_c glasses_no glasses_yes"
ROW_A = "1 0 0 0 0 0  0 1 0 0  0 0 1  1 0"
ROW_B = "0 0 0 0 0 1  1 0 0 0  1 0 0  0 1"


def write_cartoon(root: Path, lines: list[str] | None = None, header: str = CARTOON_HEADER) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if lines is None:
        lines = ["2", header, f"cs1.png {ROW_A}", f"cs2.png {ROW_B}"]
    (root / "cartoon_attr.txt").write_text("\n".join(lines) + "\n")
    png(root / "images" / "cs1.png")
    png(root / "images" / "cs2.png")
    return root


def test_cartoon_reads(tmp_path: Path) -> None:
    root = write_cartoon(tmp_path / "cartoon")
    data = open_dataset(root)
    assert data.format == "cartoon" and len(data) == 2
    assert data.label_space.kind == "categorical"
    assert [h for h, _ in data.label_space.heads] == ["hair", "eye", "face", "glasses"]
    assert data.label_space.names[:2] == ("hair:hair_a", "hair:hair_b")
    assert data.label_space.names[-1] == "glasses:glasses_yes"
    np.testing.assert_array_equal(data.labels[0], [float(b) for b in ROW_A.split()])
    assert open_dataset(root / "cartoon_attr.txt").source == str(root / "cartoon_attr.txt")


@pytest.mark.parametrize(
    "header, first, last",
    [
        (CARTOON_HEADER.replace(" ", ", "), "hair:hair_a", "glasses:glasses_yes"),
        ("filename " + CARTOON_HEADER, "hair:hair_a", "glasses:glasses_yes"),
        ("black hair " + CARTOON_HEADER, "hair:0", "glasses:1"),  # names with spaces, no commas: generic
    ],
    ids=["commas", "filename column", "spaces in names"],
)
def test_cartoon_header_variants(tmp_path: Path, header: str, first: str, last: str) -> None:
    data = open_dataset(write_cartoon(tmp_path / "c", header=header))
    assert data.label_space.names[0] == first and data.label_space.names[-1] == last


CARTOON_CASES = [
    ("count not a number", ["two", CARTOON_HEADER, f"cs1.png {ROW_A}"], "line 1: expected the number of images"),
    ("no header", ["1"], "line 2: header line"),
    ("header wrong comma count", ["1", "a, b, c", f"cs1.png {ROW_A}"], "line 2: header has 3 comma-separated names"),
    ("no entries", ["0", CARTOON_HEADER], "lists no images"),
    ("too few bits", ["1", CARTOON_HEADER, "cs1.png 1 0 0"], "line 3: expected a file name and 15 bits, got 3"),
    ("too many bits", ["1", CARTOON_HEADER, f"cs1.png {ROW_A} 0"], "got 16 bits"),
    ("bit not 0/1", ["1", CARTOON_HEADER, f"cs1.png {ROW_A.replace('1', '2', 1)}"], "bits must be 0 or 1, got '2'"),
    ("two hot bits", ["1", CARTOON_HEADER, "cs1.png 1 1 0 0 0 0  0 1 0 0  0 0 1  1 0"], "group 'hair' (bits 0-5) has 2 hot bits"),
    ("no hot bit", ["1", CARTOON_HEADER, "cs1.png 1 0 0 0 0 0  0 1 0 0  0 0 0  1 0"], "group 'face' (bits 10-12) has 0 hot bits"),
    ("count mismatch", ["3", CARTOON_HEADER, f"cs1.png {ROW_A}"], "says 3 images but 1 are listed"),
    ("missing image", ["1", CARTOON_HEADER, f"nope.png {ROW_A}"], "image 'nope.png' not found"),
    ("duplicate image", ["2", CARTOON_HEADER, f"cs1.png {ROW_A}", f"cs1.png {ROW_B}"], "line 4: image 'cs1.png' is listed twice (also line 3)"),
    ("missing later image", ["2", CARTOON_HEADER, f"cs1.png {ROW_A}", f"gone.png {ROW_B}"], "line 4: image 'gone.png' not found"),
]


@pytest.mark.parametrize("case, lines, words", CARTOON_CASES, ids=[c[0] for c in CARTOON_CASES])
def test_cartoon_errors(tmp_path: Path, case: str, lines: list[str], words: str) -> None:
    root = write_cartoon(tmp_path / "cartoon", lines)
    message = expect_error(words, open_dataset, root)
    assert "cartoon_attr.txt" in message


def test_cartoon_empty_file_and_split(tmp_path: Path) -> None:
    root = write_cartoon(tmp_path / "cartoon")
    expect_error("single split", open_dataset, root, split="test")
    (root / "cartoon_attr.txt").write_text("")
    expect_error("empty cartoon_attr.txt", open_dataset, root)


# ----------------------------------------------------------------------------------------- CelebA
DLCV_HEADER = "image_name,Bangs,Male,Smiling"


def write_dlcv(root: Path, rows: list[str], split: str = "train") -> Path:
    (root / split).mkdir(parents=True, exist_ok=True)
    (root / f"{split}.csv").write_text("\n".join([DLCV_HEADER, *rows]) + "\n")
    for row in rows:
        png(root / split / row.split(",")[0])
    return root


def test_celeba_dlcv_csv(tmp_path: Path) -> None:
    root = write_dlcv(tmp_path / "face", ["00000.png,0,1,1", "00001.png,1.0,0.0,0.0"])
    data = open_dataset(root)
    assert data.format == "celeba" and data.label_space.names == ("Bangs", "Male", "Smiling")
    np.testing.assert_array_equal(data.labels, [[0, 1, 1], [1, 0, 0]])
    smiling = open_dataset(root, attribute="Smiling")
    assert smiling.label_space.kind == "binary" and smiling.labels.tolist() == [[1.0], [0.0]]
    write_dlcv(root, ["00009.png,1,1,1"], split="test")
    assert open_dataset(root, split="test").files[0] == root / "test" / "00009.png"
    assert open_dataset(root / "train.csv").files[0] == root / "train" / "00000.png"


def write_official(root: Path, body: list[str], count: int | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    count = len(body) if count is None else count
    (root / "list_attr_celeba.txt").write_text("\n".join([str(count), "Bangs Male Smiling ", *body]) + "\n")
    for line in body:
        png(root / "img_align_celeba" / line.split()[0])
    return root


def test_celeba_official_txt_and_partition(tmp_path: Path) -> None:
    root = write_official(tmp_path / "celeba", ["000001.jpg -1  1  1", "000002.jpg  1 -1 -1", "000003.jpg 1 1 -1"])
    data = open_dataset(root, attribute="Male")
    assert data.format == "celeba" and data.labels.ravel().tolist() == [1, 0, 1]
    (root / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg 0\n000003.jpg 2\n")
    assert len(open_dataset(root)) == 2
    test = open_dataset(root, split="test")
    assert [p.name for p in test.files] == ["000003.jpg"] and test.labels.tolist() == [[1, 1, 0]]
    expect_error("split 'valid' is empty", open_dataset, root, split="valid")


CELEBA_CSV_CASES = [
    ("bad value", ["00000.png,0,2,1"], "line 2: Male is '2', expected 0 or 1"),
    ("too few values", ["00000.png,0,1"], "line 2: expected a file name and 3 values, got 2"),
    ("minus one mixed with zero", ["00000.png,0,1,1", "00001.png,-1,1,1"], "line 2: Bangs is '0', expected -1 or 1"),
    ("missing image", "missing", "image '00001.png' not found"),
    ("no rows", [], "lists no images"),
]


@pytest.mark.parametrize("case, rows, words", CELEBA_CSV_CASES, ids=[c[0] for c in CELEBA_CSV_CASES])
def test_celeba_csv_errors(tmp_path: Path, case: str, rows, words: str) -> None:
    root = tmp_path / "face"
    if rows == "missing":
        write_dlcv(root, ["00000.png,0,1,1", "00001.png,1,0,0"])
        (root / "train" / "00001.png").unlink()
    else:
        write_dlcv(root, rows)
    expect_error(words, open_dataset, root)


def test_celeba_other_errors(tmp_path: Path) -> None:
    root = write_dlcv(tmp_path / "face", ["00000.png,0,1,1"])
    expect_error("no attribute 'Smile'; it has Bangs, Male, Smiling", open_dataset, root, attribute="Smile")
    (root / "train.csv").write_text("image_name,Bangs,Bangs\n00000.png,0,1\n")
    expect_error("attribute 'Bangs' appears twice", open_dataset, root)
    official = write_official(tmp_path / "celeba", ["000001.jpg -1 1 0"])
    expect_error("line 3: Smiling is '0', expected -1 or 1", open_dataset, official)
    write_official(official, ["000001.jpg -1 1 1"], count=5)
    expect_error("says 5 images but 1 are listed", open_dataset, official)
    write_official(official, ["000001.jpg -1 1 1"])
    expect_error("needs a list_eval_partition.txt", open_dataset, official, split="test")
    (official / "list_attr_celeba.txt").write_text("many\nBangs\n")
    expect_error("line 1: expected the number of images", open_dataset, official)


# ------------------------------------------------------------------------------------------ MNIST
def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_mnist(root: Path, n: int = 5, gz: bool = False, prefix: str = "train") -> tuple[np.ndarray, np.ndarray]:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)
    for kind, array, dims in (("images", images, 3), ("labels", labels, 1)):
        name = f"{prefix}-{kind}-idx{dims}-ubyte"
        data = idx_bytes(array)
        if gz:
            (root / f"{name}.gz").write_bytes(gzip.compress(data, mtime=0))
        else:
            (root / name).write_bytes(data)
    return images, labels


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_mnist_reads(tmp_path: Path, gz: bool) -> None:
    images, labels = write_mnist(tmp_path / "mnist", gz=gz)
    write_mnist(tmp_path / "mnist", n=3, gz=gz, prefix="t10k")
    data = open_dataset(tmp_path / "mnist")
    assert data.format == "mnist" and len(data) == 5 and data.image_shape == (1, 28, 28)
    np.testing.assert_array_equal(data.image(3)[:, :, 0], images[3])
    assert data.label_space.names[0] == "digit:0"
    np.testing.assert_array_equal(data.labels.argmax(1), labels)
    assert len(open_dataset(tmp_path / "mnist", split="test")) == 3
    single = "train-images-idx3-ubyte" + (".gz" if gz else "")
    assert open_dataset(tmp_path / "mnist" / single).labels is not None


def _mnist_break(root: Path, case: str) -> None:
    images = root / "train-images-idx3-ubyte"
    labels = root / "train-labels-idx1-ubyte"
    data = images.read_bytes()
    if case == "bad magic":
        images.write_bytes(b"\x01\x02" + data[2:])
    elif case == "wrong dims":
        images.write_bytes(data[:3] + b"\x02" + data[4:])
    elif case == "truncated":
        images.write_bytes(data[:-10])
    elif case == "empty":
        images.write_bytes(b"")
    elif case == "label count":
        labels.write_bytes(idx_bytes(np.zeros(4, np.uint8)))
    elif case == "label not digit":
        labels.write_bytes(idx_bytes(np.array([0, 1, 12, 3, 4], np.uint8)))
    elif case == "bad gzip":
        images.unlink()
        (root / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")


MNIST_CASES = [
    ("bad magic", "bad magic number"),
    ("wrong dims", "expected unsigned bytes with 3"),
    ("truncated", "file is truncated or corrupt"),
    ("empty", "empty file"),
    ("label count", "has 4 labels for 5 images"),
    ("label not digit", "label 12 at item 2 is not a digit"),
    ("bad gzip", "not a valid gzip file"),
]


@pytest.mark.parametrize("case, words", MNIST_CASES, ids=[c[0] for c in MNIST_CASES])
def test_mnist_errors(tmp_path: Path, case: str, words: str) -> None:
    root = tmp_path / "mnist"
    write_mnist(root)
    _mnist_break(root, case)
    expect_error(words, open_dataset, root, fmt="mnist")


# ----------------------------------------------------------------------------------- plain folder
def test_plain_folder(tmp_path: Path) -> None:
    for i in range(3):
        png(tmp_path / "imgs" / f"{i}.png", value=i)
    (tmp_path / "imgs" / "readme.txt").write_text("not an image")
    data = open_dataset(tmp_path / "imgs")
    assert data.format == "folder" and len(data) == 3 and data.labels is None and data.label_space is None
    assert "unconditional" in data.describe()


def test_plain_folder_errors(tmp_path: Path) -> None:
    (tmp_path / "txt").mkdir()
    (tmp_path / "txt" / "a.txt").write_text("x")
    expect_error("holds no image files", open_dataset, tmp_path / "txt")
    png(tmp_path / "mixed" / "a.png", size=(8, 8))
    png(tmp_path / "mixed" / "b.png", size=(16, 8))
    (tmp_path / "mixed" / "c.png").write_text("text with a png name")
    data = open_dataset(tmp_path / "mixed")
    data.image(0)
    expect_error("image is 16x8, the data set's first image is 8x8", data.image, 1)
    expect_error("not an image file", data.image, 2)
    expect_error("not found", open_dataset, tmp_path / "nowhere")
    expect_error("unknown data set format", open_dataset, tmp_path / "txt" / "a.txt")
    expect_error("unknown data format 'hdf5'", open_dataset, tmp_path / "mixed", fmt="hdf5")
    expect_error("does not take that option", open_dataset, tmp_path / "mixed", attribute="Smiling")


# -------------------------------------------------------------------------------------------- CLI
def test_cli_check(iclevr: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["data", "check", str(iclevr), "--full"])
    assert result.exit_code == 0, result.output
    assert "format: iclevr" in result.output and "images: 2" in result.output
    assert "image shape: 3,8,8" in result.output and "decoded all 2 images: ok" in result.output
    (iclevr / "train.json").write_text('{"a.png": ["pink cube"]}')
    bad = runner.invoke(cli, ["data", "check", str(iclevr)])
    assert bad.exit_code == 2
    lines = bad.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "pink cube" in lines[0]
    root = write_dlcv(tmp_path / "face", ["00000.png,0,1,1"])
    ok = runner.invoke(cli, ["data", "check", str(root), "--attribute", "Smiling"])
    assert ok.exit_code == 0 and "label space: binary, 1 name (Smiling)" in ok.output
    wrong = runner.invoke(cli, ["data", "check", str(iclevr), "--format", "mnist"])
    assert wrong.exit_code == 2 and wrong.output.startswith("error: ") and "Traceback" not in wrong.output


def test_data_package_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import gen_eval.data.datasets, gen_eval.data.shapes, gen_eval.data.conditions, gen_eval.data.images\n"
        "import gen_eval.data.cartoon, gen_eval.data.celeba, gen_eval.data.mnist, gen_eval.data.iclevr\n"
        "import gen_eval.commands.data\n"
        "assert 'torch' not in sys.modules, 'gen_eval.data imported torch'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
