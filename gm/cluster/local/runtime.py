"""ProcessRuntime: the local backend's "kubelet", running each Pod's containers as subprocesses.

It watches Pods in the :class:`~.store.LocalStore`; for each Pod scheduled to one of its nodes
it gives the Pod its own loopback IP (from the cluster's block, :mod:`.addresses`, written to
``status.podIP`` before anything starts), then runs every container's ``command`` + ``args`` with
the runtime's base environment plus the container's ``env`` (images are not run: a container
without a ``command`` runs what the image catalog, :mod:`.images`, registers for its image), output appended to
``<state_dir>/logs/<namespace>_<pod>_<container>.log``. ``restartPolicy`` is honoured with
exponential back-off (1 s doubling to 30 s, reset after 60 s of running), and Pod status
(phase, Ready condition, containerStatuses) is written with ``patch_status``.

Design: one thread turns the store's watch into a queue; one supervisor thread owns all Pod
state, so no locks guard it. A deleted Pod's process groups get SIGTERM, then SIGKILL after the
grace period. Live pids go to ``<state_dir>/pids.json`` so a restarted runtime (the GM killed with
``kill -9``, or restarted with :meth:`ProcessRuntime.stop` ``(keep_running=True)``) **adopts** the
containers still running for the Pods it finds 'Running' instead of killing and recreating them,
kills those no Pod claims after the first sync, and starts the rest again. An adopted process is
watched through its pid; its exit code is lost (it is not our child), so its end is recorded as
``ContainerStatusUnknown`` with exit code 0: a stage Pod then waits for its worker's report rather
than failing a round that succeeded. Every container gets ``STATE_DIR``, a directory that outlives
the Pod, under its node's state dir (``<node state>/pods/<namespace>_<name>``, the Deployment's name
for a Deployment's Pods), unless its env sets one. A Pod re-created under the name of one whose processes are
still terminating stays Pending until they have exited (as a kubelet keeps the name until the old
Pod is gone), so two incarnations never serve side by side. A container that cannot start (bad command, unsupported env)
marks the Pod Failed with reason ``StartError`` (``restartPolicy: Never``) or ``CrashLoopBackOff``
(retried with back-off), and a message that names the log file. A container whose image the
catalog does not know waits with reason ``ErrImagePull`` and a message naming the image (the Pod
stays Pending, its Ready condition says why) and is retried with back-off, so registering the
image lets it start.

``initContainers`` run first, one at a time and each to completion (the containers wait in
``PodInitializing``); a failed one is retried with the same back-off unless ``restartPolicy`` is
``Never`` (the Pod fails), and its ``initContainerStatuses`` entry carries the end of its log as
the termination message under ``FallbackToLogsOnError``, as a kubelet writes it. Init containers
are not adopted after a restart: one still running is killed and run again, and none runs again
for a Pod whose status says they completed. Volumes and ``secretKeyRef`` env: :mod:`.volumes`
(a missing Secret waits with ``CreateContainerConfigError``).
"""

from __future__ import annotations

import queue
import shutil
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from gm.cluster.interface import POD, ClusterError, Invalid, NotFound, Obj
from gm.cluster.local import images, loopback, processes, volumes, watching
from gm.cluster.local._objects import now
from gm.cluster.local.addresses import AddressPool, Block
from gm.cluster.local.logs import log_path, safe_name, tail
from gm.cluster.local.store import LocalStore
from sedna.common.log import get_logger

_LOG = get_logger(__name__)
HOST_IP = "127.0.0.1"
START_ERROR_EXIT = 128


class Proc(Protocol):
    """What the runtime needs of a container process: ours (``subprocess.Popen``) or adopted."""

    pid: int
    returncode: int | None

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


@dataclass(frozen=True)
class Backoff:
    """Restart back-off: ``initial`` seconds, doubling up to ``cap``; reset after ``reset_after`` s of running."""

    initial: float = 1.0
    cap: float = 30.0
    reset_after: float = 60.0


