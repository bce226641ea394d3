"""Load resource manifests the way Kubernetes reads them.

PyYAML implements YAML 1.1, where an unquoted ``20:00`` is the base-60 integer 1200.
Kubernetes' YAML reader (and YAML 1.2) keep it the string ``"20:00"`` — and Sedna's own
sample jobs write trigger timers unquoted (``start: 02:00``). :func:`load_all` is
``yaml.safe_load_all`` without the sexagesimal forms, so a Sedna user's YAML means the same
here as it does to ``kubectl``.

:func:`load_bounded` is what reads manifests from users and the network (``sedna apply``, the
GM's API): a document nested deeper than :data:`MAX_DEPTH`, with more than :data:`MAX_ALIASES`
aliases, or expanding to more than :data:`MAX_NODES` values (a "billion laughs" of 1 KB) is
refused with :class:`ManifestLimitError` before anything is built, and a self-referring alias
too (JSON cannot carry it).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

_INT = re.compile(r"""^(?:[-+]?0b[0-1_]+
    |[-+]?0[0-7_]+
    |[-+]?(?:0|[1-9][0-9_]*)
    |[-+]?0x[0-9a-fA-F_]+)$""", re.X)
_FLOAT = re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
    |\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X)


class ManifestLoader(yaml.SafeLoader):
    """``SafeLoader`` whose int and float resolvers leave ``HH:MM``-like scalars as strings."""


ManifestLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers
            if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
ManifestLoader.add_implicit_resolver("tag:yaml.org,2002:int", _INT, list("-+0123456789"))
ManifestLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def load_all(text: str) -> list[Any]:
    """Every document of a multi-document manifest (``None`` for empty ones)."""
    return list(yaml.load_all(text, Loader=ManifestLoader))


MAX_DEPTH = 64
"""Deepest nesting of a manifest (Sedna's deepest resources nest about 12 levels)."""
MAX_NODES = 100_000
"""Most values a document may hold once its aliases are expanded (what JSON would carry)."""
MAX_ALIASES = 1_000
"""Most alias uses (``*name``) in one file."""


class ManifestLimitError(yaml.YAMLError, ValueError):
    """A manifest exceeds a bound (depth, aliases, expanded size); the message says which and where."""


class BoundedLoader(ManifestLoader):
    """:class:`ManifestLoader` that counts nesting and aliases while composing, so an alias bomb
    (a 1 KB "billion laughs") or a 200 000-deep document is refused before anything is built."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise ManifestLimitError(f"more than {MAX_ALIASES} aliases (line {mark.line + 1}); "
                                         "write the values out instead")
            return super().compose_node(parent, index)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise ManifestLimitError(f"nested deeper than {MAX_DEPTH} levels (line {mark.line + 1})")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def expanded_size(node: Any, limit: int = MAX_NODES) -> int:
    """How many nodes ``node`` holds with every alias expanded; ManifestLimitError beyond ``limit`` or on a cycle."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(current: Any) -> int:
        key = id(current)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise ManifestLimitError(f"an alias refers to itself (line {current.start_mark.line + 1})")
        active.add(key)
        total = 1
        if isinstance(current, yaml.SequenceNode):
            total += sum(size(child) for child in current.value)
        elif isinstance(current, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in current.value)
        active.discard(key)
        if total > limit:
            raise ManifestLimitError(f"expands to more than {limit} values (aliases repeat what they name); "
                                     f"line {current.start_mark.line + 1}")
        sizes[key] = total
        return total

    return size(node)


def load_bounded(text: str) -> list[Any]:
    """:func:`load_all` within :data:`MAX_DEPTH`, :data:`MAX_ALIASES` and :data:`MAX_NODES` per document.

    Raises :class:`ManifestLimitError` (a ``yaml.YAMLError``) naming the bound and the line.
    """
    loader = BoundedLoader(text)
    try:
        docs = []
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                expanded_size(node)
            docs.append(loader.construct_document(node) if node is not None else None)
        return docs
    finally:
        loader.dispose()
