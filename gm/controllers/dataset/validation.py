"""Checks on a Dataset that the CRD schema cannot express: a usable URL, a known format and node."""

from __future__ import annotations

from gm.cluster.interface import Obj
from gm.controllers.common.problems import Problem, check_url

FORMATS = ("txt", "csv")


def validate(dataset: Obj, nodes: tuple[str, ...] = ()) -> list[Problem]:
    """Every problem of a Dataset's spec; ``nodes`` are the known node names (empty: not checked)."""
    spec = dataset.get("spec") or {}
    out = [p for p in (check_url(spec.get("url"), "spec.url"),) if p is not None]
    fmt = spec.get("format")
    if fmt not in FORMATS:
        out.append(Problem("spec.format", f"unsupported format {fmt!r} (use one of: {', '.join(FORMATS)})"))
    node = spec.get("nodeName")
    if not node:
        out.append(Problem("spec.nodeName", "required (the node whose LC watches this dataset)"))
    elif nodes and node not in nodes:
        out.append(Problem("spec.nodeName", f"unknown node {node!r} (known: {', '.join(sorted(nodes))})"))
    return out
