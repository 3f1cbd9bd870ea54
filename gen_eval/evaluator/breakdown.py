"""Where a conditional generator fails: per-label, per-size and worst-condition views of a classifier score.

Inputs are the judge's probabilities and the requested conditions of every generated image (all
noise seeds stacked), so each view is computed with the same top-k rule as the score itself
(:mod:`gen_eval.evaluator.score`): for multilabel spaces, a requested label counts as found when it
is among the image's top-k labels (k = number of requested labels).
"""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np

from gen_eval.data.labels import LabelSpace


def _top_k_mask(probs: np.ndarray, ks: np.ndarray) -> np.ndarray:
    order = np.argsort(-probs, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(probs.shape[1])[None, :].repeat(len(probs), 0), axis=1)
    return ranks < ks[:, None]


def multilabel_breakdown(probs: np.ndarray, conditions: np.ndarray, label_space: LabelSpace, *,
                         worst: int = 5) -> dict:
    """Per-label recall and what was predicted instead, the score by number of objects, the worst conditions."""
    probs, conditions = np.asarray(probs, np.float64), np.asarray(conditions) > 0.5
    ks = conditions.sum(1)
    chosen = _top_k_mask(probs, ks)
    names = list(label_space.names)
    per_label = {}
    for j, name in enumerate(names):
        asked = conditions[:, j]
        if not asked.any():
            continue
        missed = asked & ~chosen[:, j]
        instead = Counter()
        for row in np.flatnonzero(missed):
            instead.update(names[i] for i in np.flatnonzero(chosen[row] & ~conditions[row]))
        per_label[name] = {"requested": int(asked.sum()), "recall": float(chosen[asked, j].mean()),
                           "predicted_instead": dict(instead.most_common(3))}
    hits = (chosen & conditions).sum(1)
    by_objects = {}
    for k in sorted(set(ks.tolist())):
        rows = ks == k
        by_objects[str(k)] = {"images": int(rows.sum()), "score": float(hits[rows].sum() / ks[rows].sum())}
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, row in enumerate(conditions):
        groups[tuple(np.flatnonzero(row))].append(i)
    ranked = sorted(groups.items(), key=lambda item: (hits[item[1]].sum() / ks[item[1]].sum(), item[0]))
    worst_conditions = [{"labels": [names[j] for j in key], "images": len(rows),
                         "score": float(hits[rows].sum() / ks[rows].sum())} for key, rows in ranked[:worst]]
    return {"per_label": per_label, "by_objects": by_objects, "worst_conditions": worst_conditions}


def categorical_breakdown(probs: np.ndarray, conditions: np.ndarray, label_space: LabelSpace) -> dict:
    """Per head: accuracy, and per value its recall and the value most often predicted instead."""
    probs, conditions = np.asarray(probs, np.float64), np.asarray(conditions)
    heads = {}
    for head, sl in label_space.head_slices():
        values = list(dict(label_space.heads)[head])
        predicted, wanted = probs[:, sl].argmax(1), conditions[:, sl].argmax(1)
        per_value = {}
        for v, value in enumerate(values):
            rows = wanted == v
            if not rows.any():
                continue
            wrong = Counter(values[p] for p in predicted[rows] if p != v)
            per_value[value] = {"requested": int(rows.sum()), "recall": float((predicted[rows] == v).mean()),
                                "predicted_instead": dict(wrong.most_common(2))}
        heads[head] = {"accuracy": float((predicted == wanted).mean()), "per_value": per_value}
    return {"per_head": heads}


def breakdown(probs: np.ndarray, conditions: np.ndarray, label_space: LabelSpace | None) -> dict:
    """The view for the label space's kind (none for a binary attribute: the score is its accuracy)."""
    if label_space is None or label_space.kind == "multilabel":
        space = label_space or LabelSpace.multilabel([str(i) for i in range(np.asarray(conditions).shape[1])])
        return multilabel_breakdown(probs, conditions, space)
    if label_space.kind == "categorical":
        return categorical_breakdown(probs, conditions, label_space)
    return {}


def breakdown_table(view: dict, rows: int = 8) -> str:
    """A compact text table of the weakest labels (or values) and the worst conditions."""
    lines = []
    if "per_label" in view:
        weakest = sorted(view["per_label"].items(), key=lambda kv: kv[1]["recall"])[:rows]
        lines.append("weakest labels (recall in top-k; predicted instead):")
        lines += [f"  {name:<24} {info['recall']:.3f} of {info['requested']:<5} "
                  + ", ".join(f"{k} x{v}" for k, v in info["predicted_instead"].items()) for name, info in weakest]
        lines.append("by number of objects: " + ", ".join(f"{k}: {v['score']:.3f} ({v['images']})"
                                                          for k, v in view["by_objects"].items()))
        lines.append("worst conditions: " + "; ".join(f"{'+'.join(c['labels'])} {c['score']:.3f}"
                                                     for c in view["worst_conditions"]))
    for head, info in view.get("per_head", {}).items():
        weak = sorted(info["per_value"].items(), key=lambda kv: kv[1]["recall"])[:3]
        lines.append(f"{head}: accuracy {info['accuracy']:.3f}; weakest "
                     + ", ".join(f"{v} {d['recall']:.3f}" for v, d in weak))
    return "\n".join(lines)


__all__ = ["breakdown", "breakdown_table", "categorical_breakdown", "multilabel_breakdown"]
