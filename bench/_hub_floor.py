"""The fan-out floor for ``bench.edge_hub``: the least a grpc.aio server does to reach N LC streams.

``python -m bench._hub_floor --port P --nodes N`` serves ``EdgeHub.Connect`` with nothing of the
GM but the wire format: no store, no API, no routing, no queues, no authentication. A stream's
hello is answered with the node's 11 objects (the Datasets encoded before the first client dials,
the job at its current version) and ``ResyncDone``; a line ``fanout <rv>`` on stdin writes one
message, the job at version ``rv`` encoded once (as the GM encodes it: zlib-compressed JSON), to
every open stream; everything the clients send (acks, pings) is read and dropped, and pings get no
pong. The bench's simulated LCs, unchanged, measure it as they measure the GM, so
``fanout_vs_floor_ratio`` is what the hub costs on top of gRPC itself on the same machine in the
same run. It prints ``ready <port>`` once it listens and ``resynced <n>`` whenever n streams have
said hello (to stderr: stdout is unused).

While thousands of nodes dial at once, a few percent of their streams end here (CANCELLED or
"Internal error from Core" at the client; the GM's hub loses few or none) and the nodes dial again;
``bench.edge_hub`` reports those drops beside the floor's figures and says when any happened during
the fan-outs, which would make the floor's fan-out figures upper bounds.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from bench.edge_hub import OBJECTS_PER_NODE, dataset_object, job_object
from gm.app import settle_startup_heap
from gm.hub.server import SERVICE
from sedna.controlplane import edgehub as eh


def _objects(nodes: int) -> tuple[dict[str, list[bytes]], Any]:
    """Per node, its Datasets as wire messages; and a function encoding the job at a version."""
    job = job_object(nodes)
    job_key = eh.ObjectKey("federatedlearningjob", "default", "fl")
    datasets = {f"node-{i}": [eh.down_bytes(eh.Upsert(eh.ObjectRef(eh.ObjectKey("dataset", "default", f"ds-{i}-{j}"),
                                                                    "1"), dataset_object(i, j)))
                              for j in range(OBJECTS_PER_NODE)] for i in range(nodes)}

    def job_at(rv: str) -> bytes:
        return eh.down_bytes(eh.Upsert(eh.ObjectRef(job_key, rv), job))

    return datasets, job_at


async def _serve(port: int, nodes: int) -> None:
    import grpc

    from sedna.proto import edgehub_pb2

    datasets, job_at = _objects(nodes)
    settle_startup_heap()  # the GM's collector settings, as python -m gm and the bench's GM use them
    job = [job_at("1")]  # the current version: a node that dials again gets it in its resync, as from the GM
    done = eh.down_bytes(eh.ResyncDone(OBJECTS_PER_NODE + 1, 0))
    outboxes: dict[str, asyncio.Queue[bytes]] = {}

    async def connect(requests: Any, context: Any) -> None:
        node = dict(context.invocation_metadata()).get(eh.NODE_METADATA, "")
        if node not in datasets:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, f"unknown node {node!r}")
        await context.read()  # the hello
        outbox: asyncio.Queue[bytes] = asyncio.Queue()
        outboxes[node] = outbox
        if len(outboxes) % 1000 == 0 or len(outboxes) == nodes:
            print(f"resynced {len(outboxes)}", file=sys.stderr, flush=True)
        drain = asyncio.ensure_future(_drain(context))
        try:
            await context.write(eh.batch_bytes([*datasets[node], job[0], done]))
            while True:
                await context.write(await outbox.get())
        finally:
            drain.cancel()
            if outboxes.get(node) is outbox:
                del outboxes[node]

    server = grpc.aio.server(options=eh.keepalive_options(10.0))
    handlers = {"Connect": grpc.stream_stream_rpc_method_handler(
        connect, request_deserializer=edgehub_pb2.UpMessage.FromString, response_serializer=bytes)}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    # Registered as the GM's hub registers it, so both serve the call the same way.
    server.add_registered_method_handlers(SERVICE, handlers)
    if server.add_insecure_port(f"127.0.0.1:{port}") == 0:
        raise OSError(f"the floor server could not bind 127.0.0.1:{port}")
    await server.start()
    print(f"ready {port}", file=sys.stderr, flush=True)
    loop = asyncio.get_running_loop()
    while (line := (await loop.run_in_executor(None, sys.stdin.readline)).split()) and line[0] == "fanout":
        wire = job[0] = job_at(line[1])
        for outbox in outboxes.values():
            outbox.put_nowait(wire)
    await server.stop(0.5)


async def _drain(context: Any) -> None:
    import grpc

    while await context.read() is not grpc.aio.EOF:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench._hub_floor")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--nodes", type=int, required=True)
    args = parser.parse_args(argv)
    from tests.hub.gm_entry import raise_open_files_limit

    raise_open_files_limit()
    asyncio.run(_serve(args.port, args.nodes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
