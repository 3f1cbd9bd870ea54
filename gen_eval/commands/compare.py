"""`gen-eval compare`: a paired regression test of a new model's score report against a baseline's."""

from __future__ import annotations

import click

from gen_eval.errors import GateMissed
from gen_eval.evaluator.compare import MUST_MATCH


@click.command("compare")
@click.argument("new", type=click.Path(dir_okay=False))
@click.argument("baseline", type=click.Path(dir_okay=False))
@click.option("--max-drop", type=float, default=0.0, show_default=True,
              help="A regression is a score confidently more than this below the baseline's.")
@click.option("--confidence", type=float, default=0.95, show_default=True, help="Confidence of the interval.")
@click.option("--seeds-only", is_flag=True, help="Resample the shared seeds only (the conditions are the target).")
@click.option("--allow", "allow", multiple=True, type=click.Choice(sorted(MUST_MATCH)),
              help="A provenance field that may differ (e.g. to compare two judges on purpose).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), default=None, help="Write the result as JSON.")
@click.option("--summary", "summary_path", type=click.Path(dir_okay=False), default=None,
              help="Append a Markdown table here (e.g. $GITHUB_STEP_SUMMARY).")
@click.option("--force", is_flag=True, help="Overwrite --report.")
def compare_command(new, baseline, max_drop, confidence, seeds_only, allow, report_path, summary_path, force):
    """Compare NEW.json with BASELINE.json (both from `gen-eval score --report`) image by image.

    Both must come from the same judge, condition file, preprocessing and seeds; the difference is
    tested by a paired bootstrap over the shared seeds and conditions. Exits 1 on a confident regression.

    \b
    Example:
      gen-eval score --model new.onnx --test test.json --repeats 5 --report new.json
      gen-eval compare new.json baseline.json --max-drop 0.02
    """
    from gen_eval.api.compare import compare
    from gen_eval.fileio import append_text, atomic_write_json, check_append_target, check_outputs

    check_outputs([("--report", report_path)], [("NEW", new), ("BASELINE", baseline), ("--summary", summary_path)],
                  force)
    check_append_target("--summary", summary_path, [("NEW", new), ("BASELINE", baseline)])
    result = compare(new, baseline, max_drop=max_drop, confidence=confidence, allow=set(allow),
                     over_conditions=not seeds_only)
    click.echo(f"new       {result.new_value:.4f}\nbaseline  {result.base_value:.4f}\n"
               f"difference {result.difference.describe()}")
    if report_path is not None:
        atomic_write_json(report_path, {"metric": "classifier_score_difference", **result.to_dict()}, force=force)
        click.echo(f"report: {report_path}")
    if summary_path is not None:
        append_text("--summary", summary_path, "### gen-eval compare\n\n" + result.markdown())
    if result.regression:
        raise GateMissed(f"gate missed: {result.message()}")
    click.echo(result.message())


def register(cli: click.Group) -> None:
    cli.add_command(compare_command)
