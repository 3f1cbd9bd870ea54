"""What the evaluating commands share: option groups, the ``k/N`` shard type, and how a report and its
gate are printed."""

from __future__ import annotations

import json
import re

import click

from gen_eval.errors import GateMissed, UserError, param
from gen_eval.evaluator.exact import DEFAULT_CHUNK_SIZE
from gen_eval.fileio import append_text, atomic_write_json


def echo_error(message: str) -> None:
    """A line on stderr (warnings and where side outputs went; stdout keeps the table and the verdict)."""
    click.echo(message, err=True)


# -- option groups ------------------------------------------------------------------------------
def device_option(func):
    """--device: where onnxruntime runs."""
    return click.option("--device", default="auto", show_default=True,
                        help="auto (CUDA when it really works, else CPU), cpu, cuda or cuda:N.")(func)


def runtime_options(func):
    """--device, --batch-size, --threads."""
    func = click.option("--threads", type=int, default=None,
                        help="CPU threads for onnxruntime [default: the CPUs this process may use].")(func)
    func = click.option("--batch-size", type=int, default=None,
                        help="Images per model run; the last batch runs at its own size unless the graph fixes "
                             "the batch size [default: 64 on CPU, 256 on CUDA].")(func)
    return device_option(func)


def generator_options(func):
    """What a generator without gen-eval metadata needs: --latent-dim, --value-range, --objects."""
    func = click.option("--objects", "objects", type=click.Path(dir_okay=False), default=None,
                        help="Label names: iCLEVR objects.json, or a label-space JSON ({\"kind\": ...}).")(func)
    func = click.option("--value-range", default=None,
                        help="Generator output range 'LOW,HIGH' (e.g. -1,1) if the model has no metadata.")(func)
    func = click.option("--latent-dim", type=int, default=None,
                        help="Length of z if the model has no metadata and a dynamic z.")(func)
    return func


def source_options(func):
    """The images to evaluate: --data (and its --split), or --model with --n, --seed, --conditions and the
    generator options."""
    for option in reversed([
        click.option("--data", type=click.Path(), default=None,
                     help="Images: a folder, a data set (iCLEVR layout, CelebA, Cartoon Set, MNIST) or a sample .npz."),
        click.option("--split", default="train", show_default=True, help="Split of --data when it is a data set."),
        click.option("--model", type=click.Path(dir_okay=False), default=None, help="Or a generator .onnx to sample from."),
        click.option("--n", "n", type=int, default=None, help="Images to generate from --model."),
        click.option("--seed", type=int, default=0, show_default=True, help="Noise seed for --model."),
        click.option("--conditions", type=click.Path(dir_okay=False), default=None,
                     help="Condition file for a conditional --model (cycled to --n)."),
    ]):
        func = option(func)
    return generator_options(func)


def gate_options(func):
    """--confidence, --strict, --summary: how a gate decides and where its Markdown summary goes."""
    func = click.option("--summary", "summary_path", type=click.Path(dir_okay=False), default=None,
                        help="Append a Markdown summary here (e.g. $GITHUB_STEP_SUMMARY).")(func)
    func = click.option("--strict", is_flag=True,
                        help="With --confidence: pass only when confidently on the right side of the threshold.")(func)
    func = click.option("--confidence", type=float, default=None,
                        help="Gate on the interval at this confidence: fail only when confidently on the wrong "
                             "side [default: gate on the value; the interval is reported at 0.95].")(func)
    return func


def report_option(func):
    """--report PATH: the JSON report ('-' prints it)."""
    return click.option("--report", "report_path", type=click.Path(dir_okay=False), default=None,
                        help="Write a JSON report here ('-' for stdout).")(func)


def force_option(help: str):
    """--force: what it may overwrite (``help``); without it an existing output is an error."""
    return click.option("--force", is_flag=True, help=help)


def ray_option(func):
    """``--ray`` (a local Ray, started or joined) or ``--ray ADDRESS`` (a cluster)."""
    return click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None, metavar="[ADDRESS]",
                        help="Compute on Ray actors (pip install 'gen-eval[ray]'): alone, a local Ray (started or "
                             "joined); with ADDRESS, that cluster (e.g. ray://head:10001 or auto). Same result "
                             "bit for bit. A bare --ray takes a following word as its address: put it last or "
                             "before another option.")(func)


def chunk_option(func):
    return click.option("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE, show_default=True,
                        help="Images per chunk: shards are whole chunks; the same for every shard of a run.")(func)


class ShardType(click.ParamType):
    """``k/N`` (1 <= k <= N) -> (k, N): part k of a run split N ways."""

    name = "text"  # the metavar --shard has always shown

    def convert(self, value, param_, ctx):
        if value is None or isinstance(value, tuple):
            return value
        match = re.fullmatch(r"\s*([0-9]+)\s*/\s*([0-9]+)\s*", str(value), re.ASCII)  # int() reads any script's digits
        if not match or not 1 <= int(match[1]) <= int(match[2]):
            # a UserError, not self.fail: the CLI prints it as the one line it has always been
            raise UserError(f"{param('shard')} must be k/N with 1 <= k <= N (e.g. 2/8), got {value!r}")
        return int(match[1]), int(match[2])


SHARD = ShardType()


# -- after the job: the table, the report files and the gate ---------------------------------------------
def require_confidence_for_strict(strict: bool, confidence: float | None) -> None:
    if strict and confidence is None:
        raise UserError("--strict decides on the interval: give --confidence too (e.g. --confidence 0.95)")


def finish(report, *, report_path=None, force=False, gate_flag=None, threshold=None, confidence=None, strict=False,
           summary_path=None, extra_table: str = "") -> None:
    """Print the table, write the JSON report and summary, then enforce the gate (GateMissed -> exit 1)."""
    require_confidence_for_strict(strict, confidence)
    click.echo(report.table())
    if extra_table:
        click.echo(extra_table)
    for warning in report.warnings:
        echo_error(f"warning: {warning}")
    decision = None
    if threshold is not None:
        decision = report.gate(threshold, strict=strict, use_interval=confidence is not None)
    data = report.to_dict()
    if decision is not None:
        data["gate"] = {"flag": gate_flag, "threshold": threshold, "confidence": confidence, "strict": strict,
                        "passed": decision.passed, "rule": decision.rule,
                        "verdict": report.verdict(decision, gate_flag, threshold)}
    if report_path is not None:
        if str(report_path) == "-":
            click.echo(json.dumps(data, indent=2))
        else:
            atomic_write_json(report_path, data, force=force)
            click.echo(f"report: {report_path}")
    if summary_path is not None:
        append_text("--summary", summary_path, report.markdown(decision))  # appended to, as CI summaries are
    if decision is not None:
        message = report.verdict(decision, gate_flag, threshold)
        if confidence is None and report.straddles(threshold):
            echo_error(f"warning: the {report.interval.confidence:.0%} interval [{report.interval.low:.4g}, "
                       f"{report.interval.high:.4g}] contains {gate_flag} {threshold:g}: this verdict can flip with "
                       "the noise seed; gate with --confidence 0.95 to decide on the interval")
        if not decision.passed:
            raise GateMissed(message)
        click.echo(message)
