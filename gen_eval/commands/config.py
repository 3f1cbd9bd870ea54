"""`gen-eval config`, and the project settings as click defaults for every command.

Precedence: the command line, then ``GEN_EVAL_*`` variables, then the project file, then the
built-in defaults (see :mod:`gen_eval.project`). Settings reach the commands as click's
``default_map``, so every option named like a setting takes it as its default.
"""

from __future__ import annotations

from pathlib import Path

import click

from gen_eval.errors import printable
from gen_eval.project import SETTINGS, Setting, find_project_file, project_settings

# The commands the settings are defaults of: the evaluator's, where `seed`, `batch-size`, `threads` and `device`
# mean what SETTINGS says. `train --batch-size` (a training batch), `data shapes --seed` (which data set is
# drawn) or `demo --seed` share a name, not a meaning: a project file must not change a recipe or a data set.
EVALUATOR_COMMANDS = frozenset({"info", "sample", "score", "mse", "fid", "stats", "metrics", "compare", "selftest"})


def default_map(group: click.Group, settings: dict[str, Setting], *, top: bool = True) -> dict:
    """{command: {parameter: value}} (nested for groups) for every option of an evaluator command
    (:data:`EVALUATOR_COMMANDS`) whose long name is a setting."""
    out: dict = {}
    for name, command in group.commands.items():
        if top and name not in EVALUATOR_COMMANDS:
            continue
        if isinstance(command, click.Group):
            nested = default_map(command, settings, top=False)
            if nested:
                out[name] = nested
            continue
        values = {}
        for param in command.params:
            if not isinstance(param, click.Option):
                continue
            for opt in param.opts:
                key = opt.lstrip("-")
                if opt.startswith("--") and key in settings:
                    value = settings[key].value
                    values[param.name] = str(value) if isinstance(value, Path) else value
        if values:
            out[name] = values
    return out


@click.command("config")
@click.option("--file", "file", type=click.Path(dir_okay=False), default=None,
              help="Check and show this project file instead of the one found upward from here.")
def config_command(file: str | None) -> None:
    """Show the effective project settings and where each comes from.

    Settings are defaults for the options of the same name of the evaluator commands (info, sample, score,
    mse, fid, stats, metrics, selftest; never train, demo or data): the nearest gen-eval.toml, or
    pyproject.toml's [tool.gen-eval] table, found upward from here (GEN_EVAL_CONFIG names one),
    overridden by GEN_EVAL_<KEY> variables, overridden by the command line. Paths are relative
    to the file that names them.

    \b
    Example gen-eval.toml:
      classifier = "models/judge.onnx"
      objects = "data/objects.json"
      device = "cpu"
    \b
    Then `gen-eval score --model acgan.onnx --test test.json` needs no other option.
    """
    path = Path(file).resolve() if file else find_project_file(Path.cwd())
    settings = project_settings(file=path)
    click.echo(f"project file: {printable(str(path)) if path else '(none found upward from ' + printable(str(Path.cwd())) + ')'}")
    rows = [("key", "value", "source")]
    for key in SETTINGS:
        setting = settings.get(key)
        rows.append((key, "-" if setting is None else printable(str(setting.value)),  # values are untrusted text
                     "built-in" if setting is None else printable(setting.source)))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


def register(cli: click.Group) -> None:
    cli.add_command(config_command)
