"""The classifier score: TA semantics (pooled top-k), ties, categorical heads, and `gen-eval score` end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gen_eval.data.labels import LabelSpace
from gen_eval.evaluator.score import binary_score, categorical_score, classifier_score, multilabel_score
from helpers.cli import assert_one_line_error, run_cli, run_cli_here
from helpers.graphs import ICLEVR_NAMES, ICLEVR_SPACE, make_dense_head, make_generator
from helpers.ta_reference import stable_reference, ta_compute_acc, tie_slack


def random_conditions(rng, n, size=24, kmax=3) -> np.ndarray:
    out = np.zeros((n, size), np.float32)
    for row in out:
        row[rng.choice(size, rng.integers(1, kmax + 1), replace=False)] = 1
    return out


@pytest.mark.parametrize("k", [1, 2, 3])
def test_score_equals_ta_code_for_each_k(k):
    rng = np.random.default_rng(k)
    conditions = np.zeros((40, 24), np.float32)
    for row in conditions:
        row[rng.choice(24, k, replace=False)] = 1
    probs = rng.random((40, 24)).astype(np.float32)
    # make some images right, so the score is not trivially near 0
    probs[:20] += conditions[:20] * rng.random((20, 1)).astype(np.float32)
    acc, total = ta_compute_acc(torch.from_numpy(probs), torch.from_numpy(conditions))
    result = multilabel_score(probs, conditions)
    assert (result.correct, result.total) == (acc, total)
    assert classifier_score(probs, conditions) == acc / total


def test_score_is_pooled_not_averaged_per_image():
    conditions = np.zeros((2, 24), np.float32)
    conditions[0, [0, 1, 2]] = 1  # k = 3, all right
    conditions[1, 5] = 1  # k = 1, wrong
    probs = np.zeros((2, 24), np.float32)
    probs[0, [0, 1, 2]] = 0.9
    probs[1, 6] = 0.9
    assert classifier_score(probs, conditions) == 3 / 4  # per-image mean would be 0.5


def test_mixed_k_matches_ta_code():
    rng = np.random.default_rng(7)
    conditions = random_conditions(rng, 64)
    probs = torch.sigmoid(torch.from_numpy(rng.standard_normal((64, 24)).astype(np.float32) * 3)).numpy()
    acc, total = ta_compute_acc(torch.from_numpy(probs), torch.from_numpy(conditions))
    assert classifier_score(probs, conditions) == acc / total


def test_ties_take_the_lowest_indices():
    # saturated sigmoids: several exact 1.0 values straddle the top-k boundary
    probs = np.full((3, 24), 0.1, np.float32)
    conditions = np.zeros((3, 24), np.float32)
    probs[0, [3, 7, 20]] = 1.0
    conditions[0, [7, 20]] = 1  # k=2: ties 3, 7, 20 -> top-2 = 3, 7 -> 1 correct
    probs[1, [2, 9]] = 1.0
    conditions[1, 2] = 1  # k=1: ties 2, 9 -> top-1 = 2 -> correct
    probs[2, :] = 0.5
    conditions[2, [0, 23]] = 1  # all tied, k=2 -> 0, 1 -> 1 correct
    assert classifier_score(probs, conditions) == stable_reference(probs, conditions) == 3 / 5


def test_ties_inside_the_top_k_do_not_matter_and_agree_with_torch():
    rng = np.random.default_rng(3)
    conditions = random_conditions(rng, 50)
    probs = np.round(rng.random((50, 24)), 1).astype(np.float32)  # many ties
    probs = np.where(conditions == 1, 1.0, probs * 0.9).astype(np.float32)  # true labels tie at the top, alone
    acc, total = ta_compute_acc(torch.from_numpy(probs), torch.from_numpy(conditions))
    assert classifier_score(probs, conditions) == acc / total == stable_reference(probs, conditions) == 1.0


def test_random_ties_agree_with_the_stable_reference():
    rng = np.random.default_rng(11)
    conditions = random_conditions(rng, 200)
    probs = np.round(rng.random((200, 24)) * 4) / 4  # values in {0, .25, .5, .75, 1}: ties everywhere
    assert classifier_score(probs, conditions) == stable_reference(probs, conditions)


def test_categorical_per_head_accuracy():
    space = LabelSpace.categorical({"hair": list("abcdef"), "eye": list("abcd"), "face": list("abc")})
    rng = np.random.default_rng(0)
    n = 30
    conditions = np.zeros((n, space.size), np.float32)
    probs = rng.random((n, space.size)).astype(np.float32)
    expected = {}
    for head, sl in space.head_slices():
        width = sl.stop - sl.start
        chosen = rng.integers(0, width, n)
        conditions[np.arange(n), sl.start + chosen] = 1
        expected[head] = float(np.mean(np.argmax(probs[:, sl], 1) == chosen))
    result = categorical_score(probs, conditions, space)
    assert result.per_head == pytest.approx(expected, abs=0)
    assert result.value == pytest.approx(np.mean(list(expected.values())), abs=1e-15)


def test_binary_attribute_accuracy():
    probs = np.array([[0.9], [0.2], [0.6], [0.4]], np.float32)
    conditions = np.array([[1], [0], [0], [0]], np.float32)
    assert binary_score(probs, conditions).value == 0.75


# -- end to end ---------------------------------------------------------------------------------
def _reference_score(gen_path, cls_path, conditions, seed, classifier_size, quantize=False):
    """Generator and classifier run by plain onnxruntime; resize and rescale by torch; TA's compute_acc."""
    import onnxruntime as ort

    from gen_eval.evaluator.noise import latent_noise

    gen = ort.InferenceSession(str(gen_path), providers=["CPUExecutionProvider"])
    cls = ort.InferenceSession(str(cls_path), providers=["CPUExecutionProvider"])
    z = latent_noise(seed, range(len(conditions)), 8)
    images = torch.from_numpy(gen.run(None, {"z": z, "labels": conditions})[0])  # in [0, 1]
    if quantize:  # torchvision save_image's rounding
        images = images.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).float() / 255
    x = F.interpolate(images, size=classifier_size, mode="bilinear", align_corners=False) * 2 - 1
    probs = torch.from_numpy(cls.run(None, {"image": x.numpy()})[0])
    acc, total = ta_compute_acc(probs, torch.from_numpy(conditions))
    return acc / total, tie_slack(probs.numpy(), conditions)


