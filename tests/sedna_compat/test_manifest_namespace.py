"""``metadata.namespace`` in a manifest against ``-n``: as kubectl, a mismatch is refused (it used to
override ``-n`` silently); without ``-n`` the manifest's namespace decides. The API refuses a body
whose namespace differs from the request's, so no client can put an object in the wrong place."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gm.cluster.interface import MODEL
from gm.cluster.local.api import create_api, serve_api
from gm.cluster.local.store import LocalStore
from sedna.cli import main

TOKEN = "compat-token"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[str, LocalStore]]:
    store = LocalStore(":memory:")
    (tmp_path / "logs").mkdir()
    handle = serve_api(create_api(store, TOKEN, None, log_dir=tmp_path / "logs"))
    try:
        yield f"http://127.0.0.1:{handle.port}", store
    finally:
        handle.stop()
        store.close()


def manifest(tmp_path: Path, namespace: str | None) -> Path:
    meta = "  name: helmet-model\n" + (f"  namespace: {namespace}\n" if namespace else "")
    path = tmp_path / "model.yaml"
    path.write_text(f"apiVersion: sedna.io/v1alpha1\nkind: Model\nmetadata:\n{meta}"
                    "spec:\n  url: /models/helmet.pb\n  format: pb\n")
    return path


def apply(server: str, path: Path, *flags: str) -> int:
    return main(["apply", "-f", str(path), "--server", server, "--token", TOKEN, *flags])


def names(store: LocalStore, namespace: str) -> list[str]:
    return [o["metadata"]["name"] for o in store.list(MODEL, namespace)]


def test_a_manifest_namespace_that_differs_from_n_is_refused(api: tuple[str, LocalStore], tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    server, store = api

    code = apply(server, manifest(tmp_path, "sedna"), "-n", "default")

    assert code == 1 and names(store, "sedna") == [] and names(store, "default") == []
    assert "metadata.namespace 'sedna' does not match the namespace 'default' given with -n" in capsys.readouterr().err


def test_without_n_the_manifest_namespace_decides_and_a_matching_n_is_fine(api: tuple[str, LocalStore],
                                                                          tmp_path: Path) -> None:
    server, store = api

    assert apply(server, manifest(tmp_path, "sedna")) == 0
    assert apply(server, manifest(tmp_path, "sedna"), "-n", "sedna") == 0
    assert names(store, "sedna") == ["helmet-model"]


def test_a_manifest_without_namespace_goes_to_n_or_default(api: tuple[str, LocalStore], tmp_path: Path) -> None:
    server, store = api

    assert apply(server, manifest(tmp_path, None), "-n", "edge") == 0
    assert apply(server, manifest(tmp_path, None)) == 0
    assert names(store, "edge") == ["helmet-model"] and names(store, "default") == ["helmet-model"]


def test_the_api_refuses_a_body_for_another_namespace(api: tuple[str, LocalStore]) -> None:
    server, store = api
    body = {"apiVersion": "sedna.io/v1alpha1", "kind": "Model",
            "metadata": {"name": "m", "namespace": "sedna"}, "spec": {"url": "/m.pb", "format": "pb"}}

    reply = httpx.post(f"{server}/apis/sedna.io/v1alpha1/namespaces/default/models", json=body,
                       headers={"Authorization": f"Bearer {TOKEN}"})

    assert reply.status_code == 400
    assert "metadata.namespace 'sedna' does not match the namespace 'default'" in reply.json()["message"]
    assert names(store, "default") == [] and names(store, "sedna") == []
