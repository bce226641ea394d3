"""Models sent to this node, for the learning managers to resolve URLs and formats.

Models arrive through the hub like every object and live in :class:`~lc.store.Store`; this
manager is the read side (Sedna's LC kept them in a map keyed ``ns/model/name``).
"""

from __future__ import annotations

from typing import Any

from lc.store import Store
from sedna.service.edgehub import ObjectKey


class ModelManager:
    def __init__(self, store: Store) -> None:
        self._store = store

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Model object, or None when the GM has not sent it to this node."""
        return self._store.get_object(ObjectKey("model", namespace, name))

    def list(self) -> list[dict[str, Any]]:
        return self._store.list_objects("model")
