"""Reports as one self-contained HTML file: no scripts, no external files; pictures are PNG data URIs,
every string from inputs is escaped. Written atomically, never over a file without force.

Two kinds: the metrics suite's report (:func:`render_metrics_html`) and any one-number job's report
(:class:`gen_eval.api.reports.Report`: score, fid, mse; :func:`render_report_html`), which shows its
warnings first, the value with its interval, the score's breakdown and pictures, and the provenance."""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path

from gen_eval.fileio import atomic_path, ensure_can_write

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px;overflow-wrap:anywhere}
@media (max-width:600px){body{margin:.8em}}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0;display:block;overflow-x:auto;max-width:100%}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}figure{margin:1em 0}
figcaption{font-size:.9em;color:#555}img{image-rendering:pixelated;max-width:100%}
pre{background:#f6f6f6;padding:.8em;overflow-x:auto;font-size:.85em}.warn{color:#a40}
"""

# metric -> its headline rows: (label, value key, spread key or None, how the spread is made, settings keys)
_HEADLINES = {
    "fid": [("FID", "fid", None, "", ())],
    "kid": [("KID", "mean", "std", "± std over subsets", ("subsets", "subset_size"))],
    "is": [("Inception Score", "mean", "std", "± std over splits", ("splits",))],
    "prdc": [(name, name.lower(), None, "", ("k",)) for name in ("Precision", "Recall", "Density", "Coverage")],
    "fid-inf": [("FID∞", "fid_inf", None, "", ("slope",))],
    "per-condition-fd": [("FD per condition (mean)", "mean_fd", None, "", ("min_count",))],
    "memorisation": [("memorisation: fraction closer than held-out", "fraction_closer", None, "",
                      ("percentile", "threshold"))],
}


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _number(value) -> str:
    if value is None:
        return "none"
    return f"{value:.6g}" if isinstance(value, float) else _e(value)


def png_data_uri(image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _interval_cell(interval) -> str:
    """An interval as the spread column shows it: its bounds and how it was made, or why there is none."""
    if not math.isfinite(interval.low):
        return f"none: {_e(interval.method)}"
    return (f"{interval.confidence:.0%} interval [{_number(float(interval.low))}, {_number(float(interval.high))}] "
            f"({_e(interval.method)})")


def _metrics_table(report) -> str:
    rows = []
    intervals = getattr(report, "intervals", None) or {}
    for name, result in report.results.items():
        values = result.to_dict()
        n = values.get("n_generated", values.get("n", report.n_generated))
        n_ref = values.get("n_reference", values.get("n_heldout", ""))
        for label, key, spread, how, settings in _HEADLINES.get(name, [(name, None, None, "", ())]):
            value = _number(values.get(key)) if key else ""
            interval = f"± {_number(values[spread])} ({_e(how[2:])})" if spread else ""
            if name in intervals:
                interval = _interval_cell(intervals[name])
            detail = ", ".join(f"{k} {_number(values[k])}" for k in settings if k in values)
            rows.append(f"<tr><td>{_e(label)}</td><td class=num><b>{value}</b></td><td>{interval}</td>"
                        f"<td class=num>{_e(n)}</td><td class=num>{_e(n_ref)}</td><td>{detail}</td></tr>")
    return ("<table><tr><th>metric</th><th>value</th><th>interval or spread</th><th>N generated</th>"
            "<th>N reference</th><th>settings</th></tr>" + "".join(rows) + "</table>")


def _condition_table(result) -> str:
    rows = [f"<tr><td>{_e(c.label)}</td><td class=num>{_number(c.fd)}</td><td class=num>{c.n_generated}</td>"
            f"<td class=num>{c.n_reference}</td></tr>" for c in result.per_label]
    rows += [f"<tr><td>{_e(c.label)}</td><td>skipped (fewer than {result.min_count} images)</td>"
             f"<td class=num>{c.n_generated}</td><td class=num>{c.n_reference}</td></tr>" for c in result.skipped]
    mean = _number(result.mean_fd) if result.mean_fd is not None else "none"
    return (f"<p>Mean over {len(result.per_label)} conditions: <b>{mean}</b></p>"
            "<table><tr><th>condition</th><th>FD</th><th>N generated</th><th>N reference</th></tr>"
            + "".join(rows) + "</table>")


def _memorisation_table(result) -> str:
    rows = "".join(f"<tr><td class=num>{g}</td><td class=num>{t}</td><td class=num>{d:.6g}</td></tr>"
                   for g, t, d in result.closest)
    return (f"<p>{result.fraction_closer:.2%} of {result.n_generated} generated images are closer to a training "
            f"image than the {result.percentile:g}th percentile ({result.threshold:.4g}) of held-out real images "
            f"({result.n_heldout}) are; about {result.percentile:g}% is expected from a model that does not copy. "
            f"Median distance: generated {result.median:.4g}, held-out {result.median_heldout:.4g} "
            f"({result.n_train} training images).</p>"
            "<table><tr><th>generated</th><th>nearest training image</th><th>distance</th></tr>" + rows + "</table>")


def _page(title: str, parts: list[str]) -> str:
    return ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            "<meta name=viewport content='width=device-width,initial-scale=1'>"
            f"<title>{_e(title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{_e(title)}</h1>" + "".join(parts) + "</body></html>\n")


def _warnings(warnings) -> list[str]:
    return [f"<p class=warn><b>warning: {_e(w)}</b></p>" for w in warnings]


def _pictures(pictures: dict) -> str:
    if not pictures:
        return ""
    figures = [f"<figure><img alt=\"{_e(title)}\" src=\"{png_data_uri(image)}\" width={image.width} "
               f"height={image.height}><figcaption>{_e(title)}</figcaption></figure>"
               for title, image in pictures.items()]
    return "<h2>Pictures</h2>" + "".join(figures)


def _provenance(provenance: dict) -> str:
    return "<h2>Provenance</h2><pre>" + _e(json.dumps(provenance, indent=2, default=str)) + "</pre>"


def render_metrics_html(report) -> str:
    parts = [f"<p>{report.n_generated} generated images ({_e(report.provenance.get('images', ''))}) against "
             f"{report.n_reference} reference images; features {_e(report.provenance.get('features_model', ''))}.</p>"]
    parts += _warnings(report.warnings)
    parts.append("<h2>Metrics</h2>" + _metrics_table(report))
    if "per-condition-fd" in report.results:
        parts.append("<h2>Fréchet distance per condition</h2>" + _condition_table(report.results["per-condition-fd"]))
    if "memorisation" in report.results:
        parts.append("<h2>Memorisation</h2>" + _memorisation_table(report.results["memorisation"]))
    parts += [_pictures(report.pictures), _provenance(report.provenance)]
    return _page("gen-eval metrics report", parts)


def _table(header: list[str], rows: list[list], numeric: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td class=num>{_number(v)}</td>" if i in numeric else f"<td>{_e(v)}</td>"
                                    for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _instead(counts: dict) -> str:
    return ", ".join(f"{name} ({count})" for name, count in counts.items()) or "-"


def _fraction(value: float) -> str:
    """Recalls and scores in one format (three decimals), so 0 and 1/3 read alike: 0.000, 0.333."""
    return f"{value:.3f}"


def _recall_rows(per_value: dict) -> list[list]:
    """[name, requested, found, recall] weakest first; found = recall x requested (recall is found / requested)."""
    return [[name, v["requested"], round(v["recall"] * v["requested"]), _fraction(v["recall"]),
             _instead(v["predicted_instead"])]
            for name, v in sorted(per_value.items(), key=lambda item: item[1]["recall"])]


def _breakdown(view: dict, seeds: int = 1, per_seed: int | None = None, condition_rows: int | None = None) -> str:
    """The score's breakdown (gen_eval.evaluator.breakdown) as tables; ``seeds``: the noise seeds it pools,
    ``per_seed`` images each, made for the file's ``condition_rows`` conditions (cycled when more)."""
    parts = []
    if per_seed is None or condition_rows is None or per_seed == condition_rows:
        made = "one image per condition of the file"
    else:
        made = (f"{per_seed} images, the file's {condition_rows} conditions cycled (image i for row i mod "
                f"{condition_rows})")
    parts.append(f"<p>Counts are images over all {seeds} noise seed{'s' if seeds != 1 else ''}: each seed makes "
                 f"{made}, so a label that c of a seed's images ask for is requested c × {seeds} times. "
                 "<i>found</i>: requested labels the judge put among an image's top k (k = the labels its "
                 "condition asks for); <i>recall</i> = found / requested.</p>")
    recall_header = ["requested", "found", "recall", "read instead"]
    if "per_label" in view:
        parts.append("<h3>Per label, weakest first</h3>" +
                     _table(["label", *recall_header], _recall_rows(view["per_label"]), {1, 2, 3}))
    if "by_objects" in view:
        rows = [[k, v["images"], _fraction(v["score"])] for k, v in view["by_objects"].items()]
        parts.append("<h3>By number of requested labels</h3>" + _table(["labels", "images", "score"], rows, {1, 2}))
    if "worst_conditions" in view:
        rows = [[", ".join(v["labels"]), v["images"], _fraction(v["score"])] for v in view["worst_conditions"]]
        parts.append("<h3>Worst conditions</h3>" + _table(["condition", "images", "score"], rows, {1, 2}))
    for head, v in view.get("per_head", {}).items():
        parts.append(f"<h3>{_e(head)}: accuracy {_fraction(v['accuracy'])}, weakest first</h3>" +
                     _table(["value", *recall_header], _recall_rows(v["per_value"]), {1, 2, 3}))
    return "<h2>Where it fails</h2>" + "".join(parts) if len(parts) > 1 else ""


def render_report_html(report, pictures: dict | None = None) -> str:
    """A one-number job's report (score, fid, mse): warnings first, then the value and its interval."""
    rows = [[key, value] for key, value in report.rows()]
    parts = _warnings(report.warnings)
    parts.append("<h2>Result</h2>" + _table(["field", "value"], rows))
    if report.breakdown:
        per_seed = report.settings.get("n")
        parts.append(_breakdown(report.breakdown, int(report.settings.get("repeats", 1)), per_seed,
                                report.details.get("condition_rows", per_seed)))
    parts.append("<h2>Settings</h2>" + _table(["setting", "value"], [[k, v] for k, v in report.settings.items()]))
    parts += [_pictures(pictures or {}), _provenance(report.provenance)]
    return _page(f"gen-eval {report.metric} report", parts)


def _write(path, text: str, force: bool) -> Path:
    path = ensure_can_write(path, force)
    with atomic_path(path, force=force) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    return path


def write_metrics_html(report, path, force: bool = False) -> Path:
    return _write(path, render_metrics_html(report), force)


def write_report_html(report, path, pictures: dict | None = None, force: bool = False) -> Path:
    return _write(path, render_report_html(report, pictures), force)
