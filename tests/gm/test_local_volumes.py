"""Path rewriting for volume mounts and Secret references in the local runtime (no processes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gm.cluster.interface import SECRET, Invalid
from gm.cluster.local import volumes
from gm.cluster.local.store import LocalStore


def test_mount_paths_are_rewritten_at_path_boundaries_only(tmp_path: Path) -> None:
    pod = {"metadata": {"uid": "u1"}, "spec": {"volumes": [{"name": "d", "emptyDir": {}},
                                                           {"name": "h", "hostPath": {"path": "/srv/models"}}]}}
    container = {"volumeMounts": [{"name": "d", "mountPath": "/downloads"},
                                  {"name": "h", "mountPath": "/home/data/srv/models", "subPath": "digits"}]}

    mounted = volumes.mounts(pod, container, tmp_path, "spec.containers[0]")
    rewrite = volumes.rewriter(mounted)

    local = tmp_path / "volumes" / "u1" / "d"
    assert local.is_dir()
    assert rewrite("/downloads/h/m.onnx;/downloads") == f"{local}/h/m.onnx;{local}"
    assert rewrite("/downloadsx/m /x/downloads/m") == "/downloadsx/m /x/downloads/m"
    assert rewrite("/home/data/srv/models/edge.onnx") == "/srv/models/digits/edge.onnx"
    with pytest.raises(Invalid, match=r"spec.containers\[0\].volumeMounts\[0\]: no volume named 'x'"):
        volumes.mounts(pod, {"volumeMounts": [{"name": "x", "mountPath": "/x"}]}, tmp_path, "spec.containers[0]")


def test_secret_refs_read_data_or_string_data_and_name_what_is_missing(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "state.db")
    try:
        store.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"},
                      "data": {"A": "YWs="}, "stringData": {"B": "plain"}})
        resolve = volumes.secret_resolver(store.get, "default")

        assert resolve({"name": "s", "key": "A"}, "w") == "ak"
        assert resolve({"name": "s", "key": "B"}, "w") == "plain"
        assert resolve({"name": "gone", "key": "A", "optional": True}, "w") is None
        with pytest.raises(volumes.MissingConfig, match="w: couldn't find key 'C' in secret default/s"):
            resolve({"name": "s", "key": "C"}, "w")
        with pytest.raises(volumes.MissingConfig, match="w: secret 'gone' not found"):
            resolve({"name": "gone", "key": "A"}, "w")
        assert store.get(SECRET, "default", "s")["metadata"]["name"] == "s"
    finally:
        store.close()
