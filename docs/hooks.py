"""MkDocs hook: the command-line reference is click's own ``--help`` of every command, generated at build time
(docs/cli.md holds only a marker), so the page cannot drift from the commands."""

from __future__ import annotations

import click

MARKER = "<!-- cli-reference -->"
WIDTH = 100


def _help_sections(command: click.Command, path: list[str], parent: click.Context | None) -> list[str]:
    context = click.Context(command, info_name=path[-1], parent=parent, terminal_width=WIDTH,
                            max_content_width=WIDTH)
    sections = [f"## {' '.join(path)}\n\n```text\n{command.get_help(context)}\n```\n"]
    if isinstance(command, click.Group):
        for name in sorted(command.list_commands(context)):
            sections += _help_sections(command.get_command(context, name), [*path, name], context)
    return sections


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARKER not in markdown:
        return markdown
    from gen_eval.cli import cli

    return markdown.replace(MARKER, "\n".join(_help_sections(cli, ["gen-eval"], None)))
