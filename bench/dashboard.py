"""Dashboard benchmark: how fast a status change reaches an open page, and what open pages cost the GM.

One GM process (``--gm`` mode of this module: a LocalStore file, the edge hub, the local REST API
with the dashboard mounted at ``/dashboard`` and fed the hub's node sessions, as ``python -m gm``
wires them) is seeded with 200 JointInferenceServices (``--resources``) plus, for the fan-out,
``bench.edge_hub``'s 10 Datasets per node and one FederatedLearningJob routed to every node. Debian's
headless Chromium (Playwright) opens real pages. Measured, side by side in one run:

- ``dashboard_update_p95_s``: a page listing the 200 services is open; the status of one service is
  patched through the API (``inference.count``) and a MutationObserver in the page records when the
  new count is shown; p95 over ``--updates`` changes 0.3 s apart (goal <= 1 s);
- ``dashboard_cpu_idle_pct``: the GM's CPU (user + system, % of one core) over a window with
  ``--pages`` overview pages open (nodes, every kind, Events: the heaviest page) minus the same
  window with no page open, divided by the number of pages (goal <= 2);
- ``dashboard_cpu_fanout_pct``: the same while ``bench.edge_hub``'s simulated LCs (200; 1000 without
  ``--quick``) are connected and the job is updated and fanned out to every node every 0.5 s
  (goal <= 10).

The baseline windows run in the same GM process just before the windows with pages, so both see
the same store, hub and load. Figures from a shared machine are noisy: the per-page CPU is a small
difference of two larger numbers. Prints one JSON line per figure and writes the markdown report.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench._report import Report

GOALS = {"dashboard_update_p95_s": "<= 1 s", "dashboard_cpu_idle_pct": "<= 2 % per page",
         "dashboard_cpu_fanout_pct": "<= 10 % per page"}
JI_PATH = "/apis/sedna.io/v1alpha1/namespaces/default/jointinferenceservices"
WATCH_SCRIPT = """(want) => {
  window.__seen = null;
  const cell = () => document.querySelector(`tr[data-name="${want.name}"] td[data-col="INFERENCES"]`);
  const check = () => {
    const td = cell();
    if (window.__seen === null && td && td.textContent.trim() === want.value) {
      window.__seen = performance.timeOrigin + performance.now();
      observer.disconnect();
    }
  };
  const observer = new MutationObserver(check);
  observer.observe(document.body, {subtree: true, childList: true, characterData: true});
  check();
}"""


# ------------------------------------------------------------------ the GM process


def _gm_main(args: argparse.Namespace) -> int:
    from gm import schema
    from gm.app import settle_startup_heap, validate_object
    from gm.cluster.local.api import create_api, serve_api
    from gm.cluster.local.store import LocalStore
    from gm.dashboard import start_dashboard
    from gm.hub.server import start_hub
    from sedna.common import log

    log.configure()
    tokens = dict(pair.split("=", 1) for pair in args.tokens.split(",") if pair)
    store = LocalStore(args.db, poll_interval=0.05)
    hub = start_hub(store, "127.0.0.1", args.port, tokens)
    schema.warm()
    app = create_api(store, args.api_token, validate_object)
    api = serve_api(app, "127.0.0.1", args.api_port)
    dashboard = start_dashboard(store, args.api_token, hub.node_sessions, api_app=app)
    settle_startup_heap()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    print("ready", flush=True)
    done.wait()
    dashboard.stop()
    api.stop()
    hub.stop(grace=0.5)
    store.close()
    return 0


def _seed(db: Path, nodes: int, resources: int) -> None:
    from bench.edge_hub import _seed as seed_fanout
    from gm.cluster.interface import JOINT_INFERENCE_SERVICE
    from gm.cluster.local.store import LocalStore

    seed_fanout(db, nodes)
    store = LocalStore(db, keep_changes=1000)
    for i in range(resources):  # no worker nodes named: the hub routes them nowhere
        store.create({"apiVersion": "sedna.io/v1alpha1", "kind": "JointInferenceService",
                      "metadata": {"name": f"ji-{i:03d}", "namespace": "default"}, "spec": {}})
        store.patch_status(JOINT_INFERENCE_SERVICE, "default", f"ji-{i:03d}", {
            "phase": "Running", "readyWorkers": "2/2", "inference": {"count": i, "offloadRatio": 0.1}})
    store.close()


# ------------------------------------------------------------------ driver


class Browser:
    """Debian's Chromium under Playwright, logged in to the dashboard."""

    FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync"]

    def __init__(self, base: str, token: str, profile: Path) -> None:
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        self.context = self._pw.chromium.launch_persistent_context(
            str(profile), executable_path="/usr/bin/chromium", headless=True, args=self.FLAGS)
        self.base = base
        page = self.context.new_page()
        page.goto(f"{base}/login")
        page.fill("#token", token)
        page.click("button[type=submit]")
        page.wait_for_selector("#live.on", timeout=30000)
        page.close()

    def open(self, path: str) -> Any:
        page = self.context.new_page()
        page.goto(self.base + path)
        page.wait_for_selector("#live.on", timeout=30000)
        return page

    def close(self) -> None:
        self.context.close()
        self._pw.stop()


