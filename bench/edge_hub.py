"""Edge hub benchmark: N simulated LCs (1000; 200 with ``--quick``) against one GM hub process.

The GM (``tests.hub.gm_entry``: LocalStore file + ``start_hub``) starts with 10 Datasets per node
plus one FederatedLearningJob whose training workers use one dataset on every node, so the job
is routed to all nodes. This process then runs N grpc.aio streams (one channel and TCP connection
each), every one saying hello with an empty store, and measures:

- ``resync_all_s``: from the first dial until every node has received its 11 objects and
  ``ResyncDone`` (goal <= 10 s);
- ``fanout_p99_s``: the job's spec is updated (from this process, through the database file, as
  ``sedna`` CLI writes arrive); p99 over nodes of the time until the new version arrived (goal <= 0.2 s);
- ``gm_rss_mb``: the GM process's resident memory afterwards (goal <= 500 MB).

Prints one JSON object per figure: ``{"bench": "edge_hub", "metric", "value", "unit"}``. The
client side shares the machine with the GM, so the figures are upper bounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

OBJECTS_PER_NODE = 10


def _seed(db: Path, nodes: int) -> None:
    from gm.cluster.local.store import LocalStore

    store = LocalStore(db, keep_changes=100)
    for i in range(nodes):
        for j in range(OBJECTS_PER_NODE):
            store.create({"apiVersion": "sedna.io/v1alpha1", "kind": "Dataset",
                          "metadata": {"name": f"ds-{i}-{j}", "namespace": "default"},
                          "spec": {"url": f"/data/{i}/{j}.txt", "format": "txt", "nodeName": f"node-{i}"}})
    store.create({"apiVersion": "sedna.io/v1alpha1", "kind": "FederatedLearningJob",
                  "metadata": {"name": "fl", "namespace": "default"},
                  "spec": {"aggregationWorker": {"model": {"name": "agg"}, "template": {}},
                           "trainingWorkers": [{"dataset": {"name": f"ds-{i}-0"}, "template": {}}
                                               for i in range(nodes)]}})
    store.close()


def _update_job(db: Path) -> float:
    from gm.cluster.interface import FEDERATED_LEARNING_JOB
    from gm.cluster.local.store import LocalStore

    store = LocalStore(db)
    job = store.get(FEDERATED_LEARNING_JOB, "default", "fl")
    job["spec"]["aggregationWorker"]["template"] = {"metadata": {"labels": {"round": "2"}}}
    started = time.time()
    store.update(job)
    store.close()
    return started


class Node:
    def __init__(self, index: int, address: str) -> None:
        self.name = f"node-{index}"
        self.address = address
        self.resynced = asyncio.Event()
        self.objects = 0
        self.fanout_rv = ""
        self.fanout_at: float | None = None
        self.fanout_seen = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        import grpc

        from sedna.proto import edgehub_pb2 as pb
        from sedna.proto.edgehub_pb2_grpc import EdgeHubStub

        out: asyncio.Queue[Any] = asyncio.Queue()
        out.put_nowait(pb.UpMessage(hello=pb.Hello(node=self.name, outbox_epoch="bench")))

        async def requests():  # type: ignore[no-untyped-def]
            while True:
                item = await out.get()
                if item is None:
                    return
                yield item

        options = [("grpc.use_local_subchannel_pool", 1)]
        async with grpc.aio.insecure_channel(self.address, options=options) as channel:
            call = EdgeHubStub(channel).Connect(
                requests(), metadata=(("x-sedna-node", self.name), ("authorization", f"Bearer tok-{self.name}")))
            stopper = asyncio.ensure_future(stop.wait())
            stopper.add_done_callback(lambda _f: call.cancel())
            try:
                async for msg in call:
                    body = msg.WhichOneof("body")
                    if body == "upsert":
                        ref = msg.upsert.ref
                        self.objects += 1
                        out.put_nowait(pb.UpMessage(ack=pb.ObjectAck(ref=ref)))
                        if ref.name == "fl" and self.fanout_rv and ref.resource_version == self.fanout_rv:
                            self.fanout_at = time.time()
                            self.fanout_seen.set()
                    elif body == "resync_done":
                        self.resynced.set()
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.CANCELLED:
                    raise
            finally:
                stopper.cancel()


async def _clients(nodes: int, address: str, db: Path, report: dict[str, float]) -> None:
    from gm.cluster.interface import FEDERATED_LEARNING_JOB
    from gm.cluster.local.store import LocalStore

    stop = asyncio.Event()
    clients = [Node(i, address) for i in range(nodes)]
    started = time.monotonic()
    tasks = [asyncio.ensure_future(c.run(stop)) for c in clients]
    await asyncio.wait_for(asyncio.gather(*(c.resynced.wait() for c in clients)), timeout=300)
    report["resync_all_s"] = time.monotonic() - started
    incomplete = [c.name for c in clients if c.objects != OBJECTS_PER_NODE + 1]
    if incomplete:
        raise AssertionError(f"{len(incomplete)} nodes got the wrong number of objects, e.g. {incomplete[:3]}")
    await asyncio.sleep(1.0)
    t0 = await asyncio.to_thread(_update_job, db)
    store = LocalStore(db)
    rv = store.get(FEDERATED_LEARNING_JOB, "default", "fl")["metadata"]["resourceVersion"]
    store.close()
    for c in clients:
        c.fanout_rv = rv
    await asyncio.wait_for(asyncio.gather(*(c.fanout_seen.wait() for c in clients)), timeout=120)
    delays = sorted((c.fanout_at or 0) - t0 for c in clients)
    report["fanout_p99_s"] = delays[min(len(delays) - 1, int(0.99 * len(delays)))]
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.edge_hub")
    parser.add_argument("--quick", action="store_true", help="200 nodes instead of 1000")
    parser.add_argument("--nodes", type=int, default=0)
    args = parser.parse_args(argv)
    nodes = args.nodes or (200 if args.quick else 1000)

    import psutil

    from tests.support.procs import free_port, start_module, stop, wait_for_port

    with tempfile.TemporaryDirectory(prefix="bench-edge-hub-") as tmp:
        root = Path(tmp)
        db = root / "gm.db"
        _seed(db, nodes)
        port, metrics = free_port(), free_port()
        tokens = ",".join(f"node-{i}=tok-node-{i}" for i in range(nodes))
        gm = start_module("tests.hub.gm_entry", {"LOG_LEVEL": "WARNING"}, root / "gm.log",
                          ["--db", str(db), "--port", str(port), "--tokens", tokens, "--metrics-port", str(metrics)])
        try:
            wait_for_port(metrics, 120, gm, root / "gm.log")
            report: dict[str, float] = {}
            asyncio.run(_clients(nodes, f"127.0.0.1:{port}", db, report))
            report["gm_rss_mb"] = psutil.Process(gm.pid).memory_info().rss / 2**20
        finally:
            stop(gm)
    units = {"resync_all_s": "s", "fanout_p99_s": "s", "gm_rss_mb": "MB"}
    for metric in ("resync_all_s", "fanout_p99_s", "gm_rss_mb"):
        print(json.dumps({"bench": "edge_hub", "metric": metric, "value": round(report[metric], 4),
                          "unit": units[metric], "nodes": nodes}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
