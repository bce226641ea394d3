"""Edge hub benchmark: N simulated LCs (1000; 200 with ``--quick``) against one GM hub process.

The GM (``tests.hub.gm_entry``: LocalStore file + ``start_hub`` + the local REST API that
``sedna apply`` talks to, validated as ``python -m gm`` validates it; ``python -m gm`` would add
controllers and a process runtime reacting to the same objects) starts with 10 Datasets per
node plus one FederatedLearningJob whose training workers use one dataset on every node, so
the job (~51 KB of JSON at 1000 nodes) is routed to all nodes; these are written into the
database file before the GM starts. ``--client-procs``
processes (2 by default, so the clients do not share the GM's GIL nor one GIL among themselves)
run the N grpc.aio streams, one channel and TCP connection each; every client says hello with
an empty store, decodes every downstream protobuf message (batches included), acknowledges
what it got once per 0.2 s (an ``ObjectAck`` for one ref, an ``ObjectAcks`` for several) and
pings when its stream did not carry a message both ways within 5 s, as the LC does. A client takes the arrival time as a
message comes off the stream and does not parse the objects' JSON: a real LC does that on its
own machine, here it would put a thousand nodes' work on two cores. For the same reason a client
process freezes its heap and stops its collector after the resync (it was 18% of a client's CPU
in a profile at 2500 nodes; what a fan-out allocates is freed by reference counting), and counts
arrivals in one tally per process instead of waking a waiter per node and update. Measured:

- ``resync_all_s``: from the moment every client process is ready to dial until every node has
  received its 11 objects and ``ResyncDone`` (goal <= 10 s);
- ``fanout_p99_s``: the job's spec is updated ``--fanouts`` times (10; 3 with ``--quick``) 0.3 s
  apart, the way ``sedna apply`` updates it: this process GETs the job from the GM's REST API and
  PUTs it back with a changed ``spec.aggregationWorker.template``. p99 over every node and update
  of the time from just before the PUT is sent until the new version arrived (goal <= 0.2 s), so
  it includes admission (schema validation and the store write) and the fan-out; the GM's store
  wakes its watchers on its own commit, no poll of the change log is in the path. One update is
  one sample per node, and a single update's p99 moved by 0.1 s from run to run here; the pooled
  figure keeps the slow updates in. Each update's own p99 is reported too (median and worst,
  ``per_update_p99_*``);
- ``gm_rss_mb``: the GM process's resident memory afterwards (goal <= 500 MB);
- the floor, in the same run and with the same client processes: ``bench._hub_floor`` speaks the
  hub's wire format over grpc.aio and nothing else (no store, API, routing or queues), answers each
  hello with the node's 11 objects and writes each update, encoded once, to every stream on a line
  from this process. ``fanout_floor_p99_s`` / ``fanout_floor_p50_s``, ``resync_floor_s`` and
  ``floor_cpu_per_fanout_s`` are its figures; ``fanout_vs_floor_ratio`` is the GM's
  ``fanout_p99_s`` over the floor's, i.e. what the GM adds to gRPC on this machine.

Prints one JSON object per figure: ``{"bench": "edge_hub", "metric", "value", "unit"}`` plus the
1-minute load average before and after. Clients share the machine with the GM, so the figures
are upper bounds. The driver talks to its client processes over stdin/stdout, one JSON line each.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench._report import SAVED_DIR, Report, add_report_options

if TYPE_CHECKING:
    import httpx

OBJECTS_PER_NODE = 10


def dataset_object(node: int, index: int) -> dict[str, Any]:
    """The ``index``-th Dataset on node ``node``."""
    return {"apiVersion": "sedna.io/v1alpha1", "kind": "Dataset",
            "metadata": {"name": f"ds-{node}-{index}", "namespace": "default"},
            "spec": {"url": f"/data/{node}/{index}.txt", "format": "txt", "nodeName": f"node-{node}"}}


def job_object(nodes: int) -> dict[str, Any]:
    """The FederatedLearningJob with a training worker on each of ``nodes`` nodes."""
    return {"apiVersion": "sedna.io/v1alpha1", "kind": "FederatedLearningJob",
            "metadata": {"name": "fl", "namespace": "default"},
            "spec": {"aggregationWorker": {"model": {"name": "agg"}, "template": {}},
                     "trainingWorkers": [{"dataset": {"name": f"ds-{i}-0"}, "template": {}} for i in range(nodes)]}}


def _seed(db: Path, nodes: int) -> None:
    from gm.cluster.local.store import LocalStore

    store = LocalStore(db, keep_changes=100)
    for i in range(nodes):
        for j in range(OBJECTS_PER_NODE):
            store.create(dataset_object(i, j))
    store.create(job_object(nodes))
    store.close()


JOB_PATH = "/apis/sedna.io/v1alpha1/namespaces/default/federatedlearningjobs/fl"


def _update_job(api: httpx.Client, generation: int) -> tuple[float, str]:
    """Change the job's spec through the API (GET, then PUT); return (wall time just before the PUT, its version)."""
    got = api.get(JOB_PATH)
    got.raise_for_status()
    job = got.json()
    job["spec"]["aggregationWorker"]["template"] = {"metadata": {"labels": {"round": str(generation)}}}
    body = json.dumps(job).encode()
    started = time.time()
    put = api.put(JOB_PATH, content=body, headers={"Content-Type": "application/json"})
    if put.status_code != 200:
        raise RuntimeError(f"PUT {JOB_PATH} answered {put.status_code}: {put.text[:500]}")
    return started, str(put.json()["metadata"]["resourceVersion"])


