"""``sedna describe``: a readable page about one resource.

Shows the spec in brief (YAML), the status fields, the conditions, the events about
the object, and (for kinds with workers) each worker Pod with its phase, node, IP and
the log file the local runtime writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from sedna.cli import _kinds, _tables, rounds
from sedna.cli._client import Client

ROUND_READERS = {"FederatedLearningJob": rounds.federated_rounds, "IncrementalLearningJob": rounds.incremental_rounds}


def describe(client: Client, info: _kinds.KindInfo, obj: dict[str, Any], state_dir: Path,
             bars: str = rounds.BARS) -> str:
    """The describe page of ``obj`` (``bars``: the sparkline's characters)."""
    meta, status = obj.get("metadata", {}), obj.get("status") or {}
    ns = meta.get("namespace", "default")
    lines = [f"Name:         {meta.get('name')}", f"Namespace:    {ns}", f"Kind:         {info.kind}",
             f"Created:      {meta.get('creationTimestamp')} ({_tables.age(meta.get('creationTimestamp'))} ago)"]
    if meta.get("labels"):
        lines.append("Labels:       " + ", ".join(f"{k}={v}" for k, v in sorted(meta["labels"].items())))
    if obj.get("spec") is not None:
        lines += ["Spec:", _indent(yaml.safe_dump(obj["spec"], sort_keys=False, width=100))]
    plain = {k: v for k, v in status.items() if k != "conditions"}
    if plain:
        lines += ["Status:", _indent(yaml.safe_dump(plain, sort_keys=False, width=100))]
    reader = ROUND_READERS.get(info.kind)
    per_round = rounds.describe_lines(reader(obj), bars=bars) if reader else []
    if per_round:
        lines += ["Rounds:", *per_round]
    conditions = status.get("conditions") or []
    if conditions:
        lines.append("Conditions:")
        lines.append(_table([["TYPE", "STATUS", "REASON", "LAST TRANSITION", "MESSAGE"]] + [
            [c.get("type", ""), c.get("status", ""), c.get("reason", ""), c.get("lastTransitionTime", ""),
             c.get("message", "")] for c in conditions]))
    if info.api_version.startswith("sedna.io/"):
        lines += _workers(client, info, obj, state_dir)
    lines += _events(client, obj)
    return "\n".join(lines)


def _workers(client: Client, info: _kinds.KindInfo, obj: dict[str, Any], state_dir: Path) -> list[str]:
    meta = obj["metadata"]
    pods_kind = _kinds.find("pods")
    selector = f"{info.kind.lower()}.sedna.io/name={meta['name']}"
    pods = client.request("GET", pods_kind.path(meta.get("namespace", "default")),
                          params={"labelSelector": selector}).get("items") or []
    if not pods:
        return ["Workers:      <none>"]
    rows = [["POD", "TYPE", "PHASE", "NODE", "IP", "LOG"]]
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        pmeta = pod["metadata"]
        logs = sorted((state_dir / "logs").glob(f"{pmeta.get('namespace', 'default')}_{pmeta['name']}_*.log"))
        rows.append([pmeta["name"], (pmeta.get("labels") or {}).get(f"{info.kind.lower()}.sedna.io/worker-type", ""),
                     (pod.get("status") or {}).get("phase", ""), (pod.get("spec") or {}).get("nodeName", ""),
                     (pod.get("status") or {}).get("podIP", ""),
                     ", ".join(str(p.resolve()) for p in logs) or "<none>"])
    return ["Workers:", _table(rows)]


def _events(client: Client, obj: dict[str, Any]) -> list[str]:
    meta = obj["metadata"]
    events = client.request("GET", _kinds.find("events").path(meta.get("namespace", "default")),
                            params={"fieldSelector": f"involvedObject.uid={meta.get('uid', '')}"}).get("items") or []
    events = [e for e in events if (e.get("involvedObject") or {}).get("uid") == meta.get("uid")]
    if not events:
        return ["Events:       <none>"]
    events.sort(key=lambda e: e.get("lastTimestamp") or e.get("metadata", {}).get("creationTimestamp") or "")
    return ["Events:", _table([["TYPE", "REASON", "AGE", "MESSAGE"]] + [
        [e.get("type", ""), e.get("reason", ""),
         _tables.age(e.get("lastTimestamp") or e.get("metadata", {}).get("creationTimestamp")),
         e.get("message", "")] for e in events])]


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.rstrip().splitlines())


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  " + "   ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)
