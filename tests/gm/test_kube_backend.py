"""gm.cluster.kube.KubeCluster against a kmock API emulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from typing import Any

import kubernetes.client
import pytest

from gm import schema
from gm.cluster import interface
from gm.cluster.interface import AlreadyExists, Conflict, Invalid, Kind, NotFound, WatchEvent
from gm.cluster.kube import KubeCluster
from tests.gm.kube_emulator import EmulatedApiServer
from tests.support.waiting import eventually

VALIDATORS = {f"{k.group}/{k.version}/{k.plural}": schema.validate for k in interface.SEDNA_KINDS}


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatedApiServer]:
    with EmulatedApiServer(VALIDATORS) as srv:
        yield srv


@pytest.fixture
def cluster(server: EmulatedApiServer) -> Iterator[KubeCluster]:
    configuration = kubernetes.client.Configuration()
    configuration.host = server.url
    kube = KubeCluster(kubernetes.client.ApiClient(configuration), watch_timeout=1)
    yield kube
    kube.close()


_NAMESPACES = itertools.count()


@pytest.fixture
def ns() -> str:
    """A namespace of the test's own, so tests sharing the server never see each other's objects."""
    return f"t{next(_NAMESPACES)}"


def dataset(ns: str, name: str = "ds", **labels: str) -> dict[str, Any]:
    return {"apiVersion": "sedna.io/v1alpha1", "kind": "Dataset",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"url": "/data/train.txt", "format": "txt", "nodeName": "edge-0"}}


BUILTINS: dict[str, tuple[Kind, dict[str, Any], dict[str, Any], dict[str, Any]]] = {
    # kind: (Kind, spec, changed spec, status patch)
    "Pod": (interface.POD, {"containers": [{"name": "w", "image": "worker:1"}]},
            {"containers": [{"name": "w", "image": "worker:2"}]}, {"phase": "Running"}),
    "Deployment": (interface.DEPLOYMENT,
                   {"replicas": 1, "selector": {"matchLabels": {"app": "a"}},
                    "template": {"metadata": {"labels": {"app": "a"}},
                                 "spec": {"containers": [{"name": "w", "image": "worker:1"}]}}},
                   {"replicas": 2, "selector": {"matchLabels": {"app": "a"}},
                    "template": {"metadata": {"labels": {"app": "a"}},
                                 "spec": {"containers": [{"name": "w", "image": "worker:1"}]}}},
                   {"readyReplicas": 1}),
    "Service": (interface.SERVICE, {"selector": {"app": "a"}, "ports": [{"name": "tcp-0", "port": 5000}]},
                {"selector": {"app": "a"}, "ports": [{"name": "tcp-0", "port": 5001}]},
                {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}),
}


class TestCustomResources:
    def test_create_sets_identity_and_get_returns_it(self, cluster: KubeCluster, ns: str) -> None:
        created = cluster.create(dataset(ns))

        meta = created["metadata"]
        assert (meta["namespace"], meta["generation"], bool(meta["uid"])) == (ns, 1, True)
        assert int(meta["resourceVersion"]) > 0 and meta["creationTimestamp"].endswith("Z")
        assert cluster.get(interface.DATASET, ns, "ds") == created

    def test_list_filters_by_labels_and_namespace(self, cluster: KubeCluster, ns: str) -> None:
        cluster.create(dataset(ns, "a", team="x"))
        cluster.create(dataset(ns, "b", team="y"))
        cluster.create(dataset(ns + "-other", "c", team="x"))

        names = [o["metadata"]["name"] for o in cluster.list(interface.DATASET, ns, {"team": "x"})]
        everywhere = [o["metadata"]["name"] for o in cluster.list(interface.DATASET, None, {"team": "x"})
                      if o["metadata"]["namespace"].startswith(ns)]

        assert names == ["a"]
        assert sorted(everywhere) == ["a", "c"]

    def test_update_bumps_generation_on_spec_change_and_keeps_status(self, cluster: KubeCluster, ns: str) -> None:
        created = cluster.create(dataset(ns))
        cluster.patch_status(interface.DATASET, ns, "ds", {"numberOfSamples": 5})
        current = cluster.get(interface.DATASET, ns, "ds")
        current["spec"]["url"] = "/data/v2.txt"
        current["status"] = {"numberOfSamples": 999}

        updated = cluster.update(current)

        assert updated["spec"]["url"] == "/data/v2.txt"
        assert updated["status"] == {"numberOfSamples": 5}
        assert updated["metadata"]["generation"] == 2
        assert int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])

    def test_update_with_stale_version_conflicts_and_without_version_is_unconditional(
            self, cluster: KubeCluster, ns: str) -> None:
        stale = cluster.create(dataset(ns))
        cluster.patch_status(interface.DATASET, ns, "ds", {"numberOfSamples": 1})

        with pytest.raises(Conflict):
            cluster.update(stale)
        del stale["metadata"]["resourceVersion"]
        stale["metadata"]["labels"] = {"fresh": "yes"}
        assert cluster.update(stale)["metadata"]["labels"] == {"fresh": "yes"}

    def test_patch_status_merges_without_touching_spec(self, cluster: KubeCluster, ns: str) -> None:
        created = cluster.create(dataset(ns))
        cluster.patch_status(interface.DATASET, ns, "ds", {"numberOfSamples": 3, "updateTime": "2024-01-01T00:00:00Z"})

        patched = cluster.patch_status(interface.DATASET, ns, "ds", {"numberOfSamples": 4, "updateTime": None})

        assert patched["status"] == {"numberOfSamples": 4}
        assert patched["spec"] == created["spec"]
        assert patched["metadata"]["generation"] == 1

    def test_delete_then_get_and_delete_again_are_not_found(self, cluster: KubeCluster, ns: str) -> None:
        cluster.create(dataset(ns))

        cluster.delete(interface.DATASET, ns, "ds")

        with pytest.raises(NotFound):
            cluster.get(interface.DATASET, ns, "ds")
        with pytest.raises(NotFound):
            cluster.delete(interface.DATASET, ns, "ds")

    def test_errors_map_to_the_interface(self, cluster: KubeCluster, ns: str) -> None:
        cluster.create(dataset(ns))
        bad = dataset(ns, "bad")
        bad["spec"]["format"] = "json"
        del bad["spec"]["nodeName"]

        with pytest.raises(AlreadyExists):
            cluster.create(dataset(ns))
        with pytest.raises(Invalid) as invalid:
            cluster.create(bad)
        with pytest.raises(NotFound):
            cluster.patch_status(interface.DATASET, ns, "missing", {"numberOfSamples": 1})

        assert [field for field, _ in invalid.value.causes] == ["spec.format", "spec.nodeName"]

    def test_generate_name_is_honoured(self, cluster: KubeCluster, ns: str) -> None:
        obj = dataset(ns)
        obj["metadata"] = {"generateName": "ds-", "namespace": ns}

        name = cluster.create(obj)["metadata"]["name"]

        assert name.startswith("ds-") and len(name) > 3
        assert cluster.get(interface.DATASET, ns, name)["metadata"]["name"] == name


@pytest.mark.parametrize("kind_name", sorted(BUILTINS))
def test_builtin_kind_lifecycle(cluster: KubeCluster, ns: str, kind_name: str) -> None:
    kind, spec, changed, status = BUILTINS[kind_name]
    body = {"apiVersion": kind.api_version, "kind": kind.kind,
            "metadata": {"name": "w", "namespace": ns, "labels": {"role": "worker"}}, "spec": spec}

    created = cluster.create(body)
    listed = cluster.list(kind, ns, {"role": "worker"})
    not_listed = cluster.list(kind, ns, {"role": "other"})
    created["spec"] = changed
    updated = cluster.update(created)
    patched = cluster.patch_status(kind, ns, "w", status)
    cluster.delete(kind, ns, "w")

    assert [(o["kind"], o["apiVersion"], o["metadata"]["name"]) for o in listed] == [(kind.kind, kind.api_version, "w")]
    assert not_listed == []
    assert updated["spec"] == changed and updated["metadata"]["generation"] == 2
    assert patched["status"] == status and patched["spec"] == changed
    with pytest.raises(NotFound):
        cluster.get(kind, ns, "w")


def test_builtin_body_refused_by_the_client_is_invalid(cluster: KubeCluster, ns: str) -> None:
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": ns},
            "spec": {"replicas": 1}}

    with pytest.raises(Invalid) as invalid:
        cluster.create(body)

    assert sorted(field for field, _ in invalid.value.causes) == ["spec.selector", "spec.template"]


def test_nodes_are_cluster_scoped(cluster: KubeCluster) -> None:
    cluster.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "edge-9", "labels": {"edge": "yes"}}})

    assert cluster.get(interface.NODE, "", "edge-9")["metadata"]["labels"] == {"edge": "yes"}
    assert [n["metadata"]["name"] for n in cluster.list(interface.NODE, labels={"edge": "yes"})] == ["edge-9"]


def test_emit_event_records_a_v1_event_and_never_raises(cluster: KubeCluster, ns: str) -> None:
    involved = cluster.create(dataset(ns))

    cluster.emit_event(involved, "Synced", "dataset has 5 samples")
    cluster.emit_event({"kind": "Dataset", "metadata": {"name": "Not_A_Valid_Name", "namespace": ns}}, "X", "y")

    (event,) = cluster.list(interface.EVENT, ns)
    assert (event["reason"], event["message"], event["type"]) == ("Synced", "dataset has 5 samples", "Normal")
    assert event["involvedObject"]["uid"] == involved["metadata"]["uid"]
    with pytest.raises(Invalid):
        cluster.patch_status(interface.EVENT, ns, event["metadata"]["name"], {"x": 1})


class Collector:
    """Run a watch in a thread and collect ``(type, name)`` until stopped."""

    def __init__(self, events: Iterator[WatchEvent], stop: threading.Event) -> None:
        self.seen: list[tuple[str, str]] = []
        self.objects: list[dict[str, Any]] = []
        self.stop = stop
        self.thread = threading.Thread(target=self._run, args=(events,), daemon=True)
        self.thread.start()

    def _run(self, events: Iterator[WatchEvent]) -> None:
        for event in events:
            self.objects.append(event.object)
            self.seen.append((event.type, event.object["metadata"]["name"]))

    def wait_for(self, count: int, timeout: float = 5.0, prefix: str = "") -> list[tuple[str, str]]:
        """The events so far, once ``count`` of them concern namespaces starting with ``prefix``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pairs = list(zip(self.seen, self.objects, strict=False))
            mine = [s for s, o in pairs if o["metadata"].get("namespace", "").startswith(prefix)]
            if len(mine) >= count:
                return mine
            time.sleep(0.02)
        return list(self.seen)

    def close(self) -> float:
        started = time.monotonic()
        self.stop.set()
        self.thread.join(5)
        assert not self.thread.is_alive()
        return time.monotonic() - started


