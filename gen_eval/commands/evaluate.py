"""`gen-eval` commands of the evaluate part: info, sample, score, fid, stats (+ stats merge), mse.

Torch-free: everything here runs with only onnxruntime, numpy, scipy, Pillow, click and tqdm.
Library imports happen inside the commands so ``gen-eval --help`` starts fast.
"""

from __future__ import annotations

from pathlib import Path

import click

from gen_eval.errors import UserError


def _echo_err(message: str) -> None:
    click.echo(message, err=True)


# -- option groups ------------------------------------------------------------------------------
def runtime_options(func):
    """--device, --batch-size, --threads."""
    func = click.option("--threads", type=int, default=None,
                        help="CPU threads for onnxruntime (default: the CPUs this process may use).")(func)
    func = click.option("--batch-size", type=int, default=None,
                        help="Images per model run; the last batch is padded (default 64 on CPU, 256 on CUDA).")(func)
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


def _value_range(text: str | None, flag: str) -> tuple[float, float] | None:
    from gen_eval.contract import parse_value_range

    if text is None:
        return None
    try:
        return parse_value_range(text)
    except ValueError as exc:
        raise UserError(f"{flag}: {exc}") from None


def _image_shape(text: str | None, flag: str) -> tuple[int, int, int] | None:
    from gen_eval.contract import parse_image_shape

    if text is None:
        return None
    try:
        return parse_image_shape(text)
    except ValueError as exc:
        raise UserError(f"{flag}: {exc}") from None


def read_label_space(path: str | None):
    """An iCLEVR objects.json ({name: index}) or a label-space JSON ({"kind": ...}); None -> None."""
    if path is None:
        return None
    from gen_eval.data.conditions import read_objects
    from gen_eval.data.labels import LabelSpace
    from gen_eval.data.textfiles import read_json

    obj = read_json(path, "objects file")
    if isinstance(obj, dict) and "kind" in obj:
        try:
            return LabelSpace.from_dict(obj)
        except ValueError as exc:
            raise UserError(f"{path}: bad label space ({exc})") from None
    return read_objects(path)


def _runtime(device: str, threads: int | None):
    from gen_eval.evaluator.runtime import Runtime

    return Runtime(device, threads)


def _load_generator(path, runtime, batch_size, latent_dim, value_range, objects, label_space=None, label_source=None):
    from gen_eval.evaluator.model import load_model

    space = read_label_space(objects)
    return load_model(
        path, role="generator", runtime=runtime, batch_size=batch_size, latent_dim=latent_dim,
        value_range=_value_range(value_range, "--value-range"),
        label_space=space if space is not None else label_space,
        label_space_source=None if space is not None else label_source,
    )


def _conditions_for(generator, conditions_path: str | None, flag: str = "--conditions"):
    from gen_eval.data.conditions import read_condition_file

    if not generator.info.conditional:
        if conditions_path is not None:
            raise UserError(f"{generator.path} is an unconditional generator; leave out {flag}")
        return None
    if conditions_path is None:
        raise UserError(f"{generator.path} is a conditional generator; give a condition file with {flag} (e.g. test.json)")
    return read_condition_file(conditions_path, generator.info.label_space)


def _check_outputs(force: bool, outputs: dict, inputs: dict) -> None:
    """Every output writable, none of them one of the inputs or another output (flag -> path)."""
    from gen_eval.fileio import check_outputs

    check_outputs(outputs.items(), inputs.items(), force)


def _gate(flag: str, threshold: float | None, kind: str):
    from gen_eval.evaluator.report import Gate

    return Gate(flag, threshold, kind) if threshold is not None else None


# -- info -------------------------------------------------------------------------------------
@click.command("info")
@click.argument("model", type=click.Path(dir_okay=False))
@generator_options
@click.option("--device", default="cpu", show_default=True, help="auto, cpu, cuda or cuda:N.")
def info_command(model, latent_dim, value_range, objects, device):
    """Show an ONNX model's role, inputs/outputs, metadata and what the evaluator infers."""
    from gen_eval.evaluator.model import load_model

    runtime = _runtime(device, None)
    loaded = load_model(model, runtime=runtime, latent_dim=latent_dim,
                        value_range=_value_range(value_range, "--value-range"),
                        label_space=read_label_space(objects), require=False)
    from gen_eval.errors import printable

    rows = [(printable(key), printable(value)) for key, value in loaded.describe()]  # metadata is untrusted
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"{key.ljust(width)}  {value}")
    missing = _missing_for(loaded)
    click.echo(f"{'ready'.ljust(width)}  " + ("yes" if not missing else "needs " + ", ".join(missing)))
    _echo_err(f"runtime: {runtime.describe()}")


