"""`gen-eval` commands of the evaluate part: info, sample, score, mse (fid and stats: commands/fid.py).

Torch-free: everything here runs with only onnxruntime, numpy, scipy, Pillow, click and tqdm.
Library imports happen inside the commands so ``gen-eval --help`` starts fast.
"""

from __future__ import annotations

import click

from gen_eval.api.inputs import check_outputs
from gen_eval.commands.scale_options import ray_option
from gen_eval.errors import UserError


def _echo_err(message: str) -> None:
    click.echo(message, err=True)


# -- option groups ------------------------------------------------------------------------------
def runtime_options(func):
    """--device, --batch-size, --threads."""
    func = click.option("--threads", type=int, default=None,
                        help="CPU threads for onnxruntime [default: the CPUs this process may use].")(func)
    func = click.option("--batch-size", type=int, default=None,
                        help="Images per model run; the last batch runs at its own size unless the graph fixes "
                             "the batch size [default: 64 on CPU, 256 on CUDA].")(func)
    func = click.option("--device", default="auto", show_default=True,
                        help="auto (CUDA when it really works, else CPU), cpu, cuda or cuda:N.")(func)
    return func


def generator_options(func):
    """What a generator without gen-eval metadata needs: --latent-dim, --value-range, --objects."""
    func = click.option("--objects", "objects", type=click.Path(dir_okay=False), default=None,
                        help="Label names: iCLEVR objects.json, or a label-space JSON ({\"kind\": ...}).")(func)
    func = click.option("--value-range", default=None,
                        help="Generator output range 'LOW,HIGH' (e.g. -1,1) if the model has no metadata.")(func)
    func = click.option("--latent-dim", type=int, default=None,
                        help="Length of z if the model has no metadata and a dynamic z.")(func)
    return func


# -- info -------------------------------------------------------------------------------------
@click.command("info")
@click.argument("model", type=click.Path(dir_okay=False))
@generator_options
@click.option("--device", default="auto", show_default=True,
              help="auto (CUDA when it really works, else CPU), cpu, cuda or cuda:N.")
def info_command(model, latent_dim, value_range, objects, device):
    """Show an ONNX model's role, inputs/outputs, metadata and what the evaluator infers.

    \b
    Example:
      gen-eval info acgan.onnx
      gen-eval info my_export.onnx --latent-dim 100 --value-range -1,1 --objects objects.json
    """
    from gen_eval.api.info import info
    from gen_eval.api.sources import Runtime
    from gen_eval.errors import printable

    described = info(model, latent_dim=latent_dim, value_range=value_range, objects=objects, runtime=Runtime(device))
    rows = [(printable(key), printable(value)) for key, value in described.rows]  # metadata is untrusted
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"{key.ljust(width)}  {value}")
    missing = described.missing
    click.echo(f"{'ready'.ljust(width)}  " + ("yes" if not missing else "needs " + ", ".join(missing)))
    _echo_err(f"runtime: {described.runtime}")


# -- sample -----------------------------------------------------------------------------------
@click.command("sample")
@click.option("--model", required=True, type=click.Path(dir_okay=False), help="Generator .onnx.")
@click.option("--n", "n", type=int, default=None, help="Number of images [default: one per condition].")
@click.option("--seed", type=int, default=0, show_default=True, help="Noise seed (numpy Generator).")
@click.option("--out", required=True, type=click.Path(), help="A folder (PNGs), a .png (one grid) or an .npz.")
@click.option("--conditions", type=click.Path(dir_okay=False), default=None,
              help="Condition file (test.json style) for a conditional generator; cycled to --n.")
@click.option("--shard", default=None, help="Do only part k of N of the run: k/N (PNG folder or .npz).")
@click.option("--nrow", type=int, default=8, show_default=True, help="Images per grid row, 1-16 (.png output).")
@click.option("--upscale", type=int, default=1, show_default=True, help="Enlarge each grid cell this many times (1-16).")
@click.option("--resample", type=click.Choice(["nearest", "bilinear"]), default="nearest", show_default=True,
              help="Filter for --upscale (Pillow).")
