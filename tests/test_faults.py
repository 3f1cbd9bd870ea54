"""Faults: processes killed mid-write, Ctrl-C, and CUDA asked for where there is none.

Kills are placed exactly: the process runs ``gen-eval`` through a tiny wrapper that patches one
function (``torch.save`` for checkpoints, ``os.replace`` for sample PNGs) to SIGKILL itself at the
chosen moment, so the test does not depend on timing. Ctrl-C is a real SIGINT to the process group
of a real ``gen-eval`` process, as a terminal sends it.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from PIL import Image

from helpers.cli import error_line, process_env, run_gen_eval
from helpers.graphs import make_generator
from helpers.images import write_images

TINY_DCGAN = ["--set", "image_size=16", "--set", "g_width=8", "--set", "d_width=8", "--set", "latent_dim=16"]
TEMP_MARK = ".tmp-"  # gen_eval.fileio's temporary files and folders: .<name>.tmp-XXXX


def run_killed(args: list, patch: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``gen-eval ARGS`` in a process where ``patch`` (Python source) has been run first."""
    code = textwrap.dedent(patch) + textwrap.dedent(f"""
        import sys
        from gen_eval.cli import main
        sys.argv = ["gen-eval", *{[str(a) for a in args]!r}]
        main()
    """)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                          env=process_env(), stdin=subprocess.DEVNULL)