def _missing_for(model) -> list[str]:
    info = model.info
    missing = []
    if info.role == "unknown":
        return ["a gen_eval.role (export it with gen-eval)"]
    if info.role == "generator" and info.latent_dim is None:
        missing.append("--latent-dim")
    if info.role != "features" and info.value_range is None:
        missing.append("--value-range")
    if info.conditional and info.label_space is None:
        missing.append("--objects")
    return missing


# -- sample -----------------------------------------------------------------------------------
@click.command("sample")
@click.option("--model", required=True, type=click.Path(dir_okay=False), help="Generator .onnx.")
@click.option("--n", "n", type=int, default=None, help="Number of images (default: one per condition).")
@click.option("--seed", type=int, default=0, show_default=True, help="Noise seed (numpy Generator).")
@click.option("--out", required=True, type=click.Path(), help="A folder (PNGs), a .png (one grid) or an .npz.")
@click.option("--conditions", type=click.Path(dir_okay=False), default=None,
              help="Condition file (test.json style) for a conditional generator; cycled to --n.")
@click.option("--shard", default=None, help="Do only part k of N of the run: k/N (PNG folder or .npz).")
@click.option("--nrow", type=int, default=8, show_default=True, help="Images per grid row (.png output).")
@click.option("--force", is_flag=True, help="Overwrite existing outputs (a folder: regenerate every file).")
@generator_options
@runtime_options
def sample_command(model, n, seed, out, conditions, shard, nrow, force, latent_dim, value_range, objects,
                   device, batch_size, threads):
    """Write N seeded samples of a generator to a PNG folder, a grid PNG or an .npz."""
    from gen_eval.evaluator import sampling

    from gen_eval.evaluator.noise import check_seed

    shard_spec = sampling.parse_shard(shard)
    check_seed(seed)
    if n is not None:
        sampling.check_count(n)
    out_path = Path(out)
    kind = {".png": "grid", ".npz": "npz"}.get(out_path.suffix.lower(), "folder")
    if kind == "grid" and shard_spec is not None:
        raise UserError("--shard writes a PNG folder or an .npz; a grid is one image of the whole run")
    if kind == "grid":
        sampling.check_nrow(nrow)
    inputs = {"--model": model, "--conditions": conditions, "--objects": objects}
    _check_outputs(force, {"--out": out_path} if kind != "folder" else {}, inputs)

    runtime = _runtime(device, threads)
    generator = _load_generator(model, runtime, batch_size, latent_dim, value_range, objects)
    _echo_err(f"runtime: {runtime.describe()}")
    cond = _conditions_for(generator, conditions)
    if n is None:
        if cond is None:
            raise UserError("give the number of images with --n")
        n = len(cond)
    part = sampling.shard_indices(n, shard_spec)
    where = f" (shard {shard_spec[0]}/{shard_spec[1]}: images {part.start}..{part.stop - 1})" if shard_spec else ""
    if kind == "folder":
        written, kept = sampling.write_png_folder(generator, out_path, n, seed, conditions=cond, shard=shard_spec,
                                                  force=force)
        click.echo(f"wrote {written} PNGs to {out_path}{where}" + (f"; {kept} were already there" if kept else ""))
        return
    indices, images, labels = sampling.generate_all(generator, n, seed, conditions=cond, shard=shard_spec)
    if kind == "grid":
        sampling.write_grid(out_path, images, force=force, nrow=nrow)
        click.echo(f"wrote a grid of {len(images)} images to {out_path}")
    else:
        sampling.write_npz(out_path, indices, images, labels, seed, generator, force=force)
        click.echo(f"wrote {len(images)} images to {out_path}{where}")


# -- score ------------------------------------------------------------------------------------
@click.command("score")
@click.option("--model", required=True, type=click.Path(dir_okay=False), help="Conditional generator .onnx.")
@click.option("--test", "test_file", required=True, type=click.Path(dir_okay=False),
              help="Condition file, e.g. the TA's test.json (one image per condition).")
