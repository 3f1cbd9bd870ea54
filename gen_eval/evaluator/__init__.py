"""Standalone evaluator on onnxruntime. Must never import torch."""
