"""`gen-eval` commands of the evaluate part: info, sample, score, mse (fid and stats: commands/fid.py).

Torch-free: everything here runs with only onnxruntime, numpy, scipy, Pillow, click and tqdm.
Library imports happen inside the commands so ``gen-eval --help`` starts fast.
"""

from __future__ import annotations

import click

from gen_eval.api.inputs import check_outputs
from gen_eval.commands.options import (
    SHARD,
    device_option,
    echo_error,
    finish,
    force_option,
    gate_options,
    generator_options,
    ray_option,
    report_option,
    runtime_options,
)


# -- info -------------------------------------------------------------------------------------
@click.command("info")
@click.argument("model", type=click.Path(dir_okay=False))
@generator_options
@device_option
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
    echo_error(f"runtime: {described.runtime}")


# -- sample -----------------------------------------------------------------------------------
@click.command("sample")
@click.option("--model", required=True, type=click.Path(dir_okay=False), help="Generator .onnx.")
@click.option("--n", "n", type=int, default=None, help="Number of images [default: one per condition].")
@click.option("--seed", type=int, default=0, show_default=True, help="Noise seed (numpy Generator).")
@click.option("--out", required=True, type=click.Path(), help="A folder (PNGs), a .png (one grid) or an .npz.")
@click.option("--conditions", type=click.Path(dir_okay=False), default=None,
              help="Condition file (test.json style) for a conditional generator; cycled to --n.")
@click.option("--shard", type=SHARD, default=None, help="Do only part k of N of the run: k/N (PNG folder or .npz).")
@click.option("--nrow", type=int, default=8, show_default=True, help="Images per grid row, 1-16 (.png output).")
@click.option("--upscale", type=int, default=1, show_default=True, help="Enlarge each grid cell this many times (1-16).")
@click.option("--resample", type=click.Choice(["nearest", "bilinear"]), default="nearest", show_default=True,
              help="Filter for --upscale (Pillow).")
@force_option("Overwrite existing outputs (a folder: regenerate every file).")
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

    generator = GeneratorSource(model, n, seed, conditions, objects, latent_dim, value_range)
    result = sample(generator, out, shard=shard, nrow=nrow, upscale=upscale, resample=resample,
                    force=force, runtime=Runtime(device, batch_size, threads), progress=True,
                    ray_address=ray_address, pair_noise=pair_noise)
    click.echo(result.describe())


# -- score ------------------------------------------------------------------------------------
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
@report_option
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
@force_option("Overwrite --report / --grid / --html files.")
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
        echo_error(f"grid: {grid_path}" + (f" (the first {len(report.images)} images)"
                                          if report.n > len(report.images) else ""))
    if html_path is not None:
        report.write_html(html_path, force=force)
        echo_error(f"html: {html_path}")
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
@report_option
@click.option("--encoder-value-range", default=None,
              help="Input range of an encoder without metadata [default: the decoder's value range].")
@force_option("Overwrite --report.")
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
