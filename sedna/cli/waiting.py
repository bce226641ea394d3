"""``sedna wait``: block until resources reach a condition, are deleted, or a field has a value.

``sedna wait KIND/NAME... --for=condition=Ready[=True] | --for=delete |
--for=jsonpath='{.status.phase}'=Running [--timeout=30s]`` reads each object and, until it
matches, follows the API's watch from the object's resourceVersion (:mod:`._watch`), so a change
is seen as it happens, not at the next poll. It prints ``<kind>/<name> condition met`` (or
``deleted``) per object and exits 0; when the time runs out it says which object did not get
there and what it last showed, and exits 1 (as ``kubectl wait`` does).
"""

from __future__ import annotations

import argparse
import re
import time
from dataclasses import dataclass
from typing import Any

from sedna.cli import _kinds, _tables, _watch
from sedna.cli._client import Client, add_connection_flags
from sedna.cli._errors import CliError, guarded

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")


def register(subparsers: Any) -> None:
    """Add ``wait``."""
    p = subparsers.add_parser(
        "wait", help="wait for resources to be Ready, deleted, or to show a field value",
        description="Wait until each named resource meets --for, or fail after --timeout.",
        epilog="examples:\n  sedna wait ji/digits --for=condition=Ready --timeout=2m\n"
               "  sedna wait fl digits-fl --for=jsonpath='{.status.phase}'=Completed\n"
               "  sedna wait pod/x --for=delete\n\nresource types (plural, short name, kind):\n"
               + _kinds.names_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("targets", nargs="+", metavar="KIND/NAME", help="KIND/NAME..., or KIND NAME...")
    p.add_argument("--for", dest="for_", required=True, metavar="CONDITION",
                   help="condition=TYPE[=STATUS] (STATUS default True), delete, or jsonpath={PATH}[=VALUE]")
    p.add_argument("--timeout", default="30s", help="how long to wait in all: 30s, 5m, 1h, or seconds (default 30s)")
    add_connection_flags(p)
    p.set_defaults(handler=guarded(wait))


@dataclass(frozen=True)
class Condition:
    """What ``--for`` asks: ``kind`` is ``condition``, ``delete`` or ``jsonpath``."""

    kind: str
    key: str = ""
    value: str | None = None

    def met(self, obj: dict[str, Any] | None) -> bool:
        """Whether ``obj`` (None: absent) satisfies the condition."""
        if self.kind == "delete":
            return obj is None
        if obj is None:
            return False
        if self.kind == "condition":
            found = [c for c in (obj.get("status") or {}).get("conditions") or []
                     if isinstance(c, dict) and str(c.get("type", "")).lower() == self.key.lower()]
            return bool(found) and str(found[-1].get("status", "")).lower() == (self.value or "true").lower()
        values = _tables.jsonpath(obj, self.key)
        if self.value is None:
            return bool(values)
        return any(_text(v) == self.value for v in values)

    def describe(self) -> str:
        if self.kind == "delete":
            return "deletion"
        if self.kind == "condition":
            return f"condition {self.key}={self.value or 'True'}"
        return f"{{{self.key}}}" + (f"={self.value}" if self.value is not None else " to exist")


def parse_for(text: str) -> Condition:
    """``--for`` text -> :class:`Condition`; a clear error for anything else."""
    if text == "delete":
        return Condition("delete")
    if text.startswith("condition="):
        key, _, value = text[len("condition="):].partition("=")
        if not key:
            raise CliError(f"--for: expected condition=TYPE[=STATUS], got {text!r}")
        return Condition("condition", key, value or None)
    if text.startswith("jsonpath="):
        rest = text[len("jsonpath="):]
        match = re.fullmatch(r"\{([^}]*)\}(?:=(.*))?", rest)
        if not match or not match.group(1).startswith("."):
            raise CliError(f"--for: expected jsonpath={{.field.path}}[=VALUE], got {text!r}")
        return Condition("jsonpath", match.group(1), match.group(2))
    raise CliError(f"--for: expected condition=TYPE[=STATUS], delete or jsonpath={{PATH}}[=VALUE], got {text!r}")


def parse_duration(text: str) -> float:
    """``30s``, ``5m``, ``1h``, ``250ms`` or plain seconds -> seconds."""
    match = _DURATION.match(text.strip())
    if not match:
        raise CliError(f"--timeout: expected a duration such as 30s, 5m or 1h, got {text!r}")
    number, unit = float(match.group(1)), match.group(2) or "s"
    return number * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[unit]


def targets(words: list[str]) -> list[tuple[_kinds.KindInfo, str]]:
    """``KIND/NAME...`` or ``KIND NAME...`` -> ``[(kind, name)]``."""
    if all("/" in w for w in words):
        out = []
        for word in words:
            kind, _, name = word.partition("/")
            if not name:
                raise CliError(f"{word}: expected KIND/NAME")
            out.append((_kinds.find(kind), name))
        return out
    if "/" in words[0] or len(words) < 2:
        raise CliError("give KIND/NAME..., or KIND NAME...")
    info = _kinds.find(words[0])
    return [(info, name) for name in words[1:]]


def wait(args: argparse.Namespace) -> int:
    condition = parse_for(args.for_)
    budget = parse_duration(args.timeout)
    wanted = targets(args.targets)
    client = Client.from_args(args)
    deadline = time.monotonic() + budget
    for info, name in wanted:
        last = _wait_one(client, info, args.namespace, name, condition, deadline)
        if not condition.met(last):
            raise CliError(f"timed out after {args.timeout} waiting for {condition.describe()} on "
                           f"{info.plural}/{name}{_summary(last, condition)}")
        print(f"{info.ref}/{name} {'deleted' if condition.kind == 'delete' else 'condition met'}", flush=True)
    return 0


def _wait_one(client: Client, info: _kinds.KindInfo, namespace: str, name: str, condition: Condition,
              deadline: float) -> dict[str, Any] | None:
    """The object as last seen: once it meets ``condition``, or when ``deadline`` passes."""
    obj = client.request("GET", info.path(namespace, name), allow_404=True)
    if obj is None and condition.kind != "delete":
        raise CliError(f"{info.ref} {name!r} not found in namespace {namespace!r}")
    if condition.met(obj) or time.monotonic() >= deadline:
        return obj
    assert obj is not None
    rv = str(obj["metadata"].get("resourceVersion") or "")
    for type_, event_obj in _watch.follow(client, info, namespace, rv, [obj],
                                          timeout=max(deadline - time.monotonic(), 0.001)):
        if event_obj.get("metadata", {}).get("name") != name:
            continue
        obj = None if type_ == "DELETED" else event_obj
        if condition.met(obj):
            return obj
    return obj


def _summary(obj: dict[str, Any] | None, condition: Condition) -> str:
    if obj is None:
        return " (it does not exist)"
    if condition.kind == "jsonpath":
        values = _tables.jsonpath(obj, condition.key)
        return f" (it shows {','.join(_text(v) for v in values)!r})" if values else " (the field is absent)"
    status = obj.get("status") or {}
    latest = {str(c.get("type")): c.get("status") for c in status.get("conditions") or [] if isinstance(c, dict)}
    conds = ", ".join(f"{t}={s}" for t, s in latest.items())
    phase = f"phase {status['phase']}" if status.get("phase") else ""
    shown = "; ".join(p for p in (phase, f"conditions {conds}" if conds else "") if p)
    return f" (it shows {shown})" if shown else " (it has no status yet)"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
