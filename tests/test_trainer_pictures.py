"""Latent plots by t-SNE coloured by a chosen attribute (S1's figure) and loss curves on separate axes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gen_eval.data.labels import LabelSpace
from gen_eval.data.shapes import write_shapes
from gen_eval.trainers.logs import loss_figure, project_2d
from gen_eval.trainers.pictures import colour_values
from helpers.cli import assert_one_line_error, run_cli_here

torch.set_num_threads(1)


def test_loss_curves_have_one_axis_per_loss():
    # a VAE's KL and MSE differ by orders of magnitude: on one axis the MSE would be a flat line at 0
    rows = [{"step": s, "epoch": s / 10, "time": s, "mse": 1e-3 / s, "kld": 1e3 * s} for s in range(1, 11)]
    fig = loss_figure(rows, title="vae")
    assert [ax.get_title() for ax in fig.axes] == ["mse", "kld"]
    (mse_low, mse_high), (kld_low, kld_high) = (ax.get_ylim() for ax in fig.axes)
    assert mse_high < 1e-2 < 1e2 < kld_high
    assert loss_figure([]) is None and loss_figure([{"step": 1, "epoch": 0.1, "time": 0.0}]) is None


def test_tsne_keeps_separate_clusters_apart():
    rng = np.random.default_rng(0)
    latents = np.concatenate([rng.normal(-5, 1, (30, 10)), rng.normal(5, 1, (30, 10))])
    points, axis = project_2d(latents, "tsne")
    assert points.shape == (60, 2) and axis.startswith("t-SNE")
    distances = ((points[:, None] - points[None]) ** 2).sum(-1) + np.eye(60) * 1e9
    nearest = distances.argmin(axis=1)
    assert ((nearest < 30) == (np.arange(60) < 30)).all()     # every point's neighbour is from its own cluster


def test_colour_by_a_label_or_a_categorical_head():
    space = LabelSpace.categorical({"hair": ["black", "blond", "red"], "glasses": ["no", "yes"]})
    labels = np.array([[0, 0, 1, 1, 0], [1, 0, 0, 0, 1]], dtype=np.float32)
    values, name = colour_values(labels, space, "hair")
    assert name == "hair" and values.tolist() == [2, 0]
    values, name = colour_values(labels, space, "glasses:yes")
    assert values.tolist() == [0, 1]
    values, name = colour_values(labels, LabelSpace.binary("Male"), None)
    assert name == "Male" and values.tolist() == [0, 1]


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return write_shapes(tmp_path_factory.mktemp("data") / "shapes", n_train=24, n_heldout=8, seed=0)


def test_vae_run_draws_tsne_latent_plots_coloured_by_the_chosen_label(shapes, tmp_path):
    from gen_eval.trainers.loop import train

    run = tmp_path / "run"
    train("vae", shapes, run, epochs=1, batch_size=8, device="cpu", progress=False, latent_projection="tsne",
          colour_by="red cube", config_overrides={"data.resize": "true", "image_size": "16", "width": "4",
                                                  "latent_dim": "4"})
    assert (run / "latent" / "epoch_001.png").is_file() and (run / "loss_curve.png").is_file()


def test_cli_refuses_an_unknown_colour_label(shapes, tmp_path):
    result = run_cli_here("train", "vae", "--data", shapes, "--out", tmp_path / "run", "--colour-by", "purple",
                          "--set", "data.resize=true", "--set", "image_size=16")
    assert_one_line_error(result, "cannot colour the latent plot by 'purple'", "red cube")
    assert not (tmp_path / "run" / "checkpoints").exists()
