"""Metric registry: ``@register_metric("kid")`` on a function ``(generated, reference, **options) -> result``.

Like torchvision's ``register_model``: names map to functions, ``get_metric(name)`` finds one,
``list_metrics()`` lists them. Each function takes the two feature sources (``FeatureStore`` or array)
and keyword options; ``compute_metrics`` passes each one only the options its signature names.
"""

from __future__ import annotations

import inspect
from typing import Callable

_METRICS: dict[str, Callable] = {}
_ALIASES: dict[str, str] = {}


def register_metric(name: str, *, aliases: tuple[str, ...] = ()) -> Callable[[Callable], Callable]:
    def wrap(fn: Callable) -> Callable:
        for key in (name, *aliases):
            if key in _METRICS or key in _ALIASES:
                raise ValueError(f"metric name {key!r} is registered twice")
        _METRICS[name] = fn
        for alias in aliases:
            _ALIASES[alias] = name
        return fn

    return wrap


def canonical_name(name: str) -> str:
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _METRICS:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(list_metrics())}")
    return key


def get_metric(name: str) -> Callable:
    return _METRICS[canonical_name(name)]


def list_metrics() -> list[str]:
    return sorted(_METRICS)


def options_for(fn: Callable, options: dict) -> dict:
    """The subset of ``options`` that ``fn`` takes as keywords."""
    params = inspect.signature(fn).parameters
    return {k: v for k, v in options.items() if k in params and params[k].kind == inspect.Parameter.KEYWORD_ONLY}


def keyword_names(fn: Callable) -> set[str]:
    return {k for k, p in inspect.signature(fn).parameters.items() if p.kind == inspect.Parameter.KEYWORD_ONLY}
