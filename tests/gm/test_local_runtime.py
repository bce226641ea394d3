"""The local process runtime runs Pods as real processes, restarts them per policy, and cleans up."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gm.cluster.interface import POD, NotFound, Obj
from gm.cluster.local.runtime import Backoff, ProcessRuntime
from gm.cluster.local.store import LocalStore
from tests.support.waiting import eventually

pytestmark = pytest.mark.processes

FAST = Backoff(initial=0.2, cap=1.0, reset_after=60.0)


wait_for = functools.partial(eventually, ignoring=(KeyError, IndexError, NotFound))  # status not written yet


def pod(name: str, code: str, policy: str = "Always", node: str = "cloud", **container: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": node, "restartPolicy": policy,
                     "containers": [{"name": "main", "image": "ignored", "command": ["python", "-c", code],
                                     **container}]}}


def status(store: LocalStore, name: str) -> Obj:
    return store.get(POD, "default", name).get("status") or {}


def printed(log: Path) -> str:
    """What the container printed, once its line is complete (workers run unbuffered: a print's parts land apart)."""
    text = log.read_text() if log.exists() else ""
    return text.strip() if text.endswith("\n") else ""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


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


class TestRunning:
    def test_runs_command_with_env_and_own_ip(self, store: LocalStore, runtime: ProcessRuntime, tmp_path: Path) -> None:
        code = "import os, time; print(os.environ['ME'], os.environ['IP'], os.environ['GREETING'], flush=True); " \
               "time.sleep(30)"
        store.create(pod("web", code, env=[
            {"name": "ME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "GREETING", "value": "hello-$(ME)"}]))
        st = wait_for(lambda: (s := status(store, "web"))["phase"] == "Running" and s, message="Running")
        ip = st["podIP"]
        assert runtime.block is not None and runtime.block.pod_pool().holds(ip)  # the runtime's own block
        assert not ip.startswith("127.0.")
        assert st["hostIP"] == "127.0.0.1"
        assert st["containerStatuses"][0]["ready"] is True
        assert {c["type"]: c["status"] for c in st["conditions"]}["Ready"] == "True"
        log = tmp_path / "logs" / "default_web_main.log"
        wait_for(lambda: printed(log), message="log output")
        assert log.read_text().strip() == f"web {ip} hello-web"

    def test_pods_of_other_nodes_are_left_alone(self, store: LocalStore, runtime: ProcessRuntime) -> None:
        store.create(pod("elsewhere", "pass", node="edge-9"))
        store.create(pod("here", "pass", policy="Never"))
        wait_for(lambda: status(store, "here")["phase"] == "Succeeded", message="Succeeded")
        assert status(store, "elsewhere") == {"phase": "Pending"}

    def test_working_dir_is_honoured(self, store: LocalStore, runtime: ProcessRuntime, tmp_path: Path) -> None:
        work = tmp_path / "work"
        work.mkdir()
        store.create(pod("wd", "open('out.txt', 'w').write('x')", policy="Never", workingDir=str(work)))
        wait_for(lambda: status(store, "wd")["phase"] == "Succeeded", message="Succeeded")
        assert (work / "out.txt").read_text() == "x"


class TestRestartPolicy:
    def test_on_failure_restarts_until_success(self, store: LocalStore, runtime: ProcessRuntime,
                                               tmp_path: Path) -> None:
        code = ("import pathlib, sys; p = pathlib.Path('count'); n = int(p.read_text()) if p.exists() else 0; "
                "p.write_text(str(n + 1)); sys.exit(0 if n >= 2 else 5)")
        store.create(pod("flaky", code, policy="OnFailure", workingDir=str(tmp_path)))
        st = wait_for(lambda: (s := status(store, "flaky"))["phase"] == "Succeeded" and s, message="Succeeded")
        container = st["containerStatuses"][0]
        assert container["restartCount"] == 2
        assert container["state"]["terminated"]["exitCode"] == 0
        assert container["lastState"]["terminated"]["exitCode"] == 5
        assert (tmp_path / "count").read_text() == "3"

    def test_never_leaves_a_failed_pod_failed(self, store: LocalStore, runtime: ProcessRuntime) -> None:
        store.create(pod("once", "import sys; sys.exit(3)", policy="Never"))
        st = wait_for(lambda: (s := status(store, "once"))["phase"] == "Failed" and s, message="Failed")
        container = st["containerStatuses"][0]
        assert (container["restartCount"], container["state"]["terminated"]["exitCode"]) == (0, 3)
        assert container["state"]["terminated"]["reason"] == "Error"

    def test_always_restarts_a_completed_container(self, store: LocalStore, runtime: ProcessRuntime) -> None:
        store.create(pod("loop", "pass", policy="Always"))
        wait_for(lambda: status(store, "loop")["containerStatuses"][0]["restartCount"] >= 2, message="2 restarts")
        assert status(store, "loop")["phase"] == "Running"

    def test_bad_command_fails_with_the_log_path(self, store: LocalStore, runtime: ProcessRuntime,
                                                 tmp_path: Path) -> None:
        bad = pod("bad", "", policy="Never")
        bad["spec"]["containers"][0]["command"] = [str(tmp_path / "no-such-program")]
        store.create(bad)
        st = wait_for(lambda: (s := status(store, "bad"))["phase"] == "Failed" and s, message="Failed")
        log = tmp_path / "logs" / "default_bad_main.log"
        assert st["reason"] == "StartError"
        assert str(log) in st["message"]
        assert "no-such-program" in log.read_text()

    def test_bad_command_with_always_is_crash_loop(self, store: LocalStore, runtime: ProcessRuntime) -> None:
        bad = pod("bad2", "", policy="Always")
        bad["spec"]["containers"][0]["command"] = ["/nonexistent/program"]
        store.create(bad)
        st = wait_for(lambda: (s := status(store, "bad2"))["phase"] == "Failed" and s, message="Failed")
        assert st["reason"] == "CrashLoopBackOff"
        assert "default_bad2_main.log" in st["message"]


class TestTeardown:
    def test_deleting_the_pod_kills_its_processes(self, store: LocalStore, runtime: ProcessRuntime,
                                                  tmp_path: Path) -> None:
        store.create(pod("victim", "import os, time; print(os.getpid(), flush=True); time.sleep(60)"))
        log = tmp_path / "logs" / "default_victim_main.log"
        pid = int(wait_for(lambda: log.exists() and log.read_text().strip(), message="pid in log"))
        assert alive(pid)
        store.delete(POD, "default", "victim")
        wait_for(lambda: not alive(pid), timeout=5, message="process gone")

    def test_a_pod_recreated_under_the_same_name_starts_after_the_old_one_exits(
            self, store: LocalStore, runtime: ProcessRuntime, tmp_path: Path) -> None:
        events = tmp_path / "events"
        slow_exit = ("import pathlib, signal, sys, time\n"
                     f"events = pathlib.Path({str(events)!r})\n"
                     "def bye(*_):\n"
                     "    time.sleep(1.5)\n"
                     "    with events.open('a') as f: f.write(f'old-exit {time.time()}\\n')\n"
                     "    sys.exit(0)\n"
                     "signal.signal(signal.SIGTERM, bye)\n"
                     "with events.open('a') as f: f.write('old-up\\n')\n"
                     "time.sleep(60)\n")
        store.create(pod("twice", slow_exit))
        wait_for(lambda: events.exists() and "old-up" in events.read_text(), message="old incarnation up")
        store.delete(POD, "default", "twice")
        fresh = ("import pathlib, time\n"
                 f"with pathlib.Path({str(events)!r}).open('a') as f: f.write(f'new-start {{time.time()}}\\n')\n"
                 "time.sleep(60)\n")
        store.create(pod("twice", fresh))
        # once the runtime has taken the new Pod in (well inside the old incarnation's 1.5 s exit)
        st = wait_for(lambda: (s := status(store, "twice")).get("startTime") and s, message="new Pod admitted")
        assert st.get("phase") == "Pending" and {c["type"]: c["status"] for c in st["conditions"]}["Ready"] == "False"
        wait_for(lambda: "new-start" in events.read_text(), message="new incarnation up")
        stamps = dict(line.split() for line in events.read_text().splitlines() if " " in line)
        assert float(stamps["new-start"]) > float(stamps["old-exit"])
        wait_for(lambda: status(store, "twice")["phase"] == "Running", message="Running")

    def test_restart_kills_orphans_and_restarts_running_pods(self, store: LocalStore, tmp_path: Path) -> None:
        orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
        try:
            import psutil

            started = psutil.Process(orphan.pid).create_time()
            (tmp_path / "pids.json").write_text(json.dumps({"old/main": [orphan.pid, started]}))
            first = ProcessRuntime(store, tmp_path, backoff=FAST, tick=0.05)
            first.start()
            assert orphan.wait(5) == -9
            store.create(pod("survivor", "import time; time.sleep(60)"))
            wait_for(lambda: status(store, "survivor")["phase"] == "Running", message="Running")
            ip = status(store, "survivor")["podIP"]
            first.stop()
            second = ProcessRuntime(store, tmp_path, backoff=FAST, tick=0.05)
            second.start()
            try:
                st = wait_for(lambda: (s := status(store, "survivor"))["containerStatuses"][0]["restartCount"] == 1
                              and "running" in s["containerStatuses"][0]["state"] and s, message="restarted")
                assert st["podIP"] == ip
            finally:
                second.stop()
        finally:
            if orphan.poll() is None:
                orphan.kill()
                orphan.wait()

    def test_dry_run_starts_nothing(self, store: LocalStore, tmp_path: Path) -> None:
        rt = ProcessRuntime(store, tmp_path, dry_run=True, tick=0.05)
        rt.start()
        try:
            store.create(pod("fake", "raise SystemExit(1)"))
            st = wait_for(lambda: (s := status(store, "fake"))["phase"] == "Running" and s, message="Running")
            assert st["containerStatuses"][0]["ready"] is True
            assert not (tmp_path / "logs" / "default_fake_main.log").exists()
        finally:
            rt.stop()


def deployment(name: str, replicas: int, code: str = "import time; time.sleep(60)", **spec: Any) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "main", "command": ["python", "-c", code]}],
                                           **spec}}}}


