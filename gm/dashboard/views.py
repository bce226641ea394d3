"""The dashboard's pages as data: which regions a page has, what each shows, which changes touch it.

A page is a :class:`View`: an ordered set of regions (an HTML element id, a partial template and a
function building its context from :class:`~gm.dashboard.live.Live`) and an ``interest`` function
mapping a changed object to the regions it makes stale (called on watch threads: cheap, no I/O).
The app renders a whole page from its regions, and the live stream re-renders only the stale ones.
:func:`view_for` turns a dashboard path back into its view, so a page's stream needs no state.
Tables use ``sedna get``'s printer columns (:mod:`sedna.cli.printing`): the same figures in both.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gm.cluster.interface import EVENT, NODE, POD, SEDNA_KINDS, Obj
from gm.dashboard import charts
from gm.dashboard.live import Live, event_time
from sedna.cli import printing, rounds

OVERVIEW_ROWS = 50
EVENT_ROWS = 25
SEDNA_PLURALS = tuple(k.plural for k in SEDNA_KINDS)
KIND_BY_PLURAL = {k.plural: k for k in SEDNA_KINDS}
HISTORY_KINDS = ("incrementallearningjobs",)
Context = Callable[[Live], dict[str, Any]]


@dataclass(frozen=True)
class Region:
    """One live part of a page: ``id`` (HTML id), ``template`` (a partial) and its context builder."""

    id: str
    template: str
    context: Context


@dataclass
class View:
    """A page: title, regions in order, and which changes touch which regions."""

    path: str
    title: str
    regions: list[Region]
    interest: Callable[[str, Obj], set[str]]
    shows_nodes: bool = False
    crumbs: list[tuple[str, str]] = field(default_factory=list)

    def region(self, region_id: str) -> Region | None:
        return next((r for r in self.regions if r.id == region_id), None)


def view_for(path: str, live: Live) -> View | None:
    """The view of a dashboard path (``/``, ``/kinds/<plural>``, ``/<plural>/<ns>/<name>``), or None."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return overview()
    if len(parts) == 2 and parts[0] == "kinds" and parts[1] in SEDNA_PLURALS:
        return kind_page(parts[1])
    if len(parts) == 3 and parts[0] in SEDNA_PLURALS:
        return object_page(parts[0], parts[1], parts[2], live)
    return None


# -- overview and kind pages ----------------------------------------------------------------------------
def overview() -> View:
    regions = [Region("nodes", "_nodes.html", nodes_context)]
    regions += [Region(f"kind-{p}", "_kind_table.html", lambda live, p=p: kind_context(live, p, OVERVIEW_ROWS))
                for p in SEDNA_PLURALS]
    regions.append(Region("events", "_events.html", lambda live: events_context(live, None)))

    def interest(plural: str, _obj: Obj) -> set[str]:
        if plural in SEDNA_PLURALS:
            return {f"kind-{plural}"}
        return {"nodes"} if plural == NODE.plural else {"events"} if plural == EVENT.plural else set()

    return View("/", "Overview", regions, interest, shows_nodes=True)


def kind_page(plural: str) -> View:
    region = Region(f"kind-{plural}", "_kind_table.html", lambda live: kind_context(live, plural, None))
    kind = KIND_BY_PLURAL[plural].kind
    return View(f"/kinds/{plural}", kind, [region], lambda p, _o: {region.id} if p == plural else set(),
                crumbs=[(kind, "")])


def nodes_context(live: Live) -> dict[str, Any]:
    sessions, now = live.sessions(), time.time()
    nodes = {o["metadata"]["name"]: o for o in live.objects(NODE.plural)}
    rows = []
    for name in sorted(set(nodes) | set(sessions)):
        node, session = nodes.get(name) or {}, sessions.get(name)
        conditions = (node.get("status") or {}).get("conditions") or []
        ready = [c.get("status") for c in conditions if c.get("type") == "Ready"]
        rows.append({"name": name, "ready": ready[-1] if ready else "Unknown",
                     "hub": "n/a" if live.node_sessions is None else "never connected" if session is None
                     else "connected" if session.get("connected") else "disconnected",
                     "since": _clock(session.get("since")) if session else "",
                     "last_seen": _ago(session.get("lastSeen"), now) if session else "",
                     "last_report": _ago(session.get("lastReport"), now) if session else "",
                     "reports": session.get("reports", "") if session else "",
                     "queued": (session.get("pending", 0) + session.get("inflight", 0)) if session else ""})
    return {"rows": rows, "hub": live.node_sessions is not None}


def nodes_fingerprint(live: Live) -> tuple[Any, ...]:
    """What the nodes table shows that no watch event reports (hub sessions), to poll for changes."""
    return tuple(sorted((n, bool(s.get("connected")), s.get("reports"), s.get("pending", 0) + s.get("inflight", 0))
                        for n, s in live.sessions().items()))


