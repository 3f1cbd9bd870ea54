"""The ``gen-eval`` command line. Thin: parse, call the library, print.

Each part of the package keeps its commands in ``gen_eval/commands/``; those modules import torch
only inside the commands that need it, so the evaluator's commands run where torch is absent.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager

import click

from gen_eval import __version__
from gen_eval.commands import compare as compare_commands
from gen_eval.commands import config as config_commands
from gen_eval.commands import data as data_commands
from gen_eval.commands import demo as demo_commands
from gen_eval.commands import evaluate as evaluate_commands
from gen_eval.commands import export as export_commands
from gen_eval.commands import fid as fid_commands
from gen_eval.commands import metrics as metrics_commands
from gen_eval.commands import selftest as selftest_commands
from gen_eval.commands import train as train_commands
from gen_eval.commands import weights as weights_commands
from gen_eval.errors import GenEvalError, Terminated, flag_style, printable, render
from gen_eval.project import project_settings


def _raise_terminated(signum, frame):
    raise Terminated()


def _note_swallowed_signals(swallowed: list[int], previous_hook):
    """A signal that lands while Python runs a finalizer (``__del__``, a weakref callback) raises there,
    where Python prints the exception as 'ignored' and goes on. Instead: no print, and the signal noted
    for the watchdog, which sends it again so its handler runs in ordinary code and the command unwinds.
    (Sent again from here, the handler would run at once, inside this hook.)"""

    def hook(unraisable) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):  # Terminated is a KeyboardInterrupt too
            swallowed.append(signal.SIGTERM if isinstance(unraisable.exc_value, Terminated) else signal.SIGINT)
        else:
            previous_hook(unraisable)

    return hook


# Seconds a command has, after SIGTERM or Ctrl-C, to unwind on its own before the watchdog ends it.
SIGNAL_GRACE_S = 5.0


@contextmanager
def _signals_win():
    """SIGTERM (what timeout, Docker, Kubernetes and Slurm send) unwinds like Ctrl-C: temporary files are
    removed on the way out and the exit code is 143 (130 for Ctrl-C).

    Python runs signal handlers only between bytecodes of the main thread, so a long native call (a
    model run, a decode, a matrix function) would hold the signal back. The C-level handler also
    writes the signal number to a wake-up pipe at once; a watchdog thread reading it gives the command
    :data:`SIGNAL_GRACE_S` seconds to unwind, then removes the temporary files being written and ends
    the process. Only the main thread can install handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    previous_hook = sys.unraisablehook
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    try:
        previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    except (ValueError, OSError):  # not the main interpreter
        os.close(read_fd)
        os.close(write_fd)
        read_fd = write_fd = previous_fd = None
    finished = threading.Event()
    if read_fd is not None:
        swallowed: list[int] = []
        sys.unraisablehook = _note_swallowed_signals(swallowed, previous_hook)
        threading.Thread(target=_watch_signals, args=(read_fd, finished, swallowed), name="gen-eval-signals",
                         daemon=True).start()
    try:
        yield
    finally:
        finished.set()
        if write_fd is not None:
            signal.set_wakeup_fd(previous_fd)
            os.close(write_fd)  # the watchdog reads end-of-file, closes its end and returns
        signal.signal(signal.SIGTERM, previous)
        sys.unraisablehook = previous_hook


def _watch_signals(read_fd: int, finished: threading.Event, swallowed: list[int]) -> None:
    from gen_eval.fileio import remove_live_temporaries

    try:
        while not finished.is_set():
            try:
                received = os.read(read_fd, 64)
            except InterruptedError:
                continue
            if not received:
                return
            stopping = [n for n in received if n in (signal.SIGTERM, signal.SIGINT)]
            if not stopping:
                continue
            deadline = time.monotonic() + SIGNAL_GRACE_S
            while not finished.wait(0.05):
                if swallowed:
                    os.kill(os.getpid(), swallowed.pop())
                if time.monotonic() > deadline:
                    remove_live_temporaries()
                    os.write(2, b"terminated\n" if stopping[0] == signal.SIGTERM else b"interrupted\n")
                    os._exit(128 + stopping[0])
    finally:
        os.close(read_fd)


