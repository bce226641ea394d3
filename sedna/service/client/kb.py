"""Sedna's ``KBClient``: the lifelong-learning knowledge base's client, with Sedna's constructor.

``KBClient(kbserver)`` as Sedna builds it (``KB_SERVER``); the token comes from ``KB_TOKEN``
when not given. Everything else is :class:`sedna.service.kb.client.KBClient`:
``upload_file``, ``update_task_status(tasks, new_status)``, ``update(index)``, ``index()``...
Sedna's ``update_db(task_info_file)`` uploaded a pickled index for the server to unpickle; this
knowledge base never unpickles what arrives over the network, so it raises
:class:`NotImplementedError` pointing at :meth:`~sedna.service.kb.client.KBClient.update`.
In a build without the knowledge base (issue 16), constructing a ``KBClient`` raises
:class:`NotImplementedError` naming the issue rather than failing later on a network call.
"""

from __future__ import annotations

import importlib
import os
from typing import Any


def _base() -> Any:
    try:
        return importlib.import_module("sedna.service.kb.client").KBClient
    except (ImportError, AttributeError):
        return None


_Base = _base()

if _Base is not None:
    class KBClient(_Base):  # type: ignore[misc,valid-type]
        """The knowledge base at ``kbserver`` (``http://host:port``, ``/knowledgebase`` optional)."""

        def __init__(self, kbserver: str, token: str | None = None, **kwargs: Any) -> None:
            super().__init__(kbserver, os.environ.get("KB_TOKEN", "") if token is None else token, **kwargs)

        def update_db(self, task_info_file: str) -> Any:
            raise NotImplementedError(
                f"KBClient.update_db({task_info_file!r}) would upload a pickled index, which this knowledge base "
                "never unpickles; register the index as JSON with KBClient.update(index) instead")
else:
    class KBClient:  # type: ignore[no-redef]
        """Stands in for ``KBClient`` in a build without the knowledge base."""

        def __init__(self, kbserver: str = "", *args: Any, **kwargs: Any) -> None:
            raise NotImplementedError(
                "sedna.service.client.KBClient needs the lifelong-learning knowledge base (sedna.service.kb, "
                f"issue 16), which this build does not include; cannot talk to {kbserver!r}")

__all__ = ["KBClient"]
