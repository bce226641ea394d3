"""The resource kinds the CLI knows, their REST paths and their table columns.

The CLI talks HTTP to the local API and never imports ``gm``: the ``sedna.io`` kinds and
their names come from :mod:`sedna.controlplane.kinds` (as the GM's do), the core kinds it
shows are listed here. Table columns of the ``sedna.io`` kinds
come from the CRDs' ``additionalPrinterColumns`` (read from the ``crds`` folder when
it is present, so ``sedna get`` shows what ``kubectl get`` would); core kinds have
kubectl-like columns.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from sedna.cli._errors import CliError
from sedna.controlplane import kinds


@dataclass(frozen=True)
class Column:
    """A table column: header, JSONPath into the object, shown only with ``-o wide`` when priority > 0."""

    name: str
    path: str
    priority: int = 0
    type: str = "string"


@dataclass(frozen=True)
class KindInfo:
    """One kind: its names and where the API serves it."""

    kind: str
    plural: str
    api_version: str
    short: tuple[str, ...] = ()
    columns: tuple[Column, ...] = field(default=())

    def path(self, namespace: str, name: str | None = None) -> str:
        """The REST path of the collection in ``namespace``, or of one object."""
        base = f"/api/{self.api_version}" if "/" not in self.api_version else f"/apis/{self.api_version}"
        out = f"{base}/namespaces/{namespace}/{self.plural}"
        return f"{out}/{name}" if name else out

    @property
    def ref(self) -> str:
        """``kind`` as printed in ``<kind>/<name>`` lines."""
        return self.kind.lower()


_AGE = Column("AGE", ".metadata.creationTimestamp", type="date")
_KINDS = (
    *(KindInfo(k.kind, k.plural, k.api_version, k.short) for k in kinds.ALL),
    KindInfo("Pod", "pods", "v1", ("po",), (Column("STATUS", ".status.phase"), Column("NODE", ".spec.nodeName"),
                                           Column("IP", ".status.podIP"), _AGE)),
    KindInfo("Service", "services", "v1", ("svc",), (Column("CLUSTER-IP", ".spec.clusterIP"),
                                                     Column("PORTS", ".spec.ports[*].port"), _AGE)),
    KindInfo("Deployment", "deployments", "apps/v1", ("deploy",),
             (Column("READY", ".status.readyReplicas"), Column("REPLICAS", ".spec.replicas"), _AGE)),
    KindInfo("Event", "events", "v1", ("ev",), (Column("TYPE", ".type"), Column("REASON", ".reason"),
                                               Column("OBJECT", ".involvedObject.name"),
                                               Column("MESSAGE", ".message"))),
)


def find(name: str) -> KindInfo:
    """A kind by Kind name, plural, singular or short name (case-insensitive)."""
    low = name.lower()
    for info in _KINDS:
        if low in (info.kind.lower(), info.plural, info.plural.rstrip("s"), *info.short):
            return _with_columns(info)
    known = ", ".join(k.plural for k in _KINDS)
    raise CliError(f"unknown resource type {name!r} (known: {known})")


def of_object(obj: dict[str, Any], where: str) -> KindInfo:
    """The kind of a manifest, checked against its apiVersion; ``where`` names the document in errors."""
    kind, api_version = obj.get("kind"), obj.get("apiVersion")
    if not kind:
        raise CliError(f"{where}: kind: required")
    if not api_version:
        raise CliError(f"{where}: apiVersion: required")
    for info in _KINDS:
        if info.kind == kind:
            if info.api_version != api_version:
                raise CliError(f"{where}: apiVersion: {kind} is served as {info.api_version!r}, not {api_version!r}")
            return _with_columns(info)
    raise CliError(f"{where}: kind: unsupported kind {kind!r} (known: {', '.join(k.kind for k in _KINDS)})")


def _with_columns(info: KindInfo) -> KindInfo:
    if info.columns:
        return info
    return KindInfo(info.kind, info.plural, info.api_version, info.short, _crd_columns().get(info.kind, (_AGE,)))


@lru_cache(maxsize=1)
def _crd_columns() -> dict[str, tuple[Column, ...]]:
    import yaml

    spec = importlib.util.find_spec("crds")  # a top-level package: located, not imported
    if spec is None or not spec.submodule_search_locations:
        return {}
    out: dict[str, tuple[Column, ...]] = {}
    for path in sorted(Path(next(iter(spec.submodule_search_locations))).glob("sedna.io_*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
                continue
            for version in doc["spec"].get("versions", []):
                cols = version.get("additionalPrinterColumns") or []
                out[doc["spec"]["names"]["kind"]] = tuple(
                    Column(c["name"].upper(), c["jsonPath"], int(c.get("priority", 0)), c.get("type", "string"))
                    for c in cols)
    return out
