"""`gen-eval metrics`: several metrics of generated images (or --data) against reference images, one feature pass."""

from __future__ import annotations

import click

from gen_eval.api.inputs import check_outputs
from gen_eval.commands.options import (
    chunk_option,
    echo_error,
    force_option,
    gate_options,
    ray_option,
    report_option,
    require_confidence_for_strict,
    runtime_options,
    source_options,
)


@click.command("metrics")
@click.option("--features", "features_path", default=None, type=click.Path(dir_okay=False),
              help="Features .onnx, or a cached extractor's name such as inception (`gen-eval weights list`).")
@click.option("--ref", required=True, type=click.Path(),
              help="Reference images (a folder or a data set), or a statistics .npz with its .features.npy beside "
                   "it (`gen-eval stats --save-features`).")
@click.option("--gen-stats", multiple=True, type=click.Path(dir_okay=False),
              help="Generated side as shard statistics files with their .features.npy (repeat per shard).")
@click.option("--ref-split", default="train", show_default=True, help="Split of --ref when it is a data set.")
@source_options
@click.option("--metrics", "names", default="fid,kid,prdc", show_default=True,
              help="Comma-separated: fid (or fd), cmmd, kid, is, prdc, fid-inf, per-condition-fd, memorisation. "
                   "CMMD as its paper: --features clip-vitl14-336; FD-DINOv2: fd with --features dinov2-vitl14.")
@click.option("--prdc-k", type=int, default=None, help="Nearest neighbours for precision/recall/density/coverage "
                                                        "[default: 5].")
@click.option("--train", "train", type=click.Path(), default=None,
              help="Training images (folder or data set), for memorisation; --ref is then the held-out set.")
@click.option("--train-split", default="train", show_default=True, help="Split of --train when it is a data set.")
@click.option("--min-count", type=int, default=None,
              help="per-condition-fd: fewest images per side for a condition [default: feature dimension + 1].")
@click.option("--max-fid", type=float, default=None, help="Exit 1 when FID is (confidently) above this.")
@click.option("--max-kid", type=float, default=None, help="Exit 1 when KID's mean is above this.")
@click.option("--max-cmmd", type=float, default=None, help="Exit 1 when CMMD is (confidently) above this.")
@click.option("--min-precision", type=float, default=None, help="Exit 1 when precision is below this.")
@click.option("--min-recall", type=float, default=None, help="Exit 1 when recall is below this.")
@click.option("--min-coverage", type=float, default=None, help="Exit 1 when coverage is below this.")
@gate_options
@report_option
@click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None,
              help="Write a self-contained HTML report (metrics, per-condition tables, pictures, provenance).")
@click.option("--upscale", type=click.IntRange(1, 16), default=1, show_default=True,
              help="Enlarge the pictures of --html by this factor (small images are enlarged to 64 px anyway).")
@force_option("Overwrite --report / --html.")
@click.option("--no-cache", is_flag=True,
              help="Compute the features of reference images afresh and keep none (they are cached by default, "
                   "keyed by the features model and the files' content; `gen-eval stats clear-cache` empties it).")