def kind_context(live: Live, plural: str, limit: int | None) -> dict[str, Any]:
    objs = live.objects(plural)
    columns = printing.columns(plural)
    shown = objs if limit is None else objs[:limit]
    rows = [{"name": o["metadata"]["name"], "namespace": o["metadata"].get("namespace", ""),
             "href": f"{plural}/{o['metadata'].get('namespace', 'default')}/{o['metadata']['name']}",
             "cells": [printing.cell(o, c) for c in columns], "conditions": latest_conditions(o)} for o in shown]
    return {"plural": plural, "kind": KIND_BY_PLURAL[plural].kind, "headers": [c.name for c in columns],
            "rows": rows, "more": len(objs) - len(shown)}


def events_context(live: Live, uid: str | None) -> dict[str, Any]:
    events = live.events_about(uid) if uid else sorted(live.objects(EVENT.plural), key=event_time)
    rows = [{"type": e.get("type", ""), "reason": e.get("reason", ""), "count": e.get("count") or 1,
             "object": "{kind}/{name}".format(**{"kind": "", "name": "", **(e.get("involvedObject") or {})}),
             "age": printing.age(event_time(e) or None), "message": e.get("message", "")}
            for e in events[-EVENT_ROWS:]]
    return {"rows": list(reversed(rows))}


# -- one object ---------------------------------------------------------------------------------------
def object_page(plural: str, namespace: str, name: str, live: Live) -> View:
    kind = KIND_BY_PLURAL[plural]
    label = f"{kind.kind.lower()}.sedna.io/name"
    current = live.get(plural, namespace, name) or {}
    uid = (current.get("metadata") or {}).get("uid", "")

    def summary(live: Live) -> dict[str, Any]:
        obj = live.get(plural, namespace, name)
        if obj is None:
            return {"missing": True}
        status = obj.get("status") or {}
        columns = printing.columns(plural)
        return {"missing": False, "fields": [(c.name, printing.cell(obj, c)) for c in columns],
                "conditions": [] if plural in HISTORY_KINDS else  # their conditions are a stage history
                [c for c in status.get("conditions") or [] if isinstance(c, dict)]}

    def workers(live: Live) -> dict[str, Any]:
        pods = live.objects(POD.plural, namespace, {label: name})
        return {"rows": [{"name": p["metadata"]["name"], "phase": (p.get("status") or {}).get("phase", ""),
                          "node": (p.get("spec") or {}).get("nodeName", ""), "restarts": _restarts(p),
                          "type": (p["metadata"].get("labels") or {}).get(f"{kind.kind.lower()}.sedna.io/worker-type",
                                                                          "")} for p in pods]}

    regions = [Region("summary", "_summary.html", summary)]
    detail = DETAILS.get(plural)
    if detail is not None:
        regions.append(Region("detail", detail[0], lambda live: detail[1](live, namespace, name)))
    regions += [Region("workers", "_workers.html", workers),
                Region("object-events", "_events.html", lambda live: events_context(live, uid))]

    def interest(changed: str, obj: Obj) -> set[str]:
        meta = obj.get("metadata") or {}
        if changed == plural:
            return {"summary", "detail"} if (meta.get("namespace"), meta.get("name")) == (namespace, name) else set()
        if changed == POD.plural:
            return {"workers"} if (meta.get("labels") or {}).get(label) == name and \
                meta.get("namespace") == namespace else set()
        if changed == EVENT.plural:
            return {"object-events"} if (obj.get("involvedObject") or {}).get("uid") == uid and uid else set()
        return set()

    return View(f"/{plural}/{namespace}/{name}", f"{kind.kind} {namespace}/{name}", regions, interest,
                crumbs=[(kind.kind, f"kinds/{plural}"), (f"{namespace}/{name}", "")])


def ji_detail(live: Live, namespace: str, name: str) -> dict[str, Any]:
    obj = live.get("jointinferenceservices", namespace, name) or {}
    info = (obj.get("status") or {}).get("inference") or {}
    samples, now = live.samples(namespace, name), time.time()

    def series(label: str, value: Callable[[Any], float]) -> list[charts.Series]:
        return [charts.Series(label, [(s.time - now, value(s)) for s in samples])]

    ago = _seconds_label
    return {"figures": [("Inferences", info.get("count", "")), ("Hard examples", info.get("hardExamples", "")),
                        ("Offload ratio", _num(info.get("offloadRatio"))),
                        ("Cloud failures", info.get("cloudFailures", "")), ("Fallbacks", info.get("fallbacks", "")),
                        ("Updated", info.get("updateTime", ""))],
            "charts": [("Inference count", charts.line_chart(series("inferences", lambda s: s.count), "inference count",
                                                              ago, lambda y: f"{y:.0f}")),
                       ("Offload ratio", charts.line_chart(series("offload ratio", lambda s: s.offload_ratio),
                                                            "offload ratio", ago)),
                       ("Cloud failures", charts.line_chart(series("cloud failures", lambda s: s.cloud_failures),
                                                             "cloud failures", ago, lambda y: f"{y:.0f}"))],
            "samples": len(samples)}


