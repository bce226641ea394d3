"""The plain-class estimator contract.

A user estimator is any class (or instance) with some of ``train``, ``evaluate``,
``predict``, ``load``, ``save``, ``get_weights``, ``set_weights``. The adapter
instantiates a class lazily with the keyword arguments its ``__init__`` accepts and
passes each method only the keyword arguments it accepts, so one set of job
parameters can feed methods with different signatures.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any


@functools.lru_cache(maxsize=512)
def _accepted_names(func: Callable[..., Any]) -> frozenset[str] | None:
    """Keyword names ``func`` accepts; None when it takes ``**kwargs`` (or has no signature)."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return frozenset(p.name for p in params if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                          inspect.Parameter.KEYWORD_ONLY))


def accepted_kwargs(func: Callable[..., Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The subset of ``kwargs`` that ``func`` accepts (all of them if it takes ``**kwargs``)."""
    if not kwargs:
        return kwargs
    target = getattr(func, "__func__", func)  # bound methods: cache on the underlying function
    try:
        names = _accepted_names(target)
    except TypeError:  # unhashable callable
        names = _accepted_names.__wrapped__(target)
    if names is None:
        return dict(kwargs)
    return {k: v for k, v in kwargs.items() if k in names}


class EstimatorAdapter:
    """Calls a user estimator's methods with filtered keyword arguments."""

    def __init__(self, estimator: Any, **init_kwargs: Any) -> None:
        self._factory = estimator if inspect.isclass(estimator) else None
        self._instance = None if self._factory else estimator
        self._init_kwargs = init_kwargs

    @property
    def instance(self) -> Any:
        """The estimator object (created on first use when a class was given)."""
        if self._instance is None:
            assert self._factory is not None
            self._instance = self._factory(**accepted_kwargs(self._factory, self._init_kwargs))
        return self._instance

    def has(self, method: str) -> bool:
        """Whether the estimator defines ``method``."""
        target = self._instance if self._instance is not None else self._factory
        return callable(getattr(target, method, None))

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``method`` with the positional args and the keyword args it accepts."""
        func = getattr(self.instance, method, None)
        if not callable(func):
            raise AttributeError(f"estimator {type(self.instance).__name__} has no method {method!r}")
        return func(*args, **accepted_kwargs(func, kwargs))

    def predict(self, data: Any, **kwargs: Any) -> Any:
        if self._instance is not None and not kwargs:  # the hot path: no signature work
            return self._instance.predict(data)
        return self.call("predict", data, **kwargs)

    def load(self, model_url: str, **kwargs: Any) -> Any:
        return self.call("load", model_url, **kwargs)
