"""What a person reads in a score page (issue 25): the counts of the breakdown say what they count
(conditions x seeds), and recalls and scores read in one format; rendered in headless Chromium too."""

from __future__ import annotations

import re

import numpy as np
import pytest

from gen_eval.api.reports import Report
from gen_eval.data.labels import LabelSpace
from gen_eval.evaluator.breakdown import multilabel_breakdown
from gen_eval.evaluator.html_report import render_report_html
from gen_eval.evaluator.uncertainty import Interval
from helpers.browser import CHROMIUM, NO_CHROMIUM, chromium

SPACE = LabelSpace.multilabel(["red cube", "blue cube", "red sphere", "gray cylinder"])


def score_report(seeds: int = 2) -> Report:
    """Three conditions scored over ``seeds`` seeds: 'red cube' is found in 1 of its 3 x seeds requests
    on seed 0 only, 'gray cylinder' never, 'red sphere' always."""
    conditions = np.array([[1, 0, 1, 0], [1, 0, 0, 1], [1, 0, 0, 0]], np.float64)
    found = np.array([[0.9, 0.1, 0.8, 0.0], [0.1, 0.9, 0.3, 0.2], [0.1, 0.9, 0.0, 0.0]])  # seed 0
    missed = np.array([[0.1, 0.9, 0.8, 0.0], [0.1, 0.9, 0.3, 0.2], [0.1, 0.9, 0.0, 0.0]])  # other seeds
    probs = np.concatenate([found] + [missed] * (seeds - 1))
    view = multilabel_breakdown(probs, np.tile(conditions, (seeds, 1)), SPACE)
    return Report("classifier_score", 0.3, 3, seed=0, interval=Interval(0.3, 0.1, 0.5, 0.95, "test"),
                  settings={"n": 3, "repeats": seeds, "seed": 0}, breakdown=view)


def per_label_rows(page: str) -> dict[str, list[str]]:
    table = page[page.index("Per label, weakest first"):]
    table = table[: table.index("</table>")]
    return {cells[0]: cells[1:] for cells in
            (re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", table)) if cells}


def test_score_page_says_what_requested_counts_and_prints_every_recall_one_way():
    page = render_report_html(score_report(seeds=2))
    assert ("each seed makes one image per condition of the file, so a label that c of a seed's images ask for "
            "is requested c × 2 times") in page
    assert "<th>requested</th><th>found</th><th>recall</th>" in page
    rows = per_label_rows(page)
    # red cube: asked by 3 conditions x 2 seeds, found once; gray cylinder: never; red sphere: both times
    assert rows["red cube"][:3] == ["6", "1", "0.167"]
    assert rows["gray cylinder"][:3] == ["2", "0", "0.000"]
    assert rows["red sphere"][:3] == ["2", "2", "1.000"]
    scores = re.findall(r"<td class=num>([^<]*)</td></tr>", page[page.index("By number of requested labels"):])
    assert scores and all(re.fullmatch(r"\d\.\d{3}", s) for s in scores), scores


def test_score_page_names_cycled_conditions():
    report = score_report(seeds=1)
    report.settings["n"] = 7
    report.details["condition_rows"] = 3
    page = render_report_html(report)
    assert "over all 1 noise seed: each seed makes 7 images, the file's 3 conditions cycled (image i for row i mod 3)" \
        in page


@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
def test_score_page_counts_read_the_same_in_a_browser(tmp_path):
    page = tmp_path / "score.html"
    page.write_text(render_report_html(score_report(seeds=3)), encoding="utf-8")
    dom = chromium("--dump-dom", page.as_uri(), profile=tmp_path / "profile").stdout
    assert "requested c × 3 times" in dom
    assert re.search(r"<td>gray cylinder</td><td class=\"num\">3</td><td class=\"num\">0</td>"
                     r"<td class=\"num\">0\.000</td>", dom)
