"""`gen-eval` commands of the train part (registered by gen_eval.cli)."""

from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    """Add this part's commands to the root group."""