@pytest.fixture()
def score_models(tmp_path):
    gen = make_generator(tmp_path / "g.onnx", labels=24, value_range="0,1")
    cls = make_dense_head(tmp_path / "c.onnx", role="classifier", image_shape=(3, 12, 12), out_dim=24)
    test = tmp_path / "test.json"
    rng = np.random.default_rng(5)
    items = [[ICLEVR_NAMES[i] for i in rng.choice(24, rng.integers(1, 4), replace=False)] for _ in range(32)]
    test.write_text(json.dumps(items))
    from gen_eval.data.conditions import read_condition_file

    return gen, cls, test, read_condition_file(test, ICLEVR_SPACE)


def test_score_cli_matches_reference_pipeline(no_torch_env, score_models, tmp_path):
    gen, cls, test, conditions = score_models
    report = tmp_path / "r.json"
    result = run_cli(no_torch_env, "score", "--model", gen, "--test", test, "--classifier", cls, "--repeats", 3,
                     "--seed", 4, "--report", report, "--grid", tmp_path / "grid.png", "--batch-size", 5)
    assert result.returncode == 0, result.stderr
    data = json.loads(report.read_text())
    references = [_reference_score(gen, cls, conditions, s, (12, 12)) for s in (4, 5, 6)]
    expected, slack = [r[0] for r in references], max(r[1] for r in references)
    assert data["scores"] == pytest.approx(expected, abs=slack + 1e-12)
    if slack == 0:  # no top-k decision within float32 noise of a tie: the aggregates are exact too
        assert data["value"] == pytest.approx(np.mean(expected), abs=1e-12)
        assert data["std"] == pytest.approx(np.std(expected), abs=1e-12)
        assert (data["min"], data["max"]) == (min(expected), max(expected))
    for key in ("metric", "model", "provider", "seed", "n", "versions"):
        assert key in data
    assert data["n"] == 32 and data["seed"] == 4 and "CPUExecutionProvider" in data["provider"]
    assert "onnxruntime-gpu" in data["versions"] or "onnxruntime" in data["versions"]
    from PIL import Image

    grid = Image.open(tmp_path / "grid.png")  # 32 images of 8x8, 8 per row, each captioned in a 96 px column
    assert grid.width == 8 * (96 + 4) + 4 and 4 * (8 + 4) + 4 < grid.height <= 4 * (8 + 4 + 4 * 13) + 4
    from gen_eval.evaluator.pictures import condition_names
    from gen_eval.evaluator.sample_outputs import read_grid_captions

    captions = read_grid_captions(tmp_path / "grid.png")  # issue 25: what each cell says, read back from the PNG
    assert captions["columns"] == 8 and captions["indices"] == list(range(32))
    assert captions["captions"] == [f"#{i}: " + ", ".join(condition_names(row, ICLEVR_SPACE))
                                    for i, row in enumerate(conditions)]
    assert "classifier_score" in result.stdout and "runtime: onnxruntime" in result.stderr


