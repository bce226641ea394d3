"""The one interface every controller is written against.

Objects are plain dicts in Kubernetes JSON shape (``apiVersion``, ``kind``,
``metadata``, ``spec``, ``status``), so the same controller code runs on the
``kube`` backend (the kubernetes client against an API server) and the ``local``
backend (a SQLite store plus a process runtime). Kinds are named by
:class:`Kind`; :data:`KINDS` lists every kind the control plane touches.

Semantics every backend honours (tests in ``tests/gm/test_cluster_contract.py``
run against each):

- ``create`` sets ``metadata.uid``, ``resourceVersion`` (a string of an increasing
  integer), ``generation`` (1) and ``creationTimestamp``; it honours
  ``metadata.generateName`` when ``name`` is empty; an existing name raises
  :class:`AlreadyExists`.
- ``update`` replaces ``metadata`` (labels, annotations, ownerReferences, finalizers)
  and ``spec`` but never ``status``; when the given object carries a
  ``resourceVersion`` that is not current it raises :class:`Conflict`; a change of
  ``spec`` bumps ``generation``.
- ``patch_status`` merges ``status`` (JSON merge patch, RFC 7386) without touching
  ``spec`` or ``generation``, and bumps ``resourceVersion``.
- ``delete`` removes the object and, in the local backend, every object whose
  ``ownerReferences`` name its uid (cascading, as Kubernetes' garbage collector does).
- ``watch`` yields :class:`WatchEvent` s in resourceVersion order, starting after
  ``resource_version`` when given (else a synthetic ADDED for every existing object),
  until ``stop`` is set; a version the backend no longer holds raises :class:`Expired`.
- ``emit_event`` records an Event through :mod:`gm.cluster.events`: a repeat of the same
  reason and message about the same object within a window bumps ``count`` and
  ``lastTimestamp`` of one Event instead of creating another.

The errors (:class:`ClusterError` and its subclasses, :class:`Expired` among them) are
defined in :mod:`gm.errors` and re-exported here.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from gm.errors import AlreadyExists, ClusterError, Conflict, Expired, Invalid, NotFound
from sedna.controlplane import kinds

__all__ = [
    "DATASET",
    "DEPLOYMENT",
    "EVENT",
    "FEDERATED_LEARNING_JOB",
    "HOSTNAME_LABEL",
    "INCREMENTAL_LEARNING_JOB",
    "JOINT_INFERENCE_SERVICE",
    "KINDS",
    "LIFELONG_LEARNING_JOB",
    "MODEL",
    "NODE",
    "POD",
    "SEDNA_GROUP",
    "SEDNA_KINDS",
    "SEDNA_VERSION",
    "SERVICE",
    "AlreadyExists",
    "Cluster",
    "ClusterError",
    "Conflict",
    "EventType",
    "Expired",
    "Invalid",
    "Kind",
    "NotFound",
    "Obj",
    "WatchEvent",
    "kind_by_name",
    "kind_of",
    "pinned_node",
]

Obj = dict[str, Any]
EventType = Literal["ADDED", "MODIFIED", "DELETED"]


@dataclass(frozen=True)
class Kind:
    """A resource kind: API group/version, Kind name and URL plural."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def label_prefix(self) -> str:
        """The worker label prefix, ``<lowercase kind>.sedna.io``."""
        return f"{self.kind.lower()}.sedna.io"


SEDNA_GROUP = kinds.GROUP
SEDNA_VERSION = kinds.VERSION


def _sedna(kind: kinds.SednaKind) -> Kind:
    return Kind(SEDNA_GROUP, SEDNA_VERSION, kind.kind, kind.plural)


DATASET = _sedna(kinds.DATASET)
MODEL = _sedna(kinds.MODEL)
JOINT_INFERENCE_SERVICE = _sedna(kinds.JOINT_INFERENCE_SERVICE)
FEDERATED_LEARNING_JOB = _sedna(kinds.FEDERATED_LEARNING_JOB)
INCREMENTAL_LEARNING_JOB = _sedna(kinds.INCREMENTAL_LEARNING_JOB)
LIFELONG_LEARNING_JOB = _sedna(kinds.LIFELONG_LEARNING_JOB)
POD = Kind("", "v1", "Pod", "pods")
SERVICE = Kind("", "v1", "Service", "services")
EVENT = Kind("", "v1", "Event", "events")
NODE = Kind("", "v1", "Node", "nodes", namespaced=False)
DEPLOYMENT = Kind("apps", "v1", "Deployment", "deployments")

