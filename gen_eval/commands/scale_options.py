"""Options shared by the commands that scale out: --ray [ADDRESS] and --chunk-size."""

from __future__ import annotations

import click

from gen_eval.evaluator.exact import DEFAULT_CHUNK_SIZE


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
