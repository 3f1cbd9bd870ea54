"""The CI recipes in docs/ci/ work as written: their shell steps run here, where torch cannot be imported, on
small models, gate on the score, compare with a baseline, write the Markdown summary and leave the files their
upload step names. Only ``pip install gen-eval`` is left out (.ci/run installs the wheel and runs it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.cli import REPO
from helpers.graphs import make_dense_head, make_generator

yaml = pytest.importorskip("yaml", reason="PyYAML reads the recipes (it comes with mkdocs, in the dev extra)")

RECIPES = REPO / "docs" / "ci"
INSTALL = "pip install gen-eval"


def _github_job() -> dict:
    (job,) = yaml.safe_load((RECIPES / "github-actions.yml").read_text())["jobs"].values()
    return job


def _gitlab_job() -> dict:
    return yaml.safe_load((RECIPES / "gitlab-ci.yml").read_text())["model-gate"]


@pytest.fixture
def workspace(tmp_path, no_torch_env) -> tuple[Path, dict]:
    """A repository checkout as the recipes expect it (models, conditions, a baseline report) and an
    environment with ``gen-eval`` on PATH and no torch."""
    (tmp_path / "models").mkdir()
    make_generator(tmp_path / "models" / "generator.onnx", labels=24)
    make_dense_head(tmp_path / "models" / "judge.onnx", role="classifier")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "test.json").write_text(json.dumps([["red cube"], ["blue sphere", "gray cube"],
                                                            ["green cylinder"], ["cyan cube", "red sphere"]]))
    bin_dir = tmp_path.parent / f"{tmp_path.name}-bin"
    bin_dir.mkdir()
    (bin_dir / "gen-eval").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m gen_eval "$@"\n')
    (bin_dir / "gen-eval").chmod(0o755)
    env = dict(no_torch_env, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    baseline = subprocess.run(["gen-eval", "score", "--model", "models/generator.onnx", "--test", "data/test.json",
                               "--classifier", "models/judge.onnx", "--repeats", "5", "--device", "cpu", "--report",
                               "baseline/score.json"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert baseline.returncode == 0, baseline.stderr
    return tmp_path, env


def _run(script: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-e", "-c", script], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def _github_steps(job: dict) -> list[str]:
    scripts = [step["run"] for step in job["steps"] if "run" in step]
    assert scripts[0].strip() == INSTALL
    return scripts[1:]


def test_github_actions_recipe_gates_compares_summarises_and_uploads(workspace):
    root, env = workspace
    job = _github_job()
    summary = root / "step-summary.md"
    env = dict(env, **job["env"]) | dict(MIN_SCORE="0", GITHUB_STEP_SUMMARY=str(summary))
    for script in _github_steps(job):
        result = _run(script, root, env)
        assert result.returncode == 0, (script, result.stdout, result.stderr)
    text = summary.read_text()
    assert text.index("### gen-eval classifier_score") < text.index("**gate passed**") < text.index(
        "### gen-eval compare") < text.index("| verdict | no confident regression |")
    (upload,) = [step for step in job["steps"] if step.get("uses", "").startswith("actions/upload-artifact")]
    for name in upload["with"]["path"].split():
        assert (root / name).is_file(), name
    assert json.loads((root / "score.json").read_text())["metric"] == "classifier_score"


def test_github_actions_recipe_fails_the_job_below_the_minimum(workspace):
    root, env = workspace
    job = _github_job()
    env = dict(env, **job["env"]) | dict(MIN_SCORE="1.0", GITHUB_STEP_SUMMARY=str(root / "step-summary.md"))
    gate = _run(_github_steps(job)[0], root, env)
    assert gate.returncode == 1 and "gate missed:" in gate.stderr and "Traceback" not in gate.stderr


def test_gitlab_recipe_gates_compares_summarises_and_keeps_the_report(workspace):
    root, env = workspace
    job = _gitlab_job()
    env = dict(env, **job["variables"]) | dict(MIN_SCORE="0")
    assert job["script"][0] == INSTALL
    result = _run("\n".join(job["script"][1:]), root, env)
    assert result.returncode == 0, (result.stdout, result.stderr)
    shown = _run("\n".join(job["after_script"]), root, env)
    assert shown.returncode == 0 and "| verdict |" in shown.stdout, shown.stdout
    for name in job["artifacts"]["paths"]:
        assert (root / name).is_file(), name
