"""Pictures a person can read: captioned grids (bounded in size, upscaled by Pillow's filters),
labels.json beside a sample folder, and the refusal of grids nobody could look at."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from gen_eval.data.labels import LabelSpace
from gen_eval.evaluator.pictures import MAX_GRID_IMAGES, PADDING, captioned_grid, condition_captions
from helpers.cli import assert_one_line_error, run_cli_here
from helpers.graphs import ICLEVR_NAMES, make_generator


def images(count, size=8, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, 3, size, size), dtype=np.uint8)


@pytest.mark.parametrize("resample", ["nearest", "bilinear"])
def test_upscaled_cells_are_pillows_resize_of_each_image(resample):
    """Without captions each cell is the image enlarged by Pillow's own filter, at its grid position."""
    pics = images(6)
    grid = np.asarray(captioned_grid(pics, columns=4, upscale=3, resample=resample))
    cell = 8 * 3
    assert grid.shape == (PADDING + 2 * (cell + PADDING), PADDING + 4 * (cell + PADDING), 3)
    filt = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR}[resample]
    for k in (0, 5):
        row, col = divmod(k, 4)
        top, left = PADDING + row * (cell + PADDING), PADDING + col * (cell + PADDING)
        expected = np.asarray(Image.fromarray(pics[k].transpose(1, 2, 0)).resize((cell, cell), filt))
        np.testing.assert_array_equal(grid[top : top + cell, left : left + cell], expected)
    if resample == "nearest":
        np.testing.assert_array_equal(grid[PADDING : PADDING + cell : 3, PADDING : PADDING + cell : 3],
                                      pics[0].transpose(1, 2, 0))


def test_captions_are_drawn_under_each_cell_and_name_the_conditions():
    space = LabelSpace.multilabel(ICLEVR_NAMES)
    labels = np.zeros((2, 24), np.float32)
    labels[0, [0, 9]] = 1
    labels[1, 23] = 1
    captions = condition_captions(labels, space, [7, 12])
    assert captions == [f"#7: {ICLEVR_NAMES[0]}, {ICLEVR_NAMES[9]}", f"#12: {ICLEVR_NAMES[23]}"]
    assert condition_captions(np.array([[1.0], [0.0]]), LabelSpace.binary("Smiling"), [0, 1]) == [
        "#0: Smiling", "#1: not Smiling"]
    plain = np.asarray(captioned_grid(images(2), columns=2))
    grid = np.asarray(captioned_grid(images(2), captions, columns=2))
    assert grid.shape[0] > plain.shape[0]  # room for the text below the cells
    below = grid[PADDING + 8 : -PADDING]
    assert (below < 100).any()  # dark text on the white caption band


def test_grids_are_bounded():
    with pytest.raises(ValueError, match="at most 256 images"):
        captioned_grid(images(MAX_GRID_IMAGES + 1, size=2))
    with pytest.raises(ValueError, match="1 to 16 columns"):
        captioned_grid(images(4), columns=17)
    grid = captioned_grid(images(MAX_GRID_IMAGES, size=2), columns=16)
    assert grid.width < 2000 and grid.height < 2000


def test_sample_grid_refuses_thousands_of_images_and_folders_get_labels_json(tmp_path):
    gen = make_generator(tmp_path / "g.onnx", labels=24, value_range="0,1")
    conditions = tmp_path / "test.json"
    conditions.write_text(json.dumps([[ICLEVR_NAMES[0], ICLEVR_NAMES[5]], [ICLEVR_NAMES[3]], [ICLEVR_NAMES[7]]]))
    assert_one_line_error(run_cli_here("sample", "--model", gen, "--conditions", conditions, "--n", 2000,
                                       "--out", tmp_path / "g.png"), "at most 256", "--out samples/")
    assert not (tmp_path / "g.png").exists()
    result = run_cli_here("sample", "--model", gen, "--conditions", conditions, "--n", 5, "--out", tmp_path / "s")
    assert result.returncode == 0, result.stderr
    labels = json.loads((tmp_path / "s" / "labels.json").read_text())
    assert labels == {"000000.png": [ICLEVR_NAMES[0], ICLEVR_NAMES[5]], "000001.png": [ICLEVR_NAMES[3]],
                      "000002.png": [ICLEVR_NAMES[7]], "000003.png": [ICLEVR_NAMES[0], ICLEVR_NAMES[5]],
                      "000004.png": [ICLEVR_NAMES[3]]}
    assert sorted(p.name for p in (tmp_path / "s").glob("*.png")) == sorted(labels)
    result = run_cli_here("sample", "--model", gen, "--conditions", conditions, "--n", 5, "--out", tmp_path / "u.png",
                          "--upscale", 4, "--resample", "bilinear")
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "u.png").width == 5 * (32 + 96 - 32 + PADDING) + PADDING


def test_a_grid_pngs_captions_read_back_from_its_text_chunk(tmp_path):
    """Issue 25: the captions drawn under each cell are also in the PNG (text chunk gen_eval.captions), in
    reading order, so a program or a screen reader gets what the picture says; a PNG without them is one line."""
    from gen_eval.errors import UserError
    from gen_eval.evaluator.sample_outputs import CAPTIONS_KEY, read_grid_captions

    gen = make_generator(tmp_path / "g.onnx", labels=24, value_range="0,1")
    conditions = tmp_path / "test.json"
    three = [ICLEVR_NAMES[16], ICLEVR_NAMES[19], ICLEVR_NAMES[23]]  # three cylinders: the longest caption
    conditions.write_text(json.dumps([three, [ICLEVR_NAMES[3]]]))
    result = run_cli_here("sample", "--model", gen, "--conditions", conditions, "--n", 5, "--nrow", 2,
                          "--out", tmp_path / "grid.png")
    assert result.returncode == 0, result.stderr
    expected = [f"#{i}: " + ", ".join(three if i % 2 == 0 else [ICLEVR_NAMES[3]]) for i in range(5)]
    assert read_grid_captions(tmp_path / "grid.png") == {"columns": 2, "indices": [0, 1, 2, 3, 4],
                                                         "captions": expected}
    assert json.loads(Image.open(tmp_path / "grid.png").text[CAPTIONS_KEY])["captions"] == expected
    plain = tmp_path / "plain.png"
    Image.new("RGB", (4, 4)).save(plain)
    with pytest.raises(UserError, match="no gen-eval captions"):
        read_grid_captions(plain)
