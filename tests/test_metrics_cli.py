"""`gen-eval metrics` (and gen_eval.metrics): one feature pass, every metric, the same numbers as the
reference implementations on the same features; bad requests are one line."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from gen_eval.cli import cli
from helpers.browser import CHROMIUM, NO_CHROMIUM, PHONE_WIDTH, chromium, console_lines, phone_layout
from helpers.graphs import make_dense_head


def folder(path, seed: int, shift: int = 0, count: int = 60):
    path.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(np.clip(rng.integers(0, 256, (8, 8, 3)) + shift, 0, 255).astype(np.uint8)).save(path / f"{i:03d}.png")
    return path


def features_of(model_path, images_dir):
    from gen_eval.data.datasets import open_dataset
    from gen_eval.evaluator.features import features_of_uint8
    from gen_eval.evaluator.model import load_model

    model = load_model(model_path, role="features", device="cpu")
    images = open_dataset(images_dir, fmt="folder")
    return features_of_uint8(model, np.stack([images.image(i) for i in range(len(images))]).transpose(0, 3, 1, 2))


def test_metrics_equal_prdc_and_frechet_on_the_same_features(tmp_path):
    import prdc as prdc_package

    from gen_eval.evaluator.frechet import frechet_distance

    feats = make_dense_head(tmp_path / "f.onnx", role="features", out_dim=16, activation="Relu")
    gen, ref = folder(tmp_path / "gen", 1, shift=40), folder(tmp_path / "ref", 2)
    report = tmp_path / "m.json"
    result = CliRunner().invoke(cli, ["metrics", "--features", str(feats), "--data", str(gen), "--ref", str(ref),
                                      "--metrics", "fid,kid,prdc", "--prdc-k", "3", "--device", "cpu",
                                      "--report", str(report)])
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    g, r = features_of(feats, gen).astype(np.float64), features_of(feats, ref).astype(np.float64)
    expected = prdc_package.compute_prdc(real_features=r.astype(np.float32), fake_features=g.astype(np.float32),
                                         nearest_k=3)
    for key in ("precision", "recall", "density", "coverage"):
        assert data["prdc"][key] == pytest.approx(expected[key], abs=1e-12), key
    fd = frechet_distance(g.mean(0), np.cov(g, rowvar=False), r.mean(0), np.cov(r, rowvar=False))
    assert data["fid"]["fid"] == pytest.approx(fd, rel=1e-6)
    assert data["kid"]["subset_size"] == 60 and np.isfinite(data["kid"]["mean"])
    assert data["n"] == 60 and data["reference_n"] == 60 and len(data["provenance"]["inputs"]["features"]["sha256"]) == 64


def test_metrics_gates_and_fids_interval_match_the_fid_command(tmp_path):
    """Issue 25: `metrics` takes the gates of `fid`/`score`; FID carries `gen-eval fid`'s jackknife interval;
    a missed gate is `gate missed:` naming metric, value, interval, threshold (exit 1), not an error."""
    feats = make_dense_head(tmp_path / "f.onnx", role="features", out_dim=16, activation="Relu")
    gen, ref = folder(tmp_path / "gen", 1, shift=40), folder(tmp_path / "ref", 2)
    common = ["--features", str(feats), "--data", str(gen), "--ref", str(ref), "--device", "cpu"]
    alone = CliRunner().invoke(cli, ["fid", *common, "--report", str(tmp_path / "fid.json")])
    assert alone.exit_code == 0, alone.output
    expected = json.loads((tmp_path / "fid.json").read_text())["interval"]
    summary, report = tmp_path / "summary.md", tmp_path / "m.json"
    missed = CliRunner().invoke(cli, ["metrics", *common, "--metrics", "fid", "--max-fid", "0.001", "--min-recall",
                                      "0", "--confidence", "0.95", "--summary", str(summary),
                                      "--report", str(report)])
    assert missed.exit_code == 1, missed.output
    data = json.loads(report.read_text())
    assert "prdc" in data  # the recall gate computed its metric
    interval = data["fid"]["interval"]
    assert (interval["low"], interval["high"]) == (expected["low"], expected["high"]) and "jackknife" in interval["method"]
    last = missed.stderr.strip().splitlines()[-1]
    assert last.startswith("gate missed: fid ") and "is above --max-fid 0.001" in last and "error" not in missed.stderr
    assert f"[{interval['low']:.4f}, {interval['high']:.4f}]" in last
    assert "gate passed: recall" in missed.stdout and "meets --min-recall 0" in missed.stdout
    assert [g["passed"] for g in data["gates"]] == [False, True] and data["gates"][0]["threshold"] == 0.001
    text = summary.read_text()
    assert "**gate missed**: fid" in text and "is above 0.001" in text and "**gate passed**: recall" in text
    assert re.search(r"\| fid 95% interval \| \[[0-9.]+, [0-9.]+\] \(jackknife", text)
    passed = CliRunner().invoke(cli, ["metrics", *common, "--metrics", "fid", "--max-fid", "1e9"])
    assert passed.exit_code == 0 and "gate passed: fid" in passed.stdout and "fid 95% interval" in passed.stdout


@pytest.mark.parametrize("args, says", [
    (["--metrics", "kid,sharpness"], "unknown metric 'sharpness'"),
    (["--metrics", "is"], "logits"),
])
def test_bad_metric_requests_are_one_line(tmp_path, args, says):
    feats = make_dense_head(tmp_path / "f.onnx", role="features", out_dim=16, activation="Relu")
    gen, ref = folder(tmp_path / "gen", 1, count=8), folder(tmp_path / "ref", 2, count=8)
    result = CliRunner().invoke(cli, ["metrics", "--features", str(feats), "--data", str(gen), "--ref", str(ref),
                                      "--device", "cpu", *args])
    assert result.exit_code == 2 and says in result.stderr and "Traceback" not in result.output + result.stderr


def test_is_from_the_features_models_logits_equals_torch_fidelity(tmp_path):
    """IS reads the second output, ``logits``, from the same pass as the features: torch-fidelity's
    isc_features_to_metric on the model's own logits gives the same numbers (float64 both, rel 1e-10)."""
    import torch
    from torch_fidelity import metric_isc

    from gen_eval.data.datasets import open_dataset
    from gen_eval.evaluator.features import features_of_uint8
    from gen_eval.evaluator.model import load_model

    feats = make_dense_head(tmp_path / "f.onnx", role="features", out_dim=6, activation="Tanh", value_range="0,1",
                            logits_dim=12)
    gen = folder(tmp_path / "gen", 1, count=40)
    report = tmp_path / "is.json"
    result = CliRunner().invoke(cli, ["metrics", "--features", str(feats), "--data", str(gen), "--ref", str(gen),
                                      "--metrics", "is,kid", "--device", "cpu", "--report", str(report)])
    assert result.exit_code == 0, result.output
    images = open_dataset(gen, fmt="folder")
    _, logits = features_of_uint8(load_model(feats, role="features", device="cpu"),
                                  np.stack([images.image(i) for i in range(len(images))]).transpose(0, 3, 1, 2), True)
    expected = metric_isc.isc_features_to_metric(torch.from_numpy(logits), 10, True, 2020)
    data = json.loads(report.read_text())["is"]
    assert data["mean"] == pytest.approx(expected[metric_isc.KEY_METRIC_ISC_MEAN], rel=1e-10)
    assert data["std"] == pytest.approx(expected[metric_isc.KEY_METRIC_ISC_STD], rel=1e-8)