@pytest.fixture
def deployments(store: LocalStore, runtime: ProcessRuntime) -> Iterator[Any]:
    from gm.cluster.local.deployments import DeploymentController

    controller = DeploymentController(store, default_node="cloud")
    controller.start()
    yield controller
    controller.stop()


def pods_of(store: LocalStore, app: str) -> list[Obj]:
    return store.list(POD, "default", {"app": app})


class TestDeployments:
    def test_two_replicas_get_two_running_pods_with_distinct_ips(self, store: LocalStore, deployments: Any) -> None:
        from gm.cluster.interface import DEPLOYMENT

        made = store.create(deployment("web", 2))
        st = wait_for(lambda: (s := store.get(DEPLOYMENT, "default", "web").get("status") or {})
                      .get("readyReplicas") == 2 and s, message="2 ready replicas")
        assert (st["replicas"], st["availableReplicas"], st["updatedReplicas"]) == (2, 2, 2)
        assert st["observedGeneration"] == 1
        assert {c["type"]: (c["status"], c["reason"]) for c in st["conditions"]} == {
            "Available": ("True", "MinimumReplicasAvailable"), "Progressing": ("True", "NewReplicaSetAvailable")}
        pods = pods_of(store, "web")
        assert len({p["status"]["podIP"] for p in pods}) == 2
        for p in pods:
            digest = p["metadata"]["labels"]["pod-template-hash"]
            assert p["metadata"]["name"].startswith(f"web-{digest}-")
            assert len(p["metadata"]["name"]) == len(f"web-{digest}-") + 5
            assert p["metadata"]["ownerReferences"][0]["uid"] == made["metadata"]["uid"]
            assert p["metadata"]["ownerReferences"][0]["controller"] is True
            assert p["spec"]["nodeName"] == "cloud"

    def test_deleted_pod_is_recreated(self, store: LocalStore, deployments: Any) -> None:
        store.create(deployment("web", 2))
        first = wait_for(lambda: len(p := pods_of(store, "web")) == 2 and p, message="2 pods")
        victim = first[0]["metadata"]["name"]
        store.delete(POD, "default", victim)
        names = wait_for(lambda: len(n := {p["metadata"]["name"] for p in pods_of(store, "web")}) == 2
                         and victim not in n and n, message="replacement pod")
        assert first[1]["metadata"]["name"] in names

    def test_scale_down_and_template_change(self, store: LocalStore, deployments: Any) -> None:
        from gm.cluster.interface import DEPLOYMENT

        store.create(deployment("web", 3, nodeSelector={"kubernetes.io/hostname": "cloud"}))
        wait_for(lambda: len(pods_of(store, "web")) == 3, message="3 pods")
        fresh = store.get(DEPLOYMENT, "default", "web")
        fresh["spec"]["replicas"] = 1
        store.update(fresh)
        wait_for(lambda: len(pods_of(store, "web")) == 1, message="1 pod")
        old_hash = pods_of(store, "web")[0]["metadata"]["labels"]["pod-template-hash"]
        fresh = store.get(DEPLOYMENT, "default", "web")
        fresh["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "V", "value": "2"}]
        store.update(fresh)
        pod = wait_for(lambda: len(p := pods_of(store, "web")) == 1
                       and p[0]["metadata"]["labels"]["pod-template-hash"] != old_hash and p[0], message="new pod")
        assert pod["spec"]["containers"][0]["env"] == [{"name": "V", "value": "2"}]
        st = wait_for(lambda: (s := store.get(DEPLOYMENT, "default", "web")["status"])["observedGeneration"] == 3
                      and s, message="observed generation 3")
        assert st["replicas"] == 1

    def test_deleting_the_deployment_deletes_its_pods(self, store: LocalStore, deployments: Any) -> None:
        from gm.cluster.interface import DEPLOYMENT

        store.create(deployment("web", 2))
        wait_for(lambda: len(pods_of(store, "web")) == 2, message="2 pods")
        store.delete(DEPLOYMENT, "default", "web")
        assert pods_of(store, "web") == []

    def test_invalid_template_is_reported_not_run(self, store: LocalStore, deployments: Any) -> None:
        from gm.cluster.interface import DEPLOYMENT

        store.create(deployment("bad", 1, restartPolicy="Never"))
        st = wait_for(lambda: store.get(DEPLOYMENT, "default", "bad").get("status"), message="status")
        progressing = {c["type"]: c for c in st["conditions"]}["Progressing"]
        assert (progressing["status"], progressing["reason"]) == ("False", "ReplicaSetCreateError")
        assert "spec.template.spec.restartPolicy" in progressing["message"]
        assert pods_of(store, "bad") == []

    def test_a_resync_of_a_steady_deployment_writes_nothing(self, store: LocalStore, deployments: Any) -> None:
        from gm.cluster.interface import DEPLOYMENT

        store.create(deployment("web", 2))
        wait_for(lambda: (store.get(DEPLOYMENT, "default", "web").get("status") or {}).get("readyReplicas") == 2,
                 message="2 ready replicas")
        seen = [store.resource_version()]

        def settled() -> bool:  # the runtime's and the controller's last writes have landed
            seen.append(store.resource_version())
            return seen[-1] == seen[-2]

        eventually(settled, interval=0.3, message="no more writes")
        before = store.resource_version()
        for _ in range(3):
            deployments.reconcile("default", "web")
        assert store.resource_version() == before
        assert len(pods_of(store, "web")) == 2


PID_THEN_SLEEP = "import os, time; print(os.getpid(), flush=True); time.sleep(60)"


def running(pid: int) -> bool:
    """Alive and not a zombie: an adopted container started by a runtime in this test process stays our
    unreaped child once killed (under a real GM its parent has gone and init reaps it)."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def logged_pids(log: Path) -> list[int]:
    return [int(line) for line in log.read_text().split()] if log.exists() else []


class TestAdoption:
    """A runtime started again on the same state dir (the GM restarted, or killed with ``kill -9``: the
    workers and ``pids.json`` outlive it either way) adopts the containers still running."""

    @staticmethod
    def runtime(store: LocalStore, tmp_path: Path) -> ProcessRuntime:
        rt = ProcessRuntime(store, tmp_path, nodes={"cloud"}, backoff=FAST, grace_period=2.0, tick=0.05)
        rt.start()
        return rt

    def test_a_running_container_is_adopted_not_restarted(self, store: LocalStore, tmp_path: Path) -> None:
        first = self.runtime(store, tmp_path)
        store.create(pod("kept", PID_THEN_SLEEP))
        log = tmp_path / "logs" / "default_kept_main.log"
        [pid] = wait_for(lambda: logged_pids(log), message="pid in log")
        wait_for(lambda: status(store, "kept")["phase"] == "Running", message="Running")
        first.stop(keep_running=True)
        assert running(pid)
        second = self.runtime(store, tmp_path)
        try:
            st = wait_for(lambda: (s := status(store, "kept")) and s, message="status")
            eventually(lambda: json.loads((tmp_path / "pids.json").read_text()), message="pids.json")
            container = status(store, "kept")["containerStatuses"][0]
            assert container["restartCount"] == 0 and "running" in container["state"], st
            assert running(pid) and logged_pids(log) == [pid]  # the same process, not a second one
            store.delete(POD, "default", "kept")  # an adopted container is stopped like any other
            wait_for(lambda: not running(pid), timeout=5, message="adopted process gone")
        finally:
            second.stop()

    def test_an_adopted_container_that_exits_is_restarted_per_policy(self, store: LocalStore,
                                                                    tmp_path: Path) -> None:
        first = self.runtime(store, tmp_path)
        store.create(pod("flaky", PID_THEN_SLEEP))
        log = tmp_path / "logs" / "default_flaky_main.log"
        [pid] = wait_for(lambda: logged_pids(log), message="pid in log")
        first.stop(keep_running=True)
        second = self.runtime(store, tmp_path)
        try:
            wait_for(lambda: "ContainerStatusUnknown" not in json.dumps(status(store, "flaky")), message="adopted")
            os.kill(pid, 9)
            st = wait_for(lambda: (s := status(store, "flaky"))["containerStatuses"][0]["restartCount"] == 1
                          and "running" in s["containerStatuses"][0]["state"] and s, message="restarted")
            last = st["containerStatuses"][0]["lastState"]["terminated"]
            assert last["reason"] == "ContainerStatusUnknown" and "previous runtime" in last["message"]
            new_pids = wait_for(lambda: (p := logged_pids(log)) and len(p) == 2 and p, message="second pid")
            assert new_pids[0] == pid and running(new_pids[1])
        finally:
            second.stop()

    def test_a_survivor_whose_pod_was_deleted_meanwhile_is_killed(self, store: LocalStore,
                                                                 tmp_path: Path) -> None:
        first = self.runtime(store, tmp_path)
        store.create(pod("gone", PID_THEN_SLEEP))
        log = tmp_path / "logs" / "default_gone_main.log"
        [pid] = wait_for(lambda: logged_pids(log), message="pid in log")
        first.stop(keep_running=True)
        store.delete(POD, "default", "gone")  # while no runtime watched
        assert running(pid)
        second = self.runtime(store, tmp_path)
        try:
            wait_for(lambda: not running(pid), timeout=5, message="unclaimed survivor killed")
        finally:
            second.stop()


class TestStateDir:
    def test_every_pod_gets_a_state_dir_under_its_node_that_outlives_it(self, store: LocalStore,
                                                                        runtime: ProcessRuntime,
                                                                        tmp_path: Path) -> None:
        code = ("import os, pathlib, time\n"
                "d = pathlib.Path(os.environ['STATE_DIR'])\n"
                "n = len(list(d.glob('run-*')))\n"
                "(d / f'run-{n}').write_text('x')\n"
                "print(d, n, flush=True)\n"
                "time.sleep(60)\n")
        store.create(pod("keeper", code))
        log = tmp_path / "logs" / "default_keeper_main.log"
        first = wait_for(lambda: printed(log).split(), message="first run")
        expected = tmp_path / "nodes" / "cloud" / "pods" / "default_keeper"
        assert first == [str(expected), "0"]
        assert expected.stat().st_mode & 0o777 == 0o700
        store.delete(POD, "default", "keeper")
        wait_for(lambda: not any(True for _ in _missing(store, "keeper")), message="deleted")
        store.create(pod("keeper", code))
        second = wait_for(lambda: (w := printed(log).split()) and len(w) == 4 and w, message="second run")
        assert second[2:] == [str(expected), "1"]  # what the first incarnation wrote is still there

    def test_a_state_dir_set_by_the_template_wins(self, store: LocalStore, runtime: ProcessRuntime,
                                                  tmp_path: Path) -> None:
        mine = tmp_path / "mine"
        store.create(pod("own", "import os; print(os.environ['STATE_DIR'], flush=True)", policy="Never",
                         env=[{"name": "STATE_DIR", "value": str(mine)}]))
        log = tmp_path / "logs" / "default_own_main.log"
        assert wait_for(lambda: log.exists() and log.read_text().strip(), message="printed") == str(mine)


def _missing(store: LocalStore, name: str) -> list[Obj]:
    try:
        return [store.get(POD, "default", name)]
    except NotFound:
        return []
