"""The ``gen-eval`` command line. Thin: parse, call the library, print.

Each part of the package keeps its commands in ``gen_eval/commands/``; those modules import torch
only inside the commands that need it, so the evaluator's commands run where torch is absent.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
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
from gen_eval.errors import GenEvalError, Terminated, flag_style, printable, render
from gen_eval.project import project_settings


def _raise_terminated(signum, frame):
    raise Terminated()


@contextmanager
def _sigterm_raises():
    """SIGTERM (what timeout, Docker, Kubernetes and Slurm send) unwinds like Ctrl-C: temporary files are
    removed on the way out and the exit code is 143. Only the main thread can install handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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
            with _sigterm_raises(), _log_to_stderr():
                return super().invoke(ctx)
        except GenEvalError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"error: {printable(exc)}", err=True)
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
                selftest_commands, config_commands, compare_commands, metrics_commands):
    _module.register(cli)


def main() -> None:
    cli(prog_name="gen-eval")


if __name__ == "__main__":
    main()