def _cpu_pct(pid: int, seconds: float, during: Any = None) -> float:
    """The process's CPU (user + system) over ``seconds`` of wall time, in % of one core."""
    import psutil

    proc = psutil.Process(pid)
    before, started = proc.cpu_times(), time.monotonic()
    while time.monotonic() - started < seconds:
        if during is not None:
            during()
        else:
            time.sleep(0.1)
    after, elapsed = proc.cpu_times(), time.monotonic() - started
    return 100.0 * ((after.user - before.user) + (after.system - before.system)) / elapsed


def _update_latencies(browser: Browser, api: Any, resources: int, updates: int) -> list[float]:
    page = browser.open("/kinds/jointinferenceservices")
    delays = []
    try:
        for i in range(updates):
            name, value = f"ji-{(i * 37) % resources:03d}", 1_000_000 + i
            page.evaluate(WATCH_SCRIPT, {"name": name, "value": str(value)})
            time.sleep(0.3)
            started = time.time()
            api.patch(f"{JI_PATH}/{name}/status", json={"status": {"inference": {"count": value}}}).raise_for_status()
            deadline = time.monotonic() + 10
            seen = None
            while seen is None and time.monotonic() < deadline:
                time.sleep(0.02)
                seen = page.evaluate("window.__seen")
            if seen is None:
                raise RuntimeError(f"the page never showed {name} = {value}")
            delays.append(seen / 1000.0 - started)
    finally:
        page.close()
    return delays


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _per_page(gm_pid: int, browser: Browser, pages: int, window: float, during: Any = None) -> dict[str, float]:
    """GM CPU with no page open, then with ``pages`` overview pages open (same load ``during`` both)."""
    base = _cpu_pct(gm_pid, window, during)
    opened = [browser.open("/") for _ in range(pages)]
    try:
        _cpu_pct(gm_pid, 2.0, during)  # settle: the pages' first streams
        loaded = _cpu_pct(gm_pid, window, during)
    finally:
        for page in opened:
            page.close()
    return {"base_pct": base, "with_pages_pct": loaded, "per_page_pct": (loaded - base) / pages}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dashboard")
    parser.add_argument("--quick", action="store_true", help="200 nodes, 10 updates, 5 s windows, 2 pages")
    parser.add_argument("--resources", type=int, default=200)
    parser.add_argument("--nodes", type=int, default=0, help="simulated LCs for the fan-out (default 1000; 200 quick)")
    parser.add_argument("--updates", type=int, default=0, help="status changes timed (default 30; 10 quick)")
    parser.add_argument("--pages", type=int, default=0, help="pages open for the CPU figures (default 4; 2 quick)")
    parser.add_argument("--window", type=float, default=0.0, help="seconds per CPU window (default 15; 5 quick)")
    parser.add_argument("--gm", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--db", default="", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--tokens", default="", help=argparse.SUPPRESS)
    parser.add_argument("--api-port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--api-token", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.gm:
        return _gm_main(args)
    nodes = args.nodes or (200 if args.quick else 1000)
    updates = args.updates or (10 if args.quick else 30)
    pages = args.pages or (2 if args.quick else 4)
    window = args.window or (5.0 if args.quick else 15.0)

    import httpx

    from bench.edge_hub import _update_job
    from tests.support.procs import free_port, start_module, stop, wait_for_port

    report = Report("dashboard", args.quick)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        root = Path(tmp)
        db = root / "gm.db"
        _seed(db, nodes, args.resources)
        port, api_port, token = free_port(), free_port(), secrets.token_urlsafe(16)
        tokens = ",".join(f"node-{i}=tok-node-{i}" for i in range(nodes))
        gm = start_module("bench.dashboard", {"LOG_LEVEL": "WARNING"}, root / "gm.log",
                          ["--gm", "--db", str(db), "--port", str(port), "--tokens", tokens,
                           "--api-port", str(api_port), "--api-token", token])
        browser = None
        clients: list[Any] = []
        try:
            wait_for_port(api_port, 120, gm, root / "gm.log")
            base = f"http://127.0.0.1:{api_port}"
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30,
                              trust_env=False) as api:
                browser = Browser(f"{base}/dashboard", token, root / "chromium")
                delays = _update_latencies(browser, api, args.resources, updates)
                report.figure("dashboard_update_p95_s", round(_percentile(delays, 0.95), 4), "s",
                              p50_s=round(statistics.median(delays), 4), updates=len(delays),
                              resources=args.resources)
                idle = _per_page(gm.pid, browser, pages, window)
                report.figure("dashboard_cpu_idle_pct", round(idle["per_page_pct"], 3), "%",
                              pages=pages, gm_base_pct=round(idle["base_pct"], 2),
                              gm_with_pages_pct=round(idle["with_pages_pct"], 2), window_s=window)
                clients = _connect(nodes, f"127.0.0.1:{port}", root)
                fanout = _per_page(gm.pid, browser, pages, window, _Fanout(api, clients, _update_job))
                report.figure("dashboard_cpu_fanout_pct", round(fanout["per_page_pct"], 3), "%",
                              pages=pages, nodes=nodes, gm_base_pct=round(fanout["base_pct"], 2),
                              gm_with_pages_pct=round(fanout["with_pages_pct"], 2), window_s=window)
        finally:
            for client in clients:
                client.send("stop")
            for client in clients:
                client.close()
            if browser is not None:
                browser.close()
            stop(gm)
    print(json.dumps({"bench": "dashboard", "metric": "load_average_1m", "value": [round(load_before, 2),
                                                                                  round(os.getloadavg()[0], 2)],
                      "unit": "before,after"}), flush=True)
    report.write_markdown(GOALS)
    return 0


