"""What is wrong with a spec, named by field: the :class:`Problem` record and the checks every kind shares.

Each controller's ``validation`` module checks what the CRD schema cannot express and returns
:class:`Problem` s, each naming its field path, e.g.
``spec.edgeWorker.hardExampleMining.name: unknown algorithm 'IBTT' (did you mean 'IBT'?)``.
A missing referenced object is ``waiting`` (the owner waits and recovers when it appears); a wrong
value is not (the owner fails until the spec is fixed). :func:`verdict` turns a list into the
condition reason and message every controller writes.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from gm.cluster.interface import Obj
from sedna.common.class_factory import ClassFactory, ClassType

Lookup = Callable[[str], Obj | None]
"""Finds an object by name in the owner's namespace (None: not found)."""
URL_SCHEMES = ("", "file", "s3", "http", "https")
INVALID_SPEC = "InvalidSpec"
MISSING_REFERENCE = "MissingReference"


@dataclass(frozen=True)
class Problem:
    """One invalid field: its path, what is wrong, and whether waiting may fix it."""

    field: str
    message: str
    waiting: bool = False

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass(frozen=True)
class Verdict:
    """What a list of problems means for the owner: wait (a reference is missing) or fail (a value is wrong)."""

    waiting: bool
    reason: str
    """:data:`MISSING_REFERENCE` or :data:`INVALID_SPEC`."""
    message: str
    """Every problem, ``; ``-separated."""


def verdict(problems: Iterable[Problem]) -> Verdict:
    """Waiting only when every problem is a missing reference."""
    found = list(problems)
    waiting = all(p.waiting for p in found)
    return Verdict(waiting, MISSING_REFERENCE if waiting else INVALID_SPEC, "; ".join(str(p) for p in found))


def did_you_mean(name: str, known: Collection[str]) -> str:
    """`` (did you mean 'X'?)`` for the closest known name, else `` (known: a, b)``."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(known) or 'none'})"


def check_url(value: Any, field: str) -> Problem | None:
    """The problem with a resource URL, or None when it is usable."""
    if not isinstance(value, str) or not value.strip():
        return Problem(field, "required (a local path on the node, or s3:// / http(s):// URL)")
    scheme = urlparse(value).scheme.lower()
    if len(scheme) == 1:  # a Windows drive letter, not a scheme
        scheme = ""
    if scheme not in URL_SCHEMES:
        return Problem(field, f"unsupported URL scheme {scheme!r} in {value!r} (use a path, s3://, http:// or https://)")
    if scheme == "s3" and not urlparse(value).netloc:
        return Problem(field, f"{value!r} names no bucket (expected s3://bucket/key)")
    return None


def model_reference(field: str, name: Any, model: Lookup, namespace: str, required: bool = True) -> list[Problem]:
    """Problems of a reference to a Model: none named, not found (waiting), no ``spec.url`` (waiting)."""
    if not isinstance(name, str) or not name:
        return [Problem(field, "no model named")] if required else []
    found = model(name)
    if found is None:
        return [Problem(field, f"Model {name!r} not found in namespace {namespace!r}", waiting=True)]
    if not (found.get("spec") or {}).get("url"):
        return [Problem(field, f"Model {name!r} has no spec.url", waiting=True)]
    return []


def dataset_reference(field: str, name: Any, dataset: Lookup, namespace: str, need_node: bool = False,
                      nodes: Collection[str] = ()) -> list[Problem]:
    """Problems of a reference to a Dataset; with ``need_node``, also its ``spec.nodeName`` (known when
    ``nodes`` is given): a worker runs there."""
    if not isinstance(name, str) or not name:
        return [Problem(field, "no dataset named")]
    found = dataset(name)
    if found is None:
        return [Problem(field, f"Dataset {name!r} not found in namespace {namespace!r}", waiting=True)]
    spec = found.get("spec") or {}
    if not spec.get("url"):
        return [Problem(field, f"Dataset {name!r} has no spec.url", waiting=True)]
    if not need_node:
        return []
    node = spec.get("nodeName")
    if not node:
        return [Problem(field, f"Dataset {name!r} has no spec.nodeName (the node its trainer runs on)",
                        waiting=True)]
    if nodes and node not in nodes:
        return [Problem(field, f"Dataset {name!r} is on unknown node {node!r} (known: {', '.join(sorted(nodes))})",
                        waiting=True)]
    return []


def containers(field: str, template: Any) -> list[Problem]:
    """A Pod template must have at least one container (``field`` is the template's path)."""
    found = ((template or {}).get("spec") or {}).get("containers") if isinstance(template, dict) else None
    if not isinstance(found, list) or not found:
        return [Problem(f"{field}.spec.containers", "needs at least one container")]
    return []


def hem_name(field: str, hem: Any, required: bool) -> tuple[list[Problem], str]:
    """Problems of a hard-example-mining algorithm name (``field`` is the ``.name`` path) and the name.

    The SDK's plug-in registry decides, so a newly registered algorithm needs no change here.
    """
    name = hem.get("name") if isinstance(hem, dict) else None
    if not name:
        return ([Problem(field, "no hard example mining algorithm named")] if required or hem else []), ""
    if not ClassFactory.is_exists(ClassType.HEM, name):
        hint = did_you_mean(name, ClassFactory.names(ClassType.HEM))
        return [Problem(field, f"unknown algorithm {name!r}{hint}")], ""
    return [], str(name)
