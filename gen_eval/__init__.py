"""gen-eval: train GANs and VAEs in PyTorch, export to ONNX, evaluate anywhere with onnxruntime."""

__version__ = "0.1.0"
