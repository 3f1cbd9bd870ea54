"""`gen-eval` commands of the train part (registered by gen_eval.cli). torch is imported inside the command."""

from __future__ import annotations

import click

from gen_eval.errors import UserError


def parse_set_options(items: tuple[str, ...]) -> dict[str, str]:
    """``("lr_g=1e-4", "data.attribute=Smiling")`` -> ``{"lr_g": "1e-4", "data.attribute": "Smiling"}``."""
    settings: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set {item!r} is not KEY=VALUE; write it like --set lr_g=1e-4")
        settings[key.strip()] = value.strip()
    return settings


def register(cli: click.Group) -> None:
    """Add this part's commands to the root group."""

    @cli.command("train")
    @click.argument("family")
    @click.option("--data", "data_dir", type=click.Path(path_type=str), help="Data set folder or label file (required).")
    @click.option("--out", "out_dir", type=click.Path(path_type=str), help="Run folder for checkpoints and logs (required).")
    @click.option("--epochs", type=int, help="Train this many epochs (default: the family's).")
    @click.option("--steps", type=int, help="Train this many steps instead of --epochs.")
    @click.option("--batch-size", type=int, help="Images per step (default: the family's).")
    @click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
    @click.option("--seed", type=int, help="Seed for weights, noise and data order (default 0).")
    @click.option("--resume", is_flag=True, help="Continue the run in --out from checkpoints/last.pt.")
    @click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
                  help="Family setting (e.g. lr_g=1e-4, generator=srgan) or data option (data.attribute=Smiling, "
                       "data.resize=true); repeatable.")
    @click.option("--checkpoint-every", type=int, default=500, show_default=True, help="Steps between checkpoints.")
    @click.option("--keep-checkpoints", is_flag=True, help="Also keep checkpoints/step_NNNNNN.pt at each checkpoint.")
    @click.option("--amp", is_flag=True, help="Mixed precision (bfloat16 autocast) on CUDA.")
    @click.option("--workers", type=int, default=2, show_default=True,
                  help="Data-loader processes for data sets too large to hold in memory.")
    @click.option("--threads", type=int, help="CPU threads for torch (default: torch's choice).")
    @click.option("--no-progress", is_flag=True, help="No progress bar.")
    @click.option("--force", is_flag=True, help="Start over in a non-empty --out, replacing an earlier run's files.")
    def train_command(family: str, data_dir: str | None, out_dir: str | None, epochs: int | None, steps: int | None,
                      batch_size: int | None, device: str, seed: int | None, resume: bool, settings: tuple[str, ...],
                      checkpoint_every: int, keep_checkpoints: bool, amp: bool, workers: int, threads: int | None,
                      no_progress: bool, force: bool) -> None:
        """Train a model FAMILY (acgan, cgan, classifier, dcgan, ...) on a data set."""
        from gen_eval.trainers import get_family

        get_family(family)
        if not data_dir:
            raise UserError("--data is required: give the data set folder (e.g. one from 'gen-eval data shapes --out DIR')")
        if not out_dir:
            raise UserError("--out is required: give a folder for the run's checkpoints and logs")
        if resume and force:
            raise UserError("--resume and --force exclude each other: --resume continues the run, --force starts over")
        from gen_eval.evaluator.noise import check_seed
        from gen_eval.fileio import check_output_folder

        if seed is not None:
            check_seed(seed)
        check_output_folder("--out", out_dir, "--data", data_dir)
        overrides = parse_set_options(settings)
        if threads is not None and threads < 1:
            raise UserError(f"--threads must be a positive integer, got {threads}")

        import torch

        from gen_eval.trainers.loop import train

        if threads:
            torch.set_num_threads(threads)
        last = train(family, data_dir, out_dir, steps=steps, epochs=epochs, batch_size=batch_size, device=device,
                     seed=seed, resume=resume, config_overrides=overrides, force=force,
                     checkpoint_every=checkpoint_every, keep_checkpoints=keep_checkpoints, amp=amp, workers=workers,
                     progress=not no_progress)
        click.echo(str(last))
