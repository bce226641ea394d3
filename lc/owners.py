"""Which resource a worker report belongs to, when a Sedna worker leaves its owner at Sedna's defaults.

Sedna's SDK fills ``ownerName`` from ``JOB_NAME`` (default ``sedna``) and ``ownerKind`` from the
feature class (``default`` when a class sets none, as its FederatedLearning does). A report that
names an object this LC holds is taken as it is; so is any other report naming a real owner (the
LC forwards it, as before). Only Sedna's defaults are resolved, against the objects this node
holds (every worker's object is routed to its node):

1. ``ownerKind: default`` with a real ``ownerName``: the report-taking kind that has an object of
   that name in the report's namespace.
2. ``ownerName: sedna`` (no such object): among the held objects of the kind(s) in question, the
   one whose name starts the worker's name (Pods are named ``<owner>-<role>-...``), else the only
   one in the namespace, else the only one on the node.

A default that cannot be resolved to exactly one owner is refused with
:class:`~sedna.controlplane.errors.BadReport`, whose message says which env to set.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any, Protocol

from sedna.controlplane.edgehub import ObjectKey
from sedna.controlplane.errors import BadReport
from sedna.controlplane.reports import WorkerReport

SEDNA_DEFAULT_NAME = "sedna"
"""Sedna's ``JOB_NAME`` default, hence its ``ownerName`` when the controller injects no JOB_NAME."""
SEDNA_DEFAULT_KIND = "default"
"""Sedna's ``ownerKind`` of a feature class that sets none."""



class Held(Protocol):
    """The objects this LC holds (its :class:`~lc.store.Store`)."""

    def get_object(self, key: ObjectKey) -> dict[str, Any] | None: ...

    def list_objects(self, kind: str | None = None) -> list[dict[str, Any]]: ...


def _names(objects: Iterable[dict[str, Any]], namespace: str | None) -> list[tuple[str, str]]:
    return [((o.get("metadata") or {}).get("namespace", "default"), (o.get("metadata") or {}).get("name", ""))
            for o in objects
            if namespace is None or (o.get("metadata") or {}).get("namespace", "default") == namespace]


def resolve(report: WorkerReport, kinds: Iterable[str], store: Held) -> WorkerReport:
    """``report`` with its owner resolved (see the module docstring); ``kinds`` are the report-taking kinds."""
    known = sorted(kinds)
    by_default = report.owner_kind == SEDNA_DEFAULT_KIND
    if not by_default and report.owner_kind not in known:
        return report  # the caller refuses an unknown kind, naming the known ones
    if not by_default and report.owner_name != SEDNA_DEFAULT_NAME:
        return report  # a real owner (held or not yet): forwarded as before, at no cost
    if not by_default and store.get_object(ObjectKey(report.owner_kind, report.namespace, report.owner_name)):
        return report  # a resource really named "sedna"
    candidates = known if by_default else [report.owner_kind]
    held = {kind: _names(store.list_objects(kind), None) for kind in candidates}
    exact = [kind for kind in candidates if (report.namespace, report.owner_name) in held[kind]]
    if len(exact) == 1:
        return replace(report, owner_kind=exact[0])
    if report.owner_name == SEDNA_DEFAULT_NAME:
        found = _by_worker_name(report, held)
        if found is not None:
            return replace(report, owner_kind=found[0], namespace=found[1], owner_name=found[2])
    raise BadReport("ownerName" if report.owner_name == SEDNA_DEFAULT_NAME else "ownerKind", _advice(report, held))


def _by_worker_name(report: WorkerReport, held: dict[str, list[tuple[str, str]]]) -> tuple[str, str, str] | None:
    every = [(kind, ns, name) for kind, objects in held.items() for ns, name in objects]
    prefixed = [o for o in every if report.worker.startswith(f"{o[2]}-")]
    longest = max((len(o[2]) for o in prefixed), default=0)
    prefixed = [o for o in prefixed if len(o[2]) == longest]
    for group in (prefixed, [o for o in every if o[1] == report.namespace], every):
        if len(group) == 1:
            return group[0]
        if len(group) > 1:
            return None  # ambiguous: refuse rather than guess
    return None


def _advice(report: WorkerReport, held: dict[str, list[tuple[str, str]]]) -> str:
    owners = sorted(f"{kind}/{ns}/{name}" for kind, objects in held.items() for ns, name in objects)
    what = (f"ownerKind {report.owner_kind!r}, ownerName {report.owner_name!r} in namespace "
            f"{report.namespace!r}")
    seen = f"this node runs {', '.join(owners)}" if owners else "this node runs no such resource"
    return (f"{what} (Sedna's defaults) does not name one resource this node runs ({seen}); set the worker's env "
            f"JOB_NAME to its resource's name and NAMESPACE to its namespace (Sedna's SDK reports those; this "
            f"project's controllers inject both)")


__all__ = ["SEDNA_DEFAULT_KIND", "SEDNA_DEFAULT_NAME", "resolve"]
