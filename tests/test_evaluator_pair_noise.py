"""Paired conditions with shared noise (``gen-eval sample --pair-noise``): S1's figure of attribute off/on
pairs, each pair from one z."""

from __future__ import annotations

import json

import numpy as np

from gen_eval.data.images import to_uint8
from gen_eval.evaluator import load_model
from gen_eval.evaluator.noise import latent_noise, paired_noise_indices
from gen_eval.evaluator.sampling import generate_all
from helpers.cli import assert_one_line_error, run_cli, run_cli_here
from helpers.graphs import ICLEVR_NAMES, make_generator


def test_paired_noise_indices():
    assert paired_noise_indices(range(7), 2).tolist() == [0, 0, 1, 1, 2, 2, 3]
    assert paired_noise_indices([5, 9], 3).tolist() == [1, 3]


def test_paired_samples_share_noise_and_differ_only_by_condition(tmp_path):
    model = load_model(make_generator(tmp_path / "g.onnx", labels=24), device="cpu", batch_size=3)
    off_on = np.eye(24, dtype=np.float32)[[0, 5]]
    indices, images, labels = generate_all(model, 20, 4, conditions=off_on, pair_noise=True, progress=False)
    np.testing.assert_array_equal(labels, off_on[np.arange(20) % 2])
    # sample 2p + c is condition c on the noise of pair p (drawn as sample p of the seed)
    z = latent_noise(4, range(10), 8)
    for c in (0, 1):
        direct = to_uint8(model.generate(z, np.repeat(off_on[c:c + 1], 10, axis=0)), model.info.value_range)
        np.testing.assert_array_equal(images[c::2], direct)
    # the same condition twice: both images of every pair are the same image; unpaired, they are not
    same = np.eye(24, dtype=np.float32)[[3, 3]]
    _, paired, _ = generate_all(model, 6, 4, conditions=same, pair_noise=True, progress=False)
    np.testing.assert_array_equal(paired[0::2], paired[1::2])
    _, unpaired, _ = generate_all(model, 6, 4, conditions=same, progress=False)
    assert not np.array_equal(unpaired[0::2], unpaired[1::2])


def test_cli_pair_noise(no_torch_env, tmp_path):
    gen = make_generator(tmp_path / "g.onnx", labels=24)
    conditions = tmp_path / "off_on.json"
    conditions.write_text(json.dumps([[ICLEVR_NAMES[0]], [ICLEVR_NAMES[0], ICLEVR_NAMES[1]]]))
    folder = tmp_path / "pairs"
    result = run_cli(no_torch_env, "sample", "--model", gen, "--conditions", conditions, "--n", 8, "--pair-noise",
                     "--out", folder)
    assert result.returncode == 0, result.stderr
    assert json.loads((folder / ".gen-eval-sample.json").read_text())["pair_noise"] is True
    # the same folder without pairing is another run
    assert_one_line_error(run_cli_here("sample", "--model", gen, "--conditions", conditions, "--n", 8, "--out",
                                       folder), "different run", "pair_noise")
    plain = make_generator(tmp_path / "p.onnx")
    assert_one_line_error(run_cli_here("sample", "--model", plain, "--n", 4, "--pair-noise", "--out",
                                       tmp_path / "x.png"), "unconditional")
