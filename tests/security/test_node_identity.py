"""Issue 12 item 2: per-node identity, the KubeEdge way (real GM hub, real LCs, real gRPC on 127.0.0.1).

An LC joins with a bootstrap token and gets a token that names its node; only its hash is kept
(Secret ``sedna-node-<node>``); the LC keeps the token (0600) and needs the bootstrap token no
more. One node's credential never acts as another. Deleting the Secret or the Node revokes the
credential and drops the live stream within seconds. Rotation, asked for or due, reaches the LC
over its live stream; the old token stops working once the LC has stored the new one. (Before:
every node had a static token from a file, unrevocable and never rotated.)
"""

from __future__ import annotations

import base64
import json
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from gm.cluster.interface import NODE, SECRET, NotFound
from gm.cluster.local.store import LocalStore
from sedna.controlplane import edgehub as eh
from tests.hub.harness import GM, LC, wait_until
from tests.security.rawnode import RawNode, join, refusal

pytestmark = pytest.mark.processes

BOOT = "bootstrap-token-edge-0-single-use"
SHARED = "shared-bootstrap-token-for-tests"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalStore]:
    store = LocalStore(tmp_path / "gm.db", poll_interval=0.05)
    yield store
    store.close()


def secret(store: LocalStore, node: str) -> dict[str, Any]:
    return store.get(SECRET, "sedna", f"sedna-node-{node}")


def credential(lc: LC) -> dict[str, Any]:
    return json.loads((lc.state / "node-credential.json").read_text())


def joining_lc(tmp_path: Path, gm: GM, node: str, bootstrap: str | None = BOOT) -> LC:
    return LC(tmp_path, gm.address, node, None, *(["--bootstrap-token", bootstrap] if bootstrap else []))


def join_refusal(address: str, node: str, token: str) -> tuple[grpc.StatusCode, str, str]:
    with pytest.raises(grpc.RpcError) as caught:
        join(address, node, token)
    return refusal(caught.value)


def connect_refusal(address: str, node: str, token: str) -> tuple[grpc.StatusCode, str, str]:
    raw = RawNode(address, node, token)
    try:
        assert raw.ended.wait(10), "the GM did not end the stream"
        assert raw.error is not None
        return refusal(raw.error)
    finally:
        raw.close()


def test_an_lc_joins_once_and_keeps_a_credential_that_names_its_node(tmp_path: Path, store) -> None:
    gm = GM(tmp_path, {}, "--bootstrap-token", f"{BOOT} nodes=edge-0 uses=1").start()
    lc = joining_lc(tmp_path, gm, "edge-0").start()
    try:
        wait_until(lc.connected, message="edge-0 joined and connected")
        stored = credential(lc)
        assert stored["node"] == "edge-0" and len(stored["token"]) >= 40 and stored["workerKey"]
        assert stat.S_IMODE((lc.state / "node-credential.json").stat().st_mode) == 0o600
        # the GM keeps the token's hash, never the token
        data = json.dumps(secret(store, "edge-0"))
        assert stored["token"] not in data
        assert eh.token_sha256(stored["token"]) in json.dumps(
            {k: base64.b64decode(v).decode() for k, v in secret(store, "edge-0")["data"].items()})
        # the single-use bootstrap token is spent: nobody joins with it again, not even as edge-0
        assert join_refusal(gm.address, "edge-0", BOOT)[1] == "bootstrap-token-used-up"
        # and the LC no longer needs it: restarted without it, it connects with its credential
        lc.stop()
        lc = joining_lc(tmp_path, gm, "edge-0", bootstrap=None).start()
        wait_until(lc.connected, message="edge-0 connected again without a bootstrap token")
        assert credential(lc)["token"] == stored["token"]
    finally:
        lc.stop()
        gm.stop()


def test_bootstrap_tokens_are_checked_before_anything_is_issued(tmp_path: Path, store) -> None:
    gm = GM(tmp_path, {"pre": "pre-shared-token-0"}, "--bootstrap-token", f"{SHARED} nodes=edge-0,edge-1",
            "--bootstrap-token", "expired-bootstrap-token-00 expires=2001-01-01T00:00:00Z").start()
    try:
        assert join_refusal(gm.address, "edge-0", "not-a-token-the-gm-knows")[:2] == (
            grpc.StatusCode.UNAUTHENTICATED, "bad-bootstrap-token")
        assert join_refusal(gm.address, "edge-0", "expired-bootstrap-token-00")[1] == "bootstrap-token-expired"
        assert join_refusal(gm.address, "edge-9", SHARED)[1] == "bootstrap-token-not-for-node"
        assert join_refusal(gm.address, "Edge_0", SHARED)[1] == "invalid-node-name"
        assert join_refusal(gm.address, "pre", "expired-bootstrap-token-00")[1] == "bootstrap-token-expired"
        joined = join(gm.address, "edge-0", SHARED)
        assert joined.node == "edge-0" and joined.expires > time.time() + 86400
        # a joined node's name cannot be taken over with the shared token
        code, reason, details = join_refusal(gm.address, "edge-0", SHARED)
        assert (code, reason) == (grpc.StatusCode.ALREADY_EXISTS, "already-joined")
        assert "sedna node revoke edge-0" in details
        assert gm.metric("sedna_edgehub_joins_total", result="refused") == 6
        assert [s["metadata"]["name"] for s in store.list(SECRET, "sedna")
                if s["metadata"]["name"].startswith("sedna-node-")] == ["sedna-node-edge-0"]
    finally:
        gm.stop()


