"""The iCLEVR judge (TA ResNet18, or gen-eval's classifier family) -> ``classifier`` or ``features`` ONNX model."""

from __future__ import annotations

import os

from gen_eval import contract
from gen_eval.data.labels import LabelSpace
from gen_eval.errors import UserError
from gen_eval.exporter.graphs import ExportResult, export_graph
from gen_eval.fileio import ensure_can_write
from gen_eval.trainers.base import ExportGraph

# The TA's input contract: 64x64 RGB normalised to [-1, 1].
JUDGE_IMAGE_SHAPE = (3, 64, 64)
JUDGE_VALUE_RANGE = (-1.0, 1.0)
JUDGE_FAMILY = "classifier"


def judge_graph(model, label_space: LabelSpace | None, *, features: bool = False) -> ExportGraph:
    """The judge's ExportGraph: image -> probs, or (``features``) image -> 512-d penultimate features."""
    from gen_eval.trainers.judge import penultimate

    if features:
        return ExportGraph("features", penultimate(model).eval(), [contract.INPUT_IMAGE], [JUDGE_IMAGE_SHAPE],
                           [contract.OUTPUT_FEATURES], JUDGE_IMAGE_SHAPE, JUDGE_VALUE_RANGE, label_space=label_space)
    return ExportGraph("classifier", model, [contract.INPUT_IMAGE], [JUDGE_IMAGE_SHAPE], [contract.OUTPUT_PROBS],
                       JUDGE_IMAGE_SHAPE, JUDGE_VALUE_RANGE, label_space=label_space)


def export_ta_classifier(checkpoint: str | os.PathLike, out: str | os.PathLike, *,
                         label_space: LabelSpace | None = None, features: bool = False, verify: bool = True,
                         fp16: bool = False, force: bool = False) -> ExportResult:
    """Export the TA's ``{'model': state_dict}`` file or a gen-eval classifier checkpoint.

    ``label_space`` (from --objects) overrides the one a gen-eval checkpoint records; a classifier
    needs one of the two, a features model takes it when given.
    """
    from gen_eval.trainers.judge import load_judge

    ensure_can_write(out, force)
    model, saved_space = load_judge(checkpoint)
    num_labels = model.fc[0].out_features
    space = label_space if label_space is not None else saved_space
    if space is not None and space.size != num_labels:
        where = "--objects" if label_space is not None else "the checkpoint's label space"
        raise UserError(f"{checkpoint} predicts {num_labels} labels but {where} has {space.size} names; "
                        "give the objects.json the classifier was trained with")
    if space is None and not features:
        raise UserError(f"{checkpoint} does not record its label names; pass --objects objects.json "
                        f"(the iCLEVR objects.json with the {num_labels} names it was trained on)")
    return export_graph(judge_graph(model, space, features=features), out, family=JUDGE_FAMILY,
                        verify=verify, fp16=fp16, force=force)