# -- conditional models: Fréchet distance per condition, memorisation, the HTML report --------------------

@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory):
    """A conditional generator sampled on the shapes set's train.json conditions, against its held-out
    split, with its training split for memorisation; the CLI runs once and writes JSON and HTML."""
    from gen_eval.data.shapes import write_shapes
    from helpers.graphs import make_generator

    root = tmp_path_factory.mktemp("conditional")
    shapes = write_shapes(root / "shapes", n_train=80, n_heldout=40)
    feats = make_dense_head(root / "f.onnx", role="features", out_dim=4, activation="Tanh", value_range="0,1")
    generator = make_generator(root / "g.onnx", labels=24)
    report, page = root / "r.json", root / "report.html"
    result = CliRunner().invoke(cli, [
        "metrics", "--features", str(feats), "--model", str(generator), "--conditions", str(shapes / "train.json"),
        "--n", "120", "--ref", str(shapes), "--ref-split", "heldout", "--train", str(shapes),
        "--metrics", "fid,kid,per-condition-fd,memorisation", "--min-count", "3", "--device", "cpu",
        "--report", str(report), "--html", str(page)])
    assert result.exit_code == 0, result.output
    return {"shapes": shapes, "features": feats, "generator": generator, "report": json.loads(report.read_text()),
            "html": page, "stdout": result.stdout}


