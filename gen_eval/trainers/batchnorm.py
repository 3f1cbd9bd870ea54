"""Re-estimating BatchNorm statistics after training.

BatchNorm's running mean and variance are exponential averages (momentum 0.1) over the last few dozen
steps, taken while the weights were still moving; after a short run they lag behind the final weights,
and the model in eval mode does much worse than with batch statistics (the ResNet18 judge on the shapes
set after 5 short epochs: 0.69 held-out accuracy in eval mode, 0.86 with batch statistics). One pass
over some training images in train mode, with a cumulative average, gives the statistics of the final
weights (the fix SWA uses, ``torch.optim.swa_utils.update_bn``).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def recalibrate_batchnorm(model: nn.Module, batches: Iterable[torch.Tensor]) -> int:
    """Replace every BatchNorm layer's running statistics by the exact average over ``batches``.

    ``batches`` are model inputs (images in the model's value range). Weights are untouched; the model
    is left in eval mode. Returns the number of images seen (0 leaves the model as it was).
    """
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone(), m.momentum)
             for m in layers]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None   # cumulative moving average: every batch weighs the same
    seen = 0
    model.train()
    with torch.no_grad():
        for images in batches:
            model(images)
            seen += len(images)
    for layer, (mean, var, count, momentum) in zip(layers, saved):
        layer.momentum = momentum
        if not seen:
            layer.running_mean.copy_(mean)
            layer.running_var.copy_(var)
            layer.num_batches_tracked.copy_(count)
    model.eval()
    return seen
