"""The local runtime's image catalog: containers without a command run what their image is registered
to run; an unknown image keeps the Pod waiting with a reason naming the image, until it is registered."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gm.cluster.interface import POD, Obj
from gm.cluster.local.images import ImageCatalog, ImageEntry, parse_catalog, repository, resolve
from gm.cluster.local.processes import container_argv
from gm.cluster.local.runtime import ProcessRuntime
from gm.cluster.local.store import LocalStore
from gm.settings import SettingsError, from_args
from tests.gm.test_local_runtime import FAST, printed, status, wait_for

IMAGE = "kubeedge/sedna-example-joint-inference-helmet-detection-little:v0.3.0"


def catalog_file(path: Path, body: str) -> Path:
    path.write_text(body)
    return path


class TestCatalog:
    @pytest.mark.parametrize(("image", "repo"), [
        ("app", "app"), ("app:v1", "app"), ("team/app:v1", "team/app"), ("host:5000/team/app:v1", "host:5000/team/app"),
        ("host:5000/app", "host:5000/app"), ("app@sha256:abc", "app"),
    ])
    def test_repository_drops_tag_and_digest_but_not_a_registry_port(self, image: str, repo: str) -> None:
        assert repository(image) == repo

    def test_exact_name_then_repository_then_builtin(self, tmp_path: Path) -> None:
        path = catalog_file(tmp_path / "images.yaml", f"""
images:
  {IMAGE}: {{command: [python, little_model.py], workingDir: /src/little, env: {{A: 1}}}}
  kubeedge/sedna-example-joint-inference-helmet-detection-big: {{command: [python, big_model.py], args: [-v]}}
