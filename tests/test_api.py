"""The Python API: the README's example runs as written; reports carry intervals and provenance; the
library is quiet; `gen-eval compare` catches a planted drop and refuses reports that are not paired."""

from __future__ import annotations

import io
import json
import re
import shutil
import sys
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
                           repeats=2, runtime=gen_eval.Runtime("cpu"))
    inputs = first.provenance["inputs"]
    assert set(inputs) == {"model", "classifier", "test"} and all(len(v["sha256"]) == 64 for v in inputs.values())
    assert first.provenance["seeds"] == [0, 1] and first.provenance["provider"] == "CPUExecutionProvider"
    assert first.provenance["preprocessing"]["quantize"] is False and first.provenance["versions"]["numpy"]
    other_test = tmp_path / "test.json"
    conditions = json.loads((project / "test.json").read_text())
    other_test.write_text(json.dumps(conditions[::-1]))
    second = gen_eval.score(project / "acgan.onnx", other_test, classifier=project / "judge.onnx", repeats=2,
                            runtime=gen_eval.Runtime("cpu"))
    assert second.provenance["inputs"]["test"]["sha256"] != inputs["test"]["sha256"]
    assert second.provenance["inputs"]["model"] == inputs["model"]
    json.dumps(first.to_dict())  # the report is plain JSON


def test_the_library_is_quiet(project, capsys):
    gen_eval.score(project / "acgan.onnx", project / "test.json", classifier=project / "judge.onnx", runtime=gen_eval.Runtime("cpu"))
    gen_eval.fid(project / "real", project / "real", features=project / "features.onnx", runtime=gen_eval.Runtime("cpu"))
    gen_eval.sample(project / "acgan.onnx", conditions=project / "test.json", runtime=gen_eval.Runtime("cpu"))
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
    first = gen_eval.fid(copy, copy, features=project / "features.onnx", runtime=gen_eval.Runtime("cpu")).provenance["data_listing_sha256"]
    (copy / "000.png").unlink()
    second = gen_eval.fid(copy, copy, features=project / "features.onnx", runtime=gen_eval.Runtime("cpu")).provenance["data_listing_sha256"]
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
            if "batch_size" in bad:  # the runtime's settings are checked where it is made
                gen_eval.Runtime(**bad)
            gen_eval.score(tmp_path / "g.onnx", tmp_path / "t.json", classifier=tmp_path / "c.onnx", **bad)
        assert str(caught.value) == words or str(caught.value).startswith(words), str(caught.value)


@pytest.mark.parametrize("job, args, bad, words", [
    ("GeneratorSource", ("g.onnx",), {"n": "100"}, "n must be an integer, got '100' (str)"),
    ("fid", ("ref", "images"), {"confidence": "0.9"}, "confidence must be a number"),
    ("fid", ("ref", "images"), {"features": 3}, "features must be a path (a str or a pathlib.Path), got 3 (int)"),
    ("GeneratorSource", ("g.onnx",), {"seed": 1.5}, "seed must be an integer"),
    ("statistics", ("images",), {"progress": "yes"}, "progress must be True or False"),
    ("mse", ("d.onnx", "e.onnx", "data"), {"confidence": 2.0}, "confidence must be between 0 and 1"),
    ("GeneratorSource", ("d.onnx",), {"value_range": 1.0}, "value_range must be comma-separated text"),
    ("Runtime", (), {"threads": "2"}, "threads must be an integer"),
    ("fid", ("ref", "images"), {"runtime": "cpu"}, "runtime must be a gen_eval.Runtime"),
    ("sample", ("g.onnx", "grid.png"), {"nrow": "4"}, "nrow must be an integer"),
    ("sample", ("g.onnx", "grid.png"), {"shard": 2}, "shard must be a pair (k, N)"),
    ("compare", ("new.json", 0.5), {}, "baseline must be a Report, a report dict or the path of a report JSON"),
    ("compare", ("new.json", "base.json"), {"max_drop": "0.1"}, "max_drop must be a number"),
    ("compare", ("new.json", "base.json"), {"allow": "seeds"}, "allow must be a set of provenance field names"),
    ("accuracy", ("c.onnx", "data"), {"split": 1}, "split must be a string"),
    ("info", ("m.onnx",), {"latent_dim": "100"}, "latent_dim must be an integer"),
    ("export", ("last.pt", "g.onnx"), {"fp16": "no"}, "fp16 must be True or False"),
    ("score", ("g.onnx", "t.json"), {"classifier": "c.onnx", "n": 2.0}, "n must be an integer"),
])
def test_every_api_job_checks_argument_types_in_one_line(tmp_path, monkeypatch, job, args, bad, words):
    """Issue 25: the API answers a wrong type with the same one-line UserError the CLI gives, before it
    opens any file (none of these files exist)."""
    from gen_eval.errors import UserError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError) as caught:
        getattr(gen_eval, job)(*args, **bad)
    message = str(caught.value)
    assert message.startswith(words) and "\n" not in message, message


