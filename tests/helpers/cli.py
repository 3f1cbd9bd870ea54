"""Running ``gen-eval`` from tests, and the one-line error every bad input must produce.

- :func:`run_cli`: a real subprocess with the environment of the ``no_torch_env`` fixture (conftest.py),
  where ``import torch`` fails (:data:`BLOCKER`), so a run proves the evaluator does not need torch;
- :func:`run_cli_here`: in this process through click's CliRunner (fast; for error cases);
- :func:`run_gen_eval`: either of the two, failing the test on an uncaught exception (the bad-input table).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# -- running the CLI where torch cannot be imported --------------------------------------------
BLOCKER = '''
import importlib.abc, sys
class _NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision", "pytorch_fid"):
            raise ImportError(f"{name} is blocked in this test (the evaluator must not need it)")
        return None
sys.meta_path.insert(0, _NoTorch())
'''


def run_cli(env: dict, *args, cwd=None) -> subprocess.CompletedProcess:
    """``gen-eval ARGS`` in a subprocess where ``import torch`` fails (``env``: the ``no_torch_env`` fixture)."""
    return subprocess.run([sys.executable, "-m", "gen_eval.cli", *map(str, args)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def run_cli_here(*args) -> subprocess.CompletedProcess:
    """``gen-eval ARGS`` in this process (fast; for error cases — the torch-free runs use :func:`run_cli`)."""
    from click.testing import CliRunner

    from gen_eval.cli import cli

    result = CliRunner().invoke(cli, [str(a) for a in args], prog_name="gen-eval")
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)


def process_env() -> dict:
    """This process's environment with this checkout importable and colours off (torch importable)."""
    return dict(os.environ, PYTHONPATH=str(REPO), NO_COLOR="1")


def run_gen_eval(args: list, process: bool) -> tuple[int, str, str]:
    """``gen-eval ARGS`` in a real process (``process=True``, torch importable) or through CliRunner, where
    an uncaught exception fails the test (the user would see a traceback). Returns (exit code, stdout, stderr)."""
    args = [str(a) for a in args]
    if process:
        result = subprocess.run([sys.executable, "-m", "gen_eval.cli", *args], capture_output=True, text=True,
                                timeout=120, env=process_env(), stdin=subprocess.DEVNULL)
        return result.returncode, result.stdout, result.stderr
    from click.testing import CliRunner

    from gen_eval.cli import cli

    result = CliRunner().invoke(cli, args, prog_name="gen-eval")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback

        trace = "".join(traceback.format_exception(*result.exc_info))
        pytest.fail(f"uncaught exception (the user would see a traceback):\n{trace}")
    return result.exit_code, result.stdout, result.stderr


# -- the one-line error -------------------------------------------------------------------------
def error_line(stderr: str) -> str:
    """The one ``error:`` line (``gate missed:`` for a missed gate, exit 1); only the evaluator's ``runtime:``
    line may accompany it."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("runtime: ")]
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{stderr}"
    assert lines[0].startswith(("error: ", "gate missed: ")), stderr
    return lines[0]


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit code 2 and one ``error:`` line (see :func:`error_line`) holding every fragment."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    line = error_line(result.stderr)
    for fragment in fragments:
        assert fragment in line, (fragment, line)
