"""LocalStore honours the Cluster interface semantics, persists, and watches across processes."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from gm.cluster.interface import (
    DEPLOYMENT,
    EVENT,
    MODEL,
    NODE,
    POD,
    AlreadyExists,
    Cluster,
    Conflict,
    Expired,
    Invalid,
    NotFound,
    WatchEvent,
)
from gm.cluster.local.store import LocalStore


def model(name: str, labels: dict[str, str] | None = None, url: str = "/m.onnx") -> dict:
    return {"apiVersion": "sedna.io/v1alpha1", "kind": "Model",
            "metadata": {"name": name, "namespace": "default", "labels": labels or {}},
            "spec": {"url": url, "format": "onnx"}}


def pod(name: str, owner: dict | None = None) -> dict:
    meta: dict = {"name": name, "namespace": "default"}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": owner["apiVersion"], "kind": owner["kind"],
                                    "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
                                    "controller": True}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [{"name": "c", "command": ["true"]}]}}


@pytest.fixture
def store() -> LocalStore:
    s = LocalStore(":memory:")
    yield s
    s.close()


def collect(events, n: int, timeout: float = 5.0) -> list[WatchEvent]:
    out: list[WatchEvent] = []
    deadline = time.monotonic() + timeout
    for ev in events:
        out.append(ev)
        if len(out) == n or time.monotonic() > deadline:
            break
    return out


class TestCreateGetList:
    def test_is_a_cluster(self, store: LocalStore) -> None:
        assert isinstance(store, Cluster)

    def test_create_sets_identity_fields(self, store: LocalStore) -> None:
        made = store.create(model("m1"))
        meta = made["metadata"]
        assert meta["generation"] == 1
        assert meta["resourceVersion"] == "1"
        assert len(meta["uid"]) == 36
        assert meta["creationTimestamp"].endswith("Z")
        assert store.get(MODEL, "default", "m1") == made

    def test_resource_versions_increase_globally(self, store: LocalStore) -> None:
        a = store.create(model("a"))
        b = store.create(pod("b"))
        assert (a["metadata"]["resourceVersion"], b["metadata"]["resourceVersion"]) == ("1", "2")
        assert store.resource_version() == "2"

    def test_pod_starts_pending_and_create_ignores_status(self, store: LocalStore) -> None:
        p = pod("p")
        p["status"] = {"phase": "Running"}
        assert store.create(p)["status"] == {"phase": "Pending"}
        m = model("m")
        m["status"] = {"x": 1}
        assert "status" not in store.create(m)

    def test_duplicate_name_is_already_exists(self, store: LocalStore) -> None:
        store.create(model("m1"))
        with pytest.raises(AlreadyExists):
            store.create(model("m1"))

    def test_generate_name_adds_five_chars(self, store: LocalStore) -> None:
        obj = model("")
        obj["metadata"]["generateName"] = "job-"
        name = store.create(obj)["metadata"]["name"]
        assert name.startswith("job-") and len(name) == 9

    def test_bad_name_is_invalid_and_names_the_field(self, store: LocalStore) -> None:
        with pytest.raises(Invalid) as info:
            store.create(model("Bad_Name"))
        assert info.value.causes[0][0] == "metadata.name"

    def test_unknown_kind_is_invalid(self, store: LocalStore) -> None:
        with pytest.raises(Invalid):
            store.create({"apiVersion": "x/v1", "kind": "Nope", "metadata": {"name": "a"}})

    def test_get_missing_is_not_found(self, store: LocalStore) -> None:
        with pytest.raises(NotFound):
            store.get(MODEL, "default", "absent")

    def test_list_filters_by_namespace_and_labels(self, store: LocalStore) -> None:
        store.create(model("a", {"app": "x", "tier": "edge"}))
        store.create(model("b", {"app": "y"}))
        other = model("c", {"app": "x"})
        other["metadata"]["namespace"] = "other"
        store.create(other)
        names = lambda objs: [o["metadata"]["name"] for o in objs]  # noqa: E731
        assert names(store.list(MODEL)) == ["a", "b", "c"]
        assert names(store.list(MODEL, "default")) == ["a", "b"]
        assert names(store.list(MODEL, labels={"app": "x"})) == ["a", "c"]
        assert names(store.list(MODEL, "default", {"app": "x", "tier": "edge"})) == ["a"]
        assert store.list(POD) == []

    def test_cluster_scoped_kind_has_no_namespace(self, store: LocalStore) -> None:
        made = store.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "edge-0"}})
        assert "namespace" not in made["metadata"]
        assert store.get(NODE, "", "edge-0")["metadata"]["name"] == "edge-0"


class TestUpdate:
    def test_spec_change_bumps_generation_and_keeps_status(self, store: LocalStore) -> None:
        made = store.create(model("m"))
        store.patch_status(MODEL, "default", "m", {"phase": "Ready"})
        made["spec"]["url"] = "/n.onnx"
        made["metadata"].pop("resourceVersion")
        made["status"] = {"phase": "ignored"}
        updated = store.update(made)
        assert updated["metadata"]["generation"] == 2
        assert updated["metadata"]["resourceVersion"] == "3"
        assert updated["status"] == {"phase": "Ready"}

    def test_label_change_keeps_generation(self, store: LocalStore) -> None:
        made = store.create(model("m"))
        made["metadata"]["labels"] = {"a": "b"}
        updated = store.update(made)
        assert updated["metadata"]["generation"] == 1
        assert updated["metadata"]["labels"] == {"a": "b"}
        assert updated["metadata"]["resourceVersion"] == "2"

    def test_stale_resource_version_is_conflict(self, store: LocalStore) -> None:
        made = store.create(model("m"))
        fresh = dict(made, spec={"url": "/x"})
        store.update(fresh)
        with pytest.raises(Conflict):
            store.update(dict(made, spec={"url": "/y"}))

    def test_noop_update_writes_nothing(self, store: LocalStore) -> None:
        made = store.create(model("m"))
        assert store.update(made)["metadata"]["resourceVersion"] == "1"
        assert store.resource_version() == "1"

    def test_update_missing_is_not_found(self, store: LocalStore) -> None:
        with pytest.raises(NotFound):
            store.update(model("ghost"))


class TestPatchStatus:
    def test_merges_and_deletes_with_null(self, store: LocalStore) -> None:
        store.create(model("m"))
        store.patch_status(MODEL, "default", "m", {"phase": "A", "cond": {"x": 1, "y": 2}})
        out = store.patch_status(MODEL, "default", "m", {"cond": {"y": None, "z": 3}, "phase": None})
        assert out["status"] == {"cond": {"x": 1, "z": 3}}
        assert out["metadata"]["generation"] == 1
        assert out["metadata"]["resourceVersion"] == "3"
        assert out["spec"] == {"url": "/m.onnx", "format": "onnx"}


class TestDelete:
    def test_cascades_through_owner_references(self, store: LocalStore) -> None:
        job = store.create(model("job"))
        deploy = store.create({"apiVersion": "apps/v1", "kind": "Deployment",
                               "metadata": {"name": "d", "ownerReferences": pod("x", job)["metadata"]
                                            ["ownerReferences"]}, "spec": {}})
        store.create(pod("p1", deploy))
        store.create(pod("p2", job))
        store.create(pod("free"))
        store.delete(MODEL, "default", "job")
        assert [p["metadata"]["name"] for p in store.list(POD)] == ["free"]
        assert store.list(DEPLOYMENT) == []
        with pytest.raises(NotFound):
            store.delete(MODEL, "default", "job")

    def test_a_child_of_a_deleted_owner_is_refused(self, store: LocalStore) -> None:
        # a controller acting on a stale cache must not resurrect a dependent of a deleted owner
        job = store.create(model("job"))
        store.delete(MODEL, "default", "job")
        with pytest.raises(NotFound, match="owner Model/job no longer exists"):
            store.create(pod("late", job))
        assert store.list(POD) == []


class TestWatch:
    def test_without_version_lists_then_follows(self, store: LocalStore) -> None:
        store.create(model("a"))
        stop = threading.Event()
        events = store.watch(MODEL, stop=stop)
        first = next(events)
        assert (first.type, first.object["metadata"]["name"]) == ("ADDED", "a")
        threading.Timer(0.05, lambda: store.create(model("b"))).start()
        second = next(events)
        assert (second.type, second.object["metadata"]["name"]) == ("ADDED", "b")
        stop.set()

    def test_from_version_replays_in_order_and_filters_kind(self, store: LocalStore) -> None:
        made = store.create(model("a"))
        rv = made["metadata"]["resourceVersion"]
        store.create(pod("p"))
        made["spec"]["url"] = "/b"
        store.update(made)
        store.delete(MODEL, "default", "a")
        got = collect(store.watch(MODEL, resource_version=rv), 2)
        assert [(e.type, e.object["metadata"]["resourceVersion"]) for e in got] == [("MODIFIED", "3"),
                                                                                     ("DELETED", "4")]

    def test_stop_ends_the_watch(self, store: LocalStore) -> None:
        stop = threading.Event()
        threading.Timer(0.1, stop.set).start()
        started = time.monotonic()
        assert list(store.watch(MODEL, stop=stop)) == []
        assert time.monotonic() - started < 2

    def test_compacted_version_is_expired(self) -> None:
        s = LocalStore(":memory:", keep_changes=5)
        for i in range(20):
            s.create(model(f"m{i}"))
        with pytest.raises(Expired):
            next(s.watch(MODEL, resource_version="1"))
        assert next(s.watch(MODEL, resource_version="18")).object["metadata"]["name"] == "m18"
        s.close()


class TestEvents:
    def test_repeated_event_bumps_count(self, store: LocalStore) -> None:
        m = store.create(model("m"))
        store.emit_event(m, "Created", "made it")
        store.emit_event(m, "Created", "made it")
        store.emit_event(m, "Failed", "oops", "Warning")
        events = sorted(store.list(EVENT, "default"), key=lambda e: e["reason"])
        assert [(e["reason"], e["count"], e["type"]) for e in events] == [("Created", 2, "Normal"),
                                                                         ("Failed", 1, "Warning")]
        assert events[0]["involvedObject"]["uid"] == m["metadata"]["uid"]
        assert events[0]["firstTimestamp"] <= events[0]["lastTimestamp"]

    def test_emit_event_never_raises(self, store: LocalStore) -> None:
        store.emit_event({}, "R", "m")


class TestPersistence:
    def test_reopen_keeps_objects_and_continues_versions(self, tmp_path: Path) -> None:
        path = tmp_path / "state.db"
        s = LocalStore(path)
        s.create(model("a"))
        s.create(model("b"))
        s.delete(MODEL, "default", "b")
        s.close()
        s = LocalStore(path)
        assert [m["metadata"]["name"] for m in s.list(MODEL)] == ["a"]
        assert s.create(model("c"))["metadata"]["resourceVersion"] == "4"
        s.close()

    def test_second_store_on_same_file_sees_writes_in_watch(self, tmp_path: Path) -> None:
        path = tmp_path / "state.db"
        writer, reader = LocalStore(path), LocalStore(path, poll_interval=0.02)
        stop = threading.Event()
        events = reader.watch(MODEL, resource_version=reader.resource_version(), stop=stop)
        threading.Timer(0.1, lambda: writer.create(model("x"))).start()
        got = next(events)
        assert (got.type, got.object["metadata"]["name"]) == ("ADDED", "x")
        stop.set()
        writer.close()
        reader.close()

    def test_concurrent_writers_get_distinct_versions(self, tmp_path: Path) -> None:
        path = tmp_path / "state.db"
        stores = [LocalStore(path) for _ in range(2)]
        versions: list[str] = []

        def work(s: LocalStore, prefix: str) -> None:
            for i in range(20):
                versions.append(s.create(model(f"{prefix}{i}"))["metadata"]["resourceVersion"])

        threads = [threading.Thread(target=work, args=(s, p)) for s, p in zip(stores, "ab", strict=True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(int(v) for v in versions) == list(range(1, 41))
        for s in stores:
            s.close()

    @pytest.mark.processes
    def test_watch_sees_writes_of_another_process(self, tmp_path: Path) -> None:
        import subprocess
        import sys

        path = tmp_path / "state.db"
        reader = LocalStore(path, poll_interval=0.02)
        stop = threading.Event()
        events = reader.watch(MODEL, resource_version=reader.resource_version(), stop=stop)
        code = ("import sys; from gm.cluster.local.store import LocalStore; s = LocalStore(sys.argv[1]); "
                "s.create({'apiVersion': 'sedna.io/v1alpha1', 'kind': 'Model', 'metadata': {'name': 'remote'}, "
                "'spec': {}}); s.close()")
        subprocess.run([sys.executable, "-c", code, str(path)], check=True, timeout=30,
                       cwd=Path(__file__).resolve().parents[2])
        got = next(events)
        assert (got.type, got.object["metadata"]["name"], got.object["metadata"]["resourceVersion"]) == (
            "ADDED", "remote", "1")
        stop.set()
        reader.close()


class TestFanOut:
    """One change-log reader per store feeds every watch (see gm.cluster.local.feed)."""

    def test_many_watchers_each_see_every_change_once_in_order(self, store: LocalStore) -> None:
        rv = int(store.resource_version())  # 0 here: watch(resource_version="0") would list first, in name order
        stop = threading.Event()
        got: list[list[int]] = [[] for _ in range(12)]

        def follow(out: list[int], kind: object) -> None:
            for event in store.changes(kind, None, rv, stop):  # type: ignore[arg-type]
                out.append(int(event.object["metadata"]["resourceVersion"]))

        watchers = [threading.Thread(target=follow, args=(got[i], MODEL if i % 2 else POD), daemon=True)
                    for i in range(12)]
        for t in watchers:
            t.start()
        writers = [threading.Thread(target=lambda p=p: [store.create((model if p == "m" else pod)(f"{p}{i}"))
                                                        for i in range(100)]) for p in "mp"]
        for t in writers:
            t.start()
        for t in writers:
            t.join()
        deadline = time.monotonic() + 10
        while any(len(g) < 100 for g in got) and time.monotonic() < deadline:
            time.sleep(0.02)
        stop.set()
        for t in watchers:
            t.join(5)
        models = sorted(int(m["metadata"]["resourceVersion"]) for m in store.list(MODEL))
        pods = sorted(int(p["metadata"]["resourceVersion"]) for p in store.list(POD))
        for i, seen in enumerate(got):
            assert seen == (models if i % 2 else pods)

    def test_a_watcher_that_stops_reading_is_expired_not_unbounded(self, store: LocalStore) -> None:
        store.create(model("seed"))
        events = store.watch(MODEL, resource_version=store.resource_version())
        threading.Timer(0.05, lambda: store.create(model("first"))).start()
        assert next(events).object["metadata"]["name"] == "first"  # now following the feed
        for i in range(store._feed.limit + 10):
            store.create(model(f"m{i}"))
        head = store.resource_version()
        deadline = time.monotonic() + 30
        while store._feed.position < int(head):  # the watcher must still not be reading when the feed overflows it
            assert time.monotonic() < deadline, "the change feed did not catch up"
            time.sleep(0.01)
        with pytest.raises(Expired):
            for _ in events:  # the backlog is capped at the feed's limit, then the watch must re-list
                pass

    def test_closing_the_store_ends_watches(self, tmp_path: Path) -> None:
        s = LocalStore(tmp_path / "state.db")
        events = s.watch(MODEL, resource_version=s.resource_version())
        threading.Timer(0.1, s.close).start()
        assert list(events) == []

    def test_list_owned_uses_the_owner_index(self, store: LocalStore) -> None:
        job = store.create(model("job"))
        store.create(pod("a", job))
        store.create(pod("b", job))
        store.create(pod("free"))
        assert [p["metadata"]["name"] for p in store.list_owned(POD, job["metadata"]["uid"])] == ["a", "b"]
        assert store.list_owned(DEPLOYMENT, job["metadata"]["uid"]) == []
