"""What ``pip install gen-eval`` gives a user: the wheel's metadata (one onnxruntime per platform, torch as a
range), its contents (LICENSE, py.typed, the conformance goldens), one version, ``python -m gen_eval``, and the
commands that need the train extra saying so where torch is absent."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from importlib.util import find_spec
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

import gen_eval
from helpers.cli import REPO, assert_one_line_error, run_cli

INSTALL_TRAIN = "pip install 'gen-eval[train]'"
TRAIN_COMMANDS = [("train", "dcgan", "--data", "d", "--out", "r"), ("export", "last.pt", "--out", "g.onnx"),
                  ("export-classifier", "judge.pt", "--out", "j.onnx"),
                  ("export-inception", "weights.pth", "--out", "i.onnx"), ("demo", "--out", "demo")]
# where the package index has an onnxruntime-gpu wheel (1.31.1, by pip install --dry-run --platform: yes for
# manylinux x86_64 and win_amd64; none for manylinux aarch64 or macOS arm64, where onnxruntime has one)
CUDA_WHEELS = {("linux", "x86_64"), ("win32", "AMD64")}
PLATFORMS = [("linux", "x86_64"), ("linux", "aarch64"), ("darwin", "arm64"), ("darwin", "x86_64"), ("win32", "AMD64"),
             ("win32", "ARM64")]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel ``pip install .`` would build, from a copy of the sources (the build leaves the checkout alone)."""
    if find_spec("build") is None:
        pytest.skip("the 'build' package is not installed (it is in the dev extra)")
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(REPO / "gen_eval", source / "gen_eval", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(work / "dist"),
                    str(source)], check=True, capture_output=True, text=True, timeout=300)
    (built,) = (work / "dist").glob("*.whl")
    return built


def _metadata(wheel: Path):
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return Parser().parsestr(archive.read(name).decode())


def _requirements(wheel: Path) -> list[Requirement]:
    return [Requirement(line) for line in _metadata(wheel).get_all("Requires-Dist")]


@pytest.mark.parametrize("extra", ["", "train"])
@pytest.mark.parametrize("platform,machine", PLATFORMS)
def test_wheel_installs_one_onnxruntime_per_platform(wheel, platform, machine, extra):
    environment = {"sys_platform": platform, "platform_machine": machine, "python_version": "3.11", "extra": extra}
    runtimes = [r.name for r in _requirements(wheel) if r.name in ("onnxruntime", "onnxruntime-gpu")
                and (r.marker is None or r.marker.evaluate(environment))]
    expected = "onnxruntime-gpu" if (platform, machine) in CUDA_WHEELS else "onnxruntime"
    assert runtimes == [expected]


def test_wheel_takes_torch_within_a_range(wheel):
    pins = {r.name: r for r in _requirements(wheel) if r.marker is not None and r.marker.evaluate({"extra": "train"})}
    for name in ("torch", "torchvision"):
        operators = {spec.operator for spec in pins[name].specifier}
        assert operators == {">=", "<"}, pins[name]
        if find_spec(name) is not None:  # the suite's own torch is inside the range
            from importlib.metadata import version

            assert Version(version(name)).base_version in pins[name].specifier, (name, pins[name])
    assert not any(r.name.startswith("torch") for r in _requirements(wheel) if r.marker is None)


def test_wheel_carries_license_types_and_package_data(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    goldens = {f"gen_eval/conformance/data/{p.name}" for p in (REPO / "gen_eval/conformance/data").iterdir()}
    assert goldens and goldens <= names, goldens - names
    assert {"gen_eval/py.typed", "gen_eval/__main__.py", "gen_eval/cli.py"} <= names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    metadata = _metadata(wheel)
    assert metadata["Version"] == gen_eval.__version__
    assert metadata["License-Expression"] == "MIT"
    assert "Typing :: Typed" in metadata.get_all("Classifier")


def test_python_m_gen_eval_prints_the_version_without_torch(no_torch_env):
    result = subprocess.run([sys.executable, "-m", "gen_eval", "--version"], env=no_torch_env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"gen-eval, version {gen_eval.__version__}"


@pytest.mark.parametrize("args", TRAIN_COMMANDS, ids=[a[0] for a in TRAIN_COMMANDS])
def test_train_commands_without_torch_say_which_extra(no_torch_env, tmp_path, args):
    result = run_cli(no_torch_env, *args, cwd=tmp_path)
    assert_one_line_error(result, f"'gen-eval {args[0]}' needs the train extra", "torch is not installed",
                          INSTALL_TRAIN)
    assert not any(tmp_path.iterdir())  # nothing written


def test_help_marks_the_commands_that_need_the_train_extra(no_torch_env):
    result = run_cli(no_torch_env, "--help")
    assert result.returncode == 0, result.stderr
    listed = {line.split()[0]: line for line in result.stdout.split("Commands:")[1].splitlines() if line.strip()}
    marked = {name for name, line in listed.items() if "[train]" in line}
    assert marked == {a[0] for a in TRAIN_COMMANDS}
    own_help = run_cli(no_torch_env, "export", "--help")
    assert own_help.returncode == 0 and INSTALL_TRAIN in own_help.stdout


def test_train_help_without_torch_lists_families_and_what_to_install(no_torch_env):
    listing = run_cli(no_torch_env, "train", "--help")
    assert listing.returncode == 0, listing.stderr
    assert "dcgan" in listing.stdout and "cannot be loaded" not in listing.stdout
    family = run_cli(no_torch_env, "train", "dcgan", "--help")
    assert family.returncode == 0 and "Traceback" not in family.stderr, family.stderr
    assert "dcgan's settings are listed here once the train extra is installed" in " ".join(family.stdout.split())


def test_public_functions_are_fully_annotated():
    """py.typed promises type checkers a typed API: every parameter and return of the public jobs is annotated."""
    import inspect

    for name in gen_eval.__all__:
        if name == "__version__":
            continue
        signature = inspect.signature(getattr(gen_eval, name))
        bare = [p.name for p in signature.parameters.values() if p.annotation is inspect.Parameter.empty]
        assert not bare, (name, bare)
        assert signature.return_annotation is not inspect.Signature.empty, name
