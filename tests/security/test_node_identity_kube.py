"""Issue 12 item 2 on the kube backend: node credentials live in ``Secret sedna-node-<node>``.

:class:`~gm.identity.NodeIdentity` over :class:`~gm.cluster.kube.KubeCluster` against the kmock API
emulator (real HTTP on 127.0.0.1): a join stores only the token's hash in the GM namespace's
Secret, the token proves that node and no other, a rotation replaces the hash, and deleting the
Secret (as ``kubectl delete secret`` does) revokes the node through the watch.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import kubernetes.client
import pytest

from gm.cluster.interface import SECRET
from gm.cluster.kube import KubeCluster
from gm.identity import IdentitySettings, NodeIdentity
from gm.identity.bootstrap import JoinRefused, parse_line
from tests.gm.kube_emulator import EmulatedApiServer
from tests.support.waiting import eventually

NAMESPACE = "sedna-system"
BOOT = "bootstrap-token-for-the-kube-test"


@pytest.fixture
def identity() -> Iterator[tuple[NodeIdentity, KubeCluster, list[str]]]:
    with EmulatedApiServer() as server:
        configuration = kubernetes.client.Configuration()
        configuration.host = server.url
        cluster = KubeCluster(kubernetes.client.ApiClient(configuration), watch_timeout=1)
        ident = NodeIdentity(cluster, IdentitySettings(namespace=NAMESPACE, bootstrap_tokens=(
            parse_line(f"{BOOT} uses=2", "test"),)))
        revoked: list[str] = []
        ident.on_revoked.append(revoked.append)
        ident.start()
        try:
            yield ident, cluster, revoked
        finally:
            ident.stop()
            cluster.close()


def test_a_joined_node_is_a_hash_in_its_secret_and_deleting_the_secret_revokes_it(identity) -> None:
    ident, cluster, revoked = identity
    joined = ident.join("edge-0", BOOT)
    other = ident.join("edge-1", BOOT)

    secret = cluster.get(SECRET, NAMESPACE, "sedna-node-edge-0")
    stored = json.dumps(secret) + "".join(base64.b64decode(v).decode("latin-1")
                                          for v in (secret.get("data") or {}).values())
    assert joined.token not in stored  # only its hash is kept
    assert ident.authenticate("edge-0", joined.token).via == "current"
    with pytest.raises(JoinRefused, match="wrong token for node 'edge-1'"):
        ident.authenticate("edge-1", joined.token)
    with pytest.raises(JoinRefused, match="used up"):
        ident.join("edge-2", BOOT)

    rotated = ident.rotate("edge-0")
    assert rotated is not None and rotated.token != joined.token
    assert ident.authenticate("edge-0", rotated.token).via == "current"
    assert ident.confirm("edge-0")
    with pytest.raises(JoinRefused):
        ident.authenticate("edge-0", joined.token)

    cluster.delete(SECRET, NAMESPACE, "sedna-node-edge-0")
    eventually(lambda: "edge-0" in revoked, message="the deleted Secret revoking edge-0")
    with pytest.raises(JoinRefused, match="no credential"):
        ident.authenticate("edge-0", rotated.token)
    assert ident.authenticate("edge-1", other.token).via == "current"