def files_under(folder: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under ``folder``."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def temp_files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if TEMP_MARK in p.name)


def cuda_visible() -> bool:
    from gen_eval.evaluator.runtime import cuda_problem

    return cuda_problem() is None


# -- a training run killed while it writes a checkpoint ---------------------------------------------
@pytest.fixture(scope="module")
def rgb16(tmp_path_factory) -> Path:
    return write_images(tmp_path_factory.mktemp("faults-data") / "rgb16", 16, size=16)


def train_args(data: Path, run: Path, *extra) -> list:
    return ["train", "dcgan", "--data", data, "--out", run, "--steps", 6, "--batch-size", 4, "--checkpoint-every", 2,
            "--seed", 1, "--device", "cpu", "--threads", 1, "--workers", 0, "--no-progress", *TINY_DCGAN, *extra]


KILL_IN_CHECKPOINT_WRITE = """
    import os, signal, torch
    _save = torch.save
    def save(obj, f, *args, **kwargs):
        _save(obj, f, *args, **kwargs)
        if isinstance(obj, dict) and obj.get("step") == 4:  # the 2nd checkpoint: half-written, then killed
            with open(f, "r+b") as handle:
                handle.truncate(os.path.getsize(f) // 2)
            os.kill(os.getpid(), signal.SIGKILL)
    torch.save = save
"""


def network_weights(checkpoint: Path) -> dict:
    from gen_eval.trainers.checkpoint import load_checkpoint

    data = load_checkpoint(checkpoint)
    return {f"{net}.{key}": value for net, state in data["networks"].items() for key, value in state.items()}


@pytest.fixture(scope="module")
def killed_training(rgb16, tmp_path_factory) -> dict:
    """A run SIGKILLed while writing its 2nd checkpoint, then resumed; and the same run uninterrupted."""
    from gen_eval.trainers.checkpoint import load_checkpoint

    root = tmp_path_factory.mktemp("killed-training")
    run, last = root / "run", root / "run" / "checkpoints" / "last.pt"
    killed = run_killed(train_args(rgb16, run), KILL_IN_CHECKPOINT_WRITE)
    facts = {"killed": killed, "step_after_kill": load_checkpoint(last)["step"], "temp_after_kill": temp_files(run)}
    facts["resumed"] = run_gen_eval(train_args(rgb16, run, "--resume"), process=False)
    facts["temp_after_resume"] = temp_files(run)
    facts["straight"] = run_gen_eval(train_args(rgb16, root / "straight"), process=False)
    facts["last"], facts["straight_last"] = last, root / "straight" / "checkpoints" / "last.pt"
    return facts


def test_training_killed_in_a_checkpoint_write_resumes_from_the_last_good_one(killed_training):
    import torch

    from gen_eval.trainers.checkpoint import load_checkpoint

    facts = killed_training
    assert facts["killed"].returncode == -signal.SIGKILL, facts["killed"].stderr
    assert facts["step_after_kill"] == 2, "last.pt must still be the last complete checkpoint"
    code, _, stderr = facts["resumed"]
    assert code == 0 and "resuming dcgan from step 2" in stderr, stderr
    assert load_checkpoint(facts["last"])["step"] == 6
    code, _, stderr = facts["straight"]
    assert code == 0, stderr
    got, want = network_weights(facts["last"]), network_weights(facts["straight_last"])
    assert got.keys() == want.keys()
    assert all(torch.equal(got[k], want[k]) for k in want), "resumed weights differ from an uninterrupted run"


def test_resumed_training_removes_the_killed_writes_temp_file(killed_training):
    assert killed_training["temp_after_kill"], "the kill should have left a temp file to clean up"
    assert killed_training["temp_after_resume"] == []


# -- a sampling shard killed halfway ----------------------------------------------------------------
KILL_BEFORE_RENAMING_IMAGE_6 = """
    import os, signal
    _replace = os.replace
    def replace(src, dst, *args, **kwargs):
        if os.path.basename(str(dst)) == "000006.png":  # written to its temp file, not yet renamed
            os.kill(os.getpid(), signal.SIGKILL)
        return _replace(src, dst, *args, **kwargs)
    os.replace = replace
"""


@pytest.fixture(scope="module")
def generator(tmp_path_factory) -> Path:
    return make_generator(tmp_path_factory.mktemp("faults-gen") / "gen.onnx")


def sample_args(generator: Path, out: Path, *extra) -> list:
    return ["sample", "--model", generator, "--n", 24, "--seed", 5, "--batch-size", 4, "--device", "cpu",
            "--out", out, *extra]


def visible(files: dict[str, str]) -> dict[str, str]:
    return {name: digest for name, digest in files.items() if TEMP_MARK not in name}


def pngs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.png") if TEMP_MARK not in p.name)


@pytest.fixture(scope="module")
def killed_shard(generator, tmp_path_factory) -> dict:
    """Shard 1/2 of 24 images SIGKILLed before renaming image 6, run again, then shard 2/2; and one whole run."""
    root = tmp_path_factory.mktemp("killed-shard")
    out = root / "shards"
    killed = run_killed(sample_args(generator, out, "--shard", "1/2"), KILL_BEFORE_RENAMING_IMAGE_6)
    facts = {"killed": killed, "pngs_after_kill": pngs(out), "temp_after_kill": temp_files(out)}
    for path in out.glob("*.png"):
        if TEMP_MARK not in path.name:
            Image.open(path).load()  # every visible image is complete
    facts["again"] = run_gen_eval(sample_args(generator, out, "--shard", "1/2"), process=False)
    facts["temp_after_resume"] = temp_files(out)
    facts["second"] = run_gen_eval(sample_args(generator, out, "--shard", "2/2"), process=False)
    facts["whole"] = run_gen_eval(sample_args(generator, root / "whole"), process=False)
    facts["out"], facts["reference"] = out, root / "whole"
    return facts


def test_sampling_shard_killed_halfway_resumes_without_duplicates_or_gaps(killed_shard):
    facts = killed_shard
    assert facts["killed"].returncode == -signal.SIGKILL, facts["killed"].stderr
    assert facts["pngs_after_kill"] == [f"{i:06d}.png" for i in range(6)], "images before the kill, none after"
    code, stdout, stderr = facts["again"]
    assert code == 0 and "wrote 6 PNGs" in stdout and "6 were already there" in stdout, (stdout, stderr)
    code, stdout, stderr = facts["second"]
    assert code == 0 and "wrote 12 PNGs" in stdout, (stdout, stderr)
    code, _, stderr = facts["whole"]
    assert code == 0, stderr
    want = files_under(facts["reference"])
    assert sum(name.endswith(".png") for name in want) == 24
    assert visible(files_under(facts["out"])) == want, "resumed shards differ from one uninterrupted run"


def test_resumed_shard_removes_the_killed_writes_temp_file(killed_shard):
    assert killed_shard["temp_after_kill"], "the kill should have left a temp file to clean up"
    assert killed_shard["temp_after_resume"] == []


# -- Ctrl-C -------------------------------------------------------------------------------------------
def interrupt_when(args: list, ready, timeout: float = 60) -> subprocess.CompletedProcess:
    """Start ``gen-eval ARGS``; once ``ready()`` is true send SIGINT to its process group (a terminal's Ctrl-C)."""
    return signal_when(args, ready, signal.SIGINT, timeout)


def assert_interrupted(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 130, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and "KeyboardInterrupt" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("runtime: ")]
    assert lines and lines[-1] == "interrupted", result.stderr
    assert all(line.startswith("interrupted") for line in lines), result.stderr  # e.g. "interrupted at step 3 ..."


def test_ctrl_c_while_sampling_leaves_only_complete_images(generator, tmp_path):
    out = tmp_path / "out"
    result = interrupt_when(["sample", "--model", generator, "--n", 200_000, "--batch-size", 8, "--device", "cpu",
                             "--out", out], lambda: len(list(out.glob("*.png"))) >= 20)
    assert_interrupted(result)
    assert temp_files(out) == []
    for path in out.glob("*.png"):
        Image.open(path).load()


def test_ctrl_c_while_training_leaves_no_temp_files(rgb16, tmp_path):
    run = tmp_path / "run"
    args = train_args(rgb16, run)
    args[args.index("--steps") + 1] = 100_000
    args[args.index("--checkpoint-every") + 1] = 1
    args[args.index("--workers") + 1] = 2
    result = interrupt_when(args, lambda: (run / "loss_curve.png").is_file())  # past the first epoch's imports
    assert_interrupted(result)
    assert temp_files(run) == []
    from gen_eval.trainers.checkpoint import load_checkpoint

    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] >= 1