def test_score_n_cycles_the_condition_rows_like_sample_and_fid(score_models, tmp_path):
    """--n 40 on 32 rows: image i for row i mod 32 from the noise of (seed, i), as `sample` makes them; the
    interval resamples condition rows with all their images; --n 10 scores the first 10 rows."""
    import gen_eval
    from gen_eval.evaluator.uncertainty import by_condition_row, score_interval

    gen, cls, test, conditions = score_models
    report = tmp_path / "n.json"
    result = run_cli_here("score", "--model", gen, "--test", test, "--classifier", cls, "--n", 40, "--repeats", 2,
                          "--report", report)
    assert result.returncode == 0, result.stderr
    data = json.loads(report.read_text())
    cycled = conditions[np.arange(40) % 32]
    references = [_reference_score(gen, cls, cycled, s, (12, 12)) for s in (0, 1)]
    assert data["scores"] == pytest.approx([r[0] for r in references], abs=max(r[1] for r in references) + 1e-12)
    assert (data["n"], data["condition_rows"], data["settings"]["n"], len(data["ks"])) == (40, 32, 40, 40)
    expected = score_interval(*by_condition_row(data["hits"], data["ks"], 32))
    assert (data["interval"]["low"], data["interval"]["high"]) == (expected.low, expected.high)
    assert "x 32 conditions" in data["interval"]["method"]
    first = gen_eval.score(gen, test, classifier=cls, n=10, runtime=gen_eval.Runtime("cpu"))
    expected, slack = _reference_score(gen, cls, conditions[:10], 0, (12, 12))
    assert first.n == 10 and first.value == pytest.approx(expected, abs=slack + 1e-12)
    assert_one_line_error(run_cli_here("score", "--model", gen, "--test", test, "--classifier", cls, "--n", 0),
                          "--n must be at least 1")


def test_score_quantize_option(no_torch_env, score_models, tmp_path):
    gen, cls, test, conditions = score_models
    report = tmp_path / "q.json"
    result = run_cli(no_torch_env, "score", "--model", gen, "--test", test, "--classifier", cls, "--quantize",
                     "--report", report)
    assert result.returncode == 0, result.stderr
    expected, slack = _reference_score(gen, cls, conditions, 0, (12, 12), quantize=True)
    assert json.loads(report.read_text())["value"] == pytest.approx(expected, abs=slack + 1e-12)


