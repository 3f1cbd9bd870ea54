"""The Python API: the README's example runs as written; reports carry intervals and provenance; the
library is quiet; `gen-eval compare` catches a planted drop and refuses reports that are not paired."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import gen_eval
from gen_eval.cli import cli
from gen_eval.data.shapes import write_shapes
from gen_eval.trainers.loop import train
from helpers.graphs import make_dense_head

README = Path(__file__).resolve().parents[1] / "README.md"
TINY_CGAN = {"data.resize": "true", "image_size": "16", "ngf": "4", "ndf": "4", "latent_dim": "8",
             "cond_embed": "8", "g_start_size": "4", "g_res_blocks": "1"}


def readme_api_example() -> str:
    text = README.read_text()
    section = text[text.index("## The Python API"):]
    return re.search(r"```python\n(.*?)```", section, re.S)[1]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """The files the README's example names: a trained checkpoint, a judge, a features model, test.json, real/."""
    root = tmp_path_factory.mktemp("project")
    shapes = write_shapes(root / "shapes", n_train=48, n_heldout=16, seed=0)
    train("cgan", shapes, root / "runs" / "acgan", steps=2, batch_size=8, device="cpu", progress=False,
          config_overrides=TINY_CGAN)
    gen_eval.export(root / "runs" / "acgan" / "checkpoints" / "last.pt", root / "acgan.onnx")
    make_dense_head(root / "judge.onnx", role="classifier", image_shape=(3, 16, 16), out_dim=24)
    make_dense_head(root / "features.onnx", role="features", image_shape=(3, 16, 16), out_dim=8, activation="Relu")
    shutil.copy(shapes / "test.json", root / "test.json")
    (root / "real").mkdir()
    rng = np.random.default_rng(0)
    for i in range(40):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(root / "real" / f"{i:03d}.png")
    return root