# ------------------------------------------------------------------ client process


PING_INTERVAL = 5.0
"""Seconds between a simulated LC's pings, as ``lc.settings.HubSettings.ping_interval``."""
BACKOFF_MIN = 0.5
"""Seconds before a simulated LC dials a lost stream again (0.5-1 s), as ``lc.settings.HubSettings.backoff_min``."""
DIAL_WAVE, DIAL_PAUSE = 250, 0.05
"""A client process dials its nodes' streams this many at a time, this many seconds apart."""
ACK_DELAY = 0.2
"""Seconds a simulated LC gathers acks before sending them, as ``lc.hubclient.ACK_DELAY``."""


class Node:
    """One simulated LC: a stream, a hello with no objects, acks gathered for 0.2 s, a ping when quiet for 5 s."""

    def __init__(self, index: int, address: str, tally: Tally) -> None:
        self.name = f"node-{index}"
        self.address = address
        self.resynced = asyncio.Event()
        self.held: dict[tuple[str, str, str], Any] = {}  # key -> ObjectRef last received
        self.drops = 0
        """Streams lost (and dialled again) before the bench stopped them."""
        self.tally = tally
        self.unacked: list[Any] = []
        self.ack_due = asyncio.Event()
        self.ended = ""
        """Why the stream ended, when it did before the bench stopped it."""
        self.last_in = self.last_out = time.monotonic()

    async def run(self, stop: asyncio.Event) -> None:
        """Keep a stream open until ``stop``; a lost one is dialled again after 0.5-1 s, as an LC does."""
        while not stop.is_set():
            await self._stream(stop)
            if stop.is_set():
                return
            self.drops += 1
            await asyncio.sleep(random.uniform(BACKOFF_MIN, 2 * BACKOFF_MIN))

    async def _stream(self, stop: asyncio.Event) -> None:
        import grpc

        from sedna.proto import edgehub_pb2 as pb
        from sedna.proto.edgehub_pb2_grpc import EdgeHubStub

        options = [("grpc.use_local_subchannel_pool", 1)]
        async with grpc.aio.insecure_channel(self.address, options=options) as channel:
            # Written to directly (no request iterator): half the client's CPU per message.
            call = EdgeHubStub(channel).Connect(
                metadata=(("x-sedna-node", self.name), ("authorization", f"Bearer tok-{self.name}")))
            writing = asyncio.Lock()  # one outstanding write per call
            stopper = asyncio.ensure_future(stop.wait())
            stopper.add_done_callback(lambda _f: call.cancel())
            pinger = asyncio.ensure_future(self._ping(call, writing, pb))
            acker = asyncio.ensure_future(self._ack(call, writing, pb))
            try:
                async with writing:  # the hello lists what this node holds, so a resync sends the difference
                    await call.write(pb.UpMessage(hello=pb.Hello(node=self.name, outbox_epoch="bench",
                                                                 objects=list(self.held.values()))))
                while (msg := await call.read()) is not grpc.aio.EOF:
                    arrived, self.last_in = time.time(), time.monotonic()
                    items = ([pb.DownMessage.FromString(raw) for raw in msg.batch.messages]
                             if msg.WhichOneof("body") == "batch" else [msg])
                    for item in items:
                        body = item.WhichOneof("body")
                        if body == "upsert":
                            self._upsert(item.upsert, arrived)
                            self.unacked.append(item.upsert.ref)
                            self.ack_due.set()
                        elif body == "resync_done":
                            self.resynced.set()
                self.ended = "the GM ended the stream"
            except (grpc.aio.AioRpcError, grpc.aio.UsageError, asyncio.InvalidStateError) as exc:
                if not stop.is_set():
                    self.ended = f"{type(exc).__name__}: {exc.code() if isinstance(exc, grpc.aio.AioRpcError) else exc}"
            finally:
                stopper.cancel()
                pinger.cancel()
                acker.cancel()

    async def _ack(self, call: Any, writing: asyncio.Lock, pb: Any) -> None:
        """Acknowledge what arrived in one ``ObjectAcks`` per ``ACK_DELAY``, as the LC does."""
        while True:
            await self.ack_due.wait()
            await asyncio.sleep(ACK_DELAY)
            self.ack_due.clear()
            refs, self.unacked = self.unacked, []
            # As the LC's pump: one ref goes as an ObjectAck, several as one ObjectAcks.
            msg = pb.UpMessage(ack=pb.ObjectAck(ref=refs[0])) if len(refs) == 1 else \
                pb.UpMessage(acks=pb.ObjectAcks(refs=refs))
            async with writing:
                await call.write(msg)
            self.last_out = time.monotonic()

    async def _ping(self, call: Any, writing: asyncio.Lock, pb: Any) -> None:
        """As the LC: a ping at most every ``PING_INTERVAL``, when the stream did not carry a message both ways
        within it."""
        await asyncio.sleep(random.uniform(0, PING_INTERVAL))
        nonce, last_ping = 0, 0.0
        while True:
            now = time.monotonic()
            quiet_since = min(self.last_in, self.last_out)
            if now - last_ping >= PING_INTERVAL and now - quiet_since >= PING_INTERVAL:
                nonce += 1
                async with writing:
                    await call.write(pb.UpMessage(ping=pb.Ping(nonce=nonce)))
                self.last_out = last_ping = now
                await asyncio.sleep(PING_INTERVAL)
            else:
                due = max(quiet_since, last_ping) + PING_INTERVAL  # the earliest a ping can be needed
                await asyncio.sleep(max(0.2, due - now))

    @property
    def objects(self) -> int:
        return len(self.held)

    def _upsert(self, upsert: Any, arrived: float) -> None:
        ref = upsert.ref
        self.held[(ref.kind, ref.namespace, ref.name)] = ref
        if ref.name == "fl" and self.resynced.is_set():
            self.tally.arrived(self.name, ref.resource_version, arrived)


