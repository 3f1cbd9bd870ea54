"""`score`: the classifier score of a conditional generator on a condition file, with its uncertainty."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from gen_eval.api import inputs
from gen_eval.api.inputs import check_types
from gen_eval.api.reports import Report
from gen_eval.api.sources import GeneratorSource, Runtime, image_source, runtime_of, with_samples
from gen_eval.errors import UserError, param
from gen_eval.evaluator.uncertainty import score_interval, seeds_only_interval

log = logging.getLogger("gen_eval")


def score(model: str | Path | GeneratorSource, test: str | Path, *, classifier: str | Path,
          objects: str | Path | None = None, n: int | None = None, repeats: int = 1, seed: int = 0,
          quantize: bool = False, confidence: float = 0.95, over_conditions: bool = True, breakdown: bool = True,
          keep_images: int = 0, classifier_value_range: str | tuple[float, float] | None = None,
          classifier_image_shape: str | tuple[int, int, int] | None = None, runtime: Runtime | None = None,
          progress: bool = False) -> Report:
    """Classifier score of generator ``model`` on condition file ``test`` (pooled top-k: the hits of an
    image's k true labels among the judge's k highest outputs, summed over all images and divided by the
    sum of k, as the iCLEVR course judge), 
    over ``repeats`` noise seeds ``seed, seed + 1, ...``.

    Per seed, ``n`` images are made as by :func:`gen_eval.sample` and :func:`gen_eval.fid`: image ``i`` for
    condition row ``i mod rows`` of the file, from the noise of (seed, i); by default one per row.

    The interval covers the noise seeds and the finite test set: a two-way bootstrap over seeds and
    conditions (the conditions as a sample of those a user cares about), widened to hold the Wilson
    interval of the hits among all objects scored, so that seeds which agree never give a zero-width
    interval. ``over_conditions=False`` holds the conditions fixed (Student t over the seeds, with the
    same widening). ``keep_images`` keeps that many images of the first seed (``report.images``, uint8
    NCHW) for a grid.

    Args:
        model: the conditional generator .onnx, or a :class:`gen_eval.GeneratorSource` without conditions
            (its ``latent_dim`` / ``value_range`` for a generator without metadata; then leave out ``n`` and
            ``seed`` here).
        test: the condition file (iCLEVR test.json style, or one a label space reads).
        classifier: the judge .onnx (role classifier).
        objects: label names (objects.json or a label-space JSON) when the models carry none.
        n: images per seed, the rows cycled (fewer: the first ``n`` rows) [default: one per row].
        repeats: noise seeds ``seed .. seed + repeats - 1`` (an int, at least 1).
        seed: the first noise seed.
        quantize: round images through uint8, as if saved to PNG, before the judge.
        confidence: the interval's coverage, between 0 and 1.
        over_conditions: also treat the conditions as a sample (see above).
        breakdown: compute the per-condition breakdown (``report.breakdown``).
        keep_images: images of the first seed to keep for pictures.
        classifier_value_range, classifier_image_shape: what a classifier without metadata needs.
        runtime: the device, batch size and threads (:class:`gen_eval.Runtime`) [default: ``Runtime()``].
        progress: draw a progress bar on stderr (kept on screen when done, with rate and total).

    Returns:
        A :class:`~gen_eval.api.reports.Report` with metric ``classifier_score``; ``report.gate(0.8)``
        decides a gate.

    Raises:
        UserError: on a bad argument or input file (one line that says what to change).

    Example:
        >>> report = gen_eval.score("acgan.onnx", "test.json", classifier="judge.onnx", repeats=5)  # doctest: +SKIP
        >>> print(report.table())  # doctest: +SKIP
    """
    from tqdm import tqdm

    from gen_eval.data.images import to_uint8
    from gen_eval.evaluator.breakdown import breakdown as make_breakdown
    from gen_eval.evaluator.judges import check_judge
    from gen_eval.evaluator.model import load_model
    from gen_eval.evaluator.noise import check_seed
    from gen_eval.evaluator.provenance import provenance
    from gen_eval.evaluator.score import score_generator
    from gen_eval.evaluator.uncertainty import by_condition_row

    check_types(test=(test, inputs.PATH), classifier=(classifier, inputs.PATH), objects=(objects, inputs.PATH),
                repeats=(repeats, int), confidence=(confidence, float), keep_images=(keep_images, int),
                quantize=(quantize, bool), over_conditions=(over_conditions, bool), breakdown=(breakdown, bool),
                progress=(progress, bool))
    source = with_samples(model, n=n, seed=seed)
    if source.conditions is not None:
        raise UserError(f"the score's conditions are {param('test')}; leave them out of the GeneratorSource")
    model, n, seed, runtime = source.model, source.n, source.seed, runtime_of(runtime)
    objects = objects if objects is not None else source.objects
    if repeats < 1:
        raise UserError(f"{param('repeats')} must be at least 1, got {repeats}")
    if not 0 < confidence < 1:
        raise UserError(f"{param('confidence')} must be between 0 and 1, got {confidence}")
    check_seed(seed + repeats - 1, f"{param('seed')} + {param('repeats')} - 1")
    rt, batch_size = runtime.open(), runtime.batch_size
    space = inputs.read_label_space(objects)
    judge = load_model(classifier, role="classifier", runtime=rt, batch_size=batch_size, label_space=space,
                       value_range=inputs.value_range(classifier_value_range, param("classifier_value_range")),
                       image_shape=inputs.image_shape(classifier_image_shape, param("classifier_image_shape")),
                       param_prefix="classifier_", label_space_source=param("objects"))
    generator = inputs.load_generator(model, rt, batch_size=batch_size, latent_dim=source.latent_dim,
                                      value_range_text=source.value_range, objects=objects,
                                      label_space=judge.info.label_space, label_source=f"{classifier} metadata")
    log.info("runtime: %s", rt.describe())
    if not generator.info.conditional:
        raise UserError(f"{model} is an unconditional generator; the classifier score needs a conditional one")
    judged = check_judge(generator, judge, "classifier")
    rows = inputs.conditions_for(generator, test, "test")
    conditions = rows if n is None else rows[np.arange(n) % len(rows)]
    label_space = generator.info.label_space

    results, kept = [], None
    with tqdm(total=repeats * len(conditions), unit="img", desc="scoring", disable=not progress or None,
              leave=True) as bar:
        for r in range(repeats):
            result, images = score_generator(generator, judge, conditions, seed + r, label_space=label_space,
                                             quantize=quantize, keep_images=keep_images if r == 0 else 0,
                                             on_batch=bar.update)
            results.append(result)
            if r == 0 and keep_images:
                kept = to_uint8(images, generator.info.value_range)
    values = np.array([res.value for res in results])
    hits = np.stack([res.hits for res in results])
    ks = results[0].ks
    # images of one cycled row share its condition: the interval resamples rows with all their images
    row_hits, row_ks = by_condition_row(hits, ks, len(rows))
    if over_conditions:
        interval = score_interval(row_hits, row_ks, confidence=confidence)
    else:
        interval = seeds_only_interval(row_hits, row_ks, confidence)
    details: dict = {"label_space": label_space.kind, "test": str(test), "classifier": str(classifier),
                     "judge_in_training": judged.verdict, "judge_in_training_basis": judged.basis,
                     "input": "uint8-quantised" if quantize else "float"}
    if len(conditions) != len(rows):
        details["condition_rows"] = len(rows)
    if repeats == 1:
        details.update(correct=results[0].correct, total=results[0].total)
    else:
        details.update(repeats=repeats, mean=float(values.mean()), std=float(values.std()),
                       min=float(values.min()), max=float(values.max()), scores=[float(v) for v in values])
    if results[0].per_head:
        details["per_head"] = {h: float(np.mean([res.per_head[h] for res in results])) for h in results[0].per_head}
    view = None
    if breakdown:
        stacked_probs = np.concatenate([res.probs for res in results])
        view = make_breakdown(stacked_probs, np.tile(conditions, (repeats, 1)), label_space)
    seeds = list(range(seed, seed + repeats))
    prov = provenance(inputs={"model": model, "classifier": classifier, "test": test, "objects": objects},
                      provider=rt.provider or "", device_id=rt.device_id,
                      preprocessing={"quantize": quantize, "generator_value_range": list(generator.info.value_range),
                                     "classifier_value_range": list(judge.info.value_range or ()),
                                     "classifier_image_shape": list(judge.info.image_shape or ()),
                                     "resize": "bilinear, align_corners=False"},
                      seeds=seeds, n=len(conditions), batch_size=generator.batch_size)
    prov["runtime"] = rt.describe()
    report = Report("classifier_score", float(values.mean()), len(conditions), model=str(model), seed=seed,
                    interval=interval, details=details, breakdown=view, provenance=prov,
                    settings={"n": len(conditions), "repeats": repeats, "seed": seed, "quantize": quantize,
                              "confidence": confidence, "over_conditions": over_conditions},
                    raw={"hits": hits.tolist(), "ks": ks.tolist(),
                         **({"condition_rows": len(rows)} if len(conditions) > len(rows) else {})},
                    warnings=[judged.warning] if judged.warning else [])
    report.images = kept
    if kept is not None:  # what a grid captions each kept image with: its condition (rows of the file, in order)
        report.image_labels = conditions[: len(kept)]
        report.label_space = generator.info.label_space
    return report


__all__ = ["score"]


def accuracy(classifier: str | Path, data: Any, *, split: str = "heldout", confidence: float = 0.95,
             runtime: Runtime | None = None, progress: bool = False) -> Report:
    """A classifier's accuracy on a labelled data set with the score's own rule (pooled top-k for multilabel
    spaces, per-head argmax for categorical ones), with a bootstrap interval over the images (widened to
    hold the Wilson interval of the hits among all labels scored). How well a judge reads real images
    bounds what its score of generated ones can mean.

    Args:
        classifier: the judge .onnx (role classifier).
        data: a labelled data set (e.g. the shapes set, an iCLEVR folder with its JSON), or an
            :class:`gen_eval.ImageSource` of one (its own split).
        split: which split of a ``data`` path.
        confidence: the interval's coverage, between 0 and 1.
        runtime: the device, batch size and threads (:class:`gen_eval.Runtime`) [default: ``Runtime()``].
        progress: draw a progress bar on stderr (kept on screen when done, with rate and total).

    Returns:
        A :class:`~gen_eval.api.reports.Report` with metric ``classifier_accuracy``.

    Raises:
        UserError: on a bad argument, an unlabelled data set or an unreadable file (one line).

    Example:
        >>> gen_eval.accuracy("judge.onnx", "shapes/", split="heldout").value  # doctest: +SKIP
    """
    from tqdm import tqdm

    from gen_eval.data.images import from_uint8
    from gen_eval.evaluator.model import load_model
    from gen_eval.evaluator.preprocess import hwc_to_nchw
    from gen_eval.evaluator.provenance import image_set_listing, provenance
    from gen_eval.evaluator.score import classify_generated, score_probs

    check_types(classifier=(classifier, inputs.PATH), data=(data, inputs.IMAGES), split=(split, str),
                confidence=(confidence, float), progress=(progress, bool))
    if not 0 < confidence < 1:
        raise UserError(f"{param('confidence')} must be between 0 and 1, got {confidence}")
    runtime = runtime_of(runtime)
    rt = runtime.open()
    judge = load_model(classifier, role="classifier", runtime=rt, batch_size=runtime.batch_size)
    log.info("runtime: %s", rt.describe())
    images = image_source(data, split).open(what=param("data"))
    if images.labels is None:
        raise UserError(f"{images.source}: no labels; accuracy needs a labelled data set")
    from gen_eval.data.imageset import rows_per_batch

    probs, step = [], rows_per_batch(images, judge.batch_size)
    with tqdm(total=len(images), unit="img", desc="classifying", disable=not progress or None, leave=True) as bar:
        for start in range(0, len(images), step):
            chunk = range(start, min(start + step, len(images)))
            batch = from_uint8(hwc_to_nchw([images.image(i) for i in chunk]), (0.0, 1.0))
            probs.append(classify_generated(judge, batch, (0.0, 1.0)))
            bar.update(len(chunk))
    labels = np.asarray(images.labels)
    result = score_probs(np.concatenate(probs), labels, judge.info.label_space or images.label_space)
    interval = score_interval(result.hits[None, :], result.ks, confidence=confidence)
    prov = provenance(inputs={"classifier": classifier}, provider=rt.provider or "", device_id=rt.device_id,
                      preprocessing={"images": "uint8 / 255, then the classifier's range and size"}, seeds=None,
                      n=len(images), batch_size=judge.batch_size, data_listing=image_set_listing(images))
    prov["data"] = images.source
    prov["runtime"] = rt.describe()
    return Report("classifier_accuracy", result.value, len(images), model=str(classifier), interval=interval,
                  details={"data": images.source, "split": split, "correct": result.correct, "total": result.total},
                  provenance=prov, settings={"split": split, "confidence": confidence})


__all__ += ["accuracy"]
