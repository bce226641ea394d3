"""Collect status writes during a reconcile, then send them as one merge patch.

A reconciler sets fields and conditions on a :class:`StatusPatch`; the patch compares
itself with the status the object already has and yields only the difference
(:meth:`StatusPatch.body`), so an unchanged status writes nothing and a reconcile
caused by our own status write ends there. Conditions follow the Kubernetes shape:
one entry per ``type``, ``lastTransitionTime`` kept while ``status`` is unchanged.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from gm.cluster.events import parse_time

__all__ = ["Now", "StatusPatch", "StrEnum", "parse_time", "utc_now"]

Now = Callable[[], str]


class StrEnum(str, Enum):
    """A closed set of status strings (phases, condition types, reasons): ``str()`` and f-strings give the value.

    Members compare equal to their value and serialise to JSON as it, so they go into a status as is.
    """

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


def utc_now() -> str:
    """The current time as an RFC 3339 string (seconds precision, ``Z``)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class StatusPatch:
    """The status changes one reconcile wants, relative to ``current``."""

    def __init__(self, current: Mapping[str, Any] | None, generation: int = 0, now: Now = utc_now) -> None:
        self._current: dict[str, Any] = copy.deepcopy(dict(current or {}))
        self._fields: dict[str, Any] = {}
        self._conditions: list[dict[str, Any]] | None = None
        self.generation = generation
        self._now = now

    def set(self, field: str, value: Any) -> None:
        """Set a top-level status field."""
        self._fields[field] = value

    def get(self, field: str, default: Any = None) -> Any:
        """The value the status will have: the pending one, else the current one."""
        if field in self._fields:
            return self._fields[field]
        return self._current.get(field, default)

    @property
    def conditions(self) -> list[dict[str, Any]]:
        """The conditions as they will be written."""
        if self._conditions is None:
            self._conditions = copy.deepcopy(list(self._current.get("conditions") or []))
        return self._conditions

    def condition(self, type_: str) -> dict[str, Any] | None:
        """The (pending) condition of ``type_``, or None."""
        return next((c for c in self.conditions if c.get("type") == type_), None)

    def true_condition(self, types: tuple[str, ...], before: bool = False) -> dict[str, Any] | None:
        """The first condition among ``types`` whose status is True: as it will be written, or as it was."""
        source = (self._current.get("conditions") or []) if before else self.conditions
        return next((c for t in types for c in source if c.get("type") == t and c.get("status") == "True"), None)

    def set_condition(self, type_: str, status: bool, reason: str = "", message: str = "") -> None:
        """Set condition ``type_``; ``lastTransitionTime`` moves only when ``status`` flips."""
        value = "True" if status else "False"
        existing = self.condition(type_)
        entry = {"type": type_, "status": value, "reason": reason, "message": message,
                 "observedGeneration": self.generation}
        if existing is None:
            entry["lastTransitionTime"] = self._now()
            self.conditions.append(entry)
            return
        same = existing.get("status") == value and existing.get("lastTransitionTime")
        entry["lastTransitionTime"] = existing["lastTransitionTime"] if same else self._now()
        existing.clear()
        existing.update(entry)

    def set_only(self, true_type: str, types: tuple[str, ...], reason: str, message: str) -> None:
        """Make ``true_type`` the one True condition among ``types`` (others False if present)."""
        for type_ in types:
            if type_ == true_type:
                self.set_condition(type_, True, reason, message)
            elif self.condition(type_) is not None:
                self.set_condition(type_, False, "", "")

    def body(self) -> dict[str, Any]:
        """The merge patch for ``status``: only fields that differ from the current status."""
        out = {k: v for k, v in self._fields.items() if self._current.get(k) != v}
        if self._conditions is not None and self._conditions != (self._current.get("conditions") or []):
            out["conditions"] = self._conditions
        return out

    def __bool__(self) -> bool:
        return bool(self.body())
