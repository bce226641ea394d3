"""The lifelong-learning knowledge base: server, client, index schema and local copies.

- :mod:`.schema`: the versioned JSON index and its validation (no pickles anywhere);
- :mod:`.blobs`: content-addressed files with hash, size and format checks;
- :mod:`.db`, :mod:`.store`: Sedna's tables on SQLite or PostgreSQL, and the operations;
- :mod:`.app`, :mod:`.server`: the FastAPI service and its runner (:class:`KBServer`, :class:`KBSettings`);
- :mod:`.client`: :class:`KBClient`;
- :mod:`.sources`: index locations (URL or directory) and :class:`LocalKB`, the copy the edge
  serves from while the cloud is away.

Importing this package is cheap; FastAPI, uvicorn, httpx and psycopg load when used.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["KBClient", "KBServer", "KBSettings", "LocalKB", "open_source"]

_WHERE = {"KBClient": ".client", "KBServer": ".server", "KBSettings": ".server", "LocalKB": ".sources",
          "open_source": ".sources"}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)
