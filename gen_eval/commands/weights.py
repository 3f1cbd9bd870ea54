"""`gen-eval weights get|list|remove`: named feature extractors in the per-user cache. Torch-free."""

from __future__ import annotations

import click


@click.group("weights")
def weights_group():
    """Feature extractors by name (inception, dinov2-vitl14, clip-vitl14-336): fetched once, SHA-256 checked, converted to ONNX, cached.

    Then `--features NAME` works wherever a features .onnx goes. The cache folder is GEN_EVAL_CACHE
    (or `cache` in the project file), else $XDG_CACHE_HOME/gen-eval, else ~/.cache/gen-eval.
    """


@weights_group.command("get")
@click.argument("name")
@click.option("--from", "source", default=None, metavar="PATH_OR_URL",
              help="The weights file you already have, or a mirror's URL, instead of the published address.")
@click.option("--sha256", default=None, metavar="HEX",
              help="The hash of a file that is not the published one (fine-tuned, random weights); it is cached "
                   "as NAME-<hash>.onnx and never under NAME.")
@click.option("--force", is_flag=True, help="Fetch and convert again even when it is cached.")
def weights_get(name, source, sha256, force):
    """Download NAME's weights file as its authors publish it, check its SHA-256, convert it to ONNX, cache it.

    \b
    Examples:
      gen-eval weights get inception
      gen-eval weights get inception --from ~/Downloads/pt_inception-2015-12-05-6726825d.pth
      gen-eval weights get inception --from my-finetuned.pth --sha256 <its sha256sum>
    """
    from gen_eval.weights.named import get_weights

    click.echo(get_weights(name, source=source, sha256=sha256, force=force, progress=True).describe())


@weights_group.command("list")
def weights_list():
    """Each named extractor: where its file comes from, its SHA-256 and size, and whether it is cached."""
    from gen_eval.weights.named import weights_status

    for status in weights_status():
        entry = status.extractor
        click.echo(f"{entry.name}: {'cached ' + str(status.path) if status.cached else 'not cached'}")
        size = f"{entry.size / 1e6:.1f} MB" if entry.size else "size not pinned"
        click.echo(f"  source: {entry.url} ({entry.format}, {size})")
        click.echo(f"  sha256: {entry.sha256}")
        click.echo(f"  {entry.description}; converts with {entry.needs}")


@weights_group.command("remove")
@click.argument("name")
def weights_remove(name):
    """Delete NAME's cached models (the published weights' and any other file's)."""
    from gen_eval.weights.named import remove_cached

    removed = remove_cached(name)
    click.echo(f"removed {', '.join(map(str, removed))}" if removed else f"{name}: nothing cached")


def register(cli: click.Group) -> None:
    cli.add_command(weights_group)