def _set_features(feats, images_u8_nchw):
    from gen_eval.evaluator.features import features_of_uint8
    from gen_eval.evaluator.model import load_model

    return features_of_uint8(load_model(feats, role="features", device="cpu"), images_u8_nchw).astype(np.float64)


def _split(shapes, split):
    from gen_eval.api.inputs import image_set

    images = image_set(shapes, split)
    return np.stack([images.image(i) for i in range(len(images))]).transpose(0, 3, 1, 2), images.labels


def test_per_condition_fd_is_the_frechet_distance_of_each_conditions_images(conditional_run):
    """Each condition's FD equals the Fréchet distance of the rows carrying it (numpy mean and cov),
    with the N of each side; conditions with fewer than --min-count images on a side are listed as skipped."""
    from gen_eval.api.sample import sample
    from gen_eval.api.sources import Runtime
    from gen_eval.evaluator.frechet import frechet_distance

    run = conditional_run
    samples = sample(run["generator"], None, n=120, conditions=run["shapes"] / "train.json", seed=0, runtime=Runtime("cpu"))
    g = _set_features(run["features"], samples.images)
    heldout, r_labels = _split(run["shapes"], "heldout")
    r = _set_features(run["features"], heldout)
    result = run["report"]["per-condition-fd"]
    names = json.loads((run["shapes"] / "objects.json").read_text())
    assert result["min_count"] == 3 and len(result["per_label"]) + len(result["skipped"]) == 24
    for entry in result["per_label"]:
        j = names[entry["label"]]
        gi, ri = samples.labels[:, j] > 0.5, r_labels[:, j] > 0.5
        assert (entry["n_generated"], entry["n_reference"]) == (gi.sum(), ri.sum())
        expected = frechet_distance(g[gi].mean(0), np.cov(g[gi], rowvar=False), r[ri].mean(0), np.cov(r[ri], rowvar=False))
        assert entry["fd"] == pytest.approx(expected, rel=1e-6, abs=1e-9), entry["label"]
    for entry in result["skipped"]:
        assert min(entry["n_generated"], entry["n_reference"]) < 3
    assert result["mean_fd"] == pytest.approx(np.mean([e["fd"] for e in result["per_label"]]))
    assert "fd red cube" in run["stdout"] or "skipped" in run["stdout"]


def test_memorisation_against_nearest_neighbours_of_scikit_learn(conditional_run):
    """d(g) to the nearest training image, the held-out threshold and the closest pairs, as
    sklearn.neighbors.NearestNeighbors finds them on the same features."""
    from sklearn.neighbors import NearestNeighbors

    from gen_eval.api.sample import sample
    from gen_eval.api.sources import Runtime

    run = conditional_run
    samples = sample(run["generator"], None, n=120, conditions=run["shapes"] / "train.json", seed=0, runtime=Runtime("cpu"))
    g = _set_features(run["features"], samples.images)
    h = _set_features(run["features"], _split(run["shapes"], "heldout")[0])
    t = _set_features(run["features"], _split(run["shapes"], "train")[0])
    index = NearestNeighbors(n_neighbors=1).fit(t)
    d_g, j_g = (a[:, 0] for a in index.kneighbors(g))
    d_h = index.kneighbors(h)[0][:, 0]
    memo = run["report"]["memorisation"]
    threshold = np.percentile(d_h, 5)
    assert memo["threshold"] == pytest.approx(threshold, rel=1e-5)
    assert memo["fraction_closer"] == pytest.approx((d_g < threshold).mean(), abs=1 / 120 + 1e-12)
    assert (memo["n_generated"], memo["n_heldout"], memo["n_train"]) == (120, 40, 80)
    first_g, first_t, first_d = memo["closest"][0]
    assert first_d == pytest.approx(d_g.min(), rel=1e-5) and first_t == j_g[first_g]
    assert [d for _, _, d in memo["closest"]] == sorted(d for _, _, d in memo["closest"])


