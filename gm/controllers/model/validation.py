"""Checks on a Model that the CRD schema cannot express: a usable URL and a format name."""

from __future__ import annotations

import re

from gm.cluster.interface import Obj
from gm.controllers.common.problems import Problem, check_url

_FORMAT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def validate(model: Obj, nodes: tuple[str, ...] = ()) -> list[Problem]:
    """Every problem of a Model's spec, each naming its field."""
    spec = model.get("spec") or {}
    out = [p for p in (check_url(spec.get("url"), "spec.url"),) if p is not None]
    fmt = spec.get("format")
    if not isinstance(fmt, str) or not fmt:
        out.append(Problem("spec.format", "required (e.g. onnx, pb, pth)"))
    elif not _FORMAT.match(fmt):
        out.append(Problem("spec.format", f"{fmt!r} is not a format name (letters, digits, '.', '_', '-', e.g. onnx)"))
    return out
