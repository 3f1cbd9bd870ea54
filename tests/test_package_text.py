"""The installed package speaks about behaviour: no text in gen_eval/ points outside the repository (the design
notes, a ``shared/`` folder beside the checkout) or names the course's labels (the seed reports S0-S4, the TA).
Where a recipe or a semantic comes from is told in docs/history.md and docs/recipes.md."""

from __future__ import annotations

import re

import pytest

from helpers.cli import REPO

PACKAGE = REPO / "gen_eval"
# Binary models and golden values; their bytes may hold anything.
SKIPPED = [PACKAGE / "conformance" / "data"]

FORBIDDEN = {
    "a path outside the repository": re.compile(r"DESIGN\.md|\bshared/"),
    "a seed report's label (S0-S4)": re.compile(r"\bS[0-4]\b"),
    "the course's TA": re.compile(r"\bTA\b"),
}


def _findings(text: str) -> list[str]:
    return [what for what, pattern in FORBIDDEN.items() if pattern.search(text)]


def _package_text_files() -> list:
    excluded = SKIPPED
    files = []
    for path in sorted(PACKAGE.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts or any(path.is_relative_to(e) for e in excluded):
            continue
        try:
            files.append((path, path.read_text(encoding="utf-8")))
        except UnicodeDecodeError:
            continue
    return files


@pytest.mark.parametrize("line, found", [
    ("seed S4's perceptual loss", ["a seed report's label (S0-S4)"]),
    ("(S1 reports 0.000833 this way)", ["a seed report's label (S0-S4)"]),
    ("see shared/DESIGN.md", ["a path outside the repository"]),
    ("gen-eval data check ../shared/data/mnist", ["a path outside the repository"]),
    ("the TA's ResNet18", ["the course's TA"]),
    ("preset s4-acgan, S5, TAB, STATS, the shared seeds", []),
])
def test_the_patterns_find_course_labels_and_outside_paths(line, found):
    assert _findings(line) == found


def test_no_package_text_points_outside_the_repository_or_names_the_course():
    files = _package_text_files()
    assert any(path.suffix == ".py" for path, _ in files)
    bad = [f"{path.relative_to(REPO)}:{number}: {what}: {line.strip()}"
           for path, text in files for number, line in enumerate(text.splitlines(), 1)
           for what in _findings(line)]
    assert not bad, "\n".join(bad)
