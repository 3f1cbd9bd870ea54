"""Standalone evaluator on onnxruntime: sampling, classifier score, FID, reconstruction MSE.

Must never import torch (not even indirectly): it runs where only onnxruntime, numpy, scipy,
Pillow, click and tqdm are installed.
"""

from gen_eval.evaluator.features import generator_stats, imageset_stats
from gen_eval.evaluator.frechet import frechet_distance
from gen_eval.evaluator.model import ModelInfo, OnnxModel, load_model
from gen_eval.evaluator.mse import reconstruction_mse
from gen_eval.evaluator.noise import latent_noise
from gen_eval.evaluator.runtime import Runtime
from gen_eval.evaluator.sampling import sample
from gen_eval.evaluator.score import classifier_score, score_generator, score_probs
from gen_eval.evaluator.stats import FeatureStats, load_stats, merge_stats

__all__ = [
    "FeatureStats",
    "ModelInfo",
    "OnnxModel",
    "Runtime",
    "classifier_score",
    "frechet_distance",
    "generator_stats",
    "imageset_stats",
    "latent_noise",
    "load_model",
    "load_stats",
    "merge_stats",
    "reconstruction_mse",
    "sample",
    "score_generator",
    "score_probs",
]
