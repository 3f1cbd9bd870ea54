"""Checkpoint -> ONNX export with parity checks and metadata (torch, onnx)."""
