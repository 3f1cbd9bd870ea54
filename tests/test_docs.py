"""The documentation cannot drift silently: every relative link in README.md, CHANGELOG.md and docs/ resolves,
the MkDocs site builds in strict mode (its CLI reference is click's own help, its API page the docstrings), and
the README tour's lines marked ``[tested]`` run as written (on small data and models)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest

from helpers.cli import REPO, process_env

PAGES = [REPO / "README.md", REPO / "CHANGELOG.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _relative_links(page: Path) -> list[str]:
    text, fence = [], False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fence = not fence
        elif not fence:
            text.append(line)
    return [target for target in LINK.findall("\n".join(text))
            if not re.match(r"[a-z][a-z0-9+.-]*:", target) and not target.startswith("#")]


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(REPO)) for p in PAGES])
def test_relative_links_resolve(page):
    links = _relative_links(page)
    broken = [target for target in links if not (page.parent / target.split("#")[0]).exists()]
    assert not broken, broken


def test_readme_links_every_docs_page():
    linked = {(REPO / target.split("#")[0]).resolve() for target in _relative_links(REPO / "README.md")}
    pages = {page.resolve() for page in (REPO / "docs").glob("*.md")}
    assert pages <= linked, sorted(p.name for p in pages - linked)


@pytest.mark.skipif(find_spec("mkdocs") is None or find_spec("mkdocstrings") is None,
                    reason="mkdocs and mkdocstrings are not installed (they are in the dev extra)")
def test_site_builds_in_strict_mode_with_every_command(tmp_path):
    site = tmp_path / "site"
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                            cwd=REPO, env=process_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    reference = (site / "cli" / "index.html").read_text(encoding="utf-8")
    from gen_eval.cli import cli

    for name in cli.commands:
        assert f'id="gen-eval-{name}"' in reference, name
    assert "Needs the train extra" in reference
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    import gen_eval

    for job, module in gen_eval._API.items():  # every public job has its docstring on the API page
        assert f'id="{module}.{job}"' in api, job


# -- the README's tour: the lines marked "[tested]" run as written ---------------------------------------------
TESTED = re.compile(r"#.*\[tested\]\s*$")
TOUR_COMMANDS = ["data check", "train diffusion --help", "weights list", "selftest", "info", "score", "compare",
                 "sample", "metrics"]


def _tour_lines() -> list[str]:
    """The shell lines of the README's "A tour" block, continuation lines joined."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"^## A tour\n.*?^```bash\n(.*?)^```", text, flags=re.S | re.M)
    assert block, "README.md has no '## A tour' section with a bash block"
    lines, pending = [], ""
    for line in block.group(1).splitlines():
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1]
            continue
        lines.append(pending + line)
        pending = ""
    return [line for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _label_echo_pair(generator: Path, classifier: Path) -> None:
    """A generator that writes each label it is given into one pixel, and a classifier that reads it back, so
    the tour's ``--min-score 0.5`` gate passes on models with nothing trained (they score 1.0)."""
    from onnx import TensorProto, helper, numpy_helper

    from helpers.graphs import ICLEVR_SPACE, onnx_model, save_model

    latent, labels, shape = 8, 24, (3, 8, 8)
    pixels = int(np.prod(shape))
    write = np.zeros((latent + labels, pixels), dtype=np.float32)
    write[latent + np.arange(labels), np.arange(labels)] = 3.0
    read = np.zeros((pixels, labels), dtype=np.float32)
    read[np.arange(labels), np.arange(labels)] = 3.0
    space = ICLEVR_SPACE.to_json()
    save_model(onnx_model(
        [helper.make_node("Concat", ["z", "labels"], ["zl"], axis=1), helper.make_node("MatMul", ["zl", "W"], ["lin"]),
         helper.make_node("Tanh", ["lin"], ["act"]), helper.make_node("Reshape", ["act", "shape"], ["image"])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["B", latent]),
         helper.make_tensor_value_info("labels", TensorProto.FLOAT, ["B", labels])],
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["B", *shape])],
        [numpy_helper.from_array(write, "W"), numpy_helper.from_array(np.array([-1, *shape], dtype=np.int64), "shape")]),
        generator, {"gen_eval.role": "generator", "gen_eval.family": "test", "gen_eval.latent_dim": latent,
                    "gen_eval.image_shape": "3,8,8", "gen_eval.value_range": "-1,1", "gen_eval.contract": "1",
                    "gen_eval.label_space": space})
    save_model(onnx_model(
        [helper.make_node("Flatten", ["image"], ["flat"], axis=1), helper.make_node("MatMul", ["flat", "W"], ["lin"]),
         helper.make_node("Sigmoid", ["lin"], ["probs"])],
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["B", *shape])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["B", labels])],
        [numpy_helper.from_array(read, "W")]),
        classifier, {"gen_eval.role": "classifier", "gen_eval.value_range": "-1,1", "gen_eval.contract": "1",
                     "gen_eval.image_shape": "3,8,8", "gen_eval.label_space": space})


def test_readme_tour_lines_marked_tested_run_as_written(tmp_path):
    marked = [line for line in _tour_lines() if TESTED.search(line)]
    covered = [name for name in TOUR_COMMANDS if any(line.startswith(f"gen-eval {name}") for line in marked)]
    # a marked line removed, renamed or unmarked fails here instead of silently leaving the tour untested
    assert len(marked) == len(TOUR_COMMANDS) and covered == TOUR_COMMANDS, (covered, marked)

    from helpers.graphs import make_dense_head

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gen-eval").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m gen_eval "$@"\n')
    (bin_dir / "gen-eval").chmod(0o755)
    work = tmp_path / "tour"
    work.mkdir()
    env = process_env() | dict(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
                               GEN_EVAL_CACHE=str(tmp_path / "cache"))

    def run(line: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-e", "-c", line], cwd=work, env=env, capture_output=True, text=True,
                              timeout=300, stdin=subprocess.DEVNULL)

    # what the unmarked lines before them make, small: the data set (the tour's size takes a minute), the models
    # (training takes minutes) and a baseline report from the same models
    _label_echo_pair(work / "generator.onnx", work / "classifier.onnx")
    make_dense_head(work / "classifier-features.onnx", role="features", out_dim=16)
    for setup in ["gen-eval data shapes --out shapes --train 64 --heldout 16",
                  "gen-eval score --model generator.onnx --test shapes/test.json --classifier classifier.onnx "
                  "--repeats 5 --report baseline-score.json"]:
        result = run(setup)
        assert result.returncode == 0, (setup, result.stdout, result.stderr)

    for line in marked:
        result = run(line)
        assert result.returncode == 0, (line, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr, (line, result.stderr)
    assert json.loads((work / "score.json").read_text())["metric"] == "classifier_score"
    for written in ["grid.png", "report.html"]:
        assert (work / written).stat().st_size > 0, written
