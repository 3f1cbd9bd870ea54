"""`gen-eval` commands of the export part (registered by gen_eval.cli).

torch is imported inside the commands, so ``gen-eval`` itself starts without it.
"""

from __future__ import annotations

from pathlib import Path

import click

from gen_eval.commands.extras import TRAIN_EXTRA, needs_extra

# what the exporters import (onnxscript only on the fallback exporter's path, torch says so itself)
EXPORT_MODULES = ("torch", "torchvision", "onnx")

_verify_option = click.option("--verify/--no-verify", default=True, show_default=True,
                              help="Compare onnxruntime (CPU) with PyTorch at batch 1 and 8; fail above tolerance.")
_force_option = click.option("--force", is_flag=True, help="Overwrite existing output files.")
_out_option = click.option("--out", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path),
                           help="Output .onnx file.")
_fp16_option = click.option("--fp16", is_flag=True,
                            help="Store weights and compute in float16; inputs and outputs stay float32.")
_existing_file = click.Path(dir_okay=False, path_type=Path)


def _report(results) -> None:
    for result in results:
        click.echo(result.describe())


@click.command("export")
@click.argument("checkpoint", type=_existing_file)
@_out_option
@_verify_option
@_fp16_option
@_force_option
@click.option("--set", "config_overrides", multiple=True, metavar="KEY=VALUE",
              help="A setting chosen at export, for families that have them: a diffusion model's sampler "
                   "(sample_steps=30, guidance=3, sample_shift=1); repeatable.")
def export_command(checkpoint: Path, out: Path, verify: bool, fp16: bool, force: bool,
                   config_overrides: tuple[str, ...]) -> None:
    """Export a gen-eval CHECKPOINT (from 'gen-eval train') to ONNX.

    The generator goes to --out; a VAE's encoder to <out stem>.encoder.onnx. A diffusion model's
    generator holds its whole sampler, with the steps and guidance scale of its training settings
    unless --set chooses others.

    \b
    Examples:
      gen-eval export runs/acgan/checkpoints/last.pt --out acgan.onnx
      gen-eval export runs/diffusion/checkpoints/last.pt --out diffusion.onnx --set sample_steps=30 --set guidance=3
    """
    from gen_eval.commands.train import parse_set_options
    from gen_eval.exporter import export_checkpoint
    from gen_eval.fileio import check_outputs

    check_outputs([("--out", out)], [("CHECKPOINT", checkpoint)], force)
    _report(export_checkpoint(checkpoint, out, verify=verify, fp16=fp16, force=force,
                              settings=parse_set_options(config_overrides)))


@click.command("export-classifier")
@click.argument("checkpoint", type=_existing_file)
@_out_option
@click.option("--objects", type=_existing_file,
              help="objects.json with the label names (needed when the checkpoint does not record them, e.g. the iCLEVR reference one).")
@click.option("--features", is_flag=True, help="Export the 512-d penultimate layer as a 'features' model instead.")
@_verify_option
@_fp16_option
@_force_option
def export_classifier_command(checkpoint: Path, out: Path, objects: Path | None, features: bool, verify: bool,
                              fp16: bool, force: bool) -> None:
    """Export the iCLEVR ResNet18 judge: the reference {'model': state_dict} CHECKPOINT or a gen-eval classifier's.

    \b
    Examples:
      gen-eval export-classifier classifier_ta.pth --objects objects.json --out judge.onnx
      gen-eval export-classifier classifier_ta.pth --objects objects.json --features --out judge.features.onnx
    """
    from gen_eval.data.conditions import read_objects
    from gen_eval.exporter import export_ta_classifier
    from gen_eval.fileio import check_outputs

    check_outputs([("--out", out)], [("CHECKPOINT", checkpoint), ("--objects", objects)], force)
    label_space = read_objects(objects) if objects else None
    _report([export_ta_classifier(checkpoint, out, label_space=label_space, features=features, verify=verify,
                                  fp16=fp16, force=force)])


@click.command("export-inception")
@click.argument("weights", type=_existing_file)
@_out_option
@_verify_option
@_force_option
@click.option("--preprocessing", type=click.Choice(["pytorch-fid", "torch-fidelity"]), default="pytorch-fid",
              show_default=True, help="Input handling built into the graph: pytorch-fid's (its FID) or "
                                      "torch-fidelity's (TF1 resize, (x-128)/128: its FID, KID and IS).")
def export_inception_command(weights: Path, out: Path, verify: bool, force: bool, preprocessing: str) -> None:
    """Export pytorch-fid's FID Inception-v3 (WEIGHTS: pt_inception-2015-12-05-6726825d.pth) as a features model.

    The model takes float32 images [B,3,H,W] in [0,1] of any size, resizes them to 299 inside and
    returns pool3 features [B,2048], as pytorch-fid does, and the 1008 logits torch-fidelity's
    Inception Score uses (pool3 x fc.weight, no bias), from the same pass.

    \b
    Examples:
      gen-eval export-inception pt_inception-2015-12-05-6726825d.pth --out inception.onnx
      gen-eval export-inception pt_inception-2015-12-05-6726825d.pth --out tf-inception.onnx --preprocessing torch-fidelity
    """
    from gen_eval.exporter import export_inception
    from gen_eval.fileio import check_outputs

    check_outputs([("--out", out)], [("WEIGHTS", weights)], force)
    _report([export_inception(weights, out, verify=verify, force=force, preprocessing=preprocessing)])


@click.command("fetch-inception")
@_out_option
@click.option("--url", default=None, help="Mirror to download from (the file must still have the published SHA-256).")
@_force_option
def fetch_inception_command(out: Path, url: str | None, force: bool) -> None:
    """Download pytorch-fid's Inception weights (SHA-256 checked) to --out; the only command that downloads.

    \b
    Example:
      gen-eval fetch-inception --out pt_inception-2015-12-05-6726825d.pth
    """
    from gen_eval.exporter.fid_weights import FID_WEIGHTS_URL, fetch_inception

    path = fetch_inception(out, url=url or FID_WEIGHTS_URL, force=force)
    click.echo(f"wrote {path} (SHA-256 verified); next: gen-eval export-inception {path} --out inception.onnx")


def register(cli: click.Group) -> None:
    """Add this part's commands to the root group."""
    for command in (export_command, export_classifier_command, export_inception_command):
        cli.add_command(needs_extra(command, TRAIN_EXTRA, EXPORT_MODULES))
    cli.add_command(fetch_inception_command)