def test_ctrl_c_while_writing_the_shapes_set_leaves_nothing(tmp_path):
    out = tmp_path / "shapes"
    # interrupted once images are being written (an interrupt during an import can be swallowed by Python)
    result = interrupt_when(["data", "shapes", "--out", out, "--train", 100_000, "--heldout", 0],
                            lambda: len(list(tmp_path.glob(f".shapes{TEMP_MARK}*/images/*.png"))) >= 5)
    assert_interrupted(result)
    assert list(tmp_path.iterdir()) == []


# -- CUDA requested where there is none -----------------------------------------------------------
no_cuda = pytest.mark.skipif("cuda_visible()", reason="a CUDA GPU is visible: the no-CUDA messages cannot be shown here")


@no_cuda
@pytest.mark.parametrize("command", ["train", "sample", "score", "fid", "demo"])
def test_cuda_request_without_cuda_is_one_line(command, rgb16, generator, tmp_path):
    args = {
        "train": train_args(rgb16, tmp_path / "run"),
        "sample": sample_args(generator, tmp_path / "out"),
        "score": ["score", "--model", generator, "--test", tmp_path / "t.json", "--classifier", generator],
        "fid": ["fid", "--features", generator, "--ref", tmp_path / "s.npz", "--data", rgb16],
        "demo": ["demo", "--quick", "--out", tmp_path / "demo"],
    }[command]
    if "--device" in args:
        args[args.index("--device") + 1] = "cuda"
    else:
        args += ["--device", "cuda"]
    code, _, stderr = run_gen_eval(args, process=False)
    line = error_line(stderr)
    assert code == 2
    assert "cuda" in line.lower() and "--device cpu" in line, line
    assert list(tmp_path.iterdir()) == []


def test_device_auto_runs_where_it_can(rgb16, generator, tmp_path):
    """--device auto: CUDA when it really works, else CPU, and the runtime line says which."""
    expected = "CUDAExecutionProvider" if cuda_visible() else "CPUExecutionProvider"
    code, _, stderr = run_gen_eval(["sample", "--model", generator, "--n", 4, "--device", "auto",
                                    "--out", tmp_path / "grid.png"], process=False)
    assert code == 0, stderr
    runtime = [line for line in stderr.splitlines() if line.startswith("runtime: ")]
    assert len(runtime) == 1 and expected in runtime[0], stderr
    if expected == "CPUExecutionProvider":
        assert "CUDA not used:" in runtime[0]

    args = train_args(rgb16, tmp_path / "run")
    args[args.index("--device") + 1] = "auto"
    args[args.index("--steps") + 1] = 1
    code, _, stderr = run_gen_eval(args, process=False)
    assert code == 0, stderr
    device = json.loads((tmp_path / "run" / "run.json").read_text())["device"]
    assert device.startswith("cuda" if cuda_visible() else "cpu"), device