@click.option("--force", is_flag=True, help="Overwrite existing outputs (a folder: regenerate every file).")
@click.option("--pair-noise", is_flag=True,
              help="Consecutive samples, one per condition row, share one noise vector (attribute off/on pairs).")
@generator_options
@ray_option
@runtime_options
def sample_command(model, n, seed, out, conditions, shard, nrow, upscale, resample, force, pair_noise, latent_dim,
                   value_range, objects, ray_address, device, batch_size, threads):
    """Write N seeded samples of a generator to a PNG folder, a grid PNG or an .npz.

    A grid (at most 256 images) captions each image with its index and conditions; a folder of a
    conditional run gets labels.json (file name -> condition names).

    \b
    Examples:
      gen-eval sample --model acgan.onnx --conditions test.json --out grid.png
      gen-eval sample --model acgan.onnx --conditions test.json --n 50000 --out samples/ --shard 1/4
      gen-eval sample --model acgan.onnx --conditions test.json --n 50000 --out samples/ --ray
      gen-eval sample --model acgan.onnx --conditions off_on.json --n 20 --pair-noise --nrow 2 --out pairs.png
    """
    from gen_eval.api.sample import sample
    from gen_eval.api.sources import GeneratorSource, Runtime
    from gen_eval.evaluator.sampling import parse_shard

    generator = GeneratorSource(model, n, seed, conditions, objects, latent_dim, value_range)
    result = sample(generator, out, shard=parse_shard(shard), nrow=nrow, upscale=upscale, resample=resample,
                    force=force, runtime=Runtime(device, batch_size, threads), progress=True,
                    ray_address=ray_address, pair_noise=pair_noise)
    click.echo(result.describe())


# -- score ------------------------------------------------------------------------------------
def gate_options(func):
    """--confidence, --strict, --summary: how a gate decides and where its Markdown summary goes."""
    func = click.option("--summary", "summary_path", type=click.Path(dir_okay=False), default=None,
                        help="Append a Markdown summary here (e.g. $GITHUB_STEP_SUMMARY).")(func)
    func = click.option("--strict", is_flag=True,
                        help="With --confidence: pass only when confidently on the right side of the threshold.")(func)
    func = click.option("--confidence", type=float, default=None,
                        help="Gate on the interval at this confidence: fail only when confidently on the wrong "
                             "side [default: gate on the value; the interval is reported at 0.95].")(func)
    return func


def finish(report, *, report_path=None, force=False, gate_flag=None, threshold=None, confidence=None, strict=False,
           summary_path=None, extra_table: str = "") -> None:
    """Print the table, write the JSON report and summary, then enforce the gate (GateMissed -> exit 1)."""
    from gen_eval.errors import GateMissed
    from gen_eval.fileio import append_text, atomic_write_json

    if strict and confidence is None:
        raise UserError("--strict decides on the interval: give --confidence too (e.g. --confidence 0.95)")
    click.echo(report.table())
    if extra_table:
        click.echo(extra_table)
    for warning in report.warnings:
        _echo_err(f"warning: {warning}")
    decision = None
    if threshold is not None:
        decision = report.gate(threshold, strict=strict, use_interval=confidence is not None)
    data = report.to_dict()
    if decision is not None:
        data["gate"] = {"flag": gate_flag, "threshold": threshold, "confidence": confidence, "strict": strict,
                        "passed": decision.passed, "rule": decision.rule,
                        "verdict": report.verdict(decision, gate_flag, threshold)}
    if report_path is not None:
        if str(report_path) == "-":
            import json

            click.echo(json.dumps(data, indent=2))
        else:
            atomic_write_json(report_path, data, force=force)
            click.echo(f"report: {report_path}")
    if summary_path is not None:
        append_text("--summary", summary_path, report.markdown(decision))  # appended to, as CI summaries are
    if decision is not None:
        message = report.verdict(decision, gate_flag, threshold)
        if confidence is None and report.straddles(threshold):
            _echo_err(f"warning: the {report.interval.confidence:.0%} interval [{report.interval.low:.4g}, "
                      f"{report.interval.high:.4g}] contains {gate_flag} {threshold:g}: this verdict can flip with "
                      "the noise seed; gate with --confidence 0.95 to decide on the interval")
        if not decision.passed:
            raise GateMissed(message)
        click.echo(message)


