"""The local API's ``?watch=1`` answers as the Kubernetes API does: NDJSON events, 410 Gone, bookmarks."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from gm.cluster.interface import MODEL, Obj
from gm.cluster.local import watch_stream
from gm.cluster.local.api import ServerHandle, create_api, serve_api
from gm.cluster.local.store import LocalStore

TOKEN = "watch-token"
MODELS = "/apis/sedna.io/v1alpha1/namespaces/default/models"


def model(name: str, **labels: str) -> Obj:
    return {"apiVersion": "sedna.io/v1alpha1", "kind": "Model", "metadata": {"name": name, "labels": labels},
            "spec": {"url": "/m.onnx", "format": "onnx"}}


@pytest.fixture
def env() -> Iterator[tuple[httpx.Client, LocalStore, ServerHandle]]:
    store = LocalStore(":memory:", keep_changes=5)
    handle = serve_api(create_api(store, TOKEN))
    client = httpx.Client(base_url=f"http://127.0.0.1:{handle.port}", headers={"Authorization": f"Bearer {TOKEN}"},
                          timeout=10)
    try:
        yield client, store, handle
    finally:
        client.close()
        handle.stop()
        store.close()


def events(client: httpx.Client, params: dict, count: int, during=None) -> list[dict]:
    """The first ``count`` events of a watch (``during`` runs in a thread once the stream is open)."""
    out = []
    with client.stream("GET", MODELS, params={"watch": "1", **params}) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "application/json"
        if during is not None:
            threading.Thread(target=during, daemon=True).start()
        for line in resp.iter_lines():
            out.append(json.loads(line))
            if len(out) == count:
                break
    return out


def test_from_a_version_only_later_changes_arrive_in_order(env) -> None:
    client, store, _ = env
    store.create(model("a"))
    rv = client.get(MODELS).json()["metadata"]["resourceVersion"]

    def writes() -> None:
        store.patch_status(MODEL, "default", "a", {"phase": "x"})
        store.create(model("b"))
        store.delete(MODEL, "default", "a")

    got = events(client, {"resourceVersion": rv}, 3, writes)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in got] == [
        ("MODIFIED", "a"), ("ADDED", "b"), ("DELETED", "a")]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in got]
    assert versions == sorted(versions) and versions[0] > int(rv)


def test_without_a_version_every_object_comes_first_as_added(env) -> None:
    client, store, _ = env
    store.create(model("a"))
    store.create(model("b"))
    got = events(client, {}, 3, lambda: store.create(model("c")))
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in got] == [
        ("ADDED", "a"), ("ADDED", "b"), ("ADDED", "c")]


def test_label_selector_filters_the_stream(env) -> None:
    client, store, _ = env
    got = events(client, {"resourceVersion": "0", "labelSelector": "tier=edge"}, 1,
                 lambda: (store.create(model("cloud", tier="cloud")), store.create(model("edge", tier="edge"))))
    assert got[0]["object"]["metadata"]["name"] == "edge"


def test_a_compacted_version_is_410_gone_with_an_expired_status(env) -> None:
    client, store, _ = env
    store.create(model("a"))
    for i in range(10):
        store.patch_status(MODEL, "default", "a", {"phase": str(i)})
    resp = client.get(MODELS, params={"watch": "1", "resourceVersion": "1"})
    assert resp.status_code == 410
    assert (resp.json()["kind"], resp.json()["reason"], resp.json()["code"]) == ("Status", "Expired", 410)


def test_bad_resource_version_is_400_and_watch_needs_the_token(env) -> None:
    client, _, handle = env
    assert client.get(MODELS, params={"watch": "1", "resourceVersion": "abc"}).status_code == 400
    anonymous = httpx.get(f"http://127.0.0.1:{handle.port}{MODELS}", params={"watch": "1"})
    assert anonymous.status_code == 401


def test_bookmarks_carry_the_version_and_timeout_ends_the_stream(env, monkeypatch) -> None:
    client, store, _ = env
    monkeypatch.setattr(watch_stream, "BOOKMARK_SECONDS", 0.3)
    store.create(model("a"))
    rv = client.get(MODELS).json()["metadata"]["resourceVersion"]
    started = time.monotonic()
    with client.stream("GET", MODELS, params={"watch": "1", "resourceVersion": rv, "allowWatchBookmarks": "true",
                                              "timeoutSeconds": "2"}) as resp:
        lines = [json.loads(line) for line in resp.iter_lines()]
    assert 1.5 < time.monotonic() - started < 6
    assert lines and all(e["type"] == "BOOKMARK" for e in lines)
    assert lines[0]["object"] == {"apiVersion": "sedna.io/v1alpha1", "kind": "Model",
                                  "metadata": {"resourceVersion": rv}}


def test_stopping_the_server_ends_open_watches(env) -> None:
    client, _, handle = env
    ended = threading.Event()

    def watch() -> None:
        try:
            with client.stream("GET", MODELS, params={"watch": "1"}) as resp:
                for _ in resp.iter_lines():
                    pass
        except httpx.HTTPError:
            pass
        ended.set()

    threading.Thread(target=watch, daemon=True).start()
    time.sleep(0.5)
    started = time.monotonic()
    handle.stop()
    assert ended.wait(5)
    assert time.monotonic() - started < 5