@pytest.mark.parametrize("args, says", [
    (["--metrics", "memorisation"], "--train"),
    (["--metrics", "kid", "--train", "{ref}"], "memorisation"),
    (["--metrics", "per-condition-fd"], "labels"),
    (["--metrics", "memorisation", "--train", "{ref}"], "held-out"),
])
def test_conditional_metric_requests_without_their_inputs_are_one_line(tmp_path, args, says):
    feats = make_dense_head(tmp_path / "f.onnx", role="features", out_dim=4, activation="Relu")
    gen, ref = folder(tmp_path / "gen", 1, count=8), folder(tmp_path / "ref", 2, count=8)
    args = [a.format(ref=ref) for a in args]
    result = CliRunner().invoke(cli, ["metrics", "--features", str(feats), "--data", str(gen), "--ref", str(ref),
                                      "--device", "cpu", *args])
    assert result.exit_code == 2 and says in result.stderr and "Traceback" not in result.output + result.stderr


def test_html_metrics_table_shows_fids_interval_where_its_spread_goes(conditional_run):
    """Issue 25: FID's row of the metrics table holds its jackknife interval, not an empty cell."""
    page = conditional_run["html"].read_text(encoding="utf-8")
    fid = conditional_run["report"]["fid"]
    interval = fid["interval"]
    assert np.isfinite(interval["low"]) and interval["low"] < fid["fid"] < interval["high"]
    assert (f"<td>FID</td><td class=num><b>{fid['fid']:.6g}</b></td><td>95% interval [{interval['low']:.6g}, "
            f"{interval['high']:.6g}] ({interval['method']})</td>") in page


@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
def test_html_report_renders_in_headlesschromium(conditional_run, tmp_path):
    """One self-contained file: no external references; in a real browser its DOM holds the title, the
    metrics, the per-condition table with N, the provenance, every picture decoded, and the
    screenshot is a page, not a blank."""
    page = conditional_run["html"]
    text = page.read_text(encoding="utf-8")
    assert "<script" not in text and not re.search(r"""(src|href)=["']?(https?:|file:|/)""", text)
    dom = chromium("--dump-dom", page.as_uri(), profile=tmp_path / "profile").stdout
    report = conditional_run["report"]
    assert "<title>gen-eval metrics report</title>" in dom
    for words in ("Fréchet distance per condition", "Memorisation", "Provenance", "closest pairs",
                  f"{report['fid']['fid']:.6g}", f"{report['kid']['mean']:.6g}",
                  report["provenance"]["inputs"]["features"]["sha256"]):
        assert words in dom, words
    first = report["per-condition-fd"]["per_label"][0]
    assert re.search(rf"<td>{re.escape(first['label'])}</td><td class=\"num\">{first['fd']:.6g}</td>"
                     rf"<td class=\"num\">{first['n_generated']}</td>", dom)
    assert dom.count('src="data:image/png;base64,') == len(re.findall(r"<img ", text)) >= 2
    # issue 25: per condition, real images of the same condition beside the generated ones, captioned once
    figures = re.findall(r"<figcaption>(.*?)</figcaption>", dom)
    per_condition = [f for f in figures if "generated images, the first" in f]
    assert per_condition and all("real ones, the first" in f and "bottom row" in f for f in per_condition), figures
    assert len(set(figures)) == len(figures)
    assert any("distinct training image" in f for f in figures)
    shot = tmp_path / "report.png"
    chromium("--window-size=1200,3000", f"--screenshot={shot}", page.as_uri(), profile=tmp_path / "profile")
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.shape == (3000, 1200)
    ink = pixels < 128
    assert 0.01 < ink.mean() < 0.5  # text and pictures on white, not an empty or all-black page
    assert ink[:300].any() and ink[2000:].any()  # the title at the top, the tables and pictures below


