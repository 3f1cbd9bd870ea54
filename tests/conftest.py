"""Fixtures shared by several test files (pytest finds them here; do not import them).

Non-fixture helpers (graph builders, CLI runners, reference scores) are in the ``helpers`` package
next to this file; pytest's default import mode puts tests/ on sys.path, so ``from helpers.graphs import ...``.
"""

from __future__ import annotations

import os
import signal

import pytest

from helpers.cli import BLOCKER, REPO


@pytest.fixture(scope="session", autouse=True)
def ctrl_c_reaches_children():
    """A suite started in the background by a non-interactive shell (``cmd &``, nohup, some CI runners)
    inherits SIGINT ignored, and every gen-eval process a test starts would inherit that too, so the
    Ctrl-C tests would test nothing. A handled signal is reset to the default at exec, an ignored one is
    not: handling it here gives each child a real Ctrl-C."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """The whole session (and every gen-eval process it starts) uses its own cache folder, never the
    user's: cached reference statistics and named feature models land there (tests set their own where
    they look at it)."""
    previous = os.environ.get("GEN_EVAL_CACHE")
    os.environ["GEN_EVAL_CACHE"] = str(tmp_path_factory.mktemp("gen_eval_cache"))
    yield
    if previous is None:
        os.environ.pop("GEN_EVAL_CACHE", None)
    else:
        os.environ["GEN_EVAL_CACHE"] = previous


@pytest.fixture(scope="session")
def no_torch_env(tmp_path_factory) -> dict:
    """Environment for :func:`helpers.cli.run_cli`: ``import torch`` (and torchvision, pytorch_fid) fails."""
    folder = tmp_path_factory.mktemp("no_torch")
    (folder / "sitecustomize.py").write_text(BLOCKER)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(folder), str(REPO)])
    env["NO_COLOR"] = "1"
    return env


def _torch_threads(count: int):
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one thread for a whole module, then back. Tiny networks gain nothing from threads, and on
    a shared 2-core machine threads spin-wait. Use as ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    yield from _torch_threads(1)


@pytest.fixture(scope="module")
def two_torch_threads():
    """torch on two threads for a whole module, then back (as :func:`one_torch_thread`)."""
    yield from _torch_threads(2)
