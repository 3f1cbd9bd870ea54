"""`gen-eval fid` and `gen-eval stats [compute|merge]`: Fréchet distances and the statistics behind them.

Torch-free, like every evaluator command: options -> one library call (gen_eval.api.fid) -> print.
"""

from __future__ import annotations

from pathlib import Path

import click

from gen_eval.api.inputs import check_outputs
from gen_eval.commands.options import (
    SHARD,
    chunk_option,
    echo_error,
    finish,
    force_option,
    gate_options,
    ray_option,
    report_option,
    runtime_options,
    source_options,
)
from gen_eval.errors import UserError


@click.command("fid")
@click.argument("paths", nargs=-1, type=click.Path(), metavar="[GENERATED REF]")
@click.option("--features", "features_path", default=None, type=click.Path(dir_okay=False),
              help="Features .onnx, or a cached extractor's name (see `gen-eval weights list`) "
                   "[default: inception, pytorch-fid's; not needed between two statistics files].")
@click.option("--gen-stats", default=None, type=click.Path(dir_okay=False),
              help="Generated side as a statistics .npz (e.g. merged shards of `gen-eval stats --shard`).")
@click.option("--ref", default=None, type=click.Path(),
              help="Reference: statistics .npz (ours or pytorch-fid's) or an image folder / data set.")
@click.option("--ref-split", default="train", show_default=True, help="Split of --ref when it is a data set.")
@source_options
@click.option("--max-fid", type=float, default=None, help="Exit 1 when the distance is (confidently) above this.")
@gate_options
@report_option
@click.option("--save-stats", type=click.Path(dir_okay=False), default=None,
              help="Also write the statistics of the generated / --data images (.npz).")
@force_option("Overwrite --report / --save-stats files.")
@click.option("--allow-other-features", is_flag=True,
              help="Compute a distance even when --ref statistics record another features model or preprocessing.")
@click.option("--no-cache", is_flag=True,
              help="Compute the statistics of reference images afresh and keep none (they are cached by default, "
                   "keyed by the features model and the files' content; `gen-eval stats clear-cache` empties it).")
@chunk_option
@ray_option
@runtime_options
def fid_command(paths, features_path, gen_stats, ref, ref_split, data, split, model, n, seed, conditions, latent_dim,
                value_range, objects, max_fid, confidence, strict, summary_path, report_path, save_stats, force,
                allow_other_features, no_cache, chunk_size, ray_address, device, batch_size, threads):
    """Fréchet distance of generated images (or --data) to reference statistics or images.

    The interval is a jackknife over 10 blocks of the generated images (their sampling noise).

    \b
    Examples:
      gen-eval fid --features inception.onnx --model acgan.onnx --conditions test.json --n 10000 --ref train.npz
      gen-eval fid samples/ real/                                  # pytorch-fid's habit: two folders, its Inception
      gen-eval fid --gen-stats merged.npz --ref train.npz         # two statistics files, no features model
      gen-eval fid merged.npz train.npz                            # the same, positionally
    """
    from gen_eval.api.fid import fid

    if paths:
        if len(paths) != 2 or data is not None or ref is not None:
            raise UserError("give two positional paths (GENERATED REF) or --data/--model with --ref, not both")
        data, ref = paths
        if Path(data).suffix.lower() == ".npz" and Path(ref).suffix.lower() == ".npz" and gen_stats is None:
            from gen_eval.evaluator.stats import is_stats_file

            if is_stats_file(data):
                data, gen_stats = None, data
    if ref is None:
        raise UserError("give the reference with --ref (statistics .npz or images)")
    check_outputs(force, {"--report": None if report_path == "-" else report_path, "--save-stats": save_stats},
                   {"--features": features_path, "--ref": ref, "--data": data, "--model": model,
                    "--conditions": conditions, "--objects": objects, "--summary": summary_path,
                    "--gen-stats": gen_stats})
    from gen_eval.api.sources import ImageSource, Runtime, generated_side

    images = None if gen_stats is not None and data is None and model is None else generated_side(
        data, split, model, n, seed, conditions, objects, latent_dim, value_range)
    report = fid(ImageSource(ref, ref_split), images, features=features_path, gen_stats=gen_stats,
                 chunk_size=chunk_size, ray_address=ray_address, allow_other_features=allow_other_features,
                 confidence=confidence or 0.95, runtime=Runtime(device, batch_size, threads), progress=True,
                 cache=not no_cache)
    if save_stats is not None:
        if gen_stats is not None:
            raise UserError("--save-stats saves computed statistics; --gen-stats already is a statistics file")
        report.stats.save(save_stats, force=force)
        echo_error(f"statistics: {save_stats}")
    finish(report, report_path=report_path, force=force, gate_flag="--max-fid", threshold=max_fid, confidence=confidence,
           strict=strict,
           summary_path=summary_path)


