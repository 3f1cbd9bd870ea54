"""Seeded sampling: identical images across batch sizes and shard splits, resumable PNG folders, outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from gen_eval.commands.options import SHARD
from gen_eval.evaluator import load_model
from gen_eval.evaluator.noise import NOISE_BLOCK, latent_noise
from gen_eval.evaluator.sampling import generate_all, shard_indices
from helpers.cli import assert_one_line_error, run_cli, run_cli_here
from helpers.graphs import ICLEVR_NAMES, make_generator


def test_noise_depends_only_on_seed_and_index():
    n = NOISE_BLOCK * 2 + 37
    whole = latent_noise(5, range(n), 16)
    pieces = np.concatenate([latent_noise(5, range(a, min(a + 13, n)), 16) for a in range(0, n, 13)])
    np.testing.assert_array_equal(whole, pieces)
    shuffled = np.random.default_rng(0).permutation(n)
    np.testing.assert_array_equal(latent_noise(5, shuffled, 16), whole[shuffled])
    assert not np.array_equal(latent_noise(6, range(4), 16), whole[:4])
    assert abs(whole.mean()) < 0.05 and abs(whole.std() - 1) < 0.05


@pytest.mark.parametrize("shards", [1, 2, 3, 7])
def test_same_images_for_any_batch_size_and_shard_split(tmp_path, shards):
    path = make_generator(tmp_path / "g.onnx")
    n = 300  # spans two noise blocks
    reference = generate_all(load_model(path, device="cpu", batch_size=64), n, 9, progress=False)[1]
    batch_size = {1: 1, 2: 17, 3: 64, 7: 100}[shards]
    model = load_model(path, device="cpu", batch_size=batch_size)
    parts = [generate_all(model, n, 9, shard=(k, shards), progress=False) for k in range(1, shards + 1)]
    indices = np.concatenate([p[0] for p in parts])
    np.testing.assert_array_equal(indices, np.arange(n))
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), reference)


def test_shard_ranges_cover_everything_once():
    for n in (1, 5, 1000):
        for count in (1, 2, 3, 8):
            covered = [i for k in range(1, count + 1) for i in shard_indices(n, (k, count))]
            assert covered == list(range(n))
    assert SHARD.convert("2/8", None, None) == (2, 8)
    for bad in ("0/4", "5/4", "a/b", "3"):
        with pytest.raises(Exception, match="k/N"):
            SHARD.convert(bad, None, None)


def test_conditions_are_cycled(tmp_path):
    model = load_model(make_generator(tmp_path / "g.onnx", labels=24), device="cpu", batch_size=4)
    conditions = np.eye(24, dtype=np.float32)[:3]
    _, _, labels = generate_all(model, 10, 0, conditions=conditions, progress=False)
    np.testing.assert_array_equal(labels, conditions[np.arange(10) % 3])


def test_png_folder_in_shards_equals_whole_run_and_resumes(no_torch_env, tmp_path):
    gen = make_generator(tmp_path / "g.onnx")
    whole, sharded = tmp_path / "whole", tmp_path / "sharded"
    assert run_cli(no_torch_env, "sample", "--model", gen, "--n", 20, "--seed", 3, "--out", whole).returncode == 0
    for k in (1, 2, 3):
        result = run_cli(no_torch_env, "sample", "--model", gen, "--n", 20, "--seed", 3, "--out", sharded,
                         "--shard", f"{k}/3", "--batch-size", 4)
        assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in whole.glob("*.png"))
    assert names == [f"{i:06d}.png" for i in range(20)]
    assert names == sorted(p.name for p in sharded.glob("*.png"))
    for name in names:
        assert (whole / name).read_bytes() == (sharded / name).read_bytes()
    # a killed shard: some files missing -> rerun writes only those, same bytes
    for name in names[7:10]:
        (sharded / name).unlink()
    rerun = run_cli(no_torch_env, "sample", "--model", gen, "--n", 20, "--seed", 3, "--out", sharded, "--shard", "2/3")
    assert rerun.returncode == 0, rerun.stderr
    assert "resuming: 4 of 7 images" in rerun.stderr and "wrote 3 PNGs" in rerun.stdout  # messages on stderr
    for name in names:
        assert (whole / name).read_bytes() == (sharded / name).read_bytes()
    assert not [p for p in sharded.iterdir() if p.name.startswith(".") and "tmp" in p.name]
    # another run into the same folder is refused
    assert_one_line_error(
        run_cli_here("sample", "--model", gen, "--n", 20, "--seed", 4, "--out", sharded), "different run", "seed")


def test_npz_and_grid_outputs(no_torch_env, tmp_path):
    gen = make_generator(tmp_path / "g.onnx", labels=24, value_range="0,1")
    conditions = tmp_path / "test.json"
    conditions.write_text(json.dumps([[ICLEVR_NAMES[i]] for i in range(5)]))
    out = tmp_path / "s.npz"
    result = run_cli(no_torch_env, "sample", "--model", gen, "--n", 12, "--seed", 1, "--out", out,
                     "--conditions", conditions)
    assert result.returncode == 0, result.stderr
    with np.load(out) as data:
        assert data["images"].shape == (12, 8, 8, 3) and data["images"].dtype == np.uint8
        np.testing.assert_array_equal(data["conditions"], np.eye(24, dtype=np.float32)[np.arange(12) % 5])
        assert int(data["seed"]) == 1
        images = data["images"]
    model = load_model(gen, device="cpu")
    from gen_eval.data.images import to_uint8

    z = latent_noise(1, range(12), 8)
    direct = to_uint8(model.generate(z, np.eye(24, dtype=np.float32)[np.arange(12) % 5]), (0, 1))
    np.testing.assert_array_equal(images, direct.transpose(0, 2, 3, 1))
    grid = tmp_path / "grid.png"
    result = run_cli(no_torch_env, "sample", "--model", gen, "--out", grid, "--conditions", conditions, "--nrow", 5,
                     "--seed", 1)
    assert result.returncode == 0, result.stderr
    array = np.asarray(Image.open(grid))
    # one image per condition (5) in one row of 8x8 cells, each centred in a 96 px caption column, padding 4
    assert array.shape[1] == 5 * (96 + 4) + 4 and 8 + 2 * 4 < array.shape[0] < 8 + 2 * 4 + 4 * 16
    np.testing.assert_array_equal(array[4:12, 4 + 44 : 4 + 52], images[0])
    assert_one_line_error(run_cli_here("sample", "--model", gen, "--out", grid, "--conditions", conditions),
                          "already exists", "--force")


def test_sample_bad_inputs(no_torch_env, tmp_path):
    gen = make_generator(tmp_path / "g.onnx", labels=24)
    out = tmp_path / "o"
    assert_one_line_error(run_cli_here("sample", "--model", gen, "--n", 4, "--out", out), "--conditions")
    plain = make_generator(tmp_path / "p.onnx")
    assert_one_line_error(run_cli_here("sample", "--model", plain, "--out", out), "--n")
    assert_one_line_error(run_cli_here("sample", "--model", plain, "--n", 4, "--out", out, "--shard", "4/3"),
                          "--shard")
    assert_one_line_error(run_cli_here("sample", "--model", plain, "--n", 4, "--out", out, "--seed", -1),
                          "--seed")
    assert not out.exists() or not list(out.glob("*.png"))