@click.command("score")
@click.option("--model", required=True, type=click.Path(dir_okay=False), help="Conditional generator .onnx.")
@click.option("--test", "--conditions", "test_file", required=True, type=click.Path(dir_okay=False),
              help="Condition file, e.g. iCLEVR's test.json (one image per condition and seed; see --n).")
@click.option("--objects", type=click.Path(dir_okay=False), default=None,
              help="objects.json (or a label-space JSON) when the models carry no label names.")
@click.option("--classifier", required=True, type=click.Path(dir_okay=False), help="Classifier .onnx (the judge).")
@click.option("--n", "n", type=int, default=None,
              help="Images per seed: image i for condition row i mod rows, as sample/fid/metrics "
                   "[default: one per condition row].")
@click.option("--repeats", type=int, default=1, show_default=True, help="Noise seeds seed, seed+1, ...; report mean/std/min/max.")
@click.option("--seed", type=int, default=0, show_default=True, help="First noise seed.")
@click.option("--min-score", type=float, default=None, help="Exit 1 when the score is (confidently) below this.")
@gate_options
@click.option("--over-conditions/--seeds-only", default=True, show_default=True,
              help="Interval by a two-way bootstrap over seeds and conditions (the conditions as a sample), or "
                   "over the seeds only (the conditions fixed); both are widened to hold the Wilson interval of "
                   "the hits among all objects scored.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), default=None,
              help="Write a JSON report here ('-' for stdout).")
@click.option("--grid", "grid_path", type=click.Path(dir_okay=False), default=None,
              help="Write the images of the first seed (at most 256) as a captioned grid PNG (8 per row).")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None,
              help="Write a self-contained HTML report: warnings, the score and its interval, where it fails, "
                   "captioned images (the first seed's, and those the judge read wrong) and the provenance.")
@click.option("--quantize", is_flag=True, help="Round images through uint8 (as if saved to PNG) before the classifier.")
@click.option("--latent-dim", type=int, default=None, help="Length of z if the generator has no metadata.")
@click.option("--value-range", default=None, help="Generator output range if it has no metadata (e.g. -1,1).")
@click.option("--classifier-value-range", default=None,
              help="Input range of a classifier without metadata (the iCLEVR reference ResNet18: -1,1).")