# -- round 2 (issue 12): SIGTERM, model runs that never end, stale temp files, modes, a full disk -----------
def signal_when(args: list, ready, sig: int, timeout: float = 60) -> subprocess.CompletedProcess:
    """Like :func:`interrupt_when`, with any signal (SIGTERM is what timeout, Docker, Kubernetes and Slurm send)."""
    process = subprocess.Popen([sys.executable, "-m", "gen_eval.cli", *map(str, args)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=process_env(), start_new_session=True,
                               stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            if process.poll() is not None:
                out, err = process.communicate()
                pytest.fail(f"gen-eval ended (exit {process.returncode}) before it could be signalled:\n{err}")
            if time.monotonic() > deadline:
                pytest.fail("gen-eval never reached the point where the test signals it")
            time.sleep(0.02)
        os.killpg(process.pid, sig)
        out, err = process.communicate(timeout=60)  # a run that ignores the signal fails here
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return subprocess.CompletedProcess(args, process.returncode, out, err)


def test_sigterm_while_sampling_exits_143_and_leaves_no_temp_file(generator, tmp_path):
    out = tmp_path / "out"
    result = signal_when(["sample", "--model", generator, "--n", 200_000, "--batch-size", 8, "--device", "cpu",
                          "--out", out], lambda: len(list(out.glob("*.png"))) >= 20, signal.SIGTERM)
    assert result.returncode == 143, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and result.stderr.strip().splitlines()[-1] == "terminated", result.stderr
    assert temp_files(out) == []
    for path in out.glob("*.png"):
        Image.open(path).load()


def loop_generator(path: Path) -> Path:
    """A generator whose graph runs a Loop of 10^12 iterations before it makes its images."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    from helpers.assets import GENERATOR_META
    from helpers.graphs import onnx_model as _model
    from helpers.graphs import save_model as _save

    scalar = lambda name, kind=TensorProto.FLOAT: helper.make_tensor_value_info(name, kind, [])  # noqa: E731
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Add", ["acc_in", "zero"], ["acc_out"])],
        "body", [scalar("i", TensorProto.INT64), scalar("cond_in", TensorProto.BOOL), scalar("acc_in")],
        [scalar("cond_out", TensorProto.BOOL), scalar("acc_out")],
        initializer=[numpy_helper.from_array(np.array(0, np.float32), "zero")])
    nodes = [helper.make_node("Loop", ["trips", "true", "acc0"], ["acc"], body=body),
             helper.make_node("MatMul", ["z", "W"], ["lin"]), helper.make_node("Add", ["lin", "acc"], ["lin2"]),
             helper.make_node("Tanh", ["lin2"], ["act"]), helper.make_node("Reshape", ["act", "shape"], ["image"])]
    init = [numpy_helper.from_array(np.array(10**12, np.int64), "trips"), numpy_helper.from_array(np.array(True), "true"),
            numpy_helper.from_array(np.array(0, np.float32), "acc0"),
            numpy_helper.from_array(np.ones((8, 192), np.float32), "W"),
            numpy_helper.from_array(np.array([-1, 3, 8, 8], np.int64), "shape")]
    return _save(_model(nodes, [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["B", 8])],
                        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["B", 3, 8, 8])], init),
                 path, GENERATOR_META)


@pytest.mark.parametrize("sig, code, last", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_a_model_run_that_never_ends_stops_on_ctrl_c_and_sigterm(tmp_path, sig, code, last):
    """onnxruntime holds the thread for the whole run; the signal must still stop it at once (RunOptions.terminate)."""
    model = loop_generator(tmp_path / "loop.onnx")
    started = tmp_path / "started"
    # the Ctrl-C lands well inside session.run: 2 s after the process started, long past its imports
    t0 = time.monotonic()
    result = signal_when(["sample", "--model", model, "--n", 4, "--device", "cpu", "--out", tmp_path / "g.png"],
                         lambda: time.monotonic() - t0 > 4, sig)
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and result.stderr.strip().splitlines()[-1] == last, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loop.onnx"] and not started.exists()


def test_stale_temp_files_of_dead_processes_are_removed_by_the_next_write(tmp_path):
    from gen_eval.fileio import atomic_write_text

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale = tmp_path / f".r.json.tmp-{dead}-{'0' * 16}.json"
    alive = tmp_path / f".r.json.tmp-{os.getppid()}-{'1' * 16}.json"  # a live process's write: left alone
    other = tmp_path / f".x.json.tmp-{dead}-{'2' * 16}.json"  # another file's: not this write's business
    for path in (stale, alive, other):
        path.write_text("partial")
    atomic_write_text(tmp_path / "r.json", "{}\n")
    assert not stale.exists() and alive.exists() and other.exists()
    assert (tmp_path / "r.json").read_text() == "{}\n"


def test_outputs_follow_the_umask_and_force_keeps_the_mode(tmp_path):
    from gen_eval.fileio import atomic_write_text

    previous = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "new.json", "{}")
        assert (tmp_path / "new.json").stat().st_mode & 0o777 == 0o644
        os.umask(0o077)
        atomic_write_text(tmp_path / "private.json", "{}")
        assert (tmp_path / "private.json").stat().st_mode & 0o777 == 0o600
        os.umask(0o022)
        (tmp_path / "shared.json").write_text("old")
        os.chmod(tmp_path / "shared.json", 0o664)
        atomic_write_text(tmp_path / "shared.json", "new", force=True)
        assert (tmp_path / "shared.json").stat().st_mode & 0o777 == 0o664
        assert (tmp_path / "shared.json").read_text() == "new"
    finally:
        os.umask(previous)


@pytest.fixture
def full_disk(tmp_path):
    """A 256 KiB tmpfs (root only) holding an old report, then filled up."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root and permission to mount a small tmpfs to fill a disk for real")
    try:
        (mount / "report.json").write_text('{"old": true}\n')
        (mount / "stats.npz").write_bytes(b"old statistics")
        fd = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_disk_is_one_line_and_keeps_the_old_files(full_disk, generator):
    from helpers.assets import build_assets

    assets = build_assets(full_disk.parent / "assets")
    before = files_under(full_disk)
    for args in (["score", "--model", assets.gen_cond, "--test", assets.test_json, "--classifier", assets.classifier,
                  "--report", full_disk / "report.json", "--force"],
                 ["stats", "--features", assets.features, "--data", assets.images, "--out", full_disk / "stats.npz",
                  "--force"]):
        code, _, stderr = run_gen_eval(args, process=False)
        line = error_line(stderr)
        assert code == 2 and "No space left on device" in line and "nothing was replaced" in line, line
        assert files_under(full_disk) == before and temp_files(full_disk) == []


def test_a_model_run_over_its_time_limit_is_stopped_with_one_line(tmp_path):
    """No signal needed: a graph that never ends is stopped after GEN_EVAL_RUN_TIMEOUT seconds (exit 2)."""
    model = loop_generator(tmp_path / "loop.onnx")
    t0 = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "gen_eval.cli", "sample", "--model", str(model), "--n", "4", "--device",
                             "cpu", "--out", str(tmp_path / "g.png")], capture_output=True, text=True, timeout=120,
                            env=dict(process_env(), GEN_EVAL_RUN_TIMEOUT="2"))
    assert result.returncode == 2 and time.monotonic() - t0 < 60, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "took over 2 s and was stopped" in result.stderr and "GEN_EVAL_RUN_TIMEOUT" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loop.onnx"]