def test_readme_api_example_runs_as_written(project, monkeypatch, capsys):
    monkeypatch.chdir(project)
    exec(compile(readme_api_example(), "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert re.search(r"score \d\.\d{3}, 95% interval \[\d\.\d{3}, \d\.\d{3}\]", out)
    assert re.search(r"FID \d+\.\d\d \[-?\d+\.\d\d, \d+\.\d\d\] on 64 images", out)
    report = json.loads((project / "score.json").read_text())
    assert report["metric"] == "classifier_score" and len(report["hits"]) == 3 and report["interval"]["low"] <= report["value"]


def test_reports_carry_provenance_that_changes_with_any_input(project, tmp_path):
    first = gen_eval.score(project / "acgan.onnx", project / "test.json", classifier=project / "judge.onnx",
                           repeats=2, device="cpu")
    inputs = first.provenance["inputs"]
    assert set(inputs) == {"model", "classifier", "test"} and all(len(v["sha256"]) == 64 for v in inputs.values())
    assert first.provenance["seeds"] == [0, 1] and first.provenance["provider"] == "CPUExecutionProvider"
    assert first.provenance["preprocessing"]["quantize"] is False and first.provenance["versions"]["numpy"]
    other_test = tmp_path / "test.json"
    conditions = json.loads((project / "test.json").read_text())
    other_test.write_text(json.dumps(conditions[::-1]))
    second = gen_eval.score(project / "acgan.onnx", other_test, classifier=project / "judge.onnx", repeats=2,
                            device="cpu")
    assert second.provenance["inputs"]["test"]["sha256"] != inputs["test"]["sha256"]
    assert second.provenance["inputs"]["model"] == inputs["model"]
    json.dumps(first.to_dict())  # the report is plain JSON


def test_the_library_is_quiet(project, capsys):
    gen_eval.score(project / "acgan.onnx", project / "test.json", classifier=project / "judge.onnx", device="cpu")
    gen_eval.fid(project / "features.onnx", project / "real", data=project / "real", device="cpu")
    gen_eval.sample(project / "acgan.onnx", conditions=project / "test.json", device="cpu")
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def _cli(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args], prog_name="gen-eval")
    return result.exit_code, result.stdout, result.stderr


def test_compare_flags_a_planted_drop_and_not_the_same_model(project, tmp_path):
    base = tmp_path / "base.json"
    code, _, err = _cli("score", "--model", project / "acgan.onnx", "--test", project / "test.json",
                        "--classifier", project / "judge.onnx", "--repeats", 5, "--device", "cpu", "--report", base)
    assert code == 0, err
    code, out, _ = _cli("compare", base, base)
    assert code == 0 and "no confident regression" in out and "difference 0.0000 [0.0000, 0.0000]" in out
    report = json.loads(base.read_text())
    hits = np.array(report["hits"])
    ks = np.array(report["ks"])
    dropped = hits.copy()  # every image that found anything loses one label: a large, certain drop
    dropped[dropped > 0] -= 1
    worse = dict(report, hits=dropped.tolist(), value=float(dropped.sum() / (ks.sum() * len(hits))))
    (tmp_path / "worse.json").write_text(json.dumps(worse))
    code, out, err = _cli("compare", tmp_path / "worse.json", base, "--summary", tmp_path / "summary.md")
    assert code == 1 and "gate missed: REGRESSION" in err and "error:" not in err
    assert "| verdict | **regression** |" in (tmp_path / "summary.md").read_text()
    other = dict(report)
    other["provenance"] = dict(report["provenance"], inputs=dict(report["provenance"]["inputs"],
                                                                  classifier={"path": "x", "sha256": "0" * 64}))
    (tmp_path / "other.json").write_text(json.dumps(other))
    code, _, err = _cli("compare", tmp_path / "other.json", base)
    assert code == 2 and "judge (classifier file)" in err and "--allow inputs.classifier.sha256" in err
    assert _cli("compare", tmp_path / "other.json", base, "--allow", "inputs.classifier.sha256")[0] == 0


def test_gates_decide_on_the_value_or_on_the_interval(project, tmp_path):
    args = ["score", "--model", project / "acgan.onnx", "--test", project / "test.json", "--classifier",
            project / "judge.onnx", "--repeats", 4, "--device", "cpu", "--report", "-"]
    code, out, _ = _cli(*args)
    data = json.loads(out[out.index("{"):])
    value, low, high = data["value"], data["interval"]["low"], data["interval"]["high"]
    assert low < value < high
    between = (value + high) / 2  # above the score, inside its interval
    code, _, err = _cli(*args, "--min-score", between)
    assert code == 1 and "on the value" in err and "can flip with the noise seed" in err
    code, out, _ = _cli(*args, "--min-score", between, "--confidence", "0.95")
    assert code == 0 and "fails only if confidently below" in out
    code, _, err = _cli(*args, "--min-score", between, "--confidence", "0.95", "--strict")
    assert code == 1 and "strict" in err
    code, _, err = _cli(*args, "--min-score", between, "--strict")
    assert code == 2 and "--confidence" in err
    summary = tmp_path / "s.md"
    _cli(*args, "--summary", summary)
    assert summary.read_text().startswith("### gen-eval classifier_score\n")


def test_the_data_listing_digest_changes_with_the_files(project, tmp_path):
    copy = tmp_path / "real"
    shutil.copytree(project / "real", copy)
    first = gen_eval.fid(project / "features.onnx", copy, data=copy, device="cpu").provenance["data_listing_sha256"]
    (copy / "000.png").unlink()
    second = gen_eval.fid(project / "features.onnx", copy, data=copy, device="cpu").provenance["data_listing_sha256"]
    assert len(first) == 64 and first != second


def test_api_arguments_of_the_wrong_type_are_one_line_user_errors(tmp_path):
    """Issue 25: ``repeats="3"`` ended in ``TypeError: '<' not supported``."""
    import gen_eval
    from gen_eval.errors import UserError

    for bad, words in (({"repeats": "3"}, "repeats must be an integer, got '3' (str)"),
                       ({"repeats": True}, "repeats must be an integer"),
                       ({"confidence": "0.9"}, "confidence must be a number"),
                       ({"batch_size": 8.0}, "batch_size must be an integer")):
        with pytest.raises(UserError) as caught:
            gen_eval.score(tmp_path / "g.onnx", tmp_path / "t.json", classifier=tmp_path / "c.onnx", **bad)
        assert str(caught.value) == words or str(caught.value).startswith(words), str(caught.value)