def test_score_gate_and_models_without_metadata(no_torch_env, tmp_path):
    gen = make_generator(tmp_path / "g.onnx", labels=24, metadata=False, value_range="-1,1")
    cls = make_dense_head(tmp_path / "c.onnx", role="classifier", metadata=False)
    test = tmp_path / "test.json"
    test.write_text(json.dumps([["red cube"], ["blue sphere", "red cube"]] * 4))
    objects = tmp_path / "objects.json"
    objects.write_text(json.dumps({name: i for i, name in enumerate(ICLEVR_NAMES)}))
    base = ["score", "--model", gen, "--test", test, "--classifier", cls]
    assert_one_line_error(run_cli_here(*base, "--objects", objects, "--classifier-value-range", "-1,1"),
                          "--value-range")
    assert_one_line_error(run_cli_here(*base, "--objects", objects, "--value-range", "-1,1"),
                          "--classifier-value-range")
    assert_one_line_error(run_cli_here(*base, "--value-range", "-1,1", "--classifier-value-range", "-1,1"),
                          "--objects")
    full = [*base, "--objects", objects, "--value-range", "-1,1", "--classifier-value-range", "-1,1"]
    ok = run_cli(no_torch_env, *full, "--min-score", 0)
    assert ok.returncode == 0, ok.stderr
    assert "gate passed" in ok.stdout
    report = tmp_path / "gate.json"
    summary = tmp_path / "summary.md"
    failed = run_cli(no_torch_env, *full, "--min-score", 1.01, "--report", report, "--summary", summary)
    assert failed.returncode == 1
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith("gate missed: classifier_score") and "is below --min-score 1.01 (on the value)" in last
    assert "error" not in failed.stderr
    assert json.loads(report.read_text())["gate"]["passed"] is False
    assert "**gate missed**: classifier_score" in summary.read_text() and "is below 1.01 (on the value)" in \
        summary.read_text()


def test_score_bad_inputs_are_one_line_errors(no_torch_env, score_models, tmp_path):
    gen, cls, test, _ = score_models
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([["red cube"], ["pink elephant"]]))
    assert_one_line_error(run_cli_here("score", "--model", gen, "--test", bad, "--classifier", cls),
                          "pink elephant", "item 1")
    assert_one_line_error(run_cli_here("score", "--model", gen, "--test", test, "--classifier", gen),
                          "is a generator model")
    wrong = make_dense_head(tmp_path / "c10.onnx", role="classifier", out_dim=10,
                            label_space=LabelSpace.multilabel([str(i) for i in range(10)]))
    assert_one_line_error(run_cli_here("score", "--model", gen, "--test", test, "--classifier", wrong),
                          "label space")
    (tmp_path / "exists.json").write_text("{}")
    assert_one_line_error(run_cli_here("score", "--model", gen, "--test", test, "--classifier", cls,
                                  "--report", tmp_path / "exists.json"), "--force")
    assert_one_line_error(run_cli_here("score", "--model", gen, "--test", test, "--classifier", cls,
                                  "--repeats", 0), "--repeats")


def test_score_cli_categorical_heads(tmp_path):
    space = LabelSpace.categorical({"hair": list("abcdef"), "eye": list("abcd"), "face": list("abc"), "glasses": ["no", "yes"]})
    gen = make_generator(tmp_path / "g.onnx", labels=space.size, label_space=space)
    cls = make_dense_head(tmp_path / "c.onnx", role="classifier", out_dim=space.size, label_space=space,
                          activation="Softmax")
    rng = np.random.default_rng(0)
    items = [[f"{head}:{rng.choice(values)}" for head, values in space.heads] for _ in range(20)]
    test = tmp_path / "test.json"
    test.write_text(json.dumps(items))
    report = tmp_path / "r.json"
    result = run_cli_here("score", "--model", gen, "--test", test, "--classifier", cls, "--report", report)
    assert result.returncode == 0, result.stderr
    data = json.loads(report.read_text())
    assert data["label_space"] == "categorical" and set(data["per_head"]) == {"hair", "eye", "face", "glasses"}
    assert data["value"] == pytest.approx(np.mean(list(data["per_head"].values())), abs=1e-15)
    assert "per_head hair" in result.stdout
