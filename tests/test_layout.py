"""How the package's modules use one another: a private name (``_x``) stays inside the module that owns it.

Read with ``ast`` from the source files, so nothing is imported and nothing runs.
"""

from __future__ import annotations

import ast
from pathlib import Path

import gen_eval

PACKAGE = Path(gen_eval.__file__).parent


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def private_imports(source: str, module: str) -> list[tuple[int, str]]:
    """(line, what) for each ``from gen_eval.x import _y``, ``import gen_eval._x`` and ``x._y`` through an
    imported module in ``source``, the code of ``module``."""
    found, modules = [], set()
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "gen_eval":
            for alias in node.names:
                if _private(alias.name) and node.module != module:
                    found.append((node.lineno, f"from {node.module} import {alias.name}"))
                modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "gen_eval":
                    if any(_private(part) for part in alias.name.split(".")):
                        found.append((node.lineno, f"import {alias.name}"))
                    modules.add(alias.asname or alias.name.split(".")[0])
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr) and isinstance(node.value, ast.Name) \
                and node.value.id in modules:
            found.append((node.lineno, f"{node.value.id}.{node.attr}"))
    return found


def test_the_scan_finds_each_way_of_reaching_a_private_name():
    source = ("from gen_eval.api.fid import _remote\n"
              "from gen_eval.evaluator import stats\n"
              "import gen_eval.evaluator.runtime as runtime\n"
              "stats._merge()\nruntime._preload()\n")
    assert len(private_imports(source, "gen_eval.api.metrics")) == 3
    fine = "from gen_eval import __version__\nfrom gen_eval.errors import UserError\nUserError.__name__\n"
    assert private_imports(fine, "gen_eval.cli") == []


def test_no_module_imports_another_modules_private_names():
    found = [(_module_name(path), line, use) for path in sorted(PACKAGE.rglob("*.py"))
             for line, use in private_imports(path.read_text(encoding="utf-8"), _module_name(path))]
    assert [f"{module}:{line}: {use}" for module, line, use in found] == [], \
        "give the name a public home in its owner, or move it"