class Tally:
    """When each node of a client process first received each version of the job (one waiter per version)."""

    def __init__(self, nodes: int) -> None:
        self.nodes = nodes
        self.arrivals: dict[str, dict[str, float]] = collections.defaultdict(dict)  # rv -> node -> wall time
        self.complete: dict[str, asyncio.Event] = collections.defaultdict(asyncio.Event)

    def arrived(self, node: str, rv: str, at: float) -> None:
        seen = self.arrivals[rv]
        if node not in seen:
            seen[node] = at
            if len(seen) == self.nodes:
                self.complete[rv].set()

    async def wait(self, rv: str) -> list[float]:
        await self.complete[rv].wait()
        return list(self.arrivals.pop(rv).values())


async def _client_main(first: int, count: int, address: str) -> None:
    from tests.hub.gm_entry import raise_open_files_limit

    raise_open_files_limit()  # one socket per simulated node
    loop = asyncio.get_running_loop()

    async def command() -> list[str]:
        return (await loop.run_in_executor(None, sys.stdin.readline)).split()

    def reply(**fields: Any) -> None:
        print(json.dumps(fields), flush=True)

    reply(ready=True)
    assert await command() == ["go"]
    stop = asyncio.Event()
    tally = Tally(count)
    nodes = [Node(i, address, tally) for i in range(first, first + count)]
    tasks = []
    for wave in range(0, len(nodes), DIAL_WAVE):  # a few hundred dials at a time: the listen backlog is finite
        tasks += [asyncio.ensure_future(n.run(stop)) for n in nodes[wave:wave + DIAL_WAVE]]
        await asyncio.sleep(DIAL_PAUSE)
    waiting = asyncio.ensure_future(asyncio.gather(*(n.resynced.wait() for n in nodes)))
    await asyncio.wait([waiting, *tasks], return_when=asyncio.FIRST_COMPLETED, timeout=600)
    if not waiting.done():
        ended = [f"{n.name}: {n.ended}" for n in nodes if n.ended]
        failed = [repr(t.exception()) for t in tasks if t.done() and t.exception() is not None]
        raise RuntimeError(f"resync did not complete: {len(ended)} streams ended ({ended[:3]}), "
                           f"{len(failed)} failed ({failed[:1]}), "
                           f"{sum(not n.resynced.is_set() for n in nodes)} nodes not resynced")
    reasons = collections.Counter(n.ended.split(":")[-1].strip() for n in nodes if n.drops)
    reply(resynced_at=time.time(), incomplete=[n.name for n in nodes if n.objects != OBJECTS_PER_NODE + 1],
          drops=sum(n.drops for n in nodes), reasons=dict(reasons.most_common(3)))
    # This process stands in for hundreds of LCs: its collector pauses would delay all of them.
    # Nearly all it allocates from here on is freed by reference counting; the bench runs for minutes.
    gc.collect()
    gc.freeze()
    gc.disable()
    while (cmd := await command())[0] == "fanout":
        try:
            arrivals = await asyncio.wait_for(tally.wait(cmd[1]), timeout=120)
        except asyncio.TimeoutError:
            ended = [f"{n.name}: {n.ended}" for n in nodes if n.ended]
            raise RuntimeError(f"fan-out of {cmd[1]} incomplete after 120 s; {len(ended)} streams ended "
                               f"({ended[:3]})") from None
        reply(arrivals=arrivals, drops=sum(n.drops for n in nodes))
    assert cmd == ["stop"], cmd
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)