def fl_detail(live: Live, namespace: str, name: str) -> dict[str, Any]:
    obj = live.get("federatedlearningjobs", namespace, name) or {}
    history = rounds.federated_rounds(obj)
    names = rounds.metric_names(history)
    quality = [n for n in names if n != "loss"]
    round_label = lambda x: f"{x:.0f}"  # noqa: E731
    return {"charts": [
        ("Metrics per round", charts.line_chart(
            [charts.Series(n, [(r.round, r.metrics[n]) for r in history if n in r.metrics]) for n in quality[:4]],
            "metrics per round", round_label)),
        ("Loss per round", charts.line_chart(
            [charts.Series("loss", [(r.round, r.metrics["loss"]) for r in history if "loss" in r.metrics])],
            "loss per round", round_label)),
        ("Participants per round", charts.bar_chart(
            [(r.round, r.clients) for r in history if r.clients is not None], "participants per round",
            "clients", round_label))],
        "headers": ["ROUND", "CLIENTS", "FAILURES", *(n.upper() for n in names)],
        "rows": [[r.round, _blank(r.clients), _blank(r.failures), *(_num(r.metrics.get(n)) for n in names)]
                 for r in reversed(history[-20:])]}


def il_detail(live: Live, namespace: str, name: str) -> dict[str, Any]:
    obj = live.get("incrementallearningjobs", namespace, name) or {}
    history = [c for c in (obj.get("status") or {}).get("conditions") or [] if isinstance(c, dict)]
    evaluated = rounds.incremental_rounds(obj)
    names = rounds.metric_names(evaluated)
    timeline = [{"stage": c.get("stage", ""), "state": c.get("type", ""), "reason": c.get("reason", ""),
                 "message": c.get("message", ""), "time": c.get("lastTransitionTime", ""),
                 "round": _round_of(c)} for c in history]
    return {"timeline": list(reversed(timeline)),
            "charts": [("Metrics per round", charts.line_chart(
                [charts.Series(n, [(r.round, r.metrics[n]) for r in evaluated if n in r.metrics]) for n in names[:4]],
                "metrics per round", lambda x: f"{x:.0f}"))],
            "headers": ["ROUND", *(n.upper() for n in names)],
            "rows": [[r.round, *(_num(r.metrics.get(n)) for n in names)] for r in reversed(evaluated)]}


DETAILS: dict[str, tuple[str, Callable[[Live, str, str], dict[str, Any]]]] = {
    "jointinferenceservices": ("_ji.html", ji_detail),
    "federatedlearningjobs": ("_fl.html", fl_detail),
    "incrementallearningjobs": ("_il.html", il_detail),
}


# -- small helpers ------------------------------------------------------------------------------------
def latest_conditions(obj: Obj) -> list[dict[str, str]]:
    """The newest condition of each type (an IL job keeps a history of them)."""
    latest: dict[str, dict[str, str]] = {}
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type"):
            latest[str(cond["type"])] = {"type": str(cond["type"]), "status": str(cond.get("status", "")),
                                         "reason": str(cond.get("reason", "")), "message": str(cond.get("message", ""))}
    return list(latest.values())[-4:]


def _restarts(pod: Obj) -> int:
    return sum(int(c.get("restartCount") or 0) for c in (pod.get("status") or {}).get("containerStatuses") or [])


def _round_of(cond: dict[str, Any]) -> Any:
    try:
        data = json.loads(cond.get("data") or "{}") if isinstance(cond.get("data"), str) else cond.get("data") or {}
    except ValueError:
        return ""
    return data.get("round", "") if isinstance(data, dict) else ""


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return "" if value is None else str(value)


def _blank(value: Any) -> Any:
    return "" if value is None else value


def _clock(epoch: Any) -> str:
    if not isinstance(epoch, (int, float)):
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def _ago(epoch: Any, now: float) -> str:
    if not isinstance(epoch, (int, float)):
        return "never"
    return f"{_clock(epoch)} ({printing.age(time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(epoch)))} ago)"


def _seconds_label(x: float) -> str:
    seconds = -x
    if seconds < 90:
        return f"-{seconds:.0f}s"
    if seconds < 5400:
        return f"-{seconds / 60:.0f}m"
    return f"-{seconds / 3600:.1f}h"
