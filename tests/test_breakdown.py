"""Per-condition views of the classifier score, checked on hand-made probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from gen_eval.data.labels import LabelSpace
from gen_eval.evaluator.breakdown import breakdown, breakdown_table
from gen_eval.evaluator.score import score_probs

SPACE = LabelSpace.multilabel(["red cube", "blue cube", "red sphere"])


def test_multilabel_views_follow_the_top_k_rule():
    conditions = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 0, 1]], dtype=np.float32)
    probs = np.array([[0.9, 0.1, 0.2],    # red cube asked, found
                      [0.8, 0.1, 0.7],    # red cube + blue cube asked: top-2 = red cube, red sphere
                      [0.2, 0.9, 0.1],    # red sphere asked, blue cube chosen
                      [0.1, 0.2, 0.6]])   # red sphere found
    view = breakdown(probs, conditions, SPACE)
    assert view["per_label"]["red cube"] == {"requested": 2, "recall": 1.0, "predicted_instead": {}}
    assert view["per_label"]["blue cube"] == {"requested": 1, "recall": 0.0, "predicted_instead": {"red sphere": 1}}
    assert view["per_label"]["red sphere"] == {"requested": 2, "recall": 0.5, "predicted_instead": {"blue cube": 1}}
    assert view["by_objects"] == {"1": {"images": 3, "score": pytest.approx(2 / 3)}, "2": {"images": 1, "score": 0.5}}
    worst = view["worst_conditions"][0]
    assert worst == {"labels": ["red cube", "blue cube"], "images": 1, "score": 0.5}
    # the views add up to the score itself
    hits = sum(v["score"] * int(k) * v["images"] for k, v in view["by_objects"].items())
    assert hits / conditions.sum() == pytest.approx(score_probs(probs, conditions, SPACE).value)
    assert "blue cube" in breakdown_table(view).splitlines()[1]


def test_categorical_views_per_head_and_value():
    space = LabelSpace.categorical({"hair": ["black", "blond"], "glasses": ["no", "yes"]})
    conditions = np.array([[1, 0, 1, 0], [0, 1, 1, 0], [0, 1, 0, 1]], dtype=np.float32)
    probs = np.array([[0.9, 0.1, 0.8, 0.2], [0.7, 0.3, 0.6, 0.4], [0.2, 0.8, 0.9, 0.1]])
    view = breakdown(probs, conditions, space)["per_head"]
    assert view["hair"]["accuracy"] == pytest.approx(2 / 3)
    assert view["hair"]["per_value"]["blond"] == {"requested": 2, "recall": 0.5, "predicted_instead": {"black": 1}}
    assert view["glasses"]["per_value"]["yes"]["recall"] == 0.0