@dataclass
class _Container:
    spec: Obj
    index: int
    log: Path
    restart_base: int = 0
    starts: int = 0
    proc: Proc | None = None
    started_mono: float = 0.0
    started_at: str = ""
    next_start: float | None = 0.0
    delay: float = 1.0
    state: Obj = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: Obj = field(default_factory=dict)
    start_error: str | None = None
    image_error: str | None = None
    """Why the container waits (its image unknown to the catalog, a missing Secret); None once it started."""
    init: bool = False
    """An init container: runs to completion, in order, before the containers start."""

    @property
    def name(self) -> str:
        return str(self.spec.get("name", f"c{self.index}"))

    @property
    def restart_count(self) -> int:
        return self.restart_base + max(0, self.starts - 1)


@dataclass
class _Pod:
    obj: Obj
    ip: str
    containers: list[_Container]
    start_time: str
    init: list[_Container] = field(default_factory=list)
    ready: bool = False
    ready_changed: str = ""
    written: Obj | None = None
    unwritten: bool = True
    """The status changed (or its last write failed) since it was last written."""

    @property
    def policy(self) -> str:
        return str((self.obj.get("spec") or {}).get("restartPolicy") or "Always")

    @property
    def initialized(self) -> bool:
        """Every init container has completed (exit code 0)."""
        return all(_completed(c) for c in self.init)

    @property
    def init_failed(self) -> bool:
        """An init container failed and will not be retried (``restartPolicy: Never``)."""
        return any("terminated" in c.state and not _completed(c) and c.next_start is None for c in self.init)


