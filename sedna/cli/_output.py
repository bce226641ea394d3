"""``-o``: how ``sedna get`` prints objects, for one listing or a stream of watch events.

Formats, as kubectl names them: the default table, ``wide`` (more columns: the kind's
:data:`~._kinds.WIDE` JSONPaths and, for kinds with workers, WORKERS ``running/total`` and the
NODES they run on, read from the live Pods), ``json``, ``yaml`` and ``name`` (``kind/name``). A
:class:`Printer` prints a listing with :meth:`Printer.listing` and then, under ``--watch``, one
line (or document) per event with :meth:`Printer.event`; a table keeps its header and column
widths across events.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import yaml

from sedna.cli import _kinds, _tables

FORMATS = ("wide", "yaml", "json", "name")
PodLister = Callable[[str | None], list[dict[str, Any]]]


class Printer:
    """Prints objects of one kind to ``out`` in one ``-o`` format."""

    def __init__(self, info: _kinds.KindInfo, output: str | None, out: TextIO, pods: PodLister | None = None,
                 watch_events: bool = False, all_namespaces: bool = False) -> None:
        self.info, self.output, self.out = info, output or "", out
        self.watch_events, self.all_namespaces = watch_events, all_namespaces
        self._pods = pods if output == "wide" and info.has_workers else None
        self._widths: list[int] | None = None
        self._pod_cache: dict[str | None, list[dict[str, Any]]] = {}
        self._worker_cache: tuple[int, list[str]] | None = None

    def listing(self, objs: Sequence[dict[str, Any]], single: bool = False) -> None:
        """Print a whole listing (``single``: one named object, printed bare in json/yaml)."""
        self._pod_cache.clear()
        if self.output in ("json", "yaml"):
            body: Any = objs[0] if single and objs else {"apiVersion": "v1", "kind": "List", "items": list(objs)}
            self._document(body)
        elif self.output == "name":
            for obj in objs:
                self._line(f"{self.info.ref}/{_name(obj)}")
        elif objs:
            self._rows([self._cells(o, "") for o in objs], header=True)
        self.out.flush()

    def event(self, type_: str, obj: dict[str, Any]) -> None:
        """Print one watch event."""
        self._pod_cache.clear()
        if self.output in ("json", "yaml"):
            self._document({"type": type_, "object": obj} if self.watch_events else obj)
        elif self.output == "name":
            self._line(f"{type_}\t{self.info.ref}/{_name(obj)}" if self.watch_events else
                       f"{self.info.ref}/{_name(obj)}")
        else:
            self._rows([self._cells(obj, type_)], header=self._widths is None)
        self.out.flush()

    def header_pending(self) -> bool:
        """Whether no table row has been printed yet."""
        return self._widths is None

    # -- tables -------------------------------------------------------------------------------------
    def _table_columns(self) -> list[tuple[str, Callable[[dict[str, Any]], str]]]:
        """``(header, cell)`` pairs; WORKERS and NODES go before a trailing AGE column, as kubectl's do."""
        shown = [c for c in self.info.columns if self.output == "wide" or c.priority == 0]
        cols: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
            (c.name, lambda o, c=c: _tables.cell(o, c)) for c in shown]
        if self._pods is not None:
            at = len(cols) - 1 if shown and shown[-1].type == "date" else len(cols)
            cols[at:at] = [("WORKERS", lambda o: self._workers(o)[0]), ("NODES", lambda o: self._workers(o)[1])]
        lead: list[tuple[str, Callable[[dict[str, Any]], str]]] = [("NAME", _name)]
        if self.all_namespaces:
            lead.insert(0, ("NAMESPACE", lambda o: str((o.get("metadata") or {}).get("namespace", ""))))
        return lead + cols

    def _header(self) -> list[str]:
        return (["EVENT"] if self.watch_events else []) + [h for h, _ in self._table_columns()]

    def _cells(self, obj: dict[str, Any], type_: str) -> list[str]:
        self._worker_cache = None
        return ([type_] if self.watch_events else []) + [cell(obj) for _, cell in self._table_columns()]

    def _workers(self, obj: dict[str, Any]) -> list[str]:
        if self._worker_cache is not None and self._worker_cache[0] == id(obj):
            return self._worker_cache[1]
        assert self._pods is not None
        meta = obj.get("metadata") or {}
        ns = meta.get("namespace")
        if ns not in self._pod_cache:
            self._pod_cache[ns] = self._pods(ns)
        label = f"{self.info.kind.lower()}.sedna.io/name"
        pods = [p for p in self._pod_cache[ns]
                if ((p.get("metadata") or {}).get("labels") or {}).get(label) == meta.get("name")]
        running = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Running")
        nodes = sorted({str(p["spec"]["nodeName"]) for p in pods if (p.get("spec") or {}).get("nodeName")})
        if not nodes:  # no Pods yet: the nodes the spec names
            nodes = sorted({str(n) for n in _tables.jsonpath(obj, "..template.spec.nodeName")})
        cells = [f"{running}/{len(pods)}", ",".join(nodes) or "<none>"]
        self._worker_cache = (id(obj), cells)
        return cells

    def _rows(self, rows: list[list[str]], header: bool) -> None:
        if header:
            rows = [self._header(), *rows]
        if self._widths is None:
            self._widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for row in rows:
            self._widths = [max(w, len(v)) for w, v in zip(self._widths, row, strict=True)]
            self._line("   ".join(v.ljust(w) for v, w in zip(row, self._widths, strict=True)).rstrip())

    # -- documents ----------------------------------------------------------------------------------
    def _document(self, body: Any) -> None:
        if self.output == "json":
            self._line(json.dumps(body, indent=2))
        else:
            self._line(("---\n" if self.watch_events or self._widths == [] else "")
                       + yaml.safe_dump(body, sort_keys=False).rstrip())
            self._widths = []  # later documents are separated by ---

    def _line(self, text: str) -> None:
        self.out.write(text + "\n")


def _name(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))
