"""Sedna's ``KBClient`` name: the lifelong-learning knowledge base's client, when this build has one.

The knowledge base (``sedna.service.kb``) arrives with lifelong learning (issue 16). Where it is
present, ``KBClient`` here is its client (Sedna's ``KBClient(kbserver)`` constructor and
``update_task_status(tasks, new_status)``, without pickles). Where it is not, constructing a
``KBClient`` raises :class:`NotImplementedError` naming the issue, rather than failing later on
a network call.
"""

from __future__ import annotations

import importlib
from typing import Any


def _project_client() -> Any:
    try:
        return importlib.import_module("sedna.service.kb.client").KBClient
    except (ImportError, AttributeError):
        return None


class _MissingKBClient:
    """Stands in for ``KBClient`` in a build without the knowledge base."""

    def __init__(self, kbserver: str = "", *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(
            "sedna.service.client.KBClient needs the lifelong-learning knowledge base (sedna.service.kb, "
            f"issue 16), which this build does not include; cannot talk to {kbserver!r}")


KBClient: Any = _project_client() or _MissingKBClient

__all__ = ["KBClient"]