@click.option("--objects", type=click.Path(dir_okay=False), default=None,
              help="objects.json (or a label-space JSON) when the models carry no label names.")
@click.option("--classifier", required=True, type=click.Path(dir_okay=False), help="Classifier .onnx (the judge).")
@click.option("--repeats", type=int, default=1, show_default=True, help="Noise seeds seed, seed+1, ...; report mean/std/min/max.")
@click.option("--seed", type=int, default=0, show_default=True, help="First noise seed.")
@click.option("--min-score", type=float, default=None, help="Exit 1 when the (mean) score is below this.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), default=None, help="Write a JSON report here.")
@click.option("--grid", "grid_path", type=click.Path(dir_okay=False), default=None,
              help="Write the images of the first seed as a grid PNG (8 per row).")
@click.option("--quantize", is_flag=True, help="Round images through uint8 (as if saved to PNG) before the classifier.")
@click.option("--latent-dim", type=int, default=None, help="Length of z if the generator has no metadata.")
@click.option("--value-range", default=None, help="Generator output range if it has no metadata (e.g. -1,1).")
@click.option("--classifier-value-range", default=None,
              help="Input range of a classifier without metadata (the TA's ResNet18: -1,1).")
@click.option("--classifier-image-shape", default=None, help="C,H,W of a classifier without metadata and fixed size.")
@click.option("--force", is_flag=True, help="Overwrite --report / --grid files.")
@runtime_options
def score_command(model, test_file, objects, classifier, repeats, seed, min_score, report_path, grid_path, quantize,
                  latent_dim, value_range, classifier_value_range, classifier_image_shape, force, device, batch_size,
                  threads):
    """Classifier score of a conditional generator on a condition file (TA semantics: pooled top-k)."""
    import numpy as np

    from gen_eval.evaluator.model import load_model
    from gen_eval.evaluator.report import Report, finish
    from gen_eval.evaluator.sampling import write_grid
    from gen_eval.evaluator.score import score_generator
    from gen_eval.data.images import to_uint8

    from gen_eval.evaluator.noise import check_seed

    if repeats < 1:
        raise UserError(f"--repeats must be at least 1, got {repeats}")
    check_seed(seed)
    check_seed(seed + repeats - 1, "--seed + --repeats - 1")
    _check_outputs(force, {"--report": report_path, "--grid": grid_path},
                   {"--model": model, "--test": test_file, "--classifier": classifier, "--objects": objects})
    runtime = _runtime(device, threads)
    space = read_label_space(objects)
    judge = load_model(classifier, role="classifier", runtime=runtime, batch_size=batch_size, label_space=space,
                       value_range=_value_range(classifier_value_range, "--classifier-value-range"),
                       image_shape=_image_shape(classifier_image_shape, "--classifier-image-shape"),
                       flag_prefix="classifier-", label_space_source="--objects")
    generator = _load_generator(model, runtime, batch_size, latent_dim, value_range, objects,
                                label_space=judge.info.label_space, label_source=f"{classifier} metadata")
    _echo_err(f"runtime: {runtime.describe()}")
    if not generator.info.conditional:
        raise UserError(f"{model} is an unconditional generator; the classifier score needs a conditional one")
    conditions = _conditions_for(generator, test_file, "--test")
    label_space = generator.info.label_space

    results, first_images = [], None
    for r in range(repeats):
        result, images = score_generator(generator, judge, conditions, seed + r, label_space=label_space,
                                         quantize=quantize)
        results.append(result)
        if first_images is None:
            first_images = images
    values = np.array([res.value for res in results])
    details: dict = {"label_space": label_space.kind, "test": str(test_file), "classifier": str(classifier),
                     "input": "uint8-quantised" if quantize else "float"}
    if repeats == 1:
        details.update(correct=results[0].correct, total=results[0].total)
    else:
        details.update(repeats=repeats, mean=float(values.mean()), std=float(values.std()),
                       min=float(values.min()), max=float(values.max()), scores=[float(v) for v in values])
    if results[0].per_head:
        heads = list(results[0].per_head)
        details["per_head"] = {h: float(np.mean([res.per_head[h] for res in results])) for h in heads}
    if grid_path is not None:
        write_grid(grid_path, to_uint8(first_images, generator.info.value_range), force=force)
        _echo_err(f"grid: {grid_path}")
    report = Report("classifier_score", float(values.mean()), str(model), runtime.describe(), seed, len(conditions),
                    details, _gate("--min-score", min_score, "min"))
    finish(report, report_path, force, echo=click.echo)


# -- fid / stats ------------------------------------------------------------------------------
def _features_model(path, runtime, batch_size):
    from gen_eval.evaluator.model import load_model

    return load_model(path, role="features", runtime=runtime, batch_size=batch_size, flag_prefix="features-")


def _image_set(path: str, split: str, channels: int | None = None):
    """A folder / data set, or the .npz that `gen-eval sample --out x.npz` writes."""
    from gen_eval.data.datasets import detect_format, open_dataset
    from gen_eval.evaluator.sampling import check_sample_folder, open_sample_npz

    if Path(path).suffix.lower() == ".npz":
        return open_sample_npz(Path(path))
    fmt = detect_format(path, split)
    if fmt == "folder":
        check_sample_folder(Path(path))  # a folder of `gen-eval sample` must hold every image of its run
    kw = {"mode": "L"} if fmt == "folder" and channels == 1 else {}
    return open_dataset(path, split=split, fmt=fmt, **kw)


def _side_stats(features, runtime, *, data, split, model, n, seed, conditions, shard, batch_size,
                latent_dim, value_range, objects, what):
    """Feature statistics of --data (a folder / data set) or of --model (N generated images)."""
    from gen_eval.evaluator.features import generator_stats, imageset_stats

    if (data is None) == (model is None):
        raise UserError(f"give the {what} images with exactly one of --data DIR or --model G.onnx")
    if data is not None:
        if n is not None or conditions is not None:
            raise UserError("--n and --conditions go with --model, not --data")
        images = _image_set(data, split)
        count = f"{len(images)} image{'s' if len(images) != 1 else ''}"
        return imageset_stats(features, images, shard=shard), f"{images.source} ({count})", None
    generator = _load_generator(model, runtime, batch_size, latent_dim, value_range, objects)
    cond = _conditions_for(generator, conditions)
    if n is None:
        raise UserError("give the number of images to generate with --n (FID is usually computed on 10000+)")
    stats = generator_stats(features, generator, n, seed, conditions=cond, shard=shard)
    return stats, f"{model} ({n} samples, seed {seed})", generator


def source_options(func):
    for option in reversed([
        click.option("--data", type=click.Path(), default=None,
                     help="Images: a folder, a data set (iCLEVR layout, CelebA, Cartoon Set, MNIST) or a sample .npz."),
        click.option("--split", default="train", show_default=True, help="Split of --data when it is a data set."),
        click.option("--model", type=click.Path(dir_okay=False), default=None, help="Or a generator .onnx to sample from."),
        click.option("--n", "n", type=int, default=None, help="Images to generate from --model."),
        click.option("--seed", type=int, default=0, show_default=True, help="Noise seed for --model."),
        click.option("--conditions", type=click.Path(dir_okay=False), default=None,
                     help="Condition file for a conditional --model (cycled to --n)."),
    ]):
        func = option(func)
    return generator_options(func)


@click.command("fid")
@click.option("--features", "features_path", required=True, type=click.Path(dir_okay=False),
              help="Features .onnx: the Inception from `gen-eval export-inception`, or any features model.")
@click.option("--ref", required=True, type=click.Path(),
              help="Reference: statistics .npz (ours or pytorch-fid's) or an image folder / data set.")
@click.option("--ref-split", default="train", show_default=True, help="Split of --ref when it is a data set.")
@source_options
@click.option("--max-fid", type=float, default=None, help="Exit 1 when the distance is above this.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), default=None, help="Write a JSON report here.")
@click.option("--save-stats", type=click.Path(dir_okay=False), default=None,
              help="Also write the statistics of the generated / --data images (.npz).")
@click.option("--force", is_flag=True, help="Overwrite --report / --save-stats files.")
@click.option("--allow-other-features", is_flag=True,
              help="Compute a distance even when --ref statistics record another features model or preprocessing.")
@runtime_options
def fid_command(features_path, ref, ref_split, data, split, model, n, seed, conditions, latent_dim, value_range,
                objects, max_fid, report_path, save_stats, force, allow_other_features, device, batch_size, threads):
    """Fréchet distance of generated images (or --data) to reference statistics or images."""
    from gen_eval.evaluator.features import (check_same_features, feature_model_id, imageset_stats, new_stats,
                                             warn_small)
    from gen_eval.evaluator.frechet import frechet_distance
    from gen_eval.evaluator.report import Report, finish
    from gen_eval.evaluator.stats import load_stats

    from gen_eval.evaluator.noise import check_seed

    check_seed(seed)
    _check_outputs(force, {"--report": report_path, "--save-stats": save_stats},
                   {"--features": features_path, "--ref": ref, "--data": data, "--model": model,
                    "--conditions": conditions, "--objects": objects})
    runtime = _runtime(device, threads)
    features = _features_model(features_path, runtime, batch_size)
    _echo_err(f"runtime: {runtime.describe()}")
    reference = None
    if Path(ref).suffix.lower() == ".npz":
        reference = load_stats(ref)
        ref_mu, ref_sigma, ref_n, ref_model = reference.mu, reference.sigma, reference.n, reference.feature_model
        if ref_n is not None and ref_n < 2:
            raise UserError(f"{ref}: statistics of {ref_n} image; a distance needs at least 2 (merge the shards first)")
        if len(ref_mu) != features.info.output_size:
            raise UserError(
                f"{ref}: statistics are {len(ref_mu)}-d but {features_path} gives {features.info.output_size}-d "
                "features; use the feature model the statistics were made with"
            )
        warning = check_same_features(reference, new_stats(features), str(ref), allow_other_features)
        if warning:  # checked before any image is made
            _echo_err(warning)
    else:
        ref_stats = imageset_stats(features, _image_set(ref, ref_split))
        ref_stats.require_covariance(f"reference {ref}")
        ref_mu, ref_sigma, ref_n, ref_model = ref_stats.mu, ref_stats.sigma, ref_stats.n, ref_stats.feature_model
        warn_small(ref_stats, f"reference {ref}")
    stats, described, _ = _side_stats(features, runtime, data=data, split=split, model=model, n=n, seed=seed,
                                      conditions=conditions, shard=None, batch_size=batch_size,
                                      latent_dim=latent_dim, value_range=value_range, objects=objects,
                                      what="generated")
    stats.require_covariance(described)
    ours = feature_model_id(features)
    warn_small(stats, described)
    if save_stats is not None:
        stats.save(save_stats, force=force)
        _echo_err(f"statistics: {save_stats}")
    value = frechet_distance(stats.mu, stats.sigma, ref_mu, ref_sigma)
    details = {"images": described, "reference": str(ref), "reference_n": ref_n, "features": ours,
               "feature_dim": stats.dim}
    report = Report("fid", value, str(model) if model else None, runtime.describe(), seed if model else None,
                    stats.n, details, _gate("--max-fid", max_fid, "max"))
    finish(report, report_path, force, echo=click.echo)


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
              help="Features .onnx (the Inception from `gen-eval export-inception`, or any features model).")
@source_options
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Statistics file (.npz).")
@click.option("--shard", default=None, help="Only part k of N of the images: k/N; combine with `stats merge`.")
@click.option("--force", is_flag=True, help="Overwrite --out.")
@runtime_options
def stats_compute(features_path, data, split, model, n, seed, conditions, latent_dim, value_range, objects, out,
                  shard, force, device, batch_size, threads):
    """Write feature statistics (mu, sigma, n, sum, sum_outer) of a folder / data set or of generated images."""
    from gen_eval.evaluator.features import warn_small
    from gen_eval.evaluator.sampling import parse_shard

    if Path(out).suffix != ".npz":
        raise UserError(f"--out {out}: statistics files end in .npz")
    from gen_eval.evaluator.noise import check_seed

    check_seed(seed)
    _check_outputs(force, {"--out": out}, {"--features": features_path, "--data": data, "--model": model,
                                           "--conditions": conditions, "--objects": objects})
    shard_spec = parse_shard(shard)
    runtime = _runtime(device, threads)
    features = _features_model(features_path, runtime, batch_size)
    _echo_err(f"runtime: {runtime.describe()}")
    stats, described, _ = _side_stats(features, runtime, data=data, split=split, model=model, n=n, seed=seed,
                                      conditions=conditions, shard=shard_spec, batch_size=batch_size,
                                      latent_dim=latent_dim, value_range=value_range, objects=objects, what="")
    if shard_spec is None:  # a whole set needs 2+ images; a shard may hold 1 (its sums still merge)
        stats.require_covariance(described)
        warn_small(stats, described)
    stats.save(out, force=force)
    part = f", shard {shard_spec[0]}/{shard_spec[1]}" if shard_spec else ""
    click.echo(f"wrote statistics of {stats.n} images ({stats.dim}-d features{part}) to {out}")


@stats_group.command("merge")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Combined statistics file (.npz).")
@click.option("--force", is_flag=True, help="Overwrite --out.")
def stats_merge(inputs, out, force):
    """Combine shard statistics exactly (sums of n, sum, sum_outer)."""
    from gen_eval.evaluator.features import warn_small
    from gen_eval.evaluator.stats import merge_stats

    if Path(out).suffix != ".npz":
        raise UserError(f"--out {out}: statistics files end in .npz")
    _check_outputs(force, {"--out": out}, {f"merged (argument {i + 1})": path for i, path in enumerate(inputs)})
    merged = merge_stats(list(inputs))
    merged.require_covariance("the merged files")
    warn_small(merged, "the merged set")
    merged.save(out, force=force)
    click.echo(f"merged {len(inputs)} files: statistics of {merged.n} images to {out}")


# -- mse --------------------------------------------------------------------------------------
@click.command("mse")
@click.option("--model", required=True, type=click.Path(dir_okay=False), help="The VAE's decoder (generator) .onnx.")
@click.option("--encoder", required=True, type=click.Path(dir_okay=False), help="The VAE's encoder .onnx.")
@click.option("--data", required=True, type=click.Path(), help="Images: a folder or a data set.")
@click.option("--split", default="train", show_default=True, help="Split of --data when it is a data set.")
@click.option("--max-mse", type=float, default=None, help="Exit 1 when the MSE is above this.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), default=None, help="Write a JSON report here.")
@click.option("--encoder-value-range", default=None,
              help="Input range of an encoder without metadata (default: the decoder's value range).")
@click.option("--force", is_flag=True, help="Overwrite --report.")
@generator_options
@runtime_options
def mse_command(model, encoder, data, split, max_mse, report_path, encoder_value_range, force, latent_dim,
                value_range, objects, device, batch_size, threads):
    """Reconstruction MSE of a VAE: encoder mu -> decoder, mean over all pixels and channels, images in [0, 1]."""
    from gen_eval.evaluator.model import load_model
    from gen_eval.evaluator.mse import SCALE, reconstruction_mse
    from gen_eval.evaluator.report import Report, finish

    _check_outputs(force, {"--report": report_path},
                   {"--model": model, "--encoder": encoder, "--data": data, "--objects": objects})
    runtime = _runtime(device, threads)
    decoder = _load_generator(model, runtime, batch_size, latent_dim, value_range, objects)
    enc_range = _value_range(encoder_value_range, "--encoder-value-range")
    enc = load_model(encoder, role="encoder", runtime=runtime, batch_size=batch_size,
                     value_range=enc_range, label_space=decoder.info.label_space,
                     label_space_source=f"{model} metadata", flag_prefix="encoder-", require=False)
    if enc.info.value_range is None:
        enc.info.value_range = decoder.info.value_range
        enc.info.sources["value_range"] = "the decoder's"
    _echo_err(f"runtime: {runtime.describe()}")
    channels = (decoder.info.image_shape or enc.info.image_shape or (None,))[0]
    images = _image_set(data, split, channels)
    result = reconstruction_mse(enc, decoder, images)
    details = {"scale": SCALE, "data": images.source, "encoder": str(encoder), "values": result.values}
    report = Report("reconstruction_mse", result.value, str(model), runtime.describe(), None, result.n, details,
                    _gate("--max-mse", max_mse, "max"))
    finish(report, report_path, force, echo=click.echo)


def register(cli: click.Group) -> None:
    """Add this part's commands to the root group."""
    for command in (info_command, sample_command, score_command, fid_command, stats_group, mse_command):
        cli.add_command(command)
