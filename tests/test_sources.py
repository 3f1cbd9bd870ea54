"""gen_eval.Runtime and gen_eval.GeneratorSource: small frozen objects that open themselves."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest

import gen_eval
from gen_eval.errors import UserError
from helpers.graphs import make_dense_head, make_generator

N = 24


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("sources")
    features = make_dense_head(root / "f.onnx", role="features", out_dim=6, activation="Relu", value_range="0,1")
    return features, make_generator(root / "g.onnx", seed=3)


def test_sources_and_runtime_are_frozen_and_pickle(models):
    features, generator = models
    for obj in (gen_eval.Runtime("cpu", batch_size=4, threads=1), gen_eval.GeneratorSource(generator, n=N, seed=5),
                gen_eval.ImageSource(np.zeros((2, 8, 8, 3), np.uint8))):
        field = dataclasses.fields(obj)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, field, None)
        back = pickle.loads(pickle.dumps(obj))
        assert type(back) is type(obj) and repr(back) == repr(obj)
    assert gen_eval.Runtime("cpu") == gen_eval.Runtime(device="cpu")  # settings compare by value


def test_a_generator_source_gives_the_numbers_of_its_generator(models):
    """statistics/fid of GeneratorSource(g, n, seed) equal the evaluator's own sums of the same samples, and
    sample() of a path with n/seed equals sample() of the same GeneratorSource."""
    from gen_eval.evaluator.features import generator_stats
    from gen_eval.evaluator.model import load_model

    features, generator = models
    cpu = gen_eval.Runtime("cpu")
    source = gen_eval.GeneratorSource(generator, n=N, seed=5)
    stats = gen_eval.statistics(source, features=features, runtime=cpu)
    sessions = cpu.open()
    expected = generator_stats(load_model(features, role="features", runtime=sessions),
                               load_model(generator, role="generator", runtime=sessions), N, 5, blocks=10)
    assert np.array_equal(stats.sum, expected.sum) and np.array_equal(stats.sum_outer, expected.sum_outer)
    assert stats.description == f"{generator} ({N} samples, seed 5)"

    by_path = gen_eval.sample(generator, n=N, seed=5, runtime=cpu)
    by_source = gen_eval.sample(source, runtime=cpu)
    assert np.array_equal(by_path.images, by_source.images) and by_source.count == N

    # the same samples in memory as the reference: the distance to themselves is 0
    report = gen_eval.fid(by_source.images, source, features=features, runtime=cpu)
    assert report.value == pytest.approx(0.0, abs=1e-9) and report.model == str(generator) and report.n == N
    assert report.provenance["seeds"] == [5] and report.settings["n"] == N


@pytest.mark.parametrize("make, words", [
    (lambda g: gen_eval.Runtime(device="tpu"), "device"),
    (lambda g: gen_eval.Runtime(batch_size=0), "batch_size must be at least 1, got 0"),
    (lambda g: gen_eval.Runtime(threads=True), "threads must be an integer"),
    (lambda g: gen_eval.GeneratorSource(g, n=0), "n must be at least 1, got 0"),
    (lambda g: gen_eval.GeneratorSource(g, seed=-1), "seed must be an integer from 0 to 2^63-1"),
    (lambda g: gen_eval.GeneratorSource(g, latent_dim=0), "latent_dim must be at least 1"),
    (lambda g: gen_eval.GeneratorSource(g, value_range="1"), "value_range"),
    (lambda g: gen_eval.GeneratorSource(3), "model must be a path"),
    (lambda g: gen_eval.sample(gen_eval.GeneratorSource(g, n=2), n=3), "give n, seed and conditions once"),
    (lambda g: gen_eval.statistics(g, features="f.onnx"), "GeneratorSource"),
    (lambda g: gen_eval.fid("real/", features="f.onnx"), "give the generated images"),
])
def test_bad_sources_and_runtimes_are_one_line_errors(models, make, words):
    _, generator = models
    with pytest.raises(UserError) as caught:
        make(generator)
    assert words in str(caught.value) and "\n" not in str(caught.value), str(caught.value)


def test_merge_statistics_is_the_api_of_stats_merge(models, tmp_path):
    features, generator = models
    cpu = gen_eval.Runtime("cpu")
    source = gen_eval.GeneratorSource(generator, n=N, seed=5)
    whole = gen_eval.statistics(source, features=features, chunk_size=8, runtime=cpu)
    parts = []
    for k in (1, 2, 3):
        parts.append(tmp_path / f"part{k}.npz")
        gen_eval.statistics(source, features=features, chunk_size=8, shard=(k, 3), runtime=cpu).save(parts[-1])
    merged = gen_eval.merge_statistics(parts, tmp_path / "merged.npz")
    assert np.array_equal(merged.sum_outer, whole.sum_outer) and (tmp_path / "merged.npz").is_file()
    with pytest.raises(UserError, match="exists"):
        gen_eval.merge_statistics(parts, tmp_path / "merged.npz")
    with pytest.raises(UserError, match="must be a list"):
        gen_eval.merge_statistics(parts[0])
