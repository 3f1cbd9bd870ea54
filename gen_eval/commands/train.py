"""`gen-eval` commands of the train part (registered by gen_eval.cli). torch is imported inside the command."""

from __future__ import annotations

import click

from gen_eval.commands.extras import TRAIN_EXTRA, first_missing, install_line, needs_extra
from gen_eval.errors import UserError

TRAIN_MODULES = ("torch", "torchvision", "matplotlib")

EXAMPLES = """\b
Examples:
  gen-eval data shapes --out shapes
  gen-eval train classifier --data shapes --out runs/judge --epochs 4
  gen-eval train dcgan --help       (the family's --set keys, defaults and ranges)
  gen-eval train --preset NAME --data DIR --out runs/x   (a named recipe; --set/--epochs override it)
"""


def parse_set_options(items: tuple[str, ...]) -> dict[str, str]:
    """``("lr_g=1e-4", "data.attribute=Smiling")`` -> ``{"lr_g": "1e-4", "data.attribute": "Smiling"}``."""
    settings: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set {item!r} is not KEY=VALUE; write it like --set lr_g=1e-4")
        settings[key.strip()] = value.strip()
    return settings


class _TrainCommand(click.Command):
    """``train --help`` lists the families; ``train FAMILY --help`` adds that family's settings."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        from gen_eval.trainers import family_names

        ctx.meta["train.family"] = next((a for a in args if a in family_names()), None)
        return super().parse_args(ctx, args)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from gen_eval.trainers import family_names, get_family

        name = ctx.meta.get("train.family")
        missing = first_missing(TRAIN_MODULES)
        if name is not None and missing is not None:
            formatter.write_paragraph()
            formatter.write_text(f"{name}'s settings are listed here once the {TRAIN_EXTRA} extra is installed "
                                 f"({missing} is not): {install_line(TRAIN_EXTRA)}")
        elif name is None:
            rows = []
            for family in family_names():
                if missing is not None:
                    rows.append((family, f"(needs the {TRAIN_EXTRA} extra)"))
                    continue
                try:
                    cls = get_family(family)
                except Exception as exc:  # noqa: BLE001 - a broken family must not break --help
                    rows.append((family, f"(cannot be loaded: {exc})"))
                    continue
                summary = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
                rows.append((family, f"{summary} Default {cls.default_epochs} epochs, batch {cls.default_batch_size}."))
            with formatter.section("Families (gen-eval train FAMILY --help shows its --set keys)"):
                formatter.write_dl(rows)
            _format_presets(formatter)
        else:
            _format_family(get_family(name), formatter)
        super().format_epilog(ctx, formatter)


def _format_presets(formatter: click.HelpFormatter) -> None:
    from gen_eval.trainers.presets import PRESETS

    if not PRESETS:
        return
    rows = []
    for preset in sorted(PRESETS.values(), key=lambda p: p.name):
        length = f"{preset.epochs} epochs" if preset.epochs else f"{preset.steps} steps" if preset.steps else ""
        rows.append((preset.name, f"{preset.family}: {preset.summary}" + (f" ({length})" if length else "")))
    with formatter.section("Presets (gen-eval train --preset NAME; --set, --epochs, --batch-size override them)"):
        formatter.write_dl(rows)


def _format_family(cls, formatter: click.HelpFormatter) -> None:
    from gen_eval.trainers.config import DATA_OPTIONS, describe_config

    summary = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
    formatter.write_paragraph()
    formatter.write_text(f"{cls.name}: {summary} Default {cls.default_epochs} epochs, batch {cls.default_batch_size}"
                         + (f"; {cls.cpu_hint}." if cls.cpu_hint else "."))
    rows = describe_config(cls.Config)
    with formatter.section(f"{cls.name} settings (--set KEY=VALUE; shown with their defaults)"):
        formatter.write_dl(rows)
    with formatter.section("Data options (--set data.KEY=VALUE)"):
        formatter.write_dl([(f"data.{key}={str(value).lower() if isinstance(value, bool) else value}", "")
                            for key, value in DATA_OPTIONS.items()]
                           + [("data.OTHER=VALUE", "passed to the data reader, e.g. data.attribute=Smiling (CelebA)")])


def register(cli: click.Group) -> None:
    """Add this part's commands to the root group."""

    @cli.command("train", cls=_TrainCommand, epilog=EXAMPLES)
    @click.argument("family", required=False)
    @click.option("--preset", help="A named recipe (family, settings, length, batch size); listed below.")
    @click.option("--data", "data_dir", type=click.Path(path_type=str), help="Data set folder or label file (required).")
    @click.option("--out", "out_dir", type=click.Path(path_type=str), help="Run folder for checkpoints and logs (required).")
    @click.option("--epochs", type=int, help="Train this many epochs [default: the family's, listed below].")
    @click.option("--steps", type=int, help="Train this many steps instead of --epochs.")
    @click.option("--batch-size", type=int, help="Images per step [default: the family's].")
    @click.option("--device", default="auto", show_default=True,
                  help="auto, cpu, cuda or cuda:N (auto: the GPU when torch sees one); train prints its choice.")
    @click.option("--seed", type=int, help="Seed for weights, noise and data order, 0 to 2^63-1 [default: 0].")
    @click.option("--resume", is_flag=True, help="Continue the run in --out from checkpoints/last.pt.")
    @click.option("--set", "config_overrides", multiple=True, metavar="KEY=VALUE",
                  help="Family setting (e.g. lr_g=1e-4, generator=srgan) or data option (data.attribute=Smiling, "
                       "data.resize=true); repeatable. 'gen-eval train FAMILY --help' lists them.")
    @click.option("--checkpoint-every", type=int, default=500, show_default=True, help="Steps between checkpoints.")
    @click.option("--keep-checkpoints", is_flag=True, help="Also keep checkpoints/step_NNNNNN.pt at each checkpoint.")
    @click.option("--amp", is_flag=True, help="Mixed precision (bfloat16 autocast) on CUDA.")
    @click.option("--workers", type=int, default=2, show_default=True,
                  help="Data-loader processes for data sets too large to hold in memory.")
    @click.option("--threads", type=int, help="CPU threads for torch [default: the CPUs this process may use].")
    @click.option("--latent-plot", type=click.Choice(["pca", "tsne"]), default="pca", show_default=True,
                  help="VAE families: project latent means to 2-D by PCA or t-SNE (scikit-learn) each epoch.")
    @click.option("--colour-by", metavar="LABEL",
                  help="VAE families: colour the latent plot by this label or categorical head of the data "
                       "[default: the first label], e.g. Male with --set data.attribute=Male.")
    @click.option("--no-progress", is_flag=True, help="No progress bar.")
    @click.option("--force", is_flag=True, help="Start over in a non-empty --out, replacing an earlier run's files.")
    def train_command(family: str | None, preset: str | None, data_dir: str | None, out_dir: str | None, epochs: int | None, steps: int | None,
                      batch_size: int | None, device: str, seed: int | None, resume: bool, config_overrides: tuple[str, ...],
                      checkpoint_every: int, keep_checkpoints: bool, amp: bool, workers: int, threads: int | None,
                      latent_plot: str, colour_by: str | None, no_progress: bool, force: bool) -> None:
        """Train a model FAMILY (acgan, cgan, classifier, dcgan, ...) or a --preset recipe on a data set."""
        from gen_eval.devices import check_threads, default_threads, parse_device, prefer_passive_waits
        from gen_eval.trainers import family_names

        recipe = None
        if preset is not None:
            from gen_eval.trainers.presets import get_preset

            recipe = get_preset(preset)
            if family is not None and family != recipe.family:
                raise UserError(f"--preset {preset} trains {recipe.family}, not {family}; drop FAMILY or the preset")
            family = recipe.family
        if family is None:
            raise UserError("give a model FAMILY or a --preset, e.g. 'gen-eval train dcgan --data DIR --out RUN'; "
                            "'gen-eval train --help' lists both")
        if family not in family_names():
            raise UserError(f"unknown model family {family!r}; choose one of: {', '.join(family_names())}")
        if not data_dir:
            raise UserError("--data is required: give the data set folder (e.g. one from 'gen-eval data shapes --out DIR')")
        if not out_dir:
            raise UserError("--out is required: give a folder for the run's checkpoints and logs")
        if resume and force:
            raise UserError("--resume and --force exclude each other: --resume continues the run, --force starts over")
        from gen_eval.fileio import check_output_folder

        check_output_folder("--out", out_dir, "--data", data_dir)
        overrides = parse_set_options(config_overrides)
        if recipe is not None:
            overrides = recipe.overrides(overrides)
            if epochs is None and steps is None:
                epochs, steps = recipe.epochs, recipe.steps
            batch_size = batch_size if batch_size is not None else recipe.batch_size
        check_threads(threads)
        parse_device(device)
        # torch's OpenMP threads spin while they wait unless told otherwise; the policy is read when
        # torch is imported, so set it first (a policy the user set is kept). benchmarks/RESULTS.md.
        prefer_passive_waits()

        import torch

        from gen_eval.trainers.loop import train

        torch.set_num_threads(threads or default_threads())
        last = train(family, data_dir, out_dir, steps=steps, epochs=epochs, batch_size=batch_size, device=device,
                     seed=seed, resume=resume, config_overrides=overrides, force=force,
                     checkpoint_every=checkpoint_every, keep_checkpoints=keep_checkpoints, amp=amp, workers=workers,
                     progress=not no_progress, latent_projection=latent_plot, colour_by=colour_by)
        click.echo(str(last))

    needs_extra(train_command, TRAIN_EXTRA, TRAIN_MODULES)
