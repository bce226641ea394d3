"""The local runtime runs init containers first, backs emptyDir volumes with directories, reads Secrets."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gm.cluster.interface import POD, Obj
from gm.cluster.local.runtime import ProcessRuntime
from gm.cluster.local.store import LocalStore
from gm.workloads.health import PodState, pod_health
from tests.gm.test_local_runtime import FAST, status, wait_for

pytestmark = pytest.mark.processes

SHARED = {"name": "shared", "emptyDir": {}}


def _container(name: str, code: str, *args: str, **extra: Any) -> Obj:
    return {"name": name, "image": "ignored", "command": ["python", "-c", code], "args": list(args), **extra}


def _pod(name: str, init: list[Obj], main: Obj, policy: str = "Always", **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": "cloud", "restartPolicy": policy, "initContainers": init, "containers": [main],
                     **spec}}


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


WRITE = "import sys, pathlib; p = pathlib.Path(sys.argv[1]); p.parent.mkdir(parents=True, exist_ok=True); " \
        "p.write_text((p.read_text() if p.exists() else '') + sys.argv[2])"
READ = "import os, time; print(open(os.environ['MODEL']).read(), flush=True); time.sleep(30)"


def test_init_containers_run_in_order_into_an_empty_dir_the_container_reads(
        store: LocalStore, runtime: ProcessRuntime, tmp_path: Path) -> None:
    mount = [{"name": "shared", "mountPath": "/downloads"}]
    store.create(_pod("web", [_container("first", WRITE, "/downloads/h/m.txt", "one,", volumeMounts=mount),
                              _container("second", WRITE, "/downloads/h/m.txt", "two", volumeMounts=mount)],
                      _container("main", READ, env=[{"name": "MODEL", "value": "/downloads/h/m.txt"}],
                                 volumeMounts=[{**mount[0], "readOnly": True}]),
                      volumes=[SHARED]))

    st = wait_for(lambda: (s := status(store, "web"))["phase"] == "Running" and s, timeout=30, message="Running")

    assert [c["state"]["terminated"]["reason"] for c in st["initContainerStatuses"]] == ["Completed", "Completed"]
    assert {c["type"]: c["status"] for c in st["conditions"]}["Initialized"] == "True"
    log = tmp_path / "logs" / "default_web_main.log"
    wait_for(lambda: log.exists() and log.read_text().strip(), message="the container's output")
    assert log.read_text().strip() == "one,two"  # both ran, in order, before it; all saw one directory
    uid = store.get(POD, "default", "web")["metadata"]["uid"]
    volume = tmp_path / "nodes" / "cloud" / "pods" / "default_web" / "volumes" / uid / "shared"
    assert (volume / "h" / "m.txt").read_text() == "one,two"

    store.delete(POD, "default", "web")
    wait_for(lambda: not volume.parent.exists(), message="the Pod's emptyDir removed with it")


FAIL = "import sys; print('fetching'); print(\"storage-initializer: cannot fetch 'http://h/m' : HTTP 404\"); " \
       "sys.exit(1)"


def test_a_failing_init_container_blocks_the_pod_naming_its_last_line_and_is_retried(
        store: LocalStore, runtime: ProcessRuntime) -> None:
    store.create(_pod("web", [_container("storage-initializer", FAIL,
                                         terminationMessagePolicy="FallbackToLogsOnError")],
                      _container("main", "import time; time.sleep(30)")))

    def blocked() -> Any:
        pod = store.get(POD, "default", "web")
        inits = (pod.get("status") or {}).get("initContainerStatuses") or [{}]
        waiting = (inits[0].get("state") or {}).get("waiting") or {}
        return inits[0].get("restartCount", 0) >= 1 and waiting.get("reason") == "CrashLoopBackOff" and pod

    pod = wait_for(blocked, timeout=30, message="the init container retried")
    st = pod["status"]
    assert st["phase"] == "Pending"
    (init,) = st["initContainerStatuses"]
    assert init["lastState"]["terminated"]["exitCode"] == 1
    assert st["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}  # never started
    health = pod_health(pod)
    assert health.state is PodState.BLOCKED
    assert health.describe() == "pod web Init:Error: storage-initializer: cannot fetch 'http://h/m' : HTTP 404"


def test_with_restart_policy_never_a_failed_init_container_fails_the_pod(
        store: LocalStore, runtime: ProcessRuntime) -> None:
    store.create(_pod("job", [_container("init", "raise SystemExit(2)")], _container("main", "print('ran')"),
                      policy="Never"))

    st = wait_for(lambda: (s := status(store, "job"))["phase"] == "Failed" and s, timeout=30, message="Failed")

    assert st["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 2
    assert "running" not in st["containerStatuses"][0]["state"]


PRINT_KEY = "import os, time; print(os.environ['KEY'], flush=True); time.sleep(30)"


def test_secret_key_ref_is_read_from_the_store_and_a_missing_secret_waits(
        store: LocalStore, runtime: ProcessRuntime, tmp_path: Path) -> None:
    env = [{"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "ACCESS_KEY_ID"}}}]
    store.create(_pod("web", [], _container("main", PRINT_KEY, env=env)))

    st = wait_for(lambda: (s := status(store, "web"))["containerStatuses"][0]["state"].get("waiting", {})
                  .get("reason") == "CreateContainerConfigError" and s, timeout=30, message="config error")
    assert "secret 'creds' not found" in st["containerStatuses"][0]["state"]["waiting"]["message"]
    assert pod_health(store.get(POD, "default", "web")).state is PodState.BLOCKED

    store.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": "default"},
                  "data": {"ACCESS_KEY_ID": base64.b64encode(b"sedna-key").decode()}})
    wait_for(lambda: status(store, "web")["phase"] == "Running", timeout=30, message="Running once the Secret exists")
    log = tmp_path / "logs" / "default_web_main.log"
    wait_for(lambda: "sedna-key" in log.read_text(), message="the Secret's value in the env")


def test_a_restarted_runtime_adopts_the_container_without_running_the_init_containers_again(
        store: LocalStore, tmp_path: Path) -> None:
    counter = tmp_path / "inits.txt"
    store.create(_pod("web", [_container("init", WRITE, str(counter), "x")],
                      _container("main", "import time; time.sleep(30)")))
    first = ProcessRuntime(store, tmp_path, nodes={"cloud"}, backoff=FAST, grace_period=2.0, tick=0.05)
    first.start()
    try:
        wait_for(lambda: status(store, "web")["phase"] == "Running", timeout=30, message="Running")
    finally:
        first.stop(keep_running=True)
    pid = first._pids.survivors()[f"{store.get(POD, 'default', 'web')['metadata']['uid']}/main"]

    second = ProcessRuntime(store, tmp_path, nodes={"cloud"}, backoff=FAST, grace_period=2.0, tick=0.05)
    second.start()
    try:
        wait_for(lambda: second._pods and all(c.proc is not None for p in second._pods.values()
                                               for c in p.containers), message="the container adopted")
        (pod,) = second._pods.values()
        assert pod.containers[0].proc is not None and pod.containers[0].proc.pid == pid
        assert status(store, "web")["phase"] == "Running"
        assert counter.read_text() == "x"  # the init container ran once
    finally:
        second.stop()
