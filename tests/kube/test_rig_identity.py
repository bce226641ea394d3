"""Node identity on the Kubernetes rig: deleting a node's credential Secret revokes the node."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from gm.cluster.interface import SECRET
from tests.kube import manifests
from tests.kube.rig import Rig
from tests.support.waiting import eventually

pytestmark = [pytest.mark.processes, pytest.mark.slow,
              pytest.mark.skipif(manifests.kubectl() is None, reason="kubectl (kubernetes-client) is missing")]


def hub_link(rig: Rig, node: str) -> str:
    return str(httpx.get(f"http://127.0.0.1:{rig.lc_ports[node]}/healthz").json()["hub"])


def test_deleting_a_nodes_secret_drops_its_stream_and_its_credential_is_refused(tmp_path: Path) -> None:
    with Rig(tmp_path) as rig:
        assert rig.cluster is not None
        assert {s["metadata"]["name"] for s in rig.cluster.list(SECRET, "sedna")} >= {
            "sedna-node-cloud", "sedna-node-edge-0"}  # in GM's namespace, as its Role grants

        rig.cluster.delete(SECRET, "sedna", "sedna-node-edge-0")  # kubectl -n sedna delete secret sedna-node-edge-0

        try:
            eventually(lambda: hub_link(rig, "edge-0") == "disconnected", timeout=30, interval=0.2,
                       message="edge-0's stream dropped")
            log = tmp_path / "lc-edge-0.log"
            # its credential is refused on reconnect, and the bootstrap token (used once per node) cannot rejoin it
            eventually(lambda: "credential of node 'edge-0' was revoked" in log.read_text()
                       and "bootstrap token allowed 2 join(s) and has been used up" in log.read_text(), timeout=30,
                       message="edge-0 refused: revoked, bootstrap token used up")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{rig.logs()}") from None
        assert "node edge-0: stream ended (credential revoked)" in (tmp_path / "gm.log").read_text()
        assert hub_link(rig, "edge-0") == "disconnected"
        assert hub_link(rig, "cloud") == "connected"  # the other node is untouched
        assert {s["metadata"]["name"] for s in rig.cluster.list(SECRET, "sedna")} & {"sedna-node-edge-0"} == set()