def test_public_jobs_have_full_docstrings():
    """Issue 25: every public job says its arguments, what it returns, what it raises, and shows an example."""
    for name in ("score", "accuracy", "fid", "statistics", "mse", "sample", "compare", "metrics", "info", "export"):
        doc = getattr(gen_eval, name).__doc__
        assert all(part in doc for part in ("Args:", "Returns:", "Raises:", "Example:")), name


class _Terminal(io.StringIO):
    """stderr as a terminal: tqdm draws its bars only there."""

    def isatty(self) -> bool:
        return True


def _jobs(project, tmp_path):
    from helpers.graphs import make_encoder, make_linear_decoder

    weight = np.random.default_rng(0).standard_normal((8, 3 * 16 * 16)).astype(np.float32)
    decoder = make_linear_decoder(tmp_path / "vae.onnx", weight, image_shape=(3, 16, 16))
    encoder = make_encoder(tmp_path / "vae.encoder.onnx", np.linalg.pinv(weight), image_shape=(3, 16, 16))
    conditions = len(json.loads((project / "test.json").read_text()))
    return {
        "score": (lambda: gen_eval.score(project / "acgan.onnx", project / "test.json", repeats=2, runtime=gen_eval.Runtime("cpu"),
                                         classifier=project / "judge.onnx", progress=True), "scoring", 2 * conditions),
        "accuracy": (lambda: gen_eval.accuracy(project / "judge.onnx", project / "shapes", runtime=gen_eval.Runtime("cpu"), progress=True),
                     "classifying", 16),
        "sample": (lambda: gen_eval.sample(project / "acgan.onnx", conditions=project / "test.json", n=20,
                                           runtime=gen_eval.Runtime("cpu"), progress=True), "sampling", 20),
        "statistics": (lambda: gen_eval.statistics(project / "real", features=project / "features.onnx", runtime=gen_eval.Runtime("cpu"),
                                                   progress=True), "features", 40),
        "fid": (lambda: gen_eval.fid(project / "real", project / "real", features=project / "features.onnx", runtime=gen_eval.Runtime("cpu"),
                                     progress=True), "features", 40),
        "metrics": (lambda: gen_eval.metrics(project / "real", project / "real", names="kid",
                                             features=project / "features.onnx", runtime=gen_eval.Runtime("cpu"),
                                             progress=True), "features", 40),
        "mse": (lambda: gen_eval.mse(decoder, encoder, project / "real", runtime=gen_eval.Runtime("cpu"), progress=True),
                "reconstructing", 40),
    }


@pytest.mark.parametrize("job", ["score", "accuracy", "sample", "statistics", "fid", "metrics", "mse"])
def test_progress_works_in_every_api_job_and_its_bar_stays(project, tmp_path, monkeypatch, job):
    """Issue 25: ``progress=True`` draws a bar in every job that runs models, and its final line (total and
    rate) stays on screen: it ends in a newline instead of being wiped as ``leave=False`` does."""
    run, name, total = _jobs(project, tmp_path)[job]
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    run()
    drawn = terminal.getvalue()
    final = drawn.rstrip("\n").split("\r")[-1]
    assert drawn.endswith("\n") and final.startswith(f"{name}: 100%") and f"{total}/{total}" in final, drawn[-300:]
    assert re.search(r"\d(img/s|s/img)\]$", final), final  # the rate