# ------------------------------------------------------------------ driver


class _Client:
    def __init__(self, first: int, count: int, address: str, log: Path) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        args = ["--client", str(first), str(count), "--address", address]
        self.log = log
        with open(log, "wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "bench.edge_hub", *args], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=err, env=env, text=True)

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def receive(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"bench client exited ({self.proc.wait()}): {self.log.read_text()[-2000:]}")
        return dict(json.loads(line))

    def close(self) -> None:
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _cpu_seconds(procs: list[Any]) -> float:
    """User + system CPU seconds used so far by the processes ``procs`` (psutil handles)."""
    total = 0.0
    for proc in procs:
        times = proc.cpu_times()
        total += times.user + times.system
    return total


Update = Callable[[int], tuple[float, str]]
"""Starts the ``generation``-th fan-out; returns (wall time just before, the version the nodes must receive)."""


def _measure(nodes: int, procs: int, address: str, root: Path, fanouts: int, gm: Any,
             update: Update) -> dict[str, float]:
    """Resync ``nodes`` simulated LCs against the server at ``address`` (process ``gm``), then time ``fanouts``
    updates started by ``update``."""
    import psutil

    share = -(-nodes // procs)
    clients = [_Client(first, min(share, nodes - first), address, root / f"client-{first}.log")
               for first in range(0, nodes, share)]
    report: dict[str, float] = {}
    client_procs = [psutil.Process(client.proc.pid) for client in clients]
    try:
        for client in clients:
            client.receive()  # ready: imports done
        gm_cpu, clients_cpu = _cpu_seconds([gm]), _cpu_seconds(client_procs)
        started = time.time()
        for client in clients:
            client.send("go")
        resynced = [client.receive() for client in clients]
        report["resync_all_s"] = max(r["resynced_at"] for r in resynced) - started
        report["resync_gm_cpu_s"] = _cpu_seconds([gm]) - gm_cpu
        report["resync_clients_cpu_s"] = _cpu_seconds(client_procs) - clients_cpu
        report["resync_stream_drops"] = sum(r["drops"] for r in resynced)
        if report["resync_stream_drops"]:
            reasons = [r["reasons"] for r in resynced]
            print(f"# streams dropped during the resync, by the clients' last error: {reasons}", flush=True)
        incomplete = [name for r in resynced for name in r["incomplete"]]
        if incomplete:
            raise AssertionError(f"{len(incomplete)} nodes got the wrong number of objects, e.g. {incomplete[:3]}")
        pooled: list[float] = []
        per_update: list[float] = []
        gm_cpu_fanout = clients_cpu_fanout = 0.0
        for generation in range(2, 2 + fanouts):
            time.sleep(1.0 if generation == 2 else 0.3)
            gm_cpu, clients_cpu = _cpu_seconds([gm]), _cpu_seconds(client_procs)
            t0, rv = update(generation)
            for client in clients:
                client.send(f"fanout {rv}")
            answers = [client.receive() for client in clients]
            delays = [at - t0 for answer in answers for at in answer["arrivals"]]
            report["stream_drops"] = sum(answer["drops"] for answer in answers)
            time.sleep(0.2)  # let the acks in: they are part of a fan-out's cost
            gm_cpu_fanout += _cpu_seconds([gm]) - gm_cpu
            clients_cpu_fanout += _cpu_seconds(client_procs) - clients_cpu
            pooled += delays
            per_update.append(_percentile(delays, 0.99))
        report["fanout_p99_s"] = _percentile(pooled, 0.99)
        report["fanout_p50_s"] = _percentile(pooled, 0.5)
        report["per_update_p99_median_s"] = statistics.median(per_update)
        report["per_update_p99_worst_s"] = max(per_update)
        report["gm_cpu_per_fanout_s"] = gm_cpu_fanout / fanouts
        report["clients_cpu_per_fanout_s"] = clients_cpu_fanout / fanouts
        for client in clients:
            client.send("stop")
    finally:
        for client in clients:
            client.close()
    return report


def run(nodes: int, client_procs: int, fanouts: int) -> dict[str, float]:
    """Start a GM seeded for ``nodes`` nodes, measure, stop it; return the figures."""
    import httpx
    import psutil

    from tests.support.procs import free_port, start_module, stop, wait_for_port

    with tempfile.TemporaryDirectory(prefix="bench-edge-hub-") as tmp:
        root = Path(tmp)
        db = root / "gm.db"
        _seed(db, nodes)
        port, metrics, api_port = free_port(), free_port(), free_port()
        tokens = root / "tokens"  # a file: ten thousand node=token pairs do not fit in one argument
        tokens.write_text("".join(f"node-{i}=tok-node-{i}\n" for i in range(nodes)))
        api_token = secrets.token_urlsafe(16)
        gm = start_module("tests.hub.gm_entry", {"LOG_LEVEL": "WARNING"}, root / "gm.log",
                          ["--db", str(db), "--port", str(port), "--tokens-file", str(tokens),
                           "--metrics-port", str(metrics), "--api-port", str(api_port), f"--api-token={api_token}"])
        try:
            wait_for_port(metrics, 300, gm, root / "gm.log")
            wait_for_port(api_port, 10, gm, root / "gm.log")
            with httpx.Client(base_url=f"http://127.0.0.1:{api_port}", headers={"Authorization": f"Bearer {api_token}"},
                              timeout=60, trust_env=False) as api:
                report = _measure(nodes, client_procs, f"127.0.0.1:{port}", root, fanouts, psutil.Process(gm.pid),
                                  lambda generation: _update_job(api, generation))
            report["gm_rss_mb"] = psutil.Process(gm.pid).memory_info().rss / 2**20
            log = (root / "gm.log").read_text(errors="replace")
            report["gm_dropped_silent"] = log.count("dropping the stream")
        except BaseException:
            tail = "\n".join((root / "gm.log").read_text(errors="replace").splitlines()[-40:])
            print(f"# the GM's log ended with:\n{tail}", file=sys.stderr, flush=True)
            raise
        finally:
            stop(gm)
    return report


def run_floor(nodes: int, client_procs: int, fanouts: int) -> dict[str, float]:
    """The same clients and updates against ``bench._hub_floor`` (gRPC and the wire format, nothing of the GM)."""
    import psutil

    from tests.support.procs import free_port, stop, wait_for_port

    with tempfile.TemporaryDirectory(prefix="bench-hub-floor-") as tmp:
        root = Path(tmp)
        port = free_port()
        with open(root / "floor.log", "wb") as log:
            floor = subprocess.Popen([sys.executable, "-m", "bench._hub_floor", "--port", str(port),
                                      "--nodes", str(nodes)], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     stderr=log, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert floor.stdin is not None
        feed = floor.stdin

        def update(generation: int) -> tuple[float, str]:
            rv = f"floor-{generation}"
            started = time.time()
            feed.write(f"fanout {rv}\n".encode())
            feed.flush()
            return started, rv

        try:
            wait_for_port(port, 300, floor, root / "floor.log")
            return _measure(nodes, client_procs, f"127.0.0.1:{port}", root, fanouts, psutil.Process(floor.pid),
                            update)
        except BaseException:
            print(f"# the floor server's log ended with:\n{(root / 'floor.log').read_text(errors='replace')[-3000:]}",
                  file=sys.stderr, flush=True)
            raise
        finally:
            feed.close()
            stop(floor)


UNITS = {"resync_all_s": "s", "fanout_p99_s": "s", "fanout_p50_s": "s", "gm_rss_mb": "MB",
         "gm_cpu_per_fanout_s": "s", "clients_cpu_per_fanout_s": "s", "resync_gm_cpu_s": "s",
         "fanout_floor_p99_s": "s", "fanout_floor_p50_s": "s", "resync_floor_s": "s", "floor_cpu_per_fanout_s": "s",
         "fanout_vs_floor_ratio": "ratio"}
GOALS = {"resync_all_s": "≤ 30 at 10 000 nodes", "fanout_p99_s": "≤ 0.1 at 1000 nodes, ≤ 1 at 10 000",
         "gm_rss_mb": "≤ 2048 at 10 000 nodes"}
CURVE = (250, 1000, 2500, 5000, 10000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.edge_hub")
    parser.add_argument("--quick", action="store_true", help="200 nodes instead of 1000")
    parser.add_argument("--nodes", type=int, nargs="+", default=[],
                        help="node counts to measure, each against a fresh GM (several print a cost curve)")
    parser.add_argument("--curve", action="store_true",
                        help=f"measure the cost curve: --nodes {' '.join(map(str, CURVE))}")
    parser.add_argument("--client-procs", type=int, default=0,
                        help="processes running the simulated LCs (default: 2, one more per 2500 nodes past 5000)")
    parser.add_argument("--fanouts", type=int, default=0, help="updates fanned out (default 10; 3 with --quick)")
    parser.add_argument("--client", nargs=2, type=int, metavar=("FIRST", "COUNT"), help=argparse.SUPPRESS)
    parser.add_argument("--address", default="", help=argparse.SUPPRESS)
    add_report_options(parser)
    args = parser.parse_args(argv)
    if args.client:
        asyncio.run(_client_main(args.client[0], args.client[1], args.address))
        return 0
    sizes = list(CURVE) if args.curve else (args.nodes or [200 if args.quick else 1000])
    fanouts = args.fanouts or (3 if args.quick else 10)

    report = Report("edge_hub", args.quick, save=args.save_report)
    curve: list[dict[str, float]] = []
    for nodes in sizes:
        procs = args.client_procs or max(2, -(-nodes // 2500))
        load_before = os.getloadavg()[0]
        figures = run(nodes, procs, fanouts)
        floor = run_floor(nodes, procs, fanouts)
        during_fanouts = int(floor["stream_drops"] - floor["resync_stream_drops"])
        if during_fanouts:
            print(f"# the floor server lost {during_fanouts} streams during its fan-outs (dialled again): its "
                  "fan-out figures are upper bounds", flush=True)
        figures.update({"fanout_floor_p99_s": floor["fanout_p99_s"], "fanout_floor_p50_s": floor["fanout_p50_s"],
                        "resync_floor_s": floor["resync_all_s"], "floor_cpu_per_fanout_s": floor["gm_cpu_per_fanout_s"],
                        "floor_clients_cpu_per_fanout_s": floor["clients_cpu_per_fanout_s"],
                        "fanout_vs_floor_ratio": figures["fanout_p99_s"] / floor["fanout_p99_s"]})
        load = {"load1_before": round(load_before, 2), "load1_after": round(os.getloadavg()[0], 2)}
        extra: dict[str, dict[str, Any]] = {
            "resync_all_s": {"stream_drops": int(figures["resync_stream_drops"]),
                             "gm_dropped_silent": int(figures["gm_dropped_silent"])},
            "fanout_p99_s": {"updates": fanouts,
                             "per_update_p99_median_s": round(figures["per_update_p99_median_s"], 4),
                             "per_update_p99_worst_s": round(figures["per_update_p99_worst_s"], 4),
                             "stream_drops_by_end": int(figures["stream_drops"])},
            "resync_gm_cpu_s": {"clients_cpu_s": round(figures["resync_clients_cpu_s"], 3)},
            "gm_cpu_per_fanout_s": {"clients_cpu_per_fanout_s": round(figures["clients_cpu_per_fanout_s"], 4)},
            "fanout_vs_floor_ratio": {"fanout_p99_s": round(figures["fanout_p99_s"], 4),
                                      "fanout_floor_p99_s": round(figures["fanout_floor_p99_s"], 4)},
            "fanout_floor_p99_s": {"floor_resync_stream_drops": int(floor["resync_stream_drops"]),
                                   "floor_stream_drops_by_end": int(floor["stream_drops"])},
            "floor_cpu_per_fanout_s": {"clients_cpu_per_fanout_s": round(figures["floor_clients_cpu_per_fanout_s"], 4)},
        }
        for metric in ("resync_all_s", "fanout_p99_s", "fanout_p50_s", "gm_rss_mb", "resync_gm_cpu_s",
                       "gm_cpu_per_fanout_s", "fanout_floor_p99_s", "fanout_floor_p50_s", "resync_floor_s",
                       "floor_cpu_per_fanout_s", "fanout_vs_floor_ratio"):
            report.figure(metric, round(figures[metric], 4), UNITS[metric], nodes=nodes, client_procs=procs,
                          **extra.get(metric, {}), **load)
        curve.append({"nodes": nodes, **figures, **load})
    path = report.write_markdown(GOALS)
    if len(curve) > 1:
        try:
            plot = _plot(curve, path.with_name("edge_hub_curve.png"))
        except ImportError:
            print("# no plot: matplotlib is not installed (pip install 'sedna-py[bench]')", flush=True)
        else:
            if args.save_report:
                shutil.copyfile(plot, SAVED_DIR / plot.name)
            print(f"# cost curve plotted in {plot}", flush=True)
    print(f"# report written to {path}", flush=True)
    return 0


def _plot(curve: list[dict[str, float]], out: Path) -> Path:
    """The cost curve as a PNG: latency figures on the left axis, GM memory on the right."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nodes = [row["nodes"] for row in curve]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for metric, label in (("resync_all_s", "resync, all nodes (s)"), ("fanout_p99_s", "fan-out p99 (s)"),
                          ("fanout_floor_p99_s", "fan-out p99, bare gRPC floor (s)"),
                          ("fanout_p50_s", "fan-out p50 (s)"), ("gm_cpu_per_fanout_s", "GM CPU per fan-out (s)")):
        left.plot(nodes, [row[metric] for row in curve], marker="o", label=label)
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("simulated nodes")
    left.set_ylabel("seconds")
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=8)
    right.plot(nodes, [row["gm_rss_mb"] for row in curve], marker="o", color="tab:red")
    right.set_xscale("log")
    right.set_xlabel("simulated nodes")
    right.set_ylabel("GM RSS (MB)")
    right.grid(True, which="both", alpha=0.3)
    loads = ", ".join(f"{row['load1_before']:.1f}" for row in curve)
    fig.suptitle(f"bench.edge_hub cost curve (2 cores shared with the simulated LCs; 1-min load before each: {loads})",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


if __name__ == "__main__":
    sys.exit(main())
