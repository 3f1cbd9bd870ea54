"""Hostile input, round 3, item 4 (issue 24): the attack on what is new since round 2. Each test is named by
the class of attack it keeps out; every refusal is one ``error:`` line, exit 2, and leaves the inputs as
they were.

Classes: forged score reports given to ``compare``; ``--summary`` files that are inputs, FIFOs or links;
project files (type confusion, a file planted in a parent folder, control characters); HTML pages (script
through label names, file names, metadata); the judge-in-training record (whose word it is); image
inputs (palette transparency, EXIF, CMYK, 16-bit, animated, truncated, symbolic-link loops); model
outputs whose rows do not follow the batch; statistics whose halves disagree; shard specs in other
scripts' digits; a Ray address that does not answer; two runs writing one sample folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import warnings
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from gen_eval import contract
from gen_eval.errors import UserError
from helpers.assets import CARTOON_SPACE, Assets, build_assets
from helpers.cli import error_line, run_gen_eval
from helpers.graphs import make_dense_head, make_generator


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> Assets:
    return build_assets(tmp_path_factory.mktemp("attack-assets"))


def refused(args: list, *fragments: str) -> str:
    """Run ``gen-eval ARGS`` in this process; assert exit 2 and one error line holding every fragment."""
    code, stdout, stderr = run_gen_eval(args, process=False)
    assert code == 2, (code, stdout, stderr)
    line = error_line(stderr)
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    return line


def digest(*paths: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


# -- forged score reports given to compare ------------------------------------------------------------------
@pytest.fixture(scope="module")
def score_report(assets, tmp_path_factory) -> Path:
    report = tmp_path_factory.mktemp("score") / "score.json"
    code, _, stderr = run_gen_eval(["score", "--model", assets.gen_cond, "--test", assets.test_json, "--classifier",
                                    assets.classifier, "--repeats", 2, "--device", "cpu", "--report", report],
                                   process=False)
    assert code == 0, stderr
    return report


def _nan_hits(r):
    r["hits"] = [[float("nan")] * len(r["ks"])] * len(r["hits"])


FORGERIES = {
    "value NaN": (lambda r: r.update(value=float("nan")), "not a finite number"),
    "value Infinity": (lambda r: r.update(value=float("inf")), "not a finite number"),
    "value its hits do not give": (lambda r: r.update(value=0.99), "is not the"),
    "value a string": (lambda r: r.update(value="high"), "not a finite number"),
    "hits above k": (lambda r: r.update(hits=[[k + 3 for k in r["ks"]]] * len(r["hits"])), "outside 0..k"),
    "hits negative": (lambda r: r.update(hits=[[-1] * len(r["ks"])] * len(r["hits"])), "outside 0..k"),
    "hits NaN": (_nan_hits, "not a whole number"),
    "hits fractional": (lambda r: r.update(hits=[[0.5] * len(r["ks"])] * len(r["hits"])), "not a whole number"),
    "hits strings": (lambda r: r.update(hits=[["a"] * len(r["ks"])] * len(r["hits"])), "not a whole number"),
    "hits ragged": (lambda r: r.update(hits=[[0], [0] * len(r["ks"])]), "rows of different lengths"),
    "hits for more seeds than it names": (lambda r: r.update(hits=r["hits"] * 3), "rows of hits for 2 seeds"),
    "ks zero": (lambda r: r.update(ks=[0] * len(r["ks"]), hits=[[0] * len(r["ks"])] * len(r["hits"]), value=0.0),
                "k < 1"),
    "ks a string": (lambda r: r.update(ks="abcd"), "'ks' is not a list"),
    "no provenance": (lambda r: r.pop("provenance"), "records no judge"),
    "provenance a list": (lambda r: r.update(provenance=[1, 2]), "records no judge"),
    "metric NaN": (lambda r: r.update(metric=float("nan")), "metric nan (a number, not a name)"),
    "metric missing": (lambda r: r.update(metric=None), "has no metric field"),
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_forged_score_report_is_refused_by_compare(forgery, score_report, tmp_path):
    report = json.loads(score_report.read_text())
    edit, fragment = FORGERIES[forgery]
    edit(report)
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(report))  # json writes NaN / Infinity as JavaScript does, and reads them back
    before = digest(forged, score_report)
    line = refused(["compare", forged, score_report], fragment)
    assert "None report" not in line
    refused(["compare", score_report, forged], fragment.replace("new", "baseline"))
    assert digest(forged, score_report) == before


def test_forged_score_report_is_refused_by_the_python_api(score_report):
    import gen_eval

    report = json.loads(score_report.read_text())
    with pytest.raises(UserError, match="is not the"):
        gen_eval.compare(dict(report, value=1.0), report)


def test_genuine_reports_still_compare_multilabel_and_categorical(assets, score_report, tmp_path):
    code, out, err = run_gen_eval(["compare", score_report, score_report], process=False)
    assert code == 0 and "no confident regression" in out, err
    classifier = make_dense_head(tmp_path / "cartoon_judge.onnx", role="classifier", out_dim=CARTOON_SPACE.size,
                                 label_space=CARTOON_SPACE)
    conditions = tmp_path / "cartoon.json"
    conditions.write_text(json.dumps([["hair:h0", "eye:e1"], ["hair:h2", "eye:e0"], ["hair:h1", "eye:e1"]]))
    report = tmp_path / "cartoon.json.report"
    code, _, err = run_gen_eval(["score", "--model", assets.gen_cartoon, "--test", conditions, "--classifier",
                                 classifier, "--repeats", 3, "--device", "cpu", "--report", report], process=False)
    assert code == 0, err
    code, out, err = run_gen_eval(["compare", report, report], process=False)
    assert code == 0 and "no confident regression" in out, err


# -- --summary: appended to, so never an input, a FIFO, a device or a symbolic link --------------------------
def test_summary_is_never_an_input_fifo_or_link(assets, score_report, tmp_path):
    new = tmp_path / "new.json"
    new.write_bytes(score_report.read_bytes())
    before = digest(new, score_report, assets.test_json)
    refused(["compare", new, score_report, "--summary", new], "--summary", "is the NEW input")
    refused(["score", "--model", assets.gen_cond, "--test", assets.test_json, "--classifier", assets.classifier,
             "--device", "cpu", "--summary", assets.test_json], "--summary", "is the --test input")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    refused(["compare", new, score_report, "--summary", fifo], "FIFO", "not a regular file")
    outside = tmp_path / "elsewhere.md"
    (tmp_path / "link.md").symlink_to(outside)
    refused(["compare", new, score_report, "--summary", tmp_path / "link.md"], "symbolic link")
    assert not outside.exists()
    assert digest(new, score_report, assets.test_json) == before
    summary = tmp_path / "summary.md"
    for _ in range(2):  # a regular file is appended to, as CI job summaries are
        code, _, err = run_gen_eval(["compare", new, score_report, "--summary", summary], process=False)
        assert code == 0, err
    assert summary.read_text().count("### gen-eval compare") == 2


# -- project files and GEN_EVAL_* variables -----------------------------------------------------------------
def test_project_file_planted_in_a_parent_folder_is_not_trusted(tmp_path):
    from gen_eval.project import CONFIG_ENV, project_settings

    planted = tmp_path / "gen-eval.toml"
    planted.write_text('classifier = "evil.onnx"\n')
    below = tmp_path / "a" / "b"
    below.mkdir(parents=True)
    planted.chmod(0o666)  # any user could have written it
    with pytest.raises(UserError, match="may be written by every user.*GEN_EVAL_CONFIG="):
        project_settings(start=below, environ={})
    if os.geteuid() == 0:  # as root: a file another user owns (root may chown)
        planted.chmod(0o644)
        os.chown(planted, 12345, -1)
        with pytest.raises(UserError, match="is owned by user 12345, not you"):
            project_settings(start=below, environ={})
    settings = project_settings(start=below, environ={CONFIG_ENV: str(planted)})  # named: the user's choice
    assert settings["classifier"].value == tmp_path / "evil.onnx"
    planted.chmod(0o644)
    if os.geteuid() == 0:
        os.chown(planted, 0, -1)
    assert project_settings(start=below, environ={})["classifier"].value == tmp_path / "evil.onnx"


@pytest.mark.parametrize("text, fragment", [
    ("# [tool.gen-eval]\ntool = 5\n", "'tool' is int, not a table"),
    ("[tool]\ngen-eval = 5\n", "must be a table of settings"),
])
def test_project_file_type_confusion_in_pyproject(tmp_path, text, fragment):
    path = tmp_path / "pyproject.toml"
    path.write_text(text)
    refused(["config", "--file", path], fragment)


@pytest.mark.parametrize("text, fragment", [
    ('classifier = "\\u0000judge.onnx"\n', "NUL character"),
    ("seed = 1e400\n", "must be an integer"),
    ('threads = "\u0663"\n', "ASCII digits"),
    ('classifier = ["a.onnx"]\n', "non-empty path string"),
    ("[classifier]\npath = 1\n", "non-empty path string"),
    ('out = "x"\n', "unknown setting 'out'"),
])
def test_project_file_type_confusion(tmp_path, text, fragment):
    path = tmp_path / "gen-eval.toml"
    path.write_text(text, encoding="utf-8")
    refused(["config", "--file", path], fragment)


def test_environment_variables_type_confusion_and_control_characters(tmp_path):
    from gen_eval.project import project_settings

    for name, value, fragment in [("GEN_EVAL_SEED", "\u0663", "ASCII digits"),
                                  ("GEN_EVAL_REPEATS", "\uff13", "ASCII digits"),
                                  ("GEN_EVAL_CLASSIFIER", "a\x00b", "NUL character"),
                                  ("GEN_EVAL_QUANTIZE", "yes", "true or false")]:
        with pytest.raises(UserError, match=fragment):
            project_settings(start=tmp_path, environ={name: value})
    from click.testing import CliRunner

    from gen_eval.cli import cli

    result = CliRunner().invoke(cli, ["config"], env={"GEN_EVAL_CLASSIFIER": "judge\x1b[31m\nfake line"})
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout and "\nfake line" not in result.stdout and "\\nfake line" in result.stdout


# -- HTML pages: strings from files are text, never markup ---------------------------------------------------
class _Markup(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: set[str] = set()
        self.handlers: list[str] = []
        self.text = ""

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.handlers += [name for name, _ in attrs if name.startswith("on")]

    def handle_data(self, data):
        self.text += data


HOSTILE_NAMES = ["<script>alert(1)</script>", '"><img src=x onerror=alert(2)>', "a&b</td><td>", "x"]


def test_html_escapes_label_names_file_names_and_metadata(tmp_path):
    from gen_eval.data.labels import LabelSpace

    space = LabelSpace.multilabel(HOSTILE_NAMES)
    folder = tmp_path / "<script>alert(4)<"
    folder.mkdir()
    model = make_generator(folder / "gen<b onmouseover=alert(5)>.onnx", labels=4, label_space=space)
    judge = make_dense_head(folder / "judge.onnx", role="classifier", out_dim=4, label_space=space,
                            extra_meta={"gen_eval.family": "<script>alert(3)</script>"})
    test = folder / "t<i>.json"
    test.write_text(json.dumps([[HOSTILE_NAMES[0]], [HOSTILE_NAMES[1], HOSTILE_NAMES[2]]]))
    page = tmp_path / "page.html"
    code, _, err = run_gen_eval(["score", "--model", model, "--test", test, "--classifier", judge, "--repeats", 2,
                                 "--device", "cpu", "--html", page], process=False)
    assert code == 0, err
    markup = _Markup()
    markup.feed(page.read_text(encoding="utf-8"))
    assert markup.tags <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "b", "i", "table",
                           "tr", "th", "td", "figure", "img", "figcaption", "pre"}, markup.tags
    assert "script" not in markup.tags and markup.handlers == []
    assert HOSTILE_NAMES[0] in markup.text and HOSTILE_NAMES[1] in markup.text  # shown as text, as they are
    assert "gen<b onmouseover=alert(5)>.onnx" in markup.text


# -- the judge-in-training record: a model file can claim anything about itself -----------------------------
def _with_metadata(path: Path, **entries: str) -> Path:
    model = onnx.load(str(path))
    for key, value in entries.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.save(model, str(path))
    return path


def test_judge_record_says_whose_word_it_is(assets, tmp_path):
    import gen_eval

    silent = gen_eval.score(assets.gen_cond, assets.test_json, classifier=assets.classifier, runtime=gen_eval.Runtime("cpu"))
    assert silent.details["judge_in_training"] == "none recorded"
    assert "the generator file records no judge" in silent.details["judge_in_training_basis"]
    assert "not checked" in silent.details["judge_in_training_basis"]
    judge = _with_metadata(make_dense_head(tmp_path / "judge.onnx", role="classifier"),
                           **{contract.KEY_WEIGHTS_FINGERPRINT: "f" * 64})
    claims = [{"classifier": "f" * 64, "loss_terms": {f"term{i}": 1.0 for i in range(50)}}]
    generator = _with_metadata(make_generator(tmp_path / "gen.onnx", labels=24),
                               **{contract.KEY_TRAINING_JUDGES: json.dumps(claims)})
    claimed = gen_eval.score(generator, assets.test_json, classifier=judge, runtime=gen_eval.Runtime("cpu"))
    assert claimed.details["judge_in_training"] == "in the loss"
    warning = claimed.warnings[0]
    assert warning.startswith("JUDGE IN THE LOSS: the generator file ") and " says " in warning
    assert "and 42 more" in warning and "term49" not in warning  # a record of 50 terms is not 50 lines of warning
    assert "a model file can claim anything" in claimed.details["judge_in_training_basis"]
    assert claimed.to_dict()["judge_in_training_basis"] == claimed.details["judge_in_training_basis"]


# -- image inputs ----------------------------------------------------------------------------------------
def _palette_with_byte_transparency(path: Path, rgb: np.ndarray) -> None:
    Image.fromarray(rgb).convert("P").save(path, transparency=bytes([0] * 10 + [128] * 246))


def _exif_rotated(path: Path, rgb: np.ndarray) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90": pytorch-fid's Image.open().convert('RGB') ignores it, and so do we
    Image.fromarray(rgb).save(path.with_suffix(".jpg"), exif=exif)


IMAGE_KINDS = {
    "palette with byte transparency": _palette_with_byte_transparency,
    "palette with one transparent index": lambda p, a: Image.fromarray(a).convert("P").save(p, transparency=0),
    "exif orientation": _exif_rotated,
    "cmyk": lambda p, a: Image.fromarray(a).convert("CMYK").save(p.with_suffix(".jpg")),
    "rgba": lambda p, a: Image.fromarray(np.dstack([a, a[:, :, :1]])).save(p),
    "grey with alpha": lambda p, a: Image.fromarray(a).convert("LA").save(p),
    "one bit": lambda p, a: Image.fromarray(a).convert("1").save(p),
    "animated": lambda p, a: Image.fromarray(a).save(p.with_suffix(".gif"), save_all=True,
                                                   append_images=[Image.fromarray(255 - a)]),
}


@pytest.mark.parametrize("kind", sorted(IMAGE_KINDS))
def test_image_modes_read_as_pytorch_fid_reads_them_and_stay_quiet(kind, tmp_path):
    from gen_eval.data.images import list_images, load_image

    rng = np.random.default_rng(0)
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        IMAGE_KINDS[kind](folder / f"{i}.png", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    for path in list_images(folder):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            array = load_image(path)
        assert caught == [], [str(w.message) for w in caught]  # Pillow's warnings would reach the user's stderr
        with Image.open(path) as reference, warnings.catch_warnings():  # pytorch-fid's ImagePathDataset
            warnings.simplefilter("ignore")
            assert np.array_equal(array, np.asarray(reference.convert("RGB")))


def test_image_folder_with_a_symlink_loop_and_a_truncated_image(assets, tmp_path):
    folder = tmp_path / "loop"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.png").write_bytes((assets.images / f"{sorted(os.listdir(assets.images))[i]}").read_bytes())
    (folder / "a.png").symlink_to("b.png")
    (folder / "b.png").symlink_to("a.png")
    (folder / "self").symlink_to(".")
    code, _, err = run_gen_eval(["data", "check", folder], process=False)
    assert code == 0, err
    data = (folder / "0.png").read_bytes()
    (folder / "0.png").write_bytes(data[: len(data) // 2])
    refused(["stats", "compute", "--features", assets.features, "--data", folder, "--out", tmp_path / "s.npz",
             "--device", "cpu"], "truncated")
    assert not (tmp_path / "s.npz").exists()


# -- model outputs whose rows do not follow the batch --------------------------------------------------------
def _reshaped_generator(path: Path, assets: Assets, node: str) -> Path:
    model = onnx.load(str(assets.gen))
    graph = model.graph
    graph.node[-1].output[0] = "image0"
    if node == "twice":  # 2B rows for B inputs
        graph.node.append(helper.make_node("Concat", ["image0", "image0"], ["image"], axis=0))
        rows = "B2"
    else:  # always the first row only
        graph.initializer.extend([numpy_helper.from_array(np.array([v], np.int64), name)
                                  for name, v in (("start", 0), ("stop", 1), ("axis", 0))])
        graph.node.append(helper.make_node("Slice", ["image0", "start", "stop", "axis"], ["image"]))
        rows = 1
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info("image", TensorProto.FLOAT, [rows, 3, 8, 8]))
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("node", ["twice", "first row only"])
def test_model_output_rows_must_follow_the_batch(node, assets, tmp_path):
    model = _reshaped_generator(tmp_path / "gen.onnx", assets, node)
    refused(["sample", "--model", model, "--n", 5, "--out", tmp_path / "s.npz", "--device", "cpu"],
            "output 'image' has", "for a batch of 5", "one row per input row")
    refused(["fid", "--features", assets.features, "--model", model, "--n", 20, "--ref", assets.stats,
             "--device", "cpu"], "one row per input row")
    assert sorted(os.listdir(tmp_path)) == ["gen.onnx"]


# -- statistics whose two halves disagree ----------------------------------------------------------------
@pytest.mark.parametrize("edit, fragment", [
    (lambda a: a.update(mu=a["mu"] + 100), "mu is not the one its sums"),
    (lambda a: a.update(sigma=a["sigma"] * 0), "sigma is not the one its sums"),
    (lambda a: a.update(sigma=-np.eye(len(a["mu"]))), "not a covariance matrix"),
    (lambda a: a.update(sigma=np.triu(np.ones((len(a["mu"]),) * 2))), "not a covariance matrix"),
], ids=["mu moved", "sigma zeroed", "negative variances", "not symmetric"])
def test_statistics_whose_mu_sigma_disagree_with_their_sums(edit, fragment, assets, tmp_path):
    arrays = dict(np.load(assets.stats, allow_pickle=False))
    edit(arrays)
    forged = tmp_path / "forged.npz"
    np.savez(forged, **arrays)
    before = digest(forged)
    refused(["fid", forged, assets.stats], fragment, "recompute it")
    refused(["stats", "merge", forged, "--out", tmp_path / "m.npz"], fragment)
    assert digest(forged) == before and not (tmp_path / "m.npz").exists()


def test_pytorch_fid_statistics_with_a_negative_variance_are_refused(assets, tmp_path):
    arrays = dict(np.load(assets.stats_pytorch_fid, allow_pickle=False))
    arrays["sigma"] = arrays["sigma"] - 10 * np.eye(len(arrays["mu"])) * np.abs(arrays["sigma"]).max()
    forged = tmp_path / "pytorch_fid.npz"
    np.savez(forged, **arrays)
    refused(["fid", forged, assets.stats_pytorch_fid], "not a covariance matrix")


# -- shard specs ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", ["\u0663/4", "1/\uff14", "\uff11/2"])
def test_shard_spec_in_other_scripts_digits_is_refused(spec, assets, tmp_path):
    refused(["stats", "compute", "--features", assets.features, "--model", assets.gen, "--n", 40, "--shard", spec,
             "--out", tmp_path / "s.npz", "--device", "cpu"], "--shard must be k/N")


# -- --ray with an address that does not answer ---------------------------------------------------------
def test_ray_address_that_does_not_answer_is_one_line(assets, tmp_path):
    pytest.importorskip("ray")
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    refused(["stats", "compute", "--features", assets.features, "--model", assets.gen, "--n", 10, "--ray",
             f"127.0.0.1:{port}", "--out", tmp_path / "s.npz", "--device", "cpu"], "cannot connect to Ray",
            "ray start --head")
    refused(["stats", "compute", "--features", assets.features, "--model", assets.gen, "--n", 10, "--ray",
             "127.0.0.1:99999", "--out", tmp_path / "s.npz", "--device", "cpu"], "not an address of a Ray head")
    assert "ray" not in sys.modules or not sys.modules["ray"].is_initialized()
    assert not (tmp_path / "s.npz").exists()


# -- two processes writing one sample folder -----------------------------------------------------------
def test_two_runs_writing_one_sample_folder_second_is_refused(assets, tmp_path):
    from gen_eval.fileio import FolderLock

    out = tmp_path / "samples"
    code, _, err = run_gen_eval(["sample", "--model", assets.gen, "--n", 6, "--out", out, "--device", "cpu"],
                                process=False)
    assert code == 0, err
    before = digest(*sorted(out.iterdir()))
    # a live unsharded run holds the folder (flock is per open file, so this process's own lock counts)
    with FolderLock(out, "gen-eval sample", "out"):
        for extra in ([], ["--force", "--seed", 7], ["--shard", "1/2"]):
            refused(["sample", "--model", assets.gen, "--n", 6, "--out", out, "--device", "cpu", *extra],
                    "in use by another gen-eval sample", f"process {os.getpid()}")
    assert digest(*sorted(out.iterdir())) == before
    # the shards of one run write the folder together
    sharded = tmp_path / "sharded"
    with FolderLock(sharded, "gen-eval sample", "out", shared=True):
        code, _, err = run_gen_eval(["sample", "--model", assets.gen, "--n", 6, "--out", sharded, "--shard", "2/2",
                                     "--device", "cpu"], process=False)
        assert code == 0, err
        refused(["sample", "--model", assets.gen, "--n", 6, "--out", sharded, "--device", "cpu"], "in use")
    assert not (tmp_path / "never").exists()
    refused(["sample", "--model", _reshaped_generator(tmp_path / "bad.onnx", assets, "twice"), "--n", 3,
             "--out", tmp_path / "never", "--device", "cpu"], "one row per input row")
    assert not (tmp_path / "never").exists()  # the folder the lock made is gone again


# -- image dimensions: memory bounded by a batch, never by the size the files declare -----------------------
def test_huge_image_dimensions_decode_in_batches_of_bounded_bytes(assets, tmp_path, monkeypatch):
    from gen_eval.data import imageset
    from gen_eval.data.datasets import open_dataset

    images = open_dataset(assets.images)
    c, h, w = images.image_shape
    assert imageset.rows_per_batch(images, 64) == 64  # ordinary images: the batch size as given
    whole = tmp_path / "whole.npz"
    code, _, err = run_gen_eval(["stats", "compute", "--features", assets.features, "--data", assets.images,
                                 "--out", whole, "--device", "cpu"], process=False)
    assert code == 0, err
    # as if each image were 32x larger than two fit in the budget: decoded two at a time, the same statistics
    monkeypatch.setattr(imageset, "MAX_DECODED_BATCH_BYTES", 2 * c * h * w + 1)
    assert imageset.rows_per_batch(images, 64) == 2 and imageset.rows_per_batch(images, 1) == 1
    decoded: list[int] = []
    original = imageset.FileImageSet.image
    monkeypatch.setattr(imageset.FileImageSet, "image", lambda self, i: (decoded.append(i), original(self, i))[1])
    from gen_eval.evaluator import features as features_module

    seen_rows: list[int] = []
    run = features_module.features_of_uint8
    monkeypatch.setattr(features_module, "features_of_uint8",
                        lambda model, batch, *a, **k: (seen_rows.append(len(batch)), run(model, batch, *a, **k))[1])
    small = tmp_path / "small.npz"
    code, _, err = run_gen_eval(["stats", "compute", "--features", assets.features, "--data", assets.images,
                                 "--out", small, "--device", "cpu"], process=False)
    assert code == 0, err
    assert seen_rows and max(seen_rows) == 2 and set(decoded) == set(range(len(images)))
    with np.load(whole) as a, np.load(small) as b:
        assert a["n"] == b["n"] and np.allclose(a["mu"], b["mu"], rtol=1e-6, atol=1e-7)


def test_project_settings_reach_only_the_evaluator_commands(tmp_path):
    """`batch-size`, `seed`, `threads`, `device` are evaluation defaults; on `train` the same names are a training
    batch and a recipe's seed, on `data shapes` the seed picks the data set: a project file changes none of them."""
    from gen_eval.cli import cli
    from gen_eval.commands.config import default_map
    from gen_eval.project import project_settings

    (tmp_path / "gen-eval.toml").write_text('batch-size = 7\nseed = 3\nthreads = 1\ndevice = "cpu"\n')
    defaults = default_map(cli, project_settings(start=tmp_path, environ={}))
    assert defaults["score"]["batch_size"] == 7 and defaults["stats"]["compute"]["seed"] == 3
    assert not {"train", "demo", "data", "export", "export-classifier"} & set(defaults), sorted(defaults)
