"""One contract, every backend: the semantics gm.cluster.interface's docstring fixes.

Each backend factory is one entry of ``BACKENDS``; a new backend is tested by adding a line.
The kube backend runs against the kmock API emulator on 127.0.0.1 (tests/gm/kube_emulator.py).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import kubernetes.client
import pytest

from gm import schema
from gm.cluster import interface
from gm.cluster.interface import AlreadyExists, Cluster, Conflict, NotFound, WatchEvent
from gm.cluster.kube import KubeCluster
from gm.cluster.local.store import LocalStore
from tests.gm.kube_emulator import EmulatedApiServer


@contextlib.contextmanager
def kube_backend() -> Iterator[Cluster]:
    validators = {f"{k.group}/{k.version}/{k.plural}": schema.validate for k in interface.SEDNA_KINDS}
    with EmulatedApiServer(validators) as server:
        configuration = kubernetes.client.Configuration()
        configuration.host = server.url
        cluster = KubeCluster(kubernetes.client.ApiClient(configuration), watch_timeout=1)
        try:
            yield cluster
        finally:
            cluster.close()


@contextlib.contextmanager
def local_backend() -> Iterator[Cluster]:
    store = LocalStore(":memory:")
    try:
        yield store
    finally:
        store.close()


BACKENDS: dict[str, Callable[[], contextlib.AbstractContextManager[Cluster]]] = {
    "kube": kube_backend,
    "local": local_backend,
}


@pytest.fixture(params=sorted(BACKENDS))
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    with BACKENDS[request.param]() as backend:
        yield backend


def model(name: str = "m", **labels: str) -> dict[str, Any]:
    return {"apiVersion": "sedna.io/v1alpha1", "kind": "Model",
            "metadata": {"name": name, "namespace": "default", "labels": labels},
            "spec": {"url": "/models/m.onnx", "format": "onnx"}}


def test_is_a_cluster(cluster: Cluster) -> None:
    assert isinstance(cluster, Cluster)


def test_create_sets_uid_version_generation_timestamp(cluster: Cluster) -> None:
    meta = cluster.create(model())["metadata"]

    assert meta["uid"] and meta["creationTimestamp"] and meta["generation"] == 1
    assert int(meta["resourceVersion"]) > 0


def test_generate_name_and_already_exists(cluster: Cluster) -> None:
    generated = cluster.create({**model(), "metadata": {"generateName": "m-", "namespace": "default"}})
    cluster.create(model())

    assert generated["metadata"]["name"].startswith("m-")
    with pytest.raises(AlreadyExists):
        cluster.create(model())


def test_versions_increase_across_writes(cluster: Cluster) -> None:
    first = cluster.create(model("a"))
    second = cluster.create(model("b"))
    patched = cluster.patch_status(interface.MODEL, "default", "a", {"updateTime": "2024-01-01T00:00:00Z"})

    versions = [int(o["metadata"]["resourceVersion"]) for o in (first, second, patched)]
    assert versions == sorted(versions) and len(set(versions)) == 3


def test_update_replaces_metadata_and_spec_never_status(cluster: Cluster) -> None:
    cluster.create(model())
    cluster.patch_status(interface.MODEL, "default", "m", {"metrics": [{"key": "acc", "value": "0.9"}]})
    current = cluster.get(interface.MODEL, "default", "m")
    current["metadata"]["labels"] = {"v": "2"}
    current["spec"]["url"] = "/models/v2.onnx"
    current["status"] = {}

    updated = cluster.update(current)

    assert updated["metadata"]["labels"] == {"v": "2"} and updated["spec"]["url"] == "/models/v2.onnx"
    assert updated["status"] == {"metrics": [{"key": "acc", "value": "0.9"}]}
    assert updated["metadata"]["generation"] == 2


def test_metadata_only_update_keeps_generation(cluster: Cluster) -> None:
    current = cluster.create(model())
    current["metadata"]["annotations"] = {"note": "x"}

    assert cluster.update(current)["metadata"]["generation"] == 1


def test_stale_update_conflicts(cluster: Cluster) -> None:
    stale = cluster.create(model())
    cluster.update({**stale, "metadata": {**stale["metadata"], "labels": {"x": "1"}}})

    with pytest.raises(Conflict):
        cluster.update(stale)


def test_patch_status_is_a_merge_patch(cluster: Cluster) -> None:
    cluster.create(model())
    cluster.patch_status(interface.MODEL, "default", "m", {"updateTime": "2024-01-01T00:00:00Z", "extra": {"a": 1}})

    patched = cluster.patch_status(interface.MODEL, "default", "m", {"updateTime": None, "extra": {"b": 2}})

    assert patched["status"] == {"extra": {"a": 1, "b": 2}}
    assert patched["metadata"]["generation"] == 1


def test_list_by_namespace_and_labels(cluster: Cluster) -> None:
    cluster.create(model("a", tier="edge"))
    cluster.create(model("b", tier="cloud"))
    elsewhere = model("c", tier="edge")
    elsewhere["metadata"]["namespace"] = "other"
    cluster.create(elsewhere)

    assert [o["metadata"]["name"] for o in cluster.list(interface.MODEL, "default", {"tier": "edge"})] == ["a"]
    assert sorted(o["metadata"]["name"] for o in cluster.list(interface.MODEL, None, {"tier": "edge"})) == ["a", "c"]


def test_delete_and_not_found(cluster: Cluster) -> None:
    cluster.create(model())
    cluster.delete(interface.MODEL, "default", "m")

    with pytest.raises(NotFound):
        cluster.get(interface.MODEL, "default", "m")
    with pytest.raises(NotFound):
        cluster.delete(interface.MODEL, "default", "m")


def test_watch_replays_then_follows_in_version_order(cluster: Cluster) -> None:
    start = cluster.create(model("a"))
    stop = threading.Event()
    got: list[WatchEvent] = []
    done = threading.Event()

    def run() -> None:
        for event in cluster.watch(interface.MODEL, "default", stop=stop):
            got.append(event)
            if len(got) == 3:
                done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    cluster.create(model("b"))
    cluster.delete(interface.MODEL, "default", "a")
    assert done.wait(5)
    stop.set()
    thread.join(5)
    since = list(_take(cluster.watch(interface.MODEL, "default", start["metadata"]["resourceVersion"]), 2))

    assert [(e.type, e.object["metadata"]["name"]) for e in got] == [("ADDED", "a"), ("ADDED", "b"), ("DELETED", "a")]
    assert not thread.is_alive()
    assert [(e.type, e.object["metadata"]["name"]) for e in since] == [("ADDED", "b"), ("DELETED", "a")]


def _take(events: Iterator[WatchEvent], count: int) -> Iterator[WatchEvent]:
    for index, event in enumerate(events):
        yield event
        if index + 1 == count:
            return


def test_emit_event_never_raises(cluster: Cluster) -> None:
    involved = cluster.create(model())

    cluster.emit_event(involved, "Loaded", "model loaded")
    cluster.emit_event({}, "Odd", "no metadata at all")

    reasons = [e["reason"] for e in cluster.list(interface.EVENT, "default")]
    assert "Loaded" in reasons
