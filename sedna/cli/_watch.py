"""Follow a collection over the API's HTTP watch, as a Kubernetes client does.

:func:`follow` yields ``(type, object)`` for every change after a resourceVersion, for as long
as the caller wants: it reads the newline-delimited ``{"type", "object"}`` stream with bookmarks
on, moves its resourceVersion forward with every event and bookmark, reconnects from there when
the stream ends or drops, and when the server answers ``410 Gone`` (as an HTTP status or as an
``ERROR`` event) it lists again and yields the difference (``ADDED``/``MODIFIED`` for what
changed, ``DELETED`` for what went), so a caller never misses a final state.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from sedna.cli._client import Client, Unreachable
from sedna.cli._errors import CliError
from sedna.cli._kinds import KindInfo

READ_TIMEOUT = 60.0
"""Seconds without a byte before a stream counts as dropped (the server bookmarks every 10 s)."""
RETRIES = 5
"""Consecutive failed reconnects before :func:`follow` gives up."""

Event = tuple[str, dict[str, Any]]


class Gone(Exception):
    """The resourceVersion was compacted away: list again."""


def listing(client: Client, info: KindInfo, namespace: str | None,
            selector: str | None = None) -> tuple[list[dict[str, Any]], str]:
    """The objects of a collection, sorted by namespace and name, and the list's resourceVersion."""
    params = {"labelSelector": selector} if selector else None
    body = client.request("GET", info.path(namespace), params=params)
    items = sorted(body.get("items") or [], key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
    return items, str((body.get("metadata") or {}).get("resourceVersion") or "")


def follow(client: Client, info: KindInfo, namespace: str | None, resource_version: str,
           known: list[dict[str, Any]], selector: str | None = None, timeout: float | None = None) -> Iterator[Event]:
    """Changes after ``resource_version`` of the collection whose current objects are ``known``.

    Ends after ``timeout`` seconds when one is given (else never); raises :class:`CliError` when
    the API stays unreachable.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    state = {_key(o): o for o in known}
    rv, failures = resource_version, 0
    while deadline is None or time.monotonic() < deadline:
        params: dict[str, Any] = {"watch": "1", "allowWatchBookmarks": "true", "resourceVersion": rv}
        if selector:
            params["labelSelector"] = selector
        if deadline is not None:
            params["timeoutSeconds"] = max(1, int(deadline - time.monotonic() + 0.999))
        try:
            for type_, obj in _stream(client, info, namespace, params):
                failures = 0
                rv = str(obj.get("metadata", {}).get("resourceVersion") or rv)
                if type_ == "BOOKMARK":
                    continue
                if type_ == "DELETED":
                    state.pop(_key(obj), None)
                else:
                    state[_key(obj)] = obj
                yield type_, obj
        except Gone:
            items, rv = listing(client, info, namespace, selector)
            yield from _difference(state, items)
        except Unreachable:
            failures += 1
            if failures > RETRIES:
                raise
            time.sleep(min(2.0 ** failures * 0.1, 2.0))


def _stream(client: Client, info: KindInfo, namespace: str | None, params: dict[str, Any]) -> Iterator[Event]:
    with client.stream(info.path(namespace), params, READ_TIMEOUT) as response:
        if response.status_code == 410:
            raise Gone
        for line in response.iter_lines():
            if not line.strip():
                continue
            try:
                event = json.loads(line)
                type_, obj = event["type"], event["object"]
            except (ValueError, KeyError, TypeError):
                raise CliError(f"the API sent a watch line that is not a {{type, object}} event: {line[:200]!r}") \
                    from None
            if type_ == "ERROR":
                if obj.get("code") == 410:
                    raise Gone
                raise CliError(f"watch of {info.plural} failed: {obj.get('message') or obj}")
            yield type_, obj


def _difference(state: dict[tuple[str, str], dict[str, Any]], items: list[dict[str, Any]]) -> Iterator[Event]:
    fresh = {_key(o): o for o in items}
    for key, old in list(state.items()):
        if key not in fresh:
            del state[key]
            yield "DELETED", old
    for key, obj in fresh.items():
        old = state.get(key)
        if old is None or old["metadata"].get("resourceVersion") != obj["metadata"].get("resourceVersion"):
            state[key] = obj
            yield ("ADDED" if old is None else "MODIFIED"), obj


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace", "")), str(meta.get("name", ""))
