"""The condition reconciler: a kind whose only status is whether its spec (and the world) is usable.

Datasets and Models have no workers; their controller checks the spec and writes one of two
conditions, ``Ready`` or ``Failed`` (see :class:`~.status.ReadyCondition`), with the problems as the
message and a Warning Event when the problems change. A kind adds what else can make it unusable
by overriding :meth:`ConditionReconciler.unavailable` (a Model's file missing on a node).
"""

from __future__ import annotations

from collections.abc import Callable

from gm.cluster.interface import Cluster, Obj
from gm.controllers.common.problems import Problem, verdict
from gm.controllers.common.status import ReadyCondition, Reason
from gm.controllers.common.writes import Writes
from gm.runtime.caching import Cache
from gm.runtime.outcomes import DONE, NamespacedName, Outcome

Check = Callable[[Obj, tuple[str, ...]], list[Problem]]
"""``check(obj, known nodes) -> problems``."""
TYPES = (ReadyCondition.READY, ReadyCondition.FAILED)


class ConditionReconciler:
    """Writes ``Ready`` (usable) or ``Failed`` (with what is wrong) for one kind."""

    def __init__(self, cluster: Cluster, cache: Cache, check: Check, nodes: tuple[str, ...] = ()) -> None:
        self.cluster = cluster
        self.cache = cache
        self.check = check
        self.nodes = nodes

    def unavailable(self, obj: Obj) -> tuple[str, str] | None:
        """``(reason, message)`` when a valid object still cannot be used; None when it can."""
        return None

    def ready_message(self, obj: Obj) -> str:
        """The ``Ready`` condition's message."""
        return "spec is valid"

    def reconcile(self, key: NamespacedName) -> Outcome:
        obj = self.cache.get(key.namespace, key.name)
        if obj is None:
            return DONE
        writes = Writes(self.cluster, self.cache.kind, obj)
        patch = writes.patch
        found = self.check(obj, self.nodes)
        problem = (str(verdict(found).reason), verdict(found).message) if found else self.unavailable(obj)
        if problem is not None:
            reason, message = problem
            previous = patch.condition(ReadyCondition.FAILED)
            patch.set_only(ReadyCondition.FAILED, TYPES, reason, message)
            if previous is None or previous.get("message") != message or previous.get("status") != "True":
                writes.warning(reason, message)
        else:
            patch.set_only(ReadyCondition.READY, TYPES, Reason.VALID, self.ready_message(obj))
        writes.flush()
        return DONE
