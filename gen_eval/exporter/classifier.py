"""The iCLEVR judge (the reference ResNet18 file, or gen-eval's classifier checkpoint) -> ``classifier`` or ``features`` ONNX.

The graphs are the classifier family's own (``Classifier.export_graphs``), so the input contract
(64x64, [-1, 1]) and the names are defined once.
"""

from __future__ import annotations

import os

from gen_eval.data.labels import LabelSpace
from gen_eval.errors import UserError, param, render
from gen_eval.exporter.graphs import ExportResult, export_graph
from gen_eval.fileio import ensure_can_write


def export_ta_classifier(checkpoint: str | os.PathLike, out: str | os.PathLike, *,
                         label_space: LabelSpace | None = None, features: bool = False, verify: bool = True,
                         fp16: bool = False, force: bool = False) -> ExportResult:
    """Export the iCLEVR reference ResNet18 (a ``{'model': state_dict}`` file) or a gen-eval classifier checkpoint.

    ``label_space`` (from --objects) overrides the one a gen-eval checkpoint records; the classifier
    needs one of the two (its metadata names the labels), the ``features`` model takes it when given.
    """
    from gen_eval.trainers import get_family
    from gen_eval.trainers.judge import load_judge

    ensure_can_write(out, force)
    model, saved_space = load_judge(checkpoint)
    num_labels = model.fc[0].out_features
    space = label_space if label_space is not None else saved_space
    if space is not None and space.size != num_labels:
        where = render(param("objects")) if label_space is not None else "the checkpoint's label space"
        raise UserError(f"{checkpoint} predicts {num_labels} labels but {where} has {space.size} names; "
                        "give the objects.json the classifier was trained with")
    if space is None and not features:
        raise UserError(f"{checkpoint} does not record its label names; pass {param('objects', 'objects.json')} "
                        f"(the iCLEVR objects.json with the {num_labels} names it was trained on)")
    family_cls = get_family("classifier")
    family = family_cls(family_cls.resolve_config({}), space)
    role = "features" if features else "classifier"
    graph = next(g for g in family.export_graphs({"classifier": model}) if g.role == role)
    return export_graph(graph, out, family=family.name, verify=verify, fp16=fp16, force=force)