@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
def test_html_report_fits_a_phone_and_logs_nothing_to_the_console(conditional_run, tmp_path):
    """At a phone's width the page scrolls down only (wide tables scroll inside themselves), it asks phones
    to lay it out at their own width, and the browser console stays empty."""
    layout = phone_layout(conditional_run["html"], tmp_path / "phone")
    assert layout["clientWidth"] == PHONE_WIDTH and layout["scrollWidth"] <= PHONE_WIDTH, layout
    assert layout["viewport"] is not None and "width=device-width" in layout["viewport"], layout
    assert console_lines(conditional_run["html"], tmp_path / "profile") == []


# -- the reference side cached -----------------------------------------------------------------------------

def test_reference_features_are_cached_by_content(tmp_path, monkeypatch):
    """Issue 26: a second `metrics` run on the same reference reads its features from the cache (the
    features model never sees the reference images again) and gives the same numbers; a changed reference
    file recomputes; --no-cache recomputes and keeps nothing; `stats clear-cache` empties it."""
    from gen_eval.evaluator import features as features_module

    cache = tmp_path / "cache"
    monkeypatch.setenv("GEN_EVAL_CACHE", str(cache))
    passes = []
    original = features_module.imageset_stats

    def counted(model, images, **kwargs):
        passes.append(str(images.source))
        return original(model, images, **kwargs)

    monkeypatch.setattr(features_module, "imageset_stats", counted)
    feats = make_dense_head(tmp_path / "f.onnx", role="features", out_dim=16, activation="Relu")
    gen, ref = folder(tmp_path / "gen", 1, shift=40, count=30), folder(tmp_path / "ref", 2, count=30)

    def run(*extra):
        passes.clear()
        report = tmp_path / "m.json"
        result = CliRunner().invoke(cli, ["metrics", "--features", str(feats), "--data", str(gen), "--ref", str(ref),
                                          "--metrics", "fid,kid,prdc", "--prdc-k", "3", "--device", "cpu",
                                          "--report", str(report), "--force", *extra])
        assert result.exit_code == 0, result.output
        data = json.loads(report.read_text())
        return {key: data[key] for key in ("fid", "kid", "prdc", "reference_n")}, [p for p in passes if p == str(ref)]

    first, ref_passes = run()
    assert len(ref_passes) == 1
    (entry,) = (cache / "stats").glob("*.npz")
    assert (cache / "stats" / f"{entry.stem}.features.npy").is_file()
    again, ref_passes = run()
    assert again == first and ref_passes == []  # every metric, interval included, from the cached features
    fresh, ref_passes = run("--no-cache")
    assert fresh == first and len(ref_passes) == 1 and len(list((cache / "stats").glob("*.npz"))) == 1

    Image.fromarray(np.full((8, 8, 3), 7, np.uint8)).save(ref / "000.png")  # same name, new content
    moved, ref_passes = run()
    assert moved != first and len(ref_passes) == 1
    (newest,) = set((cache / "stats").glob("*.npz")) - {entry}
    (cache / "stats" / f"{newest.stem}.features.npy").write_bytes(b"damaged")  # recomputed, never used
    recomputed, ref_passes = run()
    assert recomputed == moved and len(ref_passes) == 1

    cleared = CliRunner().invoke(cli, ["stats", "clear-cache"])
    assert cleared.exit_code == 0 and "removed 4 cached statistics/features files" in cleared.output
    assert list((cache / "stats").iterdir()) == []