class _StatsGroup(click.Group):
    """``gen-eval stats ...`` runs ``stats compute ...`` unless the first word is a subcommand."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["compute", *args]
        elif not args:
            args = ["compute"]
        return super().parse_args(ctx, args)


@click.group("stats", cls=_StatsGroup)
def stats_group():
    """Reference statistics for FID: `gen-eval stats [compute] ...` writes them, `gen-eval stats merge` combines shards."""


@stats_group.command("compute")
@click.option("--features", "features_path", required=True, type=click.Path(dir_okay=False),
              help="Features .onnx, or a cached extractor's name such as inception (`gen-eval weights list`).")
@source_options
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Statistics file (.npz).")
@click.option("--shard", type=SHARD, default=None,
              help="Only part k of N of the images (whole chunks): k/N; combine with "
                   "`stats merge`, which gives the unsharded statistics bit for bit.")
@chunk_option
@click.option("--jackknife-blocks", type=int, default=None,
              help="Block sums kept for FID's interval [default: 10 with --model, none with --data].")
@click.option("--save-features", is_flag=True,
              help="Also keep the features (OUT-stem.features.npy) for `gen-eval metrics --gen-stats` / --ref.")
@force_option("Overwrite --out.")
@ray_option
@runtime_options
def stats_compute(features_path, data, split, model, n, seed, conditions, latent_dim, value_range, objects, out,
                  shard, chunk_size, jackknife_blocks, save_features, force, ray_address, device, batch_size,
                  threads):
    """Write feature statistics (mu, sigma, n, sum, sum_outer) of a folder / data set or of generated images.

    A killed run continues where it stopped when run again (its sums are checkpointed every minute to
    .OUT-stem.partial.npz beside OUT); `stats merge` of the N shards is the unsharded result bit for bit.

    \b
    Examples:
      gen-eval stats --features inception.onnx --data shapes --out shapes-stats.npz
      gen-eval stats --features inception.onnx --model g.onnx --n 50000 --shard 1/4 --out part1.npz
    """
    from gen_eval.api.fid import statistics
    from gen_eval.evaluator.features import warn_small

    _require_npz(out)
    from gen_eval.scale.feature_files import features_path as kept_features_path

    features_out = kept_features_path(out) if save_features else None
    check_outputs(force, {"--out": out, "--save-features": features_out},
                  {"--features": features_path, "--data": data, "--model": model, "--conditions": conditions,
                   "--objects": objects})
    checkpoint = Path(out).with_name(f".{Path(out).stem}.partial.npz")  # hidden: not in `part-*.npz`
    if force:
        checkpoint.unlink(missing_ok=True)
    from gen_eval.api.sources import Runtime, generated_side

    stats = statistics(generated_side(data, split, model, n, seed, conditions, objects, latent_dim, value_range),
                       features=features_path, shard=shard, chunk_size=chunk_size,
                       jackknife_blocks=jackknife_blocks, ray_address=ray_address, checkpoint=checkpoint,
                       features_out=features_out, runtime=Runtime(device, batch_size, threads), progress=True)
    if shard is None:  # a whole set needs 2+ images; a shard may hold 1 (its sums still merge)
        stats.require_covariance(stats.description)
        warn_small(stats, stats.description)
    stats.save(out, force=force)
    checkpoint.unlink(missing_ok=True)
    part = f", shard {shard[0]}/{shard[1]}" if shard else ""
    click.echo(f"wrote statistics of {stats.n} images ({stats.dim}-d features{part}) to {out}")


@stats_group.command("clear-cache")
def stats_clear_cache():
    """Delete the reference statistics and features `gen-eval fid` and `gen-eval metrics` cached (the named
    feature models stay)."""
    from gen_eval.evaluator.statscache import clear_cached

    removed = clear_cached()
    click.echo(f"removed {len(removed)} cached statistics/features file{'s' if len(removed) != 1 else ''}")


@stats_group.command("merge")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Combined statistics file (.npz).")
@force_option("Overwrite --out.")
def stats_merge(inputs, out, force):
    """Combine shard statistics exactly (sums of n, sum, sum_outer).

    \b
    Example:
      gen-eval stats merge part1.npz part2.npz part3.npz part4.npz --out generated.npz
    """
    from gen_eval.api.fid import merge_statistics
    from gen_eval.evaluator.features import warn_small

    _require_npz(out)
    check_outputs(force, {"--out": out}, {f"merged (argument {i + 1})": path for i, path in enumerate(inputs)})
    merged = merge_statistics(list(inputs))
    merged.require_covariance("the merged files")
    warn_small(merged, "the merged set")
    merged.save(out, force=force)
    click.echo(f"merged {len(inputs)} files: statistics of {merged.n} images to {out}")


def _require_npz(out: str) -> None:
    if Path(out).suffix != ".npz":
        raise UserError(f"--out {out}: statistics files end in .npz")


def register(cli: click.Group) -> None:
    """Add fid and stats to the root group."""
    cli.add_command(fid_command)
    cli.add_command(stats_group)
