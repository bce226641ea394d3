"""The Model controller: validates ``spec.url`` / ``spec.format`` into ``Ready`` / ``Failed``.

Sedna has no Model controller; here a bad URL is reported on the Model itself instead
of surfacing later inside a worker. Models reach nodes through the edge hub, and the
JointInferenceService controller watches Models to recover services waiting for one.
"""

from __future__ import annotations

import re

from gm.cluster.interface import MODEL, Obj
from gm.controllers.dataset import ConditionReconciler
from gm.controllers.validation import check_url
from gm.runtime import predicates
from gm.runtime.mapping import own_key
from gm.runtime.reconciling import Controller, Manager
from gm.settings import ControllerSettings

_FORMAT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def problems(model: Obj, nodes: tuple[str, ...] = ()) -> list[str]:
    """Every problem of a Model's spec, each starting with the field path."""
    spec = model.get("spec") or {}
    out = [p for p in (check_url(spec.get("url"), "spec.url"),) if p]
    fmt = spec.get("format")
    if not isinstance(fmt, str) or not fmt:
        out.append("spec.format: required (e.g. onnx, pb, pth)")
    elif not _FORMAT.match(fmt):
        out.append(f"spec.format: {fmt!r} is not a format name (letters, digits, '.', '_', '-', e.g. onnx)")
    return out


def setup(manager: Manager, settings: ControllerSettings) -> Controller:
    """Register the Model controller with ``manager``."""
    cache = manager.informer(MODEL).cache
    controller = manager.add_controller("model", ConditionReconciler(manager.cluster, cache, problems), 1)
    manager.watch(MODEL, controller, own_key, predicates.spec_or_metadata_changed)
    return controller
