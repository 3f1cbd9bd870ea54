"""`gen-eval selftest`: the conformance suite on this machine (onnxruntime only, no torch)."""

from __future__ import annotations

import click

from gen_eval.errors import GateFailed


@click.command("selftest")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--threads", type=int, default=None, help="CPU threads for onnxruntime [default: the usable CPUs].")
@click.option("--batch-size", type=int, default=None, help="Images per model run [default: 64 on CPU, 256 on CUDA].")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the checks as JSON here.")
@click.option("--force", is_flag=True, help="Overwrite an existing --report file.")
def selftest_command(device: str, threads: int | None, batch_size: int | None, report_path: str | None,
                     force: bool) -> None:
    """Check this machine's numbers against float64 golden values shipped with gen-eval.

    Five small seeded models run through the evaluator (sampling noise, generated images, classifier
    probabilities and score, features, Fréchet distances, VAE encoding and MSE); each result is
    compared with a value torch computed in float64. Exits 1 if any check misses its tolerance.

    \b
    Examples:
      gen-eval selftest                    # CUDA when it works, else CPU
      gen-eval selftest --device cuda:1 --report selftest.json
    """
    from gen_eval.conformance import selftest
    from gen_eval.fileio import atomic_write_json, ensure_can_write

    if report_path is not None:
        ensure_can_write(report_path, force)  # before the run, not after it
    report = selftest(device, threads=threads, batch_size=batch_size)
    click.echo(f"runtime: {report.runtime}", err=True)
    click.echo(report.table())
    if report_path is not None:
        atomic_write_json(report_path, report.to_dict(), force=force)
        click.echo(f"report: {report_path}")
    failed = [c.name for c in report.checks if not c.passed]
    if failed:
        raise GateFailed(f"selftest failed on {report.provider}: {', '.join(failed)} outside tolerance; "
                         "this machine's numbers differ from the float64 reference")
    click.echo(f"selftest passed: {len(report.checks)} checks on {report.provider}")


def register(cli: click.Group) -> None:
    cli.add_command(selftest_command)
