"""`gen-eval demo`: the whole chain on the shapes data set (registered by gen_eval.cli). torch is imported inside."""

from __future__ import annotations

from pathlib import Path

import click

from gen_eval.commands.extras import TRAIN_EXTRA, needs_extra

DEMO_MODULES = ("torch", "torchvision", "onnx", "matplotlib")


def register(cli: click.Group) -> None:
    """Add the demo command to the root group."""

    @cli.command("demo")
    @click.option("--out", required=True, type=click.Path(path_type=Path),
                  help="Folder for the data, runs, ONNX models, grids and report.json (a rerun finishes it).")
    @click.option("--quick", is_flag=True,
                  help="Toy sizes (under a minute on 2 idle cores); quality targets reported, not enforced.")
    @click.option("--force", is_flag=True, help="Redo every step, replacing the demo's earlier files in --out.")
    @click.option("--device", default="auto", show_default=True,
                  help="auto, cpu, cuda or cuda:N: where torch trains and onnxruntime evaluates.")
    @click.option("--seed", type=int, default=0, show_default=True,
                  help="Seed for data, weights, data order and noise.")
    def demo_command(out: Path, quick: bool, force: bool, device: str, seed: int) -> None:
        """Write the shapes set, train two ResNet18 judges and a conditional diffusion model, export them to
        ONNX, and score.

        Exits 1 when the full recipe misses a judge's accuracy target (>= 0.95 on the held-out split);
        the generator's score by the independent judge (target 0.8 on test.json, mean of 5 seeds) is
        reported against its target, not enforced; --quick only reports them all.

        \b
        Examples:
          gen-eval demo --out demo-out
          gen-eval demo --quick --out /tmp/demo-quick
        """
        from gen_eval.demo import DemoMissed, run_demo
        from gen_eval.demo.report import summary_table
        from gen_eval.fileio import FolderLock

        try:
            # one demo per folder: a second one (with --force too) is refused while this one runs
            with FolderLock(out, "'gen-eval demo'", "out"):
                report = run_demo(out, quick=quick, force=force, device=device, seed=seed)
        except DemoMissed as missed:
            click.echo(summary_table(missed.report))
            raise
        click.echo(summary_table(report))

    needs_extra(demo_command, TRAIN_EXTRA, DEMO_MODULES)