@click.option("--classifier-image-shape", default=None, help="C,H,W of a classifier without metadata and fixed size.")
@click.option("--force", is_flag=True, help="Overwrite --report / --grid / --html files.")
@runtime_options
def score_command(model, test_file, objects, classifier, n, repeats, seed, min_score, confidence, strict, summary_path,
                  over_conditions, report_path, grid_path, html_path, quantize, latent_dim, value_range, classifier_value_range,
                  classifier_image_shape, force, device, batch_size, threads):
    """Classifier score of a conditional generator on a condition file (pooled top-k).

    \b
    Examples:
      gen-eval score --model acgan.onnx --test test.json --classifier judge.onnx --repeats 5
      gen-eval score --model acgan.onnx --test test.json --repeats 5 --min-score 0.8 --report score.json
      gen-eval score --model acgan.onnx --test test.json --classifier judge.onnx --html score.html
      gen-eval score --model acgan.onnx --test test.json --classifier judge.onnx --n 1000   # rows cycled
    """
    from gen_eval.api.score import score
    from gen_eval.evaluator.breakdown import breakdown_table
    from gen_eval.evaluator.pictures import MAX_GRID_IMAGES
    from gen_eval.evaluator.sample_outputs import write_sample_grid

    outputs = {"--report": None if report_path == "-" else report_path, "--grid": grid_path, "--html": html_path}
    check_outputs(force, outputs, {"--model": model, "--test": test_file, "--classifier": classifier,
                                    "--objects": objects, "--summary": summary_path})
    from gen_eval.api.sources import GeneratorSource, Runtime

    report = score(GeneratorSource(model, n, seed, latent_dim=latent_dim, value_range=value_range), test_file,
                   classifier=classifier, objects=objects, repeats=repeats, quantize=quantize,
                   confidence=confidence or 0.95, over_conditions=over_conditions,
                   keep_images=MAX_GRID_IMAGES if grid_path or html_path else 0,
                   classifier_value_range=classifier_value_range, classifier_image_shape=classifier_image_shape,
                   runtime=Runtime(device, batch_size, threads), progress=True)
    if grid_path is not None:
        write_sample_grid(grid_path, report.images, range(len(report.images)), report.image_labels,
                          report.label_space, force=force)
        _echo_err(f"grid: {grid_path}" + (f" (the first {len(report.images)} images)"
                                          if report.n > len(report.images) else ""))
    if html_path is not None:
        report.write_html(html_path, force=force)
        _echo_err(f"html: {html_path}")
    finish(report, report_path=report_path, force=force, gate_flag="--min-score", threshold=min_score, confidence=confidence,
           strict=strict,
           summary_path=summary_path, extra_table=breakdown_table(report.breakdown) if report.breakdown else "")


# -- mse --------------------------------------------------------------------------------------
@click.command("mse")
@click.option("--model", required=True, type=click.Path(dir_okay=False), help="The VAE's decoder (generator) .onnx.")
@click.option("--encoder", required=True, type=click.Path(dir_okay=False), help="The VAE's encoder .onnx.")
@click.option("--data", required=True, type=click.Path(), help="Images: a folder or a data set.")
@click.option("--split", default="train", show_default=True, help="Split of --data when it is a data set.")
@click.option("--max-mse", type=float, default=None, help="Exit 1 when the MSE is (confidently) above this.")
@gate_options
@click.option("--report", "report_path", type=click.Path(dir_okay=False), default=None,
              help="Write a JSON report here ('-' for stdout).")
@click.option("--encoder-value-range", default=None,
              help="Input range of an encoder without metadata [default: the decoder's value range].")
@click.option("--force", is_flag=True, help="Overwrite --report.")
@generator_options
@runtime_options
def mse_command(model, encoder, data, split, max_mse, confidence, strict, summary_path, report_path,
                encoder_value_range, force, latent_dim, value_range, objects, device, batch_size, threads):
    """Reconstruction MSE of a VAE: encoder mu -> decoder, mean over all pixels and channels, images in [0, 1].

    \b
    Example:
      gen-eval mse --model vae.onnx --encoder vae.encoder.onnx --data celeba --split test --max-mse 0.01
    """
    from gen_eval.api.mse import mse

    check_outputs(force, {"--report": None if report_path == "-" else report_path},
                   {"--model": model, "--encoder": encoder, "--data": data, "--objects": objects,
                    "--summary": summary_path})
    from gen_eval.api.sources import GeneratorSource, Runtime

    report = mse(GeneratorSource(model, objects=objects, latent_dim=latent_dim, value_range=value_range), encoder,
                 data, split=split, encoder_value_range=encoder_value_range, confidence=confidence or 0.95,
                 runtime=Runtime(device, batch_size, threads), progress=True)
    finish(report, report_path=report_path, force=force, gate_flag="--max-mse", threshold=max_mse, confidence=confidence,
           strict=strict,
           summary_path=summary_path)


def register(cli: click.Group) -> None:
    """Add this part's commands to the root group."""
    for command in (info_command, sample_command, score_command, mse_command):
        cli.add_command(command)