""")
        catalog = ImageCatalog(path)

        assert catalog.lookup(IMAGE) == ImageEntry(("python", "little_model.py"), (), "/src/little", {"A": "1"})
        assert catalog.lookup("kubeedge/sedna-example-joint-inference-helmet-detection-little:v0.4.0") is None
        assert catalog.lookup("kubeedge/sedna-example-joint-inference-helmet-detection-big:v0.3.0").args == ("-v",)
        assert catalog.lookup("sedna-py/joint-inference-cloud:0.1.0") == ImageEntry(
            ("python", "-m", "workers.joint_inference.cloud"))

    @pytest.mark.parametrize(("body", "message"), [
        ("images: [a, b]", "expected a mapping 'images:"),
        ("images:\n  app: {args: [x]}", "images['app'].command: must be a list of strings, got None"),
        ("images:\n  app: {command: []}", "images['app'].command: must name the program"),
        ("images:\n  app: {command: [x], entrypoint: [y]}", "images['app']: unknown field(s) 'entrypoint'"),
        ("images: {app: {command: [x]", "not valid YAML"),
    ])
    def test_a_bad_file_is_refused_naming_the_file_and_the_image(self, tmp_path: Path, body: str,
                                                                 message: str) -> None:
        path = tmp_path / "images.yaml"
        with pytest.raises(ValueError, match=f"^{path}: .*") as caught:
            parse_catalog(body, str(path))
        assert message in str(caught.value)

    def test_the_gm_refuses_to_start_with_a_bad_catalog(self, tmp_path: Path) -> None:
        (tmp_path / "token").write_text("t")
        catalog_file(tmp_path / "images.yaml", "images:\n  app: {command: []}")

        with pytest.raises(SettingsError, match=r"--image-catalog: .*images.yaml: images\['app'\].command"):
            from_args(["--state-dir", str(tmp_path)], environ={})
        with pytest.raises(SettingsError, match="does not exist"):
            from_args(["--state-dir", str(tmp_path), "--image-catalog", str(tmp_path / "nope.yaml")], environ={})

    def test_a_malformed_edit_keeps_the_previous_catalog(self, tmp_path: Path) -> None:
        path = catalog_file(tmp_path / "images.yaml", "images:\n  app: {command: [one]}")
        catalog = ImageCatalog(path)
        time.sleep(0.01)
        path.write_text("images:\n  app: {command: [] }\n")

        assert catalog.lookup("app") == ImageEntry(("one",))


class TestKubernetesRules:
    ENTRY = ImageEntry(("python", "app.py"), ("--default",))

    @pytest.mark.parametrize(("container", "argv"), [
        ({}, [sys.executable, "app.py", "--default"]),
        ({"args": ["--mine"]}, [sys.executable, "app.py", "--mine"]),
        ({"command": ["echo"]}, ["echo"]),
        ({"command": ["echo"], "args": ["hi"]}, ["echo", "hi"]),
    ])
    def test_container_command_and_args_override_the_image(self, container: Obj, argv: list[str]) -> None:
        image = resolve({"image": "x", **container}, 0, ImageCatalog(None, {"x": self.ENTRY}))
        assert container_argv(container, 0, {}, image) == argv

    def test_an_unknown_image_without_command_is_named(self) -> None:
        with pytest.raises(ValueError, match=r"spec.containers\[2\].image: image 'nobody/app:1' is not in the local "
                                             r"image catalog and the container has no command: register it in "):
            resolve({"image": "nobody/app:1"}, 2, ImageCatalog(None, {}))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalStore]:
    s = LocalStore(tmp_path / "state.db", poll_interval=0.02)
    yield s
    s.close()


@pytest.fixture
def runtime(store: LocalStore, tmp_path: Path) -> Iterator[ProcessRuntime]:
    rt = ProcessRuntime(store, tmp_path, nodes={"cloud"}, backoff=FAST, grace_period=2.0, tick=0.05)
    rt.start()
    yield rt
    rt.stop()


def pod(name: str, image: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": "cloud", "containers": [{"name": "main", "image": image}]}}


@pytest.mark.processes
class TestRuntime:
    def test_a_registered_image_runs_its_entrypoint_in_its_workdir(self, store: LocalStore,
                                                                   runtime: ProcessRuntime, tmp_path: Path) -> None:
        workdir = tmp_path / "src"
        workdir.mkdir()
        (workdir / "main.py").write_text("import os, time; print(os.getcwd(), os.environ['FROM_IMAGE'], flush=True); "
                                         "time.sleep(30)")
        catalog_file(tmp_path / "images.yaml", f"images:\n  me/app:\n    command: [python, main.py]\n"
                                               f"    workingDir: {workdir}\n    env: {{FROM_IMAGE: yes-it-is}}\n")
        store.create(pod("app", "me/app:v2"))

        wait_for(lambda: status(store, "app")["phase"] == "Running", message="Running")
        log = tmp_path / "logs" / "default_app_main.log"
        wait_for(lambda: printed(log), message="log output")
        assert log.read_text().strip() == f"{workdir} yes-it-is"

    def test_an_unknown_image_waits_named_and_starts_once_registered(self, store: LocalStore,
                                                                    runtime: ProcessRuntime, tmp_path: Path) -> None:
        store.create(pod("helmet", IMAGE))

        st = wait_for(lambda: (s := status(store, "helmet")).get("containerStatuses") and s, message="status")
        waiting = st["containerStatuses"][0]["state"]["waiting"]
        assert st["phase"] == "Pending" and waiting["reason"] == "ErrImagePull"
        assert f"image {IMAGE!r} is not in the local image catalog" in waiting["message"]
        ready = {c["type"]: c for c in st["conditions"]}["Ready"]
        assert ready["status"] == "False" and IMAGE in ready["message"]
        assert st["containerStatuses"][0]["restartCount"] == 0

        catalog_file(tmp_path / "images.yaml", f"images:\n  {IMAGE}: {{command: [python, -c, 'import time; "
                                               f"time.sleep(30)']}}\n")

        wait_for(lambda: status(store, "helmet")["phase"] == "Running", timeout=15, message="Running once registered")
        assert status(store, "helmet")["containerStatuses"][0]["restartCount"] == 0

    def test_pods_read_the_catalog_named_to_the_runtime(self, store: LocalStore, tmp_path: Path) -> None:
        path = catalog_file(tmp_path / "elsewhere.yaml", "images:\n  me/app: {command: [python, -c, 'print(7)']}\n")
        rt = ProcessRuntime(store, tmp_path, nodes={"cloud"}, backoff=FAST, tick=0.05, image_catalog=ImageCatalog(path))
        rt.start()
        try:
            spec = pod("once", "me/app")
            spec["spec"]["restartPolicy"] = "Never"
            store.create(spec)
            wait_for(lambda: status(store, "once")["phase"] == "Succeeded", message="Succeeded")
        finally:
            rt.stop()
        assert (tmp_path / "logs" / "default_once_main.log").read_text().strip() == "7"
        assert store.get(POD, "default", "once")["status"]["containerStatuses"][0]["state"]["terminated"][
            "exitCode"] == 0
