"""The resource kinds the CLI knows, their REST paths and their table columns.

The CLI talks HTTP to the local API and never imports ``gm``: the ``sedna.io`` kinds and
their names come from :mod:`sedna.controlplane.kinds` (as the GM's do), the core kinds it
shows are listed here. Table columns of the ``sedna.io`` kinds
come from the CRDs' ``additionalPrinterColumns`` (read from the ``crds`` folder when
it is present, so ``sedna get`` shows what ``kubectl get`` would); core kinds have
kubectl-like columns. ``-o wide`` adds the columns of :data:`WIDE` (JSONPaths; ``..`` searches
every depth) and, for kinds with workers, a live WORKERS count (:mod:`._output`).
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
    namespaced: bool = True

    def path(self, namespace: str | None, name: str | None = None) -> str:
        """The REST path of the collection in ``namespace`` (None: every namespace), or of one object."""
        base = f"/api/{self.api_version}" if "/" not in self.api_version else f"/apis/{self.api_version}"
        out = f"{base}/namespaces/{namespace}/{self.plural}" if self.namespaced and namespace else \
            f"{base}/{self.plural}"
        return f"{out}/{name}" if name else out

    @property
    def has_workers(self) -> bool:
        """Whether the controllers run worker Pods for objects of this kind."""
        return self.kind in WORKER_KINDS

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
                                               Column("COUNT", ".count", priority=1),
                                               Column("MESSAGE", ".message"))),
    KindInfo("Secret", "secrets", "v1", (), (Column("TYPE", ".type"), _AGE)),
    KindInfo("Node", "nodes", "v1", ("no",), (Column("STATUS", '.status.conditions[?(@.type=="Ready")].status'),
                                             _AGE), namespaced=False),
)
WORKER_KINDS = ("JointInferenceService", "FederatedLearningJob", "IncrementalLearningJob", "LifelongLearningJob")
_IMAGES = Column("IMAGES", "..template.spec.containers[*].image", priority=1, type="set")
WIDE: dict[str, tuple[Column, ...]] = {
    "Dataset": (Column("FORMAT", ".spec.format", 1), Column("NODE", ".spec.nodeName", 1),
                Column("URL", ".spec.url", 1)),
    "Model": (Column("FORMAT", ".spec.format", 1), Column("URL", ".spec.url", 1),
              Column("READY", '.status.conditions[?(@.type=="Ready")].status', 1)),
    "JointInferenceService": (Column("HEM", ".spec.edgeWorker.hardExampleMining.name", 1), _IMAGES),
    "FederatedLearningJob": (Column("STRATEGY", '.spec.aggregationWorker..env[?(@.name=="aggregation")].value', 1),
                             Column("LOSS", ".status.latestMetrics.loss", 1, "number"), _IMAGES),
    "IncrementalLearningJob": (Column("DATASET", ".spec.dataset.name", 1),
                               Column("DEPLOYED", ".status.deployedRound", 1, "integer"), _IMAGES),
    "LifelongLearningJob": (Column("DATASET", ".spec.dataset.name", 1), _IMAGES),
    "Pod": (Column("RESTARTS", ".status.containerStatuses[*].restartCount", 1),
            Column("IMAGES", ".spec.containers[*].image", 1, "set")),
    "Deployment": (Column("IMAGES", "..containers[*].image", 1, "set"),),
}


def names_help() -> str:
    """The kinds with their short names, one per line (for ``--help`` texts)."""
    return "\n".join(f"  {k.plural:<26} {', '.join(k.short) or '-':<8} {k.kind}" for k in _KINDS)


def known_text() -> str:
    """``datasets, models, jointinferenceservices (ji), ...`` for error messages."""
    return ", ".join(f"{k.plural} ({', '.join(k.short)})" if k.short else k.plural for k in _KINDS)


def all_names() -> list[str]:
    """Every name a kind answers to (plural, singular, short), for shell completion."""
    out: list[str] = []
    for k in _KINDS:
        out += [k.plural, k.kind.lower(), *k.short]
    return sorted(set(out))


def find(name: str) -> KindInfo:
    """A kind by Kind name, plural, singular or short name (case-insensitive)."""
    low = name.lower()
    for info in _KINDS:
        if low in (info.kind.lower(), info.plural, info.plural.rstrip("s"), *info.short):
            return _with_columns(info)
    raise CliError(f"unknown resource type {name!r} (known: {known_text()})")


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
    columns = info.columns or _crd_columns().get(info.kind, (_AGE,))
    wide = tuple(c for c in WIDE.get(info.kind, ()) if c.name not in {col.name for col in columns})
    if wide and columns and columns[-1].type == "date":  # keep AGE last, as kubectl does
        columns = (*columns[:-1], *wide, columns[-1])
    else:
        columns = (*columns, *wide)
    return KindInfo(info.kind, info.plural, info.api_version, info.short, columns, info.namespaced)


@lru_cache(maxsize=1)
def _crd_columns() -> dict[str, tuple[Column, ...]]:
    import yaml

    spec = importlib.util.find_spec("crds")  # a top-level package: located, not imported
    if spec is None or not spec.submodule_search_locations:
        return {}
    out: dict[str, tuple[Column, ...]] = {}
    for path in sorted((Path(next(iter(spec.submodule_search_locations))) / "bases").glob("sedna.io_*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
                continue
            for version in doc["spec"].get("versions", []):
                cols = version.get("additionalPrinterColumns") or []
                out[doc["spec"]["names"]["kind"]] = tuple(
                    Column(c["name"].upper(), c["jsonPath"], int(c.get("priority", 0)), c.get("type", "string"))
                    for c in cols)
    return out
