"""A hand-made edge hub client: join, connect and report exactly as a (hostile) node would.

Tests use it where a real LC would be too polite: it says hello, then sends whatever reports
the test hands it and returns the GM's acks; it joins with a bootstrap token through the same
``EdgeHub.Join`` RPC the LC uses. Everything goes to 127.0.0.1 over real gRPC.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

import grpc

from sedna.controlplane import edgehub as eh
from sedna.proto import edgehub_pb2, edgehub_pb2_grpc


def join(address: str, node: str, bootstrap: str) -> eh.Joined:
    """Join as ``node``; raises ``grpc.RpcError`` when refused."""
    with grpc.insecure_channel(address) as channel:
        reply = edgehub_pb2_grpc.EdgeHubStub(channel).Join(
            edgehub_pb2.JoinRequest(node=node), timeout=10,
            metadata=((eh.NODE_METADATA, node), ("authorization", f"Bearer {bootstrap}")))
    return eh.Joined(eh.NodeName(reply.node), reply.token, reply.expires, reply.worker_key)


def refusal(call: Any) -> tuple[grpc.StatusCode, str, str]:
    """``(code, reason metadata, details)`` of a refused call (an ``RpcError``)."""
    reason = next((v for k, v in (call.trailing_metadata() or ()) if k == eh.AUTH_REASON_METADATA), "")
    return call.code(), reason, call.details()


class RawNode:
    """One ``Connect`` stream as ``node`` with ``token``; ``messages`` collects what the GM sent."""

    def __init__(self, address: str, node: str, token: str) -> None:
        self.node = node
        self._out: queue.Queue[Any] = queue.Queue()
        self._channel = grpc.insecure_channel(address)
        self.messages: queue.Queue[Any] = queue.Queue()
        self.error: grpc.RpcError | None = None
        self.ended = threading.Event()
        self._call = edgehub_pb2_grpc.EdgeHubStub(self._channel).Connect(
            self._requests(), metadata=((eh.NODE_METADATA, node), ("authorization", f"Bearer {token}")))
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _requests(self) -> Any:
        while True:
            item = self._out.get()
            if item is None:
                return
            yield eh.up_to_proto(item)

    def _read(self) -> None:
        try:
            for pb in self._call:
                msg = eh.down_from_proto(pb)
                for item in msg.messages if isinstance(msg, eh.Batch) else [msg]:
                    self.messages.put(item)
        except grpc.RpcError as exc:
            self.error = exc
        finally:
            self.ended.set()

    def send(self, msg: eh.UpMessage) -> None:
        self._out.put(msg)

    def next(self, kind: type, timeout: float = 15.0) -> Any:
        """The next message of type ``kind`` (others are skipped); AssertionError on timeout."""
        while True:
            try:
                msg = self.messages.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {kind.__name__} from the GM within {timeout}s (error: {self.error})") \
                    from None
            if isinstance(msg, kind):
                return msg

    def hello(self, objects: list[eh.ObjectRef] | None = None, epoch: str = "raw") -> eh.ResyncDone:
        self.send(eh.Hello(eh.NodeName(self.node), objects or [], epoch))
        return self.next(eh.ResyncDone)  # type: ignore[no-any-return]

    def report(self, seq: int, kind: str, name: str, payload: dict[str, Any], namespace: str = "default"
               ) -> eh.ReportAck:
        """Send one report and wait for its ack."""
        self.send(eh.Report(seq, eh.ObjectKey(kind, namespace, name), payload))
        while True:
            ack = self.next(eh.ReportAck)
            if ack.seq == seq:
                return ack  # type: ignore[no-any-return]

    def close(self) -> None:
        self._out.put(None)
        self._call.cancel()
        self._thread.join(5)
        self._channel.close()
