"""The protocol of everything that adds up over batches: feature statistics and metrics you update.

Like torchmetrics' ``Metric`` but without torch: ``update`` takes one batch, ``merge`` adds another
accumulator of the same kind (e.g. from another process), ``compute`` gives the result so far and
``reset`` starts again. :class:`~gen_eval.evaluator.stats.FeatureStats` (batches of features) and
:class:`gen_eval.FrechetDistance` (batches of images) follow it.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Accumulator(Protocol):
    def update(self, batch: Any) -> None: ...

    def merge(self, other: Any) -> Any: ...

    def compute(self) -> Any: ...

    def reset(self) -> None: ...


__all__ = ["Accumulator"]
