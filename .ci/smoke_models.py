"""Small ONNX models from the test suite's builders, for checking the installed wheel (.ci/run).

Usage: python .ci/smoke_models.py OUT  (run by the development environment: it needs the onnx package)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from helpers.graphs import make_dense_head, make_generator  # noqa: E402 - after the tests folder is importable

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
make_generator(out / "generator.onnx", labels=24)
make_dense_head(out / "judge.onnx", role="classifier")
make_dense_head(out / "features.onnx", role="features", out_dim=16, value_range="0,1", activation="Tanh")
print(f"wrote generator.onnx, judge.onnx and features.onnx to {out}")