def _connect(nodes: int, address: str, root: Path) -> list[Any]:
    from bench.edge_hub import OBJECTS_PER_NODE, _Client

    share = -(-nodes // 2)
    clients = [_Client(first, min(share, nodes - first), address, root / f"client-{first}.log")
               for first in range(0, nodes, share)]
    for client in clients:
        client.receive()
    for client in clients:
        client.send("go")
    for client in clients:
        incomplete = client.receive()["incomplete"]
        if incomplete:
            raise RuntimeError(f"{len(incomplete)} nodes did not get their {OBJECTS_PER_NODE + 1} objects")
    return clients


class _Fanout:
    """Called in a CPU window's loop: one job update fanned out to every node, every 0.5 s."""

    def __init__(self, api: Any, clients: list[Any], update: Any) -> None:
        self.api, self.clients, self.update = api, clients, update
        self.generation = 100
        self.next_at = 0.0

    def __call__(self) -> None:
        wait = self.next_at - time.monotonic()
        if wait > 0:
            time.sleep(min(wait, 0.1))
            return
        self.next_at = time.monotonic() + 0.5
        self.generation += 1
        _, rv = self.update(self.api, self.generation)
        for client in self.clients:
            client.send(f"fanout {rv}")
        for client in self.clients:
            client.receive()


if __name__ == "__main__":
    sys.exit(main())
