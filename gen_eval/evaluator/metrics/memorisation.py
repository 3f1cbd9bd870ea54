"""Nearest-neighbour memorisation check in feature space.

For each generated feature g, d(g) = the Euclidean distance to its nearest training feature (blocked
over both sets; scikit-learn's arithmetic, ``distances.py``). The same is computed for held-out real
features h (real images not used in training — the reference set by default), giving d(h), the
distance at which genuinely new images of the data distribution sit from the training set. Reported:

* ``median``: the median of d(g) (``median_heldout``: of d(h));
* ``threshold``: the ``mem_percentile``-th percentile (5) of d(h), ``np.percentile``'s linear
  interpolation;
* ``fraction_closer``: the fraction of generated samples with d(g) < threshold (strict). A model that
  does not copy puts about mem_percentile % of its samples there (as the held-out set does, by
  definition); a clearly larger fraction means samples sit closer to training images than new real
  images do;
* ``closest``: the ``mem_pairs`` (16) generated samples with the smallest d(g), ascending, as
  (generated index, training index, distance) — the pairs to look at side by side.

Held-out images that are also in the training set have d(h) = 0 and pull the threshold to 0: keep
the two sets disjoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gen_eval.evaluator.metrics._common import Result, features_of
from gen_eval.evaluator.metrics.distances import DEFAULT_BLOCK, nearest
from gen_eval.evaluator.metrics.registry import register_metric


@dataclass
class MemorisationResult(Result):
    median: float
    median_heldout: float
    threshold: float
    percentile: float
    fraction_closer: float
    closest: list[tuple[int, int, float]] = field(default_factory=list)
    n_generated: int = 0
    n_heldout: int = 0
    n_train: int = 0
    distances: np.ndarray | None = field(default=None, repr=False)  # d(g) per generated sample
    nearest_train: np.ndarray | None = field(default=None, repr=False)  # its training index

    def to_dict(self) -> dict:
        out = super().to_dict()
        out.pop("distances")
        out.pop("nearest_train")
        return out


@register_metric("memorisation", aliases=("memorization", "nn"))
def memorisation(generated, reference, *, train, mem_percentile: float = 5.0, mem_pairs: int = 16,
                 block: int = DEFAULT_BLOCK) -> MemorisationResult:
    """``reference`` is the held-out real set; ``train`` the training set's features."""
    g, h, t = features_of(generated), features_of(reference), features_of(train)
    d_g, idx_g = nearest(g, t, block)
    d_h, _ = nearest(h, t, block)
    threshold = float(np.percentile(d_h, mem_percentile))
    order = np.argsort(d_g, kind="stable")[: int(mem_pairs)]
    closest = [(int(i), int(idx_g[i]), float(d_g[i])) for i in order]
    return MemorisationResult(
        median=float(np.median(d_g)), median_heldout=float(np.median(d_h)), threshold=threshold,
        percentile=float(mem_percentile), fraction_closer=float((d_g < threshold).mean()), closest=closest,
        n_generated=len(g), n_heldout=len(h), n_train=len(t), distances=d_g, nearest_train=idx_g,
    )
