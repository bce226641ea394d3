"""What a reconciler returns or raises, and the key it is called with.

A reconciler is a level-based function of a :class:`NamespacedName` (controller-runtime's
``reconcile.Request``: the kind is the controller's, so only namespace and name); it returns an
:class:`Outcome` (done, or requeue after N seconds) or raises :class:`PermanentError`
("don't retry until something changes") or :class:`TemporaryError` ("retry after
``delay``"). Any other exception is a bug or an outage: the queue wrapper in
:mod:`gm.runtime.reconciling` logs it and requeues the key with backoff.

::

    ReconcileError
    ├── PermanentError      recorded, not retried; a new event for the key runs it again
    └── TemporaryError      retried after ``delay`` (or the key's backoff when None)

The errors are defined in :mod:`gm.errors` (the GM's error tree) and re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol

from gm.errors import PermanentError, ReconcileError, TemporaryError

__all__ = ["DONE", "NamespacedName", "Outcome", "PermanentError", "ReconcileError", "Reconciler", "TemporaryError"]


class NamespacedName(NamedTuple):
    """The namespace and name of the object a reconcile is about (the kind is the controller's)."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Outcome:
    """The result of one reconcile: done, or run again after ``requeue_after`` seconds."""

    requeue_after: float | None = None

    @classmethod
    def done(cls) -> Outcome:
        """Nothing more to do until the next event."""
        return DONE

    @classmethod
    def requeue(cls, after: float) -> Outcome:
        """Reconcile the key again after ``after`` seconds (no backoff, no failure counted)."""
        if after < 0:
            raise ValueError(f"requeue delay must be >= 0, got {after!r}")
        return cls(requeue_after=after)

    def sooner(self, other: Outcome) -> Outcome:
        """The outcome that honours both: the earlier requeue of the two (done only when both are)."""
        if other.requeue_after is None:
            return self
        if self.requeue_after is None or other.requeue_after < self.requeue_after:
            return other
        return self


DONE = Outcome()


class Reconciler(Protocol):
    """Anything with ``reconcile(key) -> Outcome``."""

    def reconcile(self, key: NamespacedName) -> Outcome:
        """Bring the world in line with the object named by ``key``."""
        ...
