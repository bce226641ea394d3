"""The Dataset controller (:mod:`.reconciler`) and its spec checks (:mod:`.validation`)."""

from gm.controllers.dataset.reconciler import setup

__all__ = ["setup"]
