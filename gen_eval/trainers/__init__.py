"""PyTorch trainers: one module per family and one shared training loop."""
