"""Hostile input, round 3 (issue 24): each test is named by the class of attack it keeps out.

- one owner per run folder: a second training (plain, --force or --resume) on a live run folder is
  refused in one line naming the holder's PID, and the live run goes on untouched;
- bounded threads and memory: thread counts above the CPUs the process may use are refused, and
  declared shapes are checked before anything is allocated;
- signals: SIGTERM and SIGINT end a long command within seconds, leaving no temporary file.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers.cli import error_line, process_env, run_gen_eval
from helpers.images import write_images

TINY_DCGAN = ["--set", "image_size=16", "--set", "g_width=8", "--set", "d_width=8", "--set", "latent_dim=16"]
WAIT_S = 90  # generous: the lead's experiments share these 2 cores; nothing here asserts a duration


def train_args(data: Path, run: Path, *extra) -> list[str]:
    return [str(a) for a in ["train", "dcgan", "--data", data, "--out", run, "--batch-size", 4, "--seed", 1,
                             "--device", "cpu", "--threads", 1, "--workers", 0, "--no-progress", *TINY_DCGAN, *extra]]


def start_gen_eval(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gen_eval.cli", *args], env=process_env(), text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)


def wait_for(condition, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the process ended before {what}: {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"no {what} within {WAIT_S} s")
        time.sleep(0.1)


def checkpoint_step(path: Path) -> int:
    from gen_eval.trainers.checkpoint import load_checkpoint

    return int(load_checkpoint(path)["step"])


def temp_files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if ".tmp-" in p.name)


@pytest.fixture(scope="module")
def rgb16(tmp_path_factory) -> Path:
    return write_images(tmp_path_factory.mktemp("round3-data") / "rgb16", 16, size=16)


# -- 1. one owner per run folder ------------------------------------------------------------------------
def test_run_folder_two_trainings_second_is_refused_on_every_path_and_live_run_untouched(rgb16, tmp_path):
    run = tmp_path / "run"
    last = run / "checkpoints" / "last.pt"
    live = start_gen_eval(train_args(rgb16, run, "--steps", 100000, "--checkpoint-every", 1))
    try:
        wait_for(last.is_file, live, "a first checkpoint")
        run_json = (run / "run.json").read_bytes()
        attempts = {"--force": train_args(rgb16, run, "--steps", 3, "--force"),
                    "--resume": train_args(rgb16, run, "--steps", 3, "--resume"),
                    "plain": train_args(rgb16, run, "--steps", 3)}
        for name, args in attempts.items():
            code, stdout, stderr = run_gen_eval(args, process=True)
            assert code == 2, (name, stdout, stderr)
            line = error_line(stderr)
            assert f"process {live.pid}" in line and "in use by another" in line and "wait for it" in line, line
        assert live.poll() is None, "the live run must go on"
        assert (run / "run.json").read_bytes() == run_json, "the live run's files must be untouched"
        step = checkpoint_step(last)
        wait_for(lambda: checkpoint_step(last) > step, live, "a later checkpoint of the live run")
    finally:
        live.send_signal(signal.SIGTERM)
        _, stderr = live.communicate(timeout=WAIT_S)
    assert live.returncode == 143, stderr
    assert temp_files(run) == []
    # the folder is free again once its owner ended
    stopped_at = checkpoint_step(last)
    code, _, stderr = run_gen_eval(train_args(rgb16, run, "--steps", 1, "--resume"), process=True)
    if stopped_at > 1:
        assert code == 2 and f"already at step {stopped_at}" in error_line(stderr) and "--steps above" in stderr
    code, _, stderr = run_gen_eval(train_args(rgb16, run, "--steps", 1, "--force"), process=True)
    assert code == 0, stderr
    assert checkpoint_step(last) == 1


def test_run_folder_lock_is_on_a_folder_the_run_creates_and_removed_when_nothing_was_written(tmp_path):
    from gen_eval.errors import UserError
    from gen_eval.fileio import FolderLock

    run = tmp_path / "new" / "run"
    with FolderLock(run, "'gen-eval train'") as held:
        assert run.is_dir()
        with pytest.raises(UserError, match=rf"in use by another 'gen-eval train' \(process {os.getpid()}\)"):
            FolderLock(run, "'gen-eval train'")
        assert held.fd is not None
    assert not (tmp_path / "new").exists(), "folders the lock made and nothing was written into are removed"
    with FolderLock(run, "'gen-eval train'"):
        (run / "kept.txt").write_text("x")
    assert (run / "kept.txt").is_file()
    with FolderLock(run, "'gen-eval train'"):  # released: free again
        pass


def test_run_folder_failed_training_on_a_new_folder_leaves_no_folder(rgb16, tmp_path):
    code, _, stderr = run_gen_eval(["train", "acgan", "--data", rgb16, "--out", tmp_path / "a" / "run",
                                    "--steps", 1], process=False)
    assert code == 2 and "needs labels" in error_line(stderr)
    assert list(tmp_path.iterdir()) == []


def test_run_folder_resume_past_the_end_is_refused(rgb16, tmp_path):
    run = tmp_path / "run"
    assert run_gen_eval(train_args(rgb16, run, "--steps", 3), process=False)[0] == 0
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    code, _, stderr = run_gen_eval(train_args(rgb16, run, "--steps", 2, "--resume"), process=False)
    assert code == 2
    line = error_line(stderr)
    assert "already at step 3" in line and "--steps above 3" in line and "--force" in line, line
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
