"""gen-eval: train GANs and VAEs in PyTorch, export to ONNX, evaluate anywhere with onnxruntime.

One call per job (onnxruntime only, no torch, except ``export``)::

    import gen_eval
    report = gen_eval.score("acgan.onnx", "test.json", classifier="judge.onnx", repeats=5)
    report.value, report.interval, report.to_dict()

The library is quiet: messages go to the ``logging`` logger "gen_eval" (no handler by default).
"""

import logging
from typing import Any

__version__ = "0.1.0"

logging.getLogger("gen_eval").addHandler(logging.NullHandler())

_API = {"score": "gen_eval.api.score", "accuracy": "gen_eval.api.score", "fid": "gen_eval.api.fid", "statistics": "gen_eval.api.fid",
        "mse": "gen_eval.api.mse", "sample": "gen_eval.api.sample", "compare": "gen_eval.api.compare", "metrics": "gen_eval.api.metrics",
        "selftest": "gen_eval.conformance", "export": "gen_eval.api.export", "info": "gen_eval.api.info",
        "FrechetDistance": "gen_eval.api.frechet", "ImageSource": "gen_eval.api.sources",
        "GeneratorSource": "gen_eval.api.sources", "Runtime": "gen_eval.api.sources",
        "merge_statistics": "gen_eval.api.fid"}


def __getattr__(name: str) -> Any:
    """The public jobs, imported on first use (``import gen_eval`` stays light)."""
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'gen_eval' has no attribute {name!r}")


__all__ = ["__version__", *_API]
