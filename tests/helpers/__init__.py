"""Shared non-fixture helpers for the test files (fixtures live in tests/conftest.py).

Import from the submodules, e.g. ``from helpers.graphs import make_generator``:

- ``helpers.graphs``: small ONNX graphs built with onnx.helper (generators, classifier/feature heads,
  encoders, decoders) and the iCLEVR label names;
- ``helpers.cli``: running ``gen-eval`` (subprocess without torch, in-process CliRunner) and the
  one-line-error assertions;
- ``helpers.images``: folders of small random PNGs;
- ``helpers.ta_reference``: the TA's classifier-score code and a stable-sort reference (also used by
  benchmarks/bench_evaluator.py).

This file imports nothing, so ``helpers.ta_reference`` loads without pytest or onnx.
"""
