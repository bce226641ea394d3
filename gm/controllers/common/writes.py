"""One reconcile's writes: a status patch and the owner's Events, collected, then sent once.

A reconciler sets fields and conditions on :attr:`Writes.patch` and queues Events; :meth:`Writes.flush`
sends the status patch (only what differs, see :class:`~gm.runtime.patches.StatusPatch`) and then the
Events, none if the object vanished meanwhile. :meth:`Writes.transition` adds the Event ``kubectl
describe`` users expect when the owner's headline state changes (``Pending -> Running``, ``Running ->
Failed``), unless the reconcile already queued one with that reason. The backends count repeats of the
same Event (:mod:`gm.cluster.events`), so queueing the same fact on every reconcile is harmless.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from gm.cluster.interface import Cluster, Kind, NotFound, Obj
from gm.runtime.patches import Now, StatusPatch, utc_now

Event = tuple[str, str, str]
"""``(type, reason, message)``; type ``Normal`` or ``Warning``."""
WARNING_TYPES = frozenset({"Failed"})
"""Condition types whose becoming the headline is a Warning Event."""


def _headline(conditions: list[dict[str, Any]], types: tuple[str, ...]) -> dict[str, Any] | None:
    by_type = {c.get("type"): c for c in conditions}
    for type_ in types:
        cond = by_type.get(type_)
        if cond is not None and cond.get("status") == "True":
            return cond
    return by_type.get(types[0]) if types else None


class Writes:
    """The status patch and Events of one reconcile of ``obj`` (a ``kind`` object)."""

    def __init__(self, cluster: Cluster, kind: Kind, obj: Obj, now: Now = utc_now) -> None:
        self.cluster, self.kind, self.obj = cluster, kind, obj
        meta = obj["metadata"]
        self.patch = StatusPatch(obj.get("status"), int(meta.get("generation") or 1), now)
        self.events: list[Event] = []

    def normal(self, reason: str, message: str) -> None:
        """Queue a Normal Event."""
        self.events.append(("Normal", reason, message))

    def warning(self, reason: str, message: str) -> None:
        """Queue a Warning Event."""
        self.events.append(("Warning", reason, message))

    def transition(self, types: tuple[str, ...], warn_reasons: Collection[str] = ()) -> None:
        """Queue an Event when the headline condition (the True one among ``types``, else ``types[0]``)
        or the phase changed; Warning for a ``Failed`` headline or a reason in ``warn_reasons``."""
        before = _headline(list((self.obj.get("status") or {}).get("conditions") or []), types)
        after = _headline(self.patch.conditions, types)
        phase_before = (self.obj.get("status") or {}).get("phase")
        if after is None:
            return
        key = (after.get("type"), after.get("status"), after.get("reason"))
        if before is not None and (before.get("type"), before.get("status"), before.get("reason")) == key \
                and phase_before == self.patch.get("phase"):
            return
        reason = str(after.get("reason") or after.get("type") or "")
        if not reason or any(r == reason for _, r, _ in self.events):
            return
        warn = after.get("type") in WARNING_TYPES or reason in warn_reasons
        self.events.append(("Warning" if warn else "Normal", reason, str(after.get("message") or "")))

    def flush(self) -> bool:
        """Send the status patch, then the Events; False when the object is gone (nothing more is sent)."""
        meta = self.obj["metadata"]
        body = self.patch.body()
        if body:
            try:
                self.cluster.patch_status(self.kind, meta.get("namespace") or "", meta["name"], body)
            except NotFound:
                return False
        for type_, reason, message in self.events:
            self.cluster.emit_event(self.obj, reason, message, type_)
        return True
