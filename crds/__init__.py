"""The CustomResourceDefinitions of ``sedna.io/v1alpha1``, as data.

One YAML file per kind sits in ``bases/`` (``sedna.io_<plural>.yaml``), with
KubeEdge Sedna's field names so a Sedna user's resources apply unchanged, but with
structural OpenAPI v3 schemas that catch typos, bad enums and out-of-range values,
pod templates kept opaque (Kubernetes validates them when the Pod is created),
a status subresource, short names and printer columns. ``install/`` holds the
manifests that deploy GM and LC onto a cluster (``kubectl apply -k crds/install``).

:mod:`gm.schema` validates objects against these schemas in the local backend, the
same way the API server does in the kube backend. Nothing is read at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["CRD_DIR", "crd_paths", "load_crds"]

CRD_DIR = Path(__file__).resolve().parent / "bases"
"""The directory holding the CRD YAML files."""


def crd_paths() -> list[Path]:
    """Paths of the CRD YAML files, one per kind, sorted by name."""
    return sorted(CRD_DIR.glob("sedna.io_*.yaml"))


def load_crds() -> list[dict[str, Any]]:
    """Parse every CRD file; each is one ``apiextensions.k8s.io/v1`` CustomResourceDefinition dict."""
    crds: list[dict[str, Any]] = []
    for path in crd_paths():
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
            raise ValueError(f"{path}: expected one CustomResourceDefinition document")
        crds.append(doc)
    return crds
