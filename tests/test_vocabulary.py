"""One vocabulary (issue 25): every --help shows defaults one way, every --device defaults to auto, every
command that generates takes --n, and metric names read the same in help, errors and reports."""

from __future__ import annotations

import re

import click
import pytest
from click.testing import CliRunner

from gen_eval.cli import cli


def options():
    def walk(command, path):
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                yield from walk(sub, [*path, name])
        else:
            for param in command.params:
                if isinstance(param, click.Option):
                    yield " ".join(path), param
    yield from walk(cli, [])


def test_defaults_are_shown_one_way_in_every_help():
    for where, option in options():
        assert not re.search(r"\(default\b", option.help or ""), f"{where} {option.opts}: {option.help}"


def test_device_defaults_to_auto_everywhere():
    devices = [(where, option.default) for where, option in options() if "--device" in option.opts]
    assert len(devices) > 5 and {default for _, default in devices} == {"auto"}, devices


def test_batching_help_agrees_with_the_runner():
    """The last batch is padded only when the graph fixes its batch size (gen_eval.evaluator.batches)."""
    helps = {option.help for where, option in options() if "--batch-size" in option.opts and where != "train"}
    assert not any("last batch is padded" in text for text in helps), helps


@pytest.mark.parametrize("name", ["fid-inf", "per-condition-fd"])
def test_metric_names_read_the_same_in_help_and_errors(name):
    from gen_eval.evaluator.metrics import canonical_name, list_metrics

    metrics_help = next(option.help for where, option in options() if where == "metrics" and "--metrics" in option.opts)
    assert name in metrics_help and name in list_metrics() and canonical_name(name.replace("-", "_")) == name
    result = CliRunner().invoke(cli, ["metrics", "--data", "x", "--ref", "y", "--metrics", "nonsense"])
    assert result.exit_code == 2 and name in result.stderr and name.replace("-", "_") not in result.stderr


def test_every_command_that_generates_takes_n():
    """Issue 25: `score` had no --n while sample/fid/stats/metrics did; every command with --model of a
    generator and a condition file now takes --n, with the same meaning (rows cycled to N)."""
    generating = {where for where, option in options() if "--model" in option.opts} - {"mse", "compare"}
    with_n = {where for where, option in options() if "--n" in option.opts}
    assert {"score", "sample", "fid", "metrics"} <= generating and generating <= with_n, generating - with_n
