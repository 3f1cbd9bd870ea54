"""The documentation cannot drift silently: every relative link in README.md, CHANGELOG.md and docs/ resolves,
and the MkDocs site builds in strict mode (its CLI reference is click's own help, its API page the docstrings)."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

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
