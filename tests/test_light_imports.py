"""`import gen_eval` and `gen-eval --help` stay light: none of the heavy libraries are loaded.

Each check runs in a fresh interpreter, since this test process has imported everything already.
"""

import subprocess
import sys

import pytest

HEAVY = ("onnxruntime", "scipy", "tqdm", "torch")

CHECK = """
import sys
{code}
loaded = sorted(name for name in {heavy!r} if name in sys.modules)
assert not loaded, loaded
print("light")
"""


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CHECK.format(code=code, heavy=HEAVY)], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("code", [
    "import gen_eval",
    "import gen_eval.evaluator",
    "import gen_eval.cli",
    # the top-level help and the evaluator's command help, as `gen-eval ... --help` runs them
    "from click.testing import CliRunner\nimport gen_eval.cli\n"
    "for args in (['--help'], ['fid', '--help'], ['metrics', '--help'], ['stats', '--help'], ['score', '--help'],"
    " ['sample', '--help'], ['compare', '--help']):\n"
    "    result = CliRunner().invoke(gen_eval.cli.cli, args)\n"
    "    assert result.exit_code == 0, (args, result.output)",
], ids=["gen_eval", "evaluator", "cli", "help"])
def test_imports_stay_light(code):
    result = _run(code)
    assert result.returncode == 0 and result.stdout.strip() == "light", result.stderr[-2000:]


def test_evaluator_names_still_resolve():
    """The evaluator package's public names are imported on first use."""
    import gen_eval.evaluator as evaluator
    from gen_eval.evaluator.model import load_model
    from gen_eval.evaluator.stats import FeatureStats

    assert evaluator.load_model is load_model and evaluator.FeatureStats is FeatureStats
    assert set(evaluator.__all__) <= set(dir(evaluator))
    with pytest.raises(AttributeError):
        evaluator.no_such_name  # noqa: B018