@chunk_option
@ray_option
@runtime_options
def metrics_command(features_path, ref, gen_stats, ref_split, data, split, model, n, seed, conditions, latent_dim,
                    value_range, objects, names, prdc_k, train, train_split, min_count, max_fid, max_kid, max_cmmd, min_precision,
                    min_recall, min_coverage, confidence, strict, summary_path, report_path, html_path, upscale,
                    force, no_cache, chunk_size, ray_address, device, batch_size, threads):
    """FID, KID and IS (torch-fidelity's), CMMD (its paper's code), precision/recall/density/coverage (prdc's),
    FID∞, Fréchet distance per condition and a memorisation check, from one feature pass per image set.

    Features are kept on disk (float32, memory-mapped) while the metrics read them in blocks. FID carries
    the jackknife interval of `gen-eval fid`. A gate (--max-fid, --max-kid, --min-precision, --min-recall,
    --min-coverage) adds its metric to --metrics; a missed gate prints `gate missed: ...` and exits 1.

    \b
    Examples:
      gen-eval metrics --features inception.onnx --model acgan.onnx --conditions test.json --n 10000 --ref real/
      gen-eval metrics --features judge.features.onnx --data samples/ --ref shapes --metrics kid,prdc --prdc-k 3
      gen-eval metrics --features clip-vitl14-336 --data samples/ --ref real/ --metrics cmmd
      gen-eval metrics --features dinov2-vitl14 --data samples/ --ref real/ --metrics fd
      gen-eval metrics --gen-stats part1.npz --gen-stats part2.npz --ref ref.npz   # from `stats --save-features`
      gen-eval metrics --features inception.onnx --data samples/ --ref real/ --max-fid 30 --min-recall 0.3 \\
          --confidence 0.95 --summary "$GITHUB_STEP_SUMMARY"
      gen-eval metrics --features judge.features.onnx --model acgan.onnx --conditions train.json --n 2000 \\
          --ref shapes --ref-split test --train shapes --metrics fid,per-condition-fd,memorisation --html r.html
    """
    import json

    from gen_eval.api.metrics import GATED, metrics
    from gen_eval.errors import GateMissed
    from gen_eval.fileio import append_text, atomic_write_json

    require_confidence_for_strict(strict, confidence)
    thresholds = {"fid": ("--max-fid", max_fid), "kid": ("--max-kid", max_kid), "cmmd": ("--max-cmmd", max_cmmd),
                  "precision": ("--min-precision", min_precision), "recall": ("--min-recall", min_recall),
                  "coverage": ("--min-coverage", min_coverage)}
    gates = {name: spec for name, spec in thresholds.items() if spec[1] is not None}
    wanted = [x.strip() for x in names.split(",") if x.strip()]
    for name in gates:  # a gate computes its metric
        if GATED[name][0] not in wanted:
            wanted.append(GATED[name][0])

    check_outputs(force, {"--report": None if report_path == "-" else report_path, "--html": html_path},
                   {"--features": features_path, "--ref": ref, "--data": data, "--model": model,
                    "--conditions": conditions, "--objects": objects, "--train": train, "--summary": summary_path,
                    **{f"--gen-stats {i + 1}": path for i, path in enumerate(gen_stats)}})
    options = {"prdc_k": prdc_k} if prdc_k is not None else {}
    if min_count is not None:
        options["min_count"] = min_count
    from gen_eval.api.sources import ImageSource, Runtime, generated_side

    images = None if gen_stats and data is None and model is None else generated_side(
        data, split, model, n, seed, conditions, objects, latent_dim, value_range)
    report = metrics(ImageSource(ref, ref_split), images, features=features_path, names=wanted,
                     train=None if train is None else ImageSource(train, train_split), options=options,
                     pictures=html_path is not None, upscale=upscale, gen_stats=list(gen_stats),
                     chunk_size=chunk_size, ray_address=ray_address, runtime=Runtime(device, batch_size, threads),
                     progress=True, confidence=confidence or 0.95, cache=not no_cache)
    click.echo(report.table())
    for warning in report.warnings:
        echo_error(f"warning: {warning}")
    from gen_eval.api.reports import gate_line

    decided = [(name, flag, threshold, report.gate(name, threshold, strict=strict, use_interval=confidence is not None))
               for name, (flag, threshold) in gates.items()]
    data = report.to_dict()
    if decided:
        data["gates"] = [{"flag": flag, "threshold": threshold, "confidence": confidence, "strict": strict,
                          "passed": d.passed, "rule": d.rule, "verdict": gate_line(name, d, flag, threshold)}
                         for name, flag, threshold, d in decided]
    if report_path == "-":
        click.echo(json.dumps(data, indent=2))
    elif report_path is not None:
        atomic_write_json(report_path, data, force=force)
        click.echo(f"report: {report_path}")
    if html_path is not None:
        report.write_html(html_path, force=force)
        click.echo(f"html: {html_path}")
    if summary_path is not None:
        append_text("--summary", summary_path,  # appended to, as CI summaries are
                    report.markdown([(name, d) for name, _, _, d in decided]))
    missed = [gate_line(name, d, flag, threshold) for name, flag, threshold, d in decided if not d.passed]
    for name, flag, threshold, d in decided:
        if d.passed:
            click.echo(gate_line(name, d, flag, threshold))
    if missed:
        raise GateMissed("; ".join(missed))


def register(cli: click.Group) -> None:
    cli.add_command(metrics_command)