def test_a_nodes_credential_cannot_act_as_another_node(tmp_path: Path, store) -> None:
    gm = GM(tmp_path, {}, "--bootstrap-token", SHARED).start()
    try:
        zero, one = join(gm.address, "edge-0", SHARED), join(gm.address, "edge-1", SHARED)
        assert zero.token != one.token and zero.worker_key != one.worker_key
        assert connect_refusal(gm.address, "edge-1", zero.token)[:2] == (grpc.StatusCode.UNAUTHENTICATED,
                                                                         "bad-token")
        assert connect_refusal(gm.address, "edge-0", SHARED)[1] == "bad-token"  # a bootstrap token is no node token
        assert connect_refusal(gm.address, "edge-2", SHARED)[1] == "unknown-node"
        # authenticated as edge-0, a hello naming edge-1 gets nothing
        raw = RawNode(gm.address, "edge-0", zero.token)
        try:
            raw.send(eh.Hello(eh.NodeName("edge-1"), [], "x"))
            time.sleep(1)
            assert raw.messages.empty()
            assert "hello.node: 'edge-1' is not the authenticated node 'edge-0'" in gm.log.read_text()
        finally:
            raw.close()
        # a join cannot name one node in the request and another in the metadata
        with grpc.insecure_channel(gm.address) as channel:
            from sedna.proto import edgehub_pb2, edgehub_pb2_grpc

            with pytest.raises(grpc.RpcError) as caught:
                edgehub_pb2_grpc.EdgeHubStub(channel).Join(edgehub_pb2.JoinRequest(node="edge-1"), timeout=10,
                                                           metadata=((eh.NODE_METADATA, "edge-2"),
                                                                     ("authorization", f"Bearer {SHARED}")))
        assert refusal(caught.value)[1] == "node-mismatch"
    finally:
        gm.stop()


@pytest.mark.parametrize("what", ["secret", "node"])
def test_deleting_the_credential_or_the_node_revokes_it_and_drops_the_stream(tmp_path: Path, store, what) -> None:
    store.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "edge-0"}})
    gm = GM(tmp_path, {}, "--bootstrap-token", f"{BOOT} nodes=edge-0 uses=1").start()
    lc = joining_lc(tmp_path, gm, "edge-0").start()
    try:
        wait_until(lc.connected, message="edge-0 connected")
        token = credential(lc)["token"]
        started = time.monotonic()
        if what == "secret":
            store.delete(SECRET, "sedna", "sedna-node-edge-0")
        else:
            store.delete(NODE, "", "edge-0")
        wait_until(lambda: not lc.connected(), timeout=10, message="the revoked node's stream dropped")
        assert time.monotonic() - started < 5
        wait_until(lambda: "was revoked" in lc.log.read_text(), message="the LC told why")
        assert connect_refusal(gm.address, "edge-0", token)[1] == "unknown-node"
        # it cannot join again: its single-use bootstrap token is spent
        wait_until(lambda: "has been used up" in lc.log.read_text(), message="the LC's join refused")
        assert not lc.connected()
        with pytest.raises(NotFound):
            secret(store, "edge-0")
        assert gm.metric("sedna_edgehub_auth_failures_total", reason="revoked") == 1
    finally:
        lc.stop()
        gm.stop()


def test_a_rotation_reaches_the_lc_over_its_live_stream_and_retires_the_old_token(tmp_path: Path, store) -> None:
    gm = GM(tmp_path, {}, "--bootstrap-token", BOOT).start()
    lc = joining_lc(tmp_path, gm, "edge-0").start()
    try:
        wait_until(lc.connected, message="edge-0 connected")
        old = credential(lc)["token"]
        obj = secret(store, "edge-0")
        obj["metadata"].setdefault("annotations", {})["sedna.io/rotate"] = "now"  # what `sedna node rotate` sets
        store.update(obj)
        wait_until(lambda: credential(lc)["token"] != old, message="the new token stored by the LC")
        new = credential(lc)["token"]
        wait_until(lambda: "previousTokenSha256" not in secret(store, "edge-0")["data"],
                   message="the GM retired the old token once the LC stored the new one")
        assert gm.metric("sedna_edgehub_streams") == 1 and "reconnect" not in lc.log.read_text()
        assert connect_refusal(gm.address, "edge-0", old)[1] == "bad-token"
        lc.stop()
        lc = joining_lc(tmp_path, gm, "edge-0", bootstrap=None).start()
        wait_until(lc.connected, message="edge-0 connected with the new token")
        assert credential(lc)["token"] == new
    finally:
        lc.stop()
        gm.stop()


def test_a_token_is_rotated_before_it_expires_and_an_expired_one_is_refused(tmp_path: Path, store) -> None:
    gm = GM(tmp_path, {}, "--bootstrap-token", SHARED, "--credential-ttl", "9").start()
    lc = joining_lc(tmp_path, gm, "edge-0", SHARED).start()
    try:
        wait_until(lc.connected, message="edge-0 connected")
        first = credential(lc)
        wait_until(lambda: credential(lc)["token"] != first["token"], timeout=15, message="an automatic rotation")
        assert credential(lc)["expires"] > first["expires"]
        idle = join(gm.address, "edge-1", SHARED)  # never connects while its token is valid
        time.sleep(max(0.0, idle.expires - time.time()) + 1)
        assert connect_refusal(gm.address, "edge-1", idle.token)[1] == "expired"
        assert lc.connected()  # edge-0 has been rotated all along
        assert gm.metric("sedna_edgehub_rotations_total") >= 2
    finally:
        lc.stop()
        gm.stop()