SEDNA_KINDS: tuple[Kind, ...] = (
    DATASET,
    MODEL,
    JOINT_INFERENCE_SERVICE,
    FEDERATED_LEARNING_JOB,
    INCREMENTAL_LEARNING_JOB,
    LIFELONG_LEARNING_JOB,
)
_SEDNA_SHORT = {k.kind: k.short for k in kinds.ALL}
KINDS: tuple[Kind, ...] = (*SEDNA_KINDS, POD, SERVICE, EVENT, NODE, DEPLOYMENT)

HOSTNAME_LABEL = "kubernetes.io/hostname"
"""The node label a ``nodeSelector`` may pin a Pod to one node with."""


def pinned_node(pod_spec: Any) -> str:
    """The node a Pod spec pins itself to: ``nodeName``, else its ``kubernetes.io/hostname`` nodeSelector ('' if none).

    Both backends' schedulers and every controller's placement read a template's node through this.
    """
    if not isinstance(pod_spec, Mapping):
        return ""
    name = pod_spec.get("nodeName")
    if isinstance(name, str) and name:
        return name
    selector = pod_spec.get("nodeSelector")
    host = selector.get(HOSTNAME_LABEL) if isinstance(selector, Mapping) else None
    return host if isinstance(host, str) else ""


def kind_by_name(name: str) -> Kind:
    """Find a kind by Kind name, plural, lowercase kind or Sedna short name (ji, fl, il, ll)."""
    low = name.lower()
    short = {"deploy": DEPLOYMENT, "svc": SERVICE, "po": POD}
    short.update({name: kind for kind in SEDNA_KINDS for name in _SEDNA_SHORT[kind.kind]})
    if low in short:
        return short[low]
    for kind in KINDS:
        if low in (kind.kind.lower(), kind.plural, kind.plural.rstrip("s")):
            return kind
    known = ", ".join(k.plural for k in KINDS)
    raise KeyError(f"unknown kind {name!r} (known: {known})")


@dataclass(frozen=True)
class WatchEvent:
    """One change: the object as it is after the change (as it was, for DELETED)."""

    type: EventType
    object: Obj


@runtime_checkable
class Cluster(Protocol):
    """Get / list / watch / create / update / patch-status / delete over every :data:`KINDS` kind."""

    def get(self, kind: Kind, namespace: str, name: str) -> Obj:
        """Return the object or raise :class:`NotFound`."""
        ...

    def list(self, kind: Kind, namespace: str | None = None,
             labels: Mapping[str, str] | None = None) -> list[Obj]:
        """Objects of ``kind`` (all namespaces when ``namespace`` is None) whose labels include ``labels``."""
        ...

    def create(self, obj: Obj) -> Obj:
        """Store a new object (kind from ``obj['kind']``/``apiVersion``); return it as stored."""
        ...

    def update(self, obj: Obj) -> Obj:
        """Replace metadata and spec of an existing object; return it as stored."""
        ...

    def patch_status(self, kind: Kind, namespace: str, name: str, status: Mapping[str, Any]) -> Obj:
        """JSON-merge ``status`` into the object's status; return it as stored."""
        ...

    def delete(self, kind: Kind, namespace: str, name: str) -> None:
        """Delete the object (raise :class:`NotFound` if absent)."""
        ...

    def watch(self, kind: Kind, namespace: str | None = None, resource_version: str | None = None,
              stop: threading.Event | None = None) -> Iterator[WatchEvent]:
        """Yield changes until ``stop`` is set; see the module docstring for the start point."""
        ...

    def emit_event(self, involved: Obj, reason: str, message: str, type_: str = "Normal") -> None:
        """Record a Kubernetes Event about ``involved`` (best effort: never raises)."""
        ...


def kind_of(obj: Mapping[str, Any]) -> Kind:
    """The :class:`Kind` of a stored object, from its ``apiVersion`` and ``kind``."""
    api_version, name = obj.get("apiVersion", ""), obj.get("kind", "")
    for kind in KINDS:
        if kind.kind == name and kind.api_version == api_version:
            return kind
    raise Invalid(f"unsupported apiVersion/kind {api_version!r}/{name!r}", [("kind", "unsupported kind")])