@pytest.mark.parametrize("raised, blames, names", [
    (RuntimeError("can't start new thread"), "could not start the threads", "--threads"),
    (RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status code returned while running Conv "
                  "node. Name:'conv' Status Message: std::bad_alloc"), "ran out of memory", "--batch-size"),
    (RuntimeError("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : Got invalid dimensions for input: z for the "
                  "following indices index: 1 Got: 7 Expected: 8 Please fix either the inputs or the model."),
     "onnxruntime failed running the model", "re-export"),
])
def test_onnxruntime_failures_blame_the_machine_when_it_is_short(generator, tmp_path, monkeypatch, raised, blames,
                                                                 names):
    """Issue 25: a machine out of threads was reported as a broken model. Out of threads or memory says so
    (and which option to lower); any other failure still points at the model; each keeps onnxruntime's
    whole first line."""
    from click.testing import CliRunner

    from gen_eval.cli import cli
    from gen_eval.evaluator.batches import BatchRunner

    def fail(self, batch):
        raise raised

    monkeypatch.setattr(BatchRunner, "_interruptible", fail)
    result = CliRunner().invoke(cli, ["sample", "--model", str(generator), "--n", "2", "--device", "cpu",
                                      "--out", str(tmp_path / "g.png")])
    lines = result.stderr.strip().splitlines()
    line = lines[-1]
    assert result.exit_code == 2 and [x for x in lines if x.startswith("error")] == [line], result.output
    assert "Traceback" not in result.output and line.startswith("error: ") and blames in line and names in line and str(raised) in line
    assert ("not at fault" in line) == (names != "re-export")
    assert not (tmp_path / "g.png").exists()
