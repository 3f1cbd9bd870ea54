"""Project settings: gen-eval.toml / [tool.gen-eval] / GEN_EVAL_* as defaults under the command line.

The card's own command, `gen-eval score --model acgan.onnx --test test.json`, must work as written
once the project names its judge.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gen_eval.cli import cli
from gen_eval.project import project_settings
from helpers.graphs import ICLEVR_NAMES, make_dense_head, make_generator


def gen_eval(*args, env=None):
    result = CliRunner().invoke(cli, [str(a) for a in args], env=env or {}, prog_name="gen-eval")
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture()
def project(tmp_path, monkeypatch) -> Path:
    """A project: models/judge.onnx named in gen-eval.toml at the root, work done in a subfolder."""
    for name in list(__import__("os").environ):
        if name.startswith("GEN_EVAL_"):
            monkeypatch.delenv(name)
    (tmp_path / "models").mkdir()
    make_generator(tmp_path / "models" / "acgan.onnx", labels=24, value_range="0,1")
    make_dense_head(tmp_path / "models" / "judge.onnx", role="classifier", image_shape=(3, 12, 12), out_dim=24)
    rng = np.random.default_rng(5)
    items = [[ICLEVR_NAMES[i] for i in rng.choice(24, rng.integers(1, 4), replace=False)] for _ in range(16)]
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "test.json").write_text(json.dumps(items))
    (tmp_path / "gen-eval.toml").write_text('classifier = "models/judge.onnx"\ndevice = "cpu"\nthreads = 1\n')
    monkeypatch.chdir(tmp_path / "runs")
    return tmp_path


def test_the_cards_score_command_works_as_written(project):
    code, out, err = gen_eval("score", "--model", "../models/acgan.onnx", "--test", "test.json")
    assert code == 0, err
    assert "classifier_score" in out and "on CPUExecutionProvider (1 threads)" in err


def test_precedence_command_line_over_environment_over_file(project):
    _, _, err = gen_eval("score", "--model", "../models/acgan.onnx", "--test", "test.json", env={"GEN_EVAL_THREADS": "2"})
    assert "(2 threads)" in err
    _, _, err = gen_eval("score", "--model", "../models/acgan.onnx", "--test", "test.json", "--threads", "1",
                         env={"GEN_EVAL_THREADS": "2"})
    assert "(1 threads)" in err
    settings = project_settings(environ={"GEN_EVAL_DEVICE": "auto"})
    assert settings["classifier"].value == project / "models" / "judge.onnx"  # relative to the file, not the cwd
    assert settings["classifier"].source == str(project / "gen-eval.toml")
    assert (settings["device"].value, settings["device"].source) == ("auto", "GEN_EVAL_DEVICE")
    code, out, _ = gen_eval("config", env={"GEN_EVAL_DEVICE": "auto"})
    assert code == 0 and f"project file: {project / 'gen-eval.toml'}" in out
    lines = {line.split()[0]: line.split()[1:] for line in out.splitlines()[2:]}
    assert lines["classifier"] == [str(project / "models" / "judge.onnx"), str(project / "gen-eval.toml")]
    assert lines["device"] == ["auto", "GEN_EVAL_DEVICE"] and lines["objects"] == ["-", "built-in"]


def test_pyproject_table_and_explicit_file(project):
    (project / "gen-eval.toml").unlink()
    (project / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.gen-eval]\nclassifier = "models/judge.onnx"\n')
    code, _, err = gen_eval("score", "--model", "../models/acgan.onnx", "--test", "test.json", "--device", "cpu")
    assert code == 0, err
    other = project / "elsewhere.toml"
    other.write_text('threads = 2\nclassifier = "models/judge.onnx"\n')
    assert project_settings(environ={"GEN_EVAL_CONFIG": str(other)})["threads"].value == 2


@pytest.mark.parametrize("content, env, says", [
    ('classifer = "judge.onnx"\n', {}, ("unknown setting 'classifer'", "valid: classifier")),
    ('classifier = "judge.onnx\n', {}, ("invalid TOML", "line 1")),
    ('threads = "many"\n', {}, ("threads = 'many' is not an integer",)),
    ('threads = 2.5\n', {}, ("threads must be an integer",)),
    ('min-score = nan\n', {}, ("finite number",)),
    ('device = "cpu"\n', {"GEN_EVAL_THREADS": "x"}, ("GEN_EVAL_THREADS", "not an integer")),
    ('device = "cpu"\n', {"GEN_EVAL_CONFIG": "missing.toml"}, ("GEN_EVAL_CONFIG=missing.toml", "no such file")),
])
def test_bad_settings_are_one_line_errors(project, content, env, says):
    (project / "gen-eval.toml").write_text(content)
    code, out, err = gen_eval("score", "--model", "../models/acgan.onnx", "--test", "test.json", env=env)
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err + out, err
    assert all(word in lines[0] for word in says), lines[0]
