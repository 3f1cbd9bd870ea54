"""Standalone evaluator on onnxruntime: sampling, classifier score, FID, reconstruction MSE.

Must never import torch (not even indirectly): it runs where only onnxruntime, numpy, scipy,
Pillow, click and tqdm are installed. The names below are imported on first use, so importing a
submodule (e.g. for a CLI command's choices) does not load onnxruntime, scipy or tqdm.
"""

import importlib

_OWNERS = {
    "FeatureStats": "gen_eval.evaluator.stats",
    "ModelInfo": "gen_eval.evaluator.model",
    "OnnxModel": "gen_eval.evaluator.model",
    "Runtime": "gen_eval.evaluator.runtime",
    "classifier_score": "gen_eval.evaluator.score",
    "frechet_distance": "gen_eval.evaluator.frechet",
    "generator_stats": "gen_eval.evaluator.features",
    "imageset_stats": "gen_eval.evaluator.features",
    "latent_noise": "gen_eval.evaluator.noise",
    "load_model": "gen_eval.evaluator.model",
    "load_stats": "gen_eval.evaluator.stats",
    "merge_stats": "gen_eval.evaluator.stats",
    "reconstruction_mse": "gen_eval.evaluator.mse",
    "sample": "gen_eval.evaluator.sampling",
    "score_generator": "gen_eval.evaluator.score",
    "score_probs": "gen_eval.evaluator.score",
}


def __getattr__(name: str):
    if name in _OWNERS:
        return getattr(importlib.import_module(_OWNERS[name]), name)
    raise AttributeError(f"module 'gen_eval.evaluator' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_OWNERS))


__all__ = sorted(_OWNERS)