class _EchoHandler(logging.Handler):
    """The library's messages (logger "gen_eval", quiet by default) on stderr, one line each; above a
    progress bar while one is drawn (the bars are the CLI's: the library draws none unless asked)."""

    def emit(self, record: logging.LogRecord) -> None:
        prefix = "warning: " if record.levelno >= logging.WARNING else ""
        line = prefix + printable(render(record.getMessage()))
        tqdm = sys.modules.get("tqdm")
        if tqdm is not None and getattr(tqdm.tqdm, "_instances", None):
            tqdm.tqdm.write(line, file=sys.stderr)
        else:
            click.echo(line, err=True)


def _flag_resolver(group: click.Group, ctx: click.Context):
    """Parameter name -> the running command's option: ``--batch-size`` when the command has it, else the
    option whose Python name it is (``data_dir`` -> ``--data``), else the name dashed."""

    def options() -> list[click.Option]:
        command = group.get_command(ctx, ctx.invoked_subcommand) if ctx.invoked_subcommand else None
        commands = [command] if command is not None else []
        if isinstance(command, click.Group):
            commands += list(command.commands.values())
        return [p for c in commands for p in c.params if isinstance(p, click.Option)]

    def flag_of(name: str, negative: bool) -> str:
        dashed = "--" + name.replace("_", "-")
        found = options()
        for option in found:
            if dashed in option.opts or (negative and "--no-" + dashed[2:] in option.secondary_opts):
                return option.secondary_opts[0] if negative and option.secondary_opts else dashed
        for option in found:
            if option.name == name:
                longs = [o for o in option.opts if o.startswith("--")] or option.opts
                return option.secondary_opts[0] if negative and option.secondary_opts else longs[0]
        return "--no-" + dashed[2:] if negative else dashed

    return flag_of


@contextmanager
def _log_to_stderr():
    """For one command: the library's INFO messages and warnings on stderr; the logger as it was after."""
    logger = logging.getLogger("gen_eval")
    handler, before = _EchoHandler(), (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before[0])
        logger.propagate = before[1]


class _Group(click.Group):
    """Turns gen-eval errors (and click's usage errors) into one line on stderr and an exit code, unless --debug."""

    def invoke(self, ctx: click.Context):
        with flag_style(_flag_resolver(self, ctx)):  # messages name this command's options
            return self._invoke(ctx)

    def _invoke(self, ctx: click.Context):
        try:
            with _signals_win(), _log_to_stderr():
                return super().invoke(ctx)
        except GenEvalError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"{exc.label}: {printable(exc)}" if exc.label else printable(exc), err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:  # usage errors (bad option values, ...): one line too
            if ctx.obj and ctx.obj.get("debug"):
                raise
            message = " ".join(exc.format_message().split())
            usage_ctx = getattr(exc, "ctx", None)
            if usage_ctx is not None:
                message += f" (see '{usage_ctx.command_path} --help')"
            click.echo(f"error: {printable(message)}", err=True)
            sys.exit(exc.exit_code)
        except Terminated:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo("terminated", err=True)
            sys.exit(143)
        except KeyboardInterrupt:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo("interrupted", err=True)
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gen-eval")
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Train GANs and VAEs, export them to ONNX, and evaluate them with onnxruntime."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    # project defaults (gen-eval.toml / [tool.gen-eval] / GEN_EVAL_*) below the command line
    ctx.default_map = config_commands.default_map(cli, project_settings())


for _module in (data_commands, evaluate_commands, fid_commands, export_commands, train_commands, demo_commands,
                selftest_commands, config_commands, compare_commands, metrics_commands, weights_commands):
    _module.register(cli)


def main() -> None:
    cli(prog_name="gen-eval")


if __name__ == "__main__":
    main()
