"""Commands that need an optional extra (PyTorch's): marked in ``--help``; where the extra is missing they
answer in one line what to install instead of failing on an import deep inside."""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Sequence

import click

from gen_eval.errors import UserError

TRAIN_EXTRA = "train"


def install_line(extra: str) -> str:
    return f"pip install 'gen-eval[{extra}]'"


def first_missing(modules: Sequence[str]) -> str | None:
    """The first of ``modules`` that cannot be imported here (found without importing it), or None."""
    for name in modules:
        try:
            if importlib.util.find_spec(name) is None:
                return name
        except (ImportError, ValueError):  # a broken or blocked package counts as missing
            return name
    return None


def needs_extra(command: click.Command, extra: str, modules: Sequence[str]) -> click.Command:
    """Mark ``command`` as needing ``extra`` (whose packages provide ``modules``) in the command list and in
    its own help, and check for ``modules`` before its body runs."""
    if getattr(command, "needs_extra", None) == extra:  # registered twice: marked once
        return command
    command.needs_extra = extra
    note = f"Needs the {extra} extra: {install_line(extra)}"
    summary = command.get_short_help_str(limit=45)
    command.short_help = f"[{extra}] {summary}"
    command.help = f"{command.help or ''}\n\n{note}".strip()
    body = command.callback

    @functools.wraps(body)
    def checked(*args, **kwargs):
        missing = first_missing(modules)
        if missing is not None:
            path = click.get_current_context().command_path
            raise UserError(f"'{path}' needs the {extra} extra ({missing} is not installed here); "
                            f"install it with: {install_line(extra)}")
        return body(*args, **kwargs)

    command.callback = checked
    return command
