"""Render objects as kubectl-style tables; a small JSONPath subset for printer columns.

Supported paths: ``.a.b``, ``.a[0].b``, ``.a[*].b`` (joined with commas),
``.a[?(@.type=="Ready")].status``, which covers the CRDs' printer columns, and ``..a`` (``a`` at
any depth below, for the wide columns).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from sedna.cli._kinds import Column

_TOKEN = re.compile(r"\.\.([A-Za-z0-9_-]+)|\.([A-Za-z0-9_-]+)|\[(\d+|\*)\]"
                    r"|\[\?\(@\.([A-Za-z0-9_]+)==[\"']([^\"']*)[\"']\)\]")


def _descendants(value: Any, name: str) -> list[Any]:
    found: list[Any] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if name in item:
                found.append(item[name])
            stack.extend(reversed([v for k, v in item.items() if k != name]))
        elif isinstance(item, list):
            stack.extend(reversed(item))
    return found


def jsonpath(obj: Any, path: str) -> list[Any]:
    """Values at ``path`` in ``obj`` (empty when absent)."""
    values = [obj]
    for match in _TOKEN.finditer(path):
        deep, name, index, fkey, fval = match.groups()
        nxt: list[Any] = []
        for value in values:
            if deep is not None:
                nxt.extend(_descendants(value, deep))
            elif name is not None and isinstance(value, dict) and name in value:
                nxt.append(value[name])
            elif index == "*" and isinstance(value, list):
                nxt.extend(value)
            elif index is not None and index != "*" and isinstance(value, list) and int(index) < len(value):
                nxt.append(value[int(index)])
            elif fkey is not None and isinstance(value, list):
                nxt.extend(v for v in value if isinstance(v, dict) and str(v.get(fkey)) == fval)
        values = nxt
    return [v for v in values if v is not None]


def age(timestamp: str | None, now: datetime | None = None) -> str:
    """``5s``, ``3m``, ``2h``, ``4d`` since an RFC 3339 timestamp; ``<unknown>`` when unparsable."""
    if not timestamp:
        return "<unknown>"
    try:
        then = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return "<unknown>"
    seconds = int(((now or datetime.now(timezone.utc)) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def cell(obj: dict[str, Any], column: Column) -> str:
    """The text of one cell."""
    values = jsonpath(obj, column.path)
    if column.type == "date":
        return age(values[0] if values else None)
    if not values:
        return "<none>"
    if column.type == "set":
        values = list(dict.fromkeys(_fmt(v) for v in values))
    return ",".join(_fmt(v) for v in values)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, (dict, list)):
        return "..."
    return str(value)


def render(objs: Sequence[dict[str, Any]], columns: Sequence[Column], wide: bool = False) -> str:
    """A table with NAME first and then ``columns`` (priority > 0 only when ``wide``)."""
    shown = [c for c in columns if wide or c.priority == 0]
    rows = [["NAME", *(c.name for c in shown)]]
    rows += [[o.get("metadata", {}).get("name", ""), *(cell(o, c) for c in shown)] for o in objs]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("   ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows)
