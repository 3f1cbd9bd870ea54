"""`gen-eval data ...`: write the shapes data set, check a data set's files."""

from __future__ import annotations

import time

import click

from gen_eval.errors import UserError


@click.group("data")
def data_group() -> None:
    """Data sets: generate the shapes set, validate your own files."""


@data_group.command("shapes")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder to create.")
@click.option("--train", "n_train", default=6000, show_default=True, type=click.IntRange(min=1), help="Training images.")
@click.option("--heldout", "n_heldout", default=1000, show_default=True, type=click.IntRange(min=0),
              help="Held-out labelled images (for the classifier).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Same seed, same bytes.")
@click.option("--force", is_flag=True, help="Replace an existing data set folder.")
def shapes_command(out_dir: str, n_train: int, n_heldout: int, seed: int, force: bool) -> None:
    """Write the procedural 64x64 shapes data set (iCLEVR layout, 24 object names).

    \b
    Example:
      gen-eval data shapes --out shapes
    """
    from gen_eval.data.shapes import write_shapes

    start = time.perf_counter()
    out = write_shapes(out_dir, n_train=n_train, n_heldout=n_heldout, seed=seed, force=force, progress=True)
    click.echo(
        f"wrote {n_train} train + {n_heldout} held-out images, objects.json, test.json, new_test.json "
        f"to {out} in {time.perf_counter() - start:.1f} s"
    )


@data_group.command("check")
@click.argument("path", type=click.Path())
@click.option("--split", default="train", show_default=True, help="Which split to open (iCLEVR/DLCV/MNIST).")
@click.option("--format", "fmt", type=click.Choice(["iclevr", "cartoon", "celeba", "mnist", "folder"]),
              help="Skip auto-detection.")
@click.option("--attribute", help="CelebA: keep one binary attribute, e.g. Smiling.")
@click.option("--full", is_flag=True, help="Decode every image (slower), not just the first.")
def check_command(path: str, split: str, fmt: str | None, attribute: str | None, full: bool) -> None:
    """Open a data set and print what was found (format, count, label space, image shape).

    \b
    Examples:
      gen-eval data check shapes --split heldout
      gen-eval data check data/mnist --full
    """
    from gen_eval.data.datasets import open_dataset

    kw = {"attribute": attribute} if attribute else {}
    if attribute and fmt not in (None, "celeba"):
        raise UserError("--attribute applies to CelebA data sets only")
    dataset = open_dataset(path, split=split, fmt=fmt, **kw)
    if len(dataset) == 0:
        raise UserError(f"{dataset.source}: holds no images")
    click.echo(dataset.describe())
    if full:
        from tqdm import tqdm

        for i in tqdm(range(len(dataset)), desc="decoding", unit="img", leave=True, disable=None):
            dataset.image(i)
        click.echo(f"decoded all {len(dataset)} images: ok")


def register(cli: click.Group) -> None:
    """Add this part's commands to the root group."""
    cli.add_command(data_group)