class TestWatch:
    def test_yields_existing_then_added_modified_deleted_in_order(self, cluster: KubeCluster, ns: str) -> None:
        cluster.create(dataset(ns, "old"))
        stop = threading.Event()
        watch = Collector(cluster.watch(interface.DATASET, ns, stop=stop), stop)
        watch.wait_for(1)

        cluster.create(dataset(ns, "new"))
        cluster.patch_status(interface.DATASET, ns, "new", {"numberOfSamples": 2})
        cluster.delete(interface.DATASET, ns, "old")
        seen = watch.wait_for(4)
        took = watch.close()

        assert seen == [("ADDED", "old"), ("ADDED", "new"), ("MODIFIED", "new"), ("DELETED", "old")]
        versions = [int(o["metadata"]["resourceVersion"]) for o in watch.objects]
        assert versions == sorted(versions)
        assert took < 1.0

    def test_from_a_resource_version_yields_only_later_changes_across_reconnects(
            self, server: EmulatedApiServer, cluster: KubeCluster, ns: str) -> None:
        first = cluster.create(dataset(ns, "before"))
        stop = threading.Event()
        watch = Collector(cluster.watch(interface.DATASET, ns, first["metadata"]["resourceVersion"], stop), stop)

        # the server ends each stream after watch_timeout=1 s: change nothing until the watch has resumed
        eventually(lambda: server.emulator.watches.count(("sedna.io/v1alpha1/datasets", ns)) >= 2,
                   message="the watch to resume after the server ended its first stream")
        cluster.create(dataset(ns, "after"))
        seen = watch.wait_for(1)
        watch.close()

        assert seen == [("ADDED", "after")]

    def test_expired_version_relists_and_yields_the_difference(
            self, server: EmulatedApiServer, cluster: KubeCluster, ns: str) -> None:
        cluster.create(dataset(ns, "kept"))
        gone = cluster.create(dataset(ns, "gone"))
        stop = threading.Event()
        watch = Collector(cluster.watch(interface.DATASET, ns, stop=stop), stop)
        watch.wait_for(2)
        kept = cluster.get(interface.DATASET, ns, "kept")
        kept["spec"]["url"] = "/data/changed.txt"

        server.change_unseen("sedna.io/v1alpha1/datasets", ns, "kept", kept)
        server.change_unseen("sedna.io/v1alpha1/datasets", ns, gone["metadata"]["name"], None)
        seen = watch.wait_for(4, timeout=6)
        watch.close()

        assert sorted(seen[:2]) == [("ADDED", "gone"), ("ADDED", "kept")]
        assert seen[2:] == [("DELETED", "gone"), ("MODIFIED", "kept")]
        assert watch.objects[3]["spec"]["url"] == "/data/changed.txt"

    def test_every_namespace_when_namespace_is_none(self, server: EmulatedApiServer, cluster: KubeCluster,
                                                    ns: str) -> None:
        stop = threading.Event()
        watch = Collector(cluster.watch(interface.POD, None, stop=stop), stop)
        eventually(lambda: ("v1/pods", None) in server.emulator.watches, message="a watch of every namespace")

        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": ns + "-a"},
               "spec": {"containers": [{"name": "w", "image": "i"}]}}
        cluster.create(pod)
        cluster.create({**pod, "metadata": {"name": "p", "namespace": ns + "-b"}})
        seen = watch.wait_for(2, prefix=ns)
        watch.close()

        mine = [o["metadata"]["namespace"] for o in watch.objects if o["metadata"]["namespace"].startswith(ns)]
        assert sorted(mine) == [ns + "-a", ns + "-b"]
        assert seen == [("ADDED", "p"), ("ADDED", "p")]
