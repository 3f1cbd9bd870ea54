"""The embedded shapes data set: layout, determinism, labels, atomic writing, CLI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gen_eval.cli import cli
from gen_eval.data import shapes
from gen_eval.data.conditions import read_condition_file, read_objects
from gen_eval.data.datasets import open_dataset
from gen_eval.errors import UserError

TA_OBJECTS = (
    '{"gray cube": 0, "red cube": 1, "blue cube": 2, "green cube": 3, "brown cube": 4, "purple cube": 5, '
    '"cyan cube": 6, "yellow cube": 7, "gray sphere": 8, "red sphere": 9, "blue sphere": 10, "green sphere": 11, '
    '"brown sphere": 12, "purple sphere": 13, "cyan sphere": 14, "yellow sphere": 15, "gray cylinder": 16, '
    '"red cylinder": 17, "blue cylinder": 18, "green cylinder": 19, "brown cylinder": 20, "purple cylinder": 21, '
    '"cyan cylinder": 22, "yellow cylinder": 23}'
)
SHARED_OBJECTS = Path(__file__).resolve().parents[2] / "shared" / "iclevr" / "objects.json"


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small_set(tmp_path_factory) -> Path:
    return shapes.write_shapes(tmp_path_factory.mktemp("shapes") / "s", n_train=40, n_heldout=10, seed=3)


def test_layout_and_sizes(small_set: Path) -> None:
    assert sorted(p.name for p in small_set.iterdir()) == [
        "heldout.json", "images", "new_test.json", "objects.json", "test.json", "train.json"
    ]
    assert len(list((small_set / "images").iterdir())) == 50
    assert not [p for p in small_set.parent.iterdir() if p.name.startswith(".")], "temporary folder left behind"


def test_objects_json_is_the_tas(small_set: Path) -> None:
    assert (small_set / "objects.json").read_text() == TA_OBJECTS
    if SHARED_OBJECTS.is_file():
        assert json.loads(SHARED_OBJECTS.read_text()) == json.loads(TA_OBJECTS)


def test_same_seed_same_bytes_other_seed_differs(small_set: Path, tmp_path: Path) -> None:
    again = shapes.write_shapes(tmp_path / "again", n_train=40, n_heldout=10, seed=3)
    assert digest(again) == digest(small_set)
    other = shapes.write_shapes(tmp_path / "other", n_train=40, n_heldout=10, seed=4)
    other_digest, same_digest = digest(other), digest(small_set)
    differing = [k for k in same_digest if k.endswith(".png") and other_digest[k] != same_digest[k]]
    assert len(differing) == 50
    for name in ("train.json", "test.json", "new_test.json"):
        assert other_digest[name] != same_digest[name]


def test_image_does_not_depend_on_set_size(small_set: Path, tmp_path: Path) -> None:
    fewer = shapes.write_shapes(tmp_path / "fewer", n_train=5, n_heldout=0, seed=3)
    for i in range(5):
        name = f"images/train_{i:06d}.png"
        assert (fewer / name).read_bytes() == (small_set / name).read_bytes()


def test_iclevr_reader_loads_back_the_same_labels(small_set: Path) -> None:
    space = read_objects(small_set / "objects.json")
    for split in ("train", "heldout"):
        entries = json.loads((small_set / f"{split}.json").read_text())
        data = open_dataset(small_set, split)
        assert data.format == "iclevr" and len(data) == len(entries)
        assert data.label_space == space and data.image_shape == (3, 64, 64)
        for i, (file_name, names) in enumerate(entries.items()):
            assert data.files[i].name == file_name
            assert 1 <= len(names) <= 3 and len(set(names)) == len(names)
            np.testing.assert_array_equal(data.labels[i], space.encode(names))
        index = 7 if split == "train" else 2
        expected_names, expected_pixels = shapes.sample_scene(3, split, index)
        np.testing.assert_array_equal(data.image(index), expected_pixels)
        assert entries[f"{split}_{index:06d}.png"] == expected_names


def test_condition_files_are_ta_style(small_set: Path) -> None:
    space = read_objects(small_set / "objects.json")
    for name, sizes in (("test.json", shapes.TEST_SIZES), ("new_test.json", shapes.NEW_TEST_SIZES)):
        items = json.loads((small_set / name).read_text())
        assert len(items) == 32
        assert sorted(len(item) for item in items) == sorted(sizes)
        assert all(len(set(item)) == len(item) for item in items)
        vectors = read_condition_file(small_set / name, space)
        assert vectors.shape == (32, 24) and set(np.unique(vectors)) <= {0.0, 1.0}


def test_objects_are_visible_on_the_background() -> None:
    background = np.array(shapes.BACKGROUND)
    for i in range(20):
        names, pixels = shapes.sample_scene(0, "train", i)
        differs = np.abs(pixels.astype(int) - background).sum(axis=2) > 30
        assert differs.sum() >= len(names) * 100, f"image {i} ({names}) shows too few object pixels"


def test_refuses_non_empty_folder_and_force_replaces(tmp_path: Path) -> None:
    out = shapes.write_shapes(tmp_path / "s", n_train=3, n_heldout=1, seed=0)
    with pytest.raises(UserError, match="force=True"):
        shapes.write_shapes(out, n_train=2, n_heldout=1, seed=1)
    shapes.write_shapes(out, n_train=2, n_heldout=1, seed=1, force=True)
    assert len(json.loads((out / "train.json").read_text())) == 2
    assert len(list((out / "images").iterdir())) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]


def test_force_does_not_delete_a_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(UserError, match="not a data set folder"):
        shapes.write_shapes(tmp_path / "mine", n_train=2, n_heldout=0, force=True)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_empty_existing_folder_is_used(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    shapes.write_shapes(tmp_path / "empty", n_train=2, n_heldout=0)
    assert (tmp_path / "empty" / "objects.json").is_file()


def test_failure_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real = shapes.png_bytes

    def failing(image):
        calls["n"] += 1
        if calls["n"] > 3:
            raise OSError(28, "No space left on device")
        return real(image)

    monkeypatch.setattr(shapes, "png_bytes", failing)
    with pytest.raises(UserError, match="No space left"):
        shapes.write_shapes(tmp_path / "s", n_train=10, n_heldout=0)
    assert list(tmp_path.iterdir()) == []


def test_cli_shapes_and_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli"
    result = runner.invoke(cli, ["data", "shapes", "--out", str(out), "--train", "4", "--heldout", "2", "--seed", "5"])
    assert result.exit_code == 0, result.output
    assert "wrote 4 train + 2 held-out images" in result.output
    assert len(json.loads((out / "heldout.json").read_text())) == 2
    again = runner.invoke(cli, ["data", "shapes", "--out", str(out), "--train", "4"])
    assert again.exit_code == 2
    lines = again.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--force" in lines[0]
    assert "Traceback" not in again.output
    bad = runner.invoke(cli, ["data", "shapes", "--out", str(tmp_path / "x"), "--train", "0"])
    assert bad.exit_code == 2 and not (tmp_path / "x").exists()
