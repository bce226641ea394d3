"""Load resource manifests the way Kubernetes reads them.

PyYAML implements YAML 1.1, where an unquoted ``20:00`` is the base-60 integer 1200.
Kubernetes' YAML reader (and YAML 1.2) keep it the string ``"20:00"`` — and Sedna's own
sample jobs write trigger timers unquoted (``start: 02:00``). :func:`load_all` is
``yaml.safe_load_all`` without the sexagesimal forms, so a Sedna user's YAML means the same
here as it does to ``kubectl``.
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