class ProcessRuntime:
    """Runs the Pods of ``nodes`` (None: every Pod) from ``store`` as local process groups.

    Parameters
    ----------
    store: the object store to watch and write Pod status to.
    state_dir: holds ``logs/`` and ``pids.json``.
    nodes: node names this runtime serves; None serves all Pods.
    base_env: environment every container inherits (default: PATH, PYTHONPATH, HOME, ... of this process).
    dry_run: start no processes; mark Pods Running at once (for control-plane benchmarks).
    backoff: restart back-off settings.
    grace_period: seconds between SIGTERM and SIGKILL when a Pod sets no terminationGracePeriodSeconds.
    image_catalog: what images run for containers without a command (default: the built-in entries and
        ``<state_dir>/images.yaml``).
    node_state: the state dir of a node (default ``<state_dir>/nodes/<node>``); Pods' ``STATE_DIR`` go under it.
    block: the loopback block Pod IPs come from (None: the one of ``state_dir``, claimed by :meth:`start`
        and released by :meth:`stop`, see :mod:`.loopback`).
    """

    def __init__(self, store: LocalStore, state_dir: str | Path, nodes: set[str] | None = None,
                 base_env: Mapping[str, str] | None = None, dry_run: bool = False,
                 backoff: Backoff | None = None, grace_period: float = 10.0, tick: float = 0.1,
                 image_catalog: images.ImageCatalog | None = None,
                 node_state: Callable[[str], Path] | None = None, block: Block | None = None) -> None:
        self.store, self.state_dir, self.nodes = store, Path(state_dir), set(nodes) if nodes is not None else None
        self.images = image_catalog or images.ImageCatalog(self.state_dir / images.CATALOG_FILE)
        self.log_dir = self.state_dir / "logs"
        self.base_env = dict(base_env) if base_env is not None else processes.default_base_env()
        self.dry_run, self.backoff, self.grace_period, self.tick = dry_run, backoff or Backoff(), grace_period, tick
        self.block = block
        self._claim: loopback.Claim | None = None
        self.addresses: AddressPool = block.pod_pool() if block is not None else AddressPool("127.0.0.0", 0)
        self._pids = processes.PidFile(self.state_dir / "pids.json")
        self.node_state = node_state or (lambda node: self.state_dir / "nodes" / node)
        self._survivors: dict[str, int] = {}
        """``{uid/container: pid}`` a previous runtime left running, until the first sync adopts or kills them."""
        self._events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._pods: dict[str, _Pod] = {}
        self._dying: list[tuple[str, Proc, float]] = []
        """(namespace/name, process, SIGKILL deadline) of terminated Pods' containers still exiting."""
        self._volumes_to_remove: list[tuple[str, Path]] = []
        """(namespace/name, emptyDir directory) of deleted Pods, removed once their processes have exited."""
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Find what a previous runtime left running (adopted or killed at the first sync), then start watching
        and supervising."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if self.block is None:
            self._claim = loopback.claim(self.state_dir)
            self.block = self._claim.block
        self.addresses = self.block.pod_pool()
        self._survivors = {} if self.dry_run else self._pids.survivors()
        if self._survivors:
            _LOG.info("found %d container process group(s) of a previous runtime still running",
                      len(self._survivors))
        self._threads.append(watching.start_follower(
            self.store, POD, self._stop, lambda items: self._events.put(("SYNC", items)),
            lambda event: self._events.put((event.type, event.object)), "local-runtime-watch"))
        thread = threading.Thread(target=self._supervise_loop, name="local-runtime-supervise", daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self, keep_running: bool = False) -> None:
        """Stop supervising and terminate every child process group (SIGTERM, then SIGKILL); with
        ``keep_running``, leave them running (recorded in ``pids.json``) for the next runtime to adopt."""
        self._stop.set()
        for thread in self._threads:
            thread.join(10)
        self._threads.clear()
        if keep_running:
            for pod in self._pods.values():
                for c in pod.init + pod.containers:
                    if c.proc is not None:
                        processes.release(c.proc)
            for _, proc, _ in self._dying:  # already being stopped: finish that now
                processes.kill_group(proc.pid, signal.SIGKILL)
                proc.wait(5)
            self._pods.clear()
            self._dying.clear()
            self._release_block()
            return
        for pod in list(self._pods.values()):
            self._terminate(pod)
        deadline = time.monotonic() + self.grace_period
        while self._dying and time.monotonic() < deadline:
            self._reap(time.monotonic())
            time.sleep(0.02)
        self._reap(float("inf"))
        self._pods.clear()
        self._release_block()

    def _release_block(self) -> None:
        if self._claim is not None:  # claimed by start(): let it go
            self._claim.close()
            self._claim, self.block = None, None

    # ----------------------------------------------------------------- loops

    def _supervise_loop(self) -> None:
        while not self._stop.is_set():
            try:
                kind, payload = self._events.get(timeout=self.tick)
                self._handle_safely(kind, payload)
                while True:
                    self._handle_safely(*self._events.get_nowait())
            except queue.Empty:
                pass
            current = time.monotonic()
            for pod in list(self._pods.values()):
                try:
                    self._supervise(pod, current)
                except (OSError, ValueError, TypeError, KeyError):
                    # A malformed Pod must not stop the supervision of all the others.
                    _LOG.exception("supervising pod %s failed", pod.obj["metadata"].get("name"))
            self._reap(current)

    def _handle_safely(self, kind: str, payload: Any) -> None:
        try:
            self._handle(kind, payload)
        except (OSError, ValueError, TypeError, KeyError):
            _LOG.exception("handling a %s pod event failed", kind)

    def _handle(self, kind: str, payload: Any) -> None:
        if kind == "SYNC":
            seen = {p["metadata"]["uid"] for p in payload}
            for uid in [u for u in self._pods if u not in seen]:
                self._forget(uid)
            for obj in payload:
                self._observe(obj)
            self._kill_unclaimed()
        elif kind == "DELETED":
            self.addresses.release((payload.get("status") or {}).get("podIP", ""))
            self._forget(payload["metadata"]["uid"])
        else:
            self._observe(payload)

    def _mine(self, obj: Obj) -> bool:
        return self.nodes is None or (obj.get("spec") or {}).get("nodeName") in self.nodes

    def _observe(self, obj: Obj) -> None:
        uid, status = obj["metadata"]["uid"], obj.get("status") or {}
        self.addresses.claim(status.get("podIP", ""))
        if uid in self._pods:
            self._pods[uid].obj = obj
            return
        if not self._mine(obj):
            return
        policy = (obj.get("spec") or {}).get("restartPolicy") or "Always"
        if status.get("phase") == "Succeeded" and policy != "Always":
            return
        if status.get("phase") == "Failed" and (policy == "Never" or status.get("reason") != "CrashLoopBackOff"):
            return
        self._admit(obj)

    def _admit(self, obj: Obj) -> None:
        meta, status = obj["metadata"], obj.get("status") or {}
        ip = status.get("podIP") or self.addresses.allocate()
        previous = {c.get("name"): c for c in status.get("containerStatuses") or []}
        containers = []
        for i, spec in enumerate((obj.get("spec") or {}).get("containers") or []):
            c = _Container(spec, i, log_path(self.log_dir, meta.get("namespace", "default"), meta["name"],
                                             str(spec.get("name", f"c{i}"))), delay=self.backoff.initial)
            old = previous.get(c.name) or {}
            if not self._adopt(meta["uid"], c, old):
                c.restart_base = int(old.get("restartCount", 0)) + (1 if "running" in (old.get("state") or {}) else 0)
            containers.append(c)
        init = self._init_containers(obj, containers)
        pod = _Pod(obj, ip, containers, status.get("startTime") or now(), init)
        self._pods[meta["uid"]] = pod
        first = {"podIP": ip, "podIPs": [{"ip": ip}], "hostIP": HOST_IP, "startTime": pod.start_time}
        if self.dry_run:
            for c in init:
                c.state, c.starts, c.next_start = {"terminated": {"exitCode": 0, "reason": "Completed"}}, 1, None
            for c in containers:
                c.state, c.starts, c.next_start = {"running": {"startedAt": now()}}, 1, None
        self._write(pod, first)

    def _init_containers(self, obj: Obj, containers: list[_Container]) -> list[_Container]:
        """The Pod's init containers: already done when the stored status says so or a container was adopted
        (a restarted runtime does not download again); otherwise run again (the storage initializer
        resumes). An init container left running by a previous runtime is not adopted: it is killed."""
        meta, status = obj["metadata"], obj.get("status") or {}
        previous = {c.get("name"): c for c in status.get("initContainerStatuses") or []}
        adopted = any(c.proc is not None for c in containers)
        out = []
        for i, spec in enumerate((obj.get("spec") or {}).get("initContainers") or []):
            c = _Container(spec, i, log_path(self.log_dir, meta.get("namespace", "default"), meta["name"],
                                             str(spec.get("name", f"init{i}"))), delay=self.backoff.initial, init=True)
            old = previous.get(c.name) or {}
            done = ((old.get("state") or {}).get("terminated") or {}).get("exitCode") == 0
            c.restart_base = int(old.get("restartCount", 0))
            if done or adopted:
                c.state, c.next_start, c.starts = {"terminated": {"exitCode": 0, "reason": "Completed"}}, None, 1
            else:
                c.state = {"waiting": {"reason": "PodInitializing"}}
            out.append(c)
        if out and not all(_completed(c) for c in out):
            for c in containers:
                c.state = {"waiting": {"reason": "PodInitializing"}}
        return out

    def _kill_unclaimed(self) -> None:
        """Kill what a previous runtime left running that no Pod adopted (its Pod was deleted meanwhile)."""
        for key, pid in self._survivors.items():
            _LOG.info("killing container process group %d (%s): no Pod claims it", pid, key)
            processes.kill_group(pid, signal.SIGKILL)
            self._pids.remove(key)
        self._survivors = {}

    def _adopt(self, pod_uid: str, c: _Container, old: Obj) -> bool:
        """Take over ``c``'s process if a previous runtime left it running; True when adopted."""
        pid = self._survivors.pop(f"{pod_uid}/{c.name}", None)
        if pid is None:
            return False
        running = (old.get("state") or {}).get("running")
        if not running:  # the store does not say it runs: an older incarnation; start afresh
            processes.kill_group(pid, signal.SIGKILL)
            self._pids.remove(f"{pod_uid}/{c.name}")
            return False
        c.proc, c.starts, c.next_start = processes.Adopted(pid), 1, None
        c.started_at, c.started_mono = str(running.get("startedAt") or now()), time.monotonic()
        c.state, c.last_state = {"running": {"startedAt": c.started_at}}, dict(old.get("lastState") or {})
        c.restart_base = int(old.get("restartCount", 0))
        _LOG.info("adopted container %s (pid %d) of a previous runtime", c.name, pid)
        return True

    def _forget(self, uid: str) -> None:
        pod = self._pods.pop(uid, None)
        if pod is not None:
            self._terminate(pod)
            if not self.dry_run:  # its emptyDir volumes go once its processes have exited
                self._volumes_to_remove.append((_key(pod.obj), volumes.pod_volumes_dir(
                    self._pod_state_dir(pod.obj), uid)))

    # ------------------------------------------------------------ containers

    def _supervise(self, pod: _Pod, current: float) -> None:
        held = any(key == _key(pod.obj) for key, _, _ in self._dying)
        if not pod.initialized:
            self._supervise_init(pod, current, held)
        if not pod.initialized:
            if pod.unwritten:
                self._write(pod)
            return
        for c in pod.containers:
            if c.proc is not None and c.proc.poll() is not None:
                self._exited(pod, c, c.proc.returncode or 0, current)
                pod.unwritten = True
            if c.proc is None and c.next_start is not None and current >= c.next_start and not self.dry_run \
                    and not held:
                self._start(pod, c, current)
                pod.unwritten = True
        if pod.unwritten:  # a status only changes with a start or an exit: idle Pods cost no status build
            self._write(pod)

    def _supervise_init(self, pod: _Pod, current: float, held: bool) -> None:
        """Run the first init container that has not completed (one at a time, in order)."""
        for c in pod.init:
            if _completed(c):
                continue
            if c.proc is not None and c.proc.poll() is not None:
                self._exited(pod, c, c.proc.returncode or 0, current)
                pod.unwritten = True
                if _completed(c):
                    continue
            if c.proc is None and c.next_start is not None and current >= c.next_start and not self.dry_run \
                    and not held:
                self._start(pod, c, current)
                pod.unwritten = True
            return

    def _start(self, pod: _Pod, c: _Container, current: float) -> None:
        c.starts += 1
        c.started_mono, c.started_at = current, now()
        try:
            image = images.resolve(c.spec, c.index, self.images)
            pod_state = self._pod_state_dir(pod.obj)
            base = {**self.base_env, **(image.env if image is not None else {}), "STATE_DIR": str(pod_state)}
            section = "initContainers" if c.init else "containers"
            namespace = pod.obj["metadata"].get("namespace", "default")
            env = processes.container_env(pod.obj, c.spec, c.index, base,
                                          volumes.secret_resolver(self.store.get, namespace), section)
            rewrite = volumes.rewriter(volumes.mounts(pod.obj, c.spec, pod_state, f"spec.{section}[{c.index}]"))
            own = {str(item.get("name")) for item in c.spec.get("env") or [] if isinstance(item, dict)}
            env = {k: rewrite(v) if k in own else v for k, v in env.items()}
            argv = [rewrite(a) for a in processes.container_argv(c.spec, c.index, env, image)]
            cwd = c.spec.get("workingDir") or (image.working_dir if image is not None else None)
            c.proc = processes.spawn(argv, env, c.log, rewrite(cwd) if cwd else None)
        except images.UnknownImage as exc:
            self._image_missing(c, str(exc), current)
            return
        except volumes.MissingConfig as exc:
            self._image_missing(c, str(exc), current, volumes.CONFIG_ERROR_REASON)
            return
        except (OSError, Invalid) as exc:
            message = f"cannot start container {c.name!r}: {exc}; log: {c.log}"
            c.log.parent.mkdir(parents=True, exist_ok=True)
            with c.log.open("a") as handle:
                handle.write(f"[sedna local runtime {now()}] {message}\n")
            c.start_error = message
            self._exited(pod, c, START_ERROR_EXIT, current)
            return
        c.start_error = c.image_error = None
        c.next_start = None
        c.state = {"running": {"startedAt": c.started_at}}
        self._pids.add(f"{pod.obj['metadata']['uid']}/{c.name}", c.proc.pid)

    def _image_missing(self, c: _Container, message: str, current: float,
                       reason: str = images.UNKNOWN_IMAGE_REASON) -> None:
        """Wait for the image to be registered (or the Secret created): no start counted, retried with back-off."""
        c.starts -= 1
        if message != c.image_error:
            c.log.parent.mkdir(parents=True, exist_ok=True)
            with c.log.open("a") as handle:
                handle.write(f"[sedna local runtime {now()}] {message}\n")
        c.image_error = message
        c.state = {"waiting": {"reason": reason, "message": message}}
        c.next_start = current + c.delay
        c.delay = min(c.delay * 2, self.backoff.cap)

    def _pod_state_dir(self, obj: Obj) -> Path:
        """The Pod's persistent ``STATE_DIR`` (created, mode 0700): see the module docstring."""
        meta = obj["metadata"]
        owner = next((o.get("name") for o in meta.get("ownerReferences") or [] if o.get("kind") == "Deployment"), None)
        name = safe_name(f"{meta.get('namespace', 'default')}_{owner or meta['name']}")
        path = self.node_state(str((obj.get("spec") or {}).get("nodeName") or "default")) / "pods" / name
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    def _exited(self, pod: _Pod, c: _Container, code: int, current: float) -> None:
        adopted = isinstance(c.proc, processes.Adopted)
        if c.proc is not None:
            processes.kill_group(c.proc.pid, signal.SIGKILL)
            self._pids.remove(f"{pod.obj['metadata']['uid']}/{c.name}")
            c.proc = None
        if current - c.started_mono >= self.backoff.reset_after:
            c.delay = self.backoff.initial
        reason = "StartError" if c.start_error else ("Completed" if code == 0 else "Error")
        if adopted:
            code, reason = 0, "ContainerStatusUnknown"
        terminated = {"exitCode": code, "reason": reason, "startedAt": c.started_at, "finishedAt": now()}
        if c.start_error:
            terminated["message"] = c.start_error
        elif code != 0 and c.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            terminated["message"] = _log_tail(c.log)
        elif adopted:
            terminated["message"] = ("started by a previous runtime (the GM restarted): it exited, with a code "
                                     "that cannot be known")
        if c.init:  # an init container is retried until it succeeds, unless the Pod never restarts
            restart = code != 0 and pod.policy != "Never"
        else:
            restart = pod.policy == "Always" or (pod.policy == "OnFailure" and code != 0)
        if restart:
            c.last_state = {"terminated": terminated}
            c.next_start = current + c.delay
            message = (f"back-off {c.delay:g}s restarting failed container {c.name!r} (exit code {code}); "
                       f"log: {c.log}")
            c.state = {"waiting": {"reason": "CrashLoopBackOff", "message": c.start_error or message}}
            c.delay = min(c.delay * 2, self.backoff.cap)
        else:
            c.next_start = None
            c.state = {"terminated": terminated}

    def _terminate(self, pod: _Pod) -> None:
        grace = (pod.obj.get("spec") or {}).get("terminationGracePeriodSeconds")
        deadline = time.monotonic() + (float(grace) if grace is not None else self.grace_period)
        for c in pod.init + pod.containers:
            if c.proc is not None:
                processes.kill_group(c.proc.pid, signal.SIGTERM)
                self._dying.append((_key(pod.obj), c.proc, deadline))
                self._pids.remove(f"{pod.obj['metadata']['uid']}/{c.name}")
                c.proc, c.next_start = None, None

    def _reap(self, current: float) -> None:
        alive = []
        for key, proc, deadline in self._dying:
            if proc.poll() is not None:
                processes.kill_group(proc.pid, signal.SIGKILL)
            elif current >= deadline:
                processes.kill_group(proc.pid, signal.SIGKILL)
                proc.wait(5)
            else:
                alive.append((key, proc, deadline))
        self._dying = alive
        if self._volumes_to_remove:
            dying = {key for key, _, _ in alive}
            for _, path in [v for v in self._volumes_to_remove if v[0] not in dying]:
                shutil.rmtree(path, ignore_errors=True)
            self._volumes_to_remove = [v for v in self._volumes_to_remove if v[0] in dying]

    # ---------------------------------------------------------------- status

    def _status(self, pod: _Pod) -> Obj:
        cs = pod.containers
        statuses = [{"name": c.name, "ready": "running" in c.state, "started": "running" in c.state,
                     "restartCount": c.restart_count, "state": c.state, "lastState": c.last_state,
                     "image": c.spec.get("image", "")} for c in cs]
        errors = [c.start_error for c in cs if c.start_error]
        reason = message = None
        if not pod.initialized:  # init containers run: the containers wait (an init failure is in its status)
            phase = "Failed" if pod.init_failed else "Pending"
        elif errors:
            phase, message = "Failed", errors[0]
            reason = "CrashLoopBackOff" if any(c.next_start is not None for c in cs) else "StartError"
        elif cs and all("terminated" in c.state for c in cs):
            phase = "Succeeded" if all(c.state["terminated"]["exitCode"] == 0 for c in cs) else "Failed"
        elif any("running" in c.state for c in cs) or any(c.starts for c in cs):
            phase = "Running"
        else:
            phase = "Pending"
        ready = bool(cs) and all("running" in c.state for c in cs)
        if ready != pod.ready or not pod.ready_changed:
            pod.ready, pod.ready_changed = ready, now()
        changed = pod.ready_changed
        condition = "True" if ready else "False"
        conditions = [{"type": t, "status": condition if t != "PodScheduled" else "True",
                       "lastTransitionTime": changed if t != "PodScheduled" else pod.start_time}
                      for t in ("PodScheduled", "ContainersReady", "Ready")]
        waiting_images = [c.image_error for c in pod.init + cs if c.image_error]
        if waiting_images and not ready:  # the Ready condition says which image is missing
            for cond in conditions[1:]:
                cond.update(reason="ContainersNotReady", message=waiting_images[0])
        status = {"phase": phase, "reason": reason, "message": message, "hostIP": HOST_IP, "podIP": pod.ip,
                  "podIPs": [{"ip": pod.ip}], "startTime": pod.start_time, "containerStatuses": statuses,
                  "conditions": conditions}
        if pod.init:
            status["initContainerStatuses"] = [
                {"name": c.name, "ready": _completed(c), "started": "running" in c.state,
                 "restartCount": c.restart_count, "state": c.state, "lastState": c.last_state,
                 "image": c.spec.get("image", "")} for c in pod.init]
            conditions.insert(1, {"type": "Initialized", "status": "True" if pod.initialized else "False",
                                  "lastTransitionTime": pod.start_time})
        return status

    def _write(self, pod: _Pod, extra: Obj | None = None) -> None:
        status = {**self._status(pod), **(extra or {})}
        if status == pod.written:
            pod.unwritten = False
            return
        meta = pod.obj["metadata"]
        try:
            pod.obj = self.store.patch_status(POD, meta.get("namespace", "default"), meta["name"], status)
            pod.written, pod.unwritten = status, False
        except NotFound:
            pod.unwritten = False
        except ClusterError as exc:
            _LOG.warning("could not write status of pod %s/%s: %s", meta.get("namespace"), meta["name"], exc)


def _completed(c: _Container) -> bool:
    return ((c.state.get("terminated") or {}).get("exitCode")) == 0


def _log_tail(log: Path) -> str:
    """What Kubernetes keeps of a failed container's log under ``FallbackToLogsOnError``: its end (80 lines,
    2 KiB at most)."""
    try:
        return tail(log, 80)[-2048:]
    except OSError:
        return ""


def _key(obj: Obj) -> str:
    meta = obj["metadata"]
    return f"{meta.get('namespace', 'default')}/{meta['name']}"
