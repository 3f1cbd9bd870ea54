"""Named feature extractors fetched, checked, converted to ONNX without torch, and cached per user.

- :mod:`gen_eval.weights.named`: the names (``inception``, ...), ``get_weights``, ``resolve_features``;
- :mod:`gen_eval.weights.cache`: the cache folder (``GEN_EVAL_CACHE``, the project's ``cache``, XDG);
- :mod:`gen_eval.weights.torchfile`: a ``torch.save`` file's state dict as numpy arrays, executing nothing;
- :mod:`gen_eval.weights.inception_onnx`: pytorch-fid's Inception-v3 built with the ``onnx`` package.
"""
