"""Storage benchmark: the storage initializer against ``cp``, and apply-to-Running with ``s3://`` models.

- ``download_vs_cp_ratio``: the throughput of ``python -m workers.storage s3://... DST`` (a whole
  init container run: interpreter start, S3 client, download, rename) fetching a 200 MB model (20 MB
  with ``--quick``) from a moto S3 server on 127.0.0.1, over the throughput of a plain ``cp`` of the
  same file; both measured side by side in this run, best of ``--repeat``. Goal >= 0.5.
- ``wire_floor_vs_cp_ratio``: the same over a bare HTTP GET of the object's presigned URL from this
  process (no interpreter start, no S3 client): the most any client can get from this S3 server, so
  the ceiling of ``download_vs_cp_ratio`` here. ``transfer_vs_wire_floor_ratio`` is that floor over
  the initializer's own fetch time (the seconds it prints per file: S3 client, HEAD and GET; 1.0
  means it adds nothing to what the server costs); ``initializer_startup_s`` is the rest of its run
  (interpreter and imports).
- ``s3_apply_to_running_overhead_s``: on the Kubernetes test rig (``tests/kube``: emulated API
  server, GM and LCs from the install manifests, the test kubelet), the time from creating the digits
  Models (``s3://`` URLs, credentials from a Secret) and JointInferenceService to ``Running``, minus
  the time the initializer alone takes to download both models. Goal <= 2 s.

Figures from a shared machine are noisy; the goals leave room for a machine twice as slow.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._report import Report, add_report_options

GOALS = {"download_vs_cp_ratio": ">= 0.5", "s3_apply_to_running_overhead_s": "<= 2"}


def _moto(tmp: Path) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    from tests.support.procs import free_port, wait_for_port

    port = free_port()
    log = tmp / "moto.log"
    with log.open("ab") as handle:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
    wait_for_port(port, 60, proc, log)
    env = {"S3_ENDPOINT_URL": f"127.0.0.1:{port}", "S3_USE_HTTPS": "0", "ACCESS_KEY_ID": "bench",
           "SECRET_ACCESS_KEY": "bench-secret"}
    return proc, env


def _initializer(pairs: list[str], env: dict[str, str]) -> float:
    return _initializer_run(pairs, env)[0]


def _initializer_run(pairs: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds of one initializer run, and the transfer seconds it printed (summed over files)."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "workers.storage", *pairs], env={**os.environ, **env},
                          check=True, capture_output=True, timeout=600, text=True)
    wall = time.perf_counter() - started
    transfer = sum(float(m) for m in re.findall(r"\(([0-9.]+)s\)$", done.stdout, re.MULTILINE))
    return wall, transfer


def _wire_get(url: str, dest: Path) -> float:
    """Seconds for one plain HTTP GET of ``url`` streamed into ``dest`` in 1 MiB reads."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    started = time.perf_counter()
    conn = http.client.HTTPConnection(parts.netloc, timeout=600)
    try:
        conn.request("GET", f"{parts.path}?{parts.query}")
        response = conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"GET {parts.path}: HTTP {response.status}")
        with dest.open("wb") as handle:
            while chunk := response.read(1 << 20):
                handle.write(chunk)
    finally:
        conn.close()
    return time.perf_counter() - started


def download_vs_cp(tmp: Path, env: dict[str, str], size_mb: int, repeat: int) -> dict[str, float]:
    from sedna.common import s3

    source = tmp / "model.bin"
    with source.open("wb") as handle:
        for _ in range(size_mb):
            handle.write(os.urandom(1 << 20))
    client = s3.S3Settings.from_env(env).client()
    client.create_bucket(Bucket="bench")
    client.upload_file(str(source), "bench", "models/model.bin")
    presigned = client.generate_presigned_url("get_object", Params={"Bucket": "bench", "Key": "models/model.bin"},
                                              ExpiresIn=3600)
    cp_times, dl_times, wire_times, transfer_times = [], [], [], []
    for i in range(repeat):
        target = tmp / f"cp-{i}.bin"
        started = time.perf_counter()
        subprocess.run(["cp", str(source), str(target)], check=True)
        cp_times.append(time.perf_counter() - started)
        target.unlink()
        dest = tmp / "downloads" / f"{i}" / "model.bin"
        wall, transfer = _initializer_run(["s3://bench/models/model.bin", str(dest)], env)
        dl_times.append(wall)
        transfer_times.append(transfer)
        shutil.rmtree(dest.parent)
        wire = tmp / f"wire-{i}.bin"
        wire_times.append(_wire_get(presigned, wire))
        if wire.stat().st_size != size_mb << 20:
            raise RuntimeError(f"wire floor GET returned {wire.stat().st_size} bytes, expected {size_mb << 20}")
        wire.unlink()
    best = dl_times.index(min(dl_times))
    return {"cp_s": min(cp_times), "download_s": dl_times[best], "transfer_s": transfer_times[best],
            "wire_s": min(wire_times), "ratio": min(cp_times) / dl_times[best]}


def apply_to_running(tmp: Path, env: dict[str, str]) -> dict[str, float]:
    import kubernetes.client

    from examples.joint_inference.digits.models import build_models
    from gm.cluster.interface import JOINT_INFERENCE_SERVICE
    from sedna.common import s3
    from tests.kube.rig import Rig
    from tests.kube.test_rig_e2e import digits_objects

    models: dict[str, Any] = build_models(tmp / "models")
    client = s3.S3Settings.from_env(env).client()
    client.create_bucket(Bucket="models")
    for side in ("edge", "cloud"):
        client.upload_file(str(models[side]), "models", f"digits/{side}.onnx")
    download_s = _initializer(["s3://models/digits/edge.onnx", str(tmp / "dl/edge.onnx"),
                               "s3://models/digits/cloud.onnx", str(tmp / "dl/cloud.onnx")], env)
    with Rig(tmp / "rig") as rig:
        assert rig.cluster is not None
        kubernetes.client.CoreV1Api(rig.cluster.api_client).create_namespaced_secret("default", {
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "minio", "annotations": {"s3-endpoint": env["S3_ENDPOINT_URL"], "s3-usehttps": "0"}},
            "stringData": {"ACCESS_KEY_ID": env["ACCESS_KEY_ID"], "SECRET_ACCESS_KEY": env["SECRET_ACCESS_KEY"]}})
        started = time.perf_counter()
        for obj in digits_objects("s3://models/digits/edge.onnx", "s3://models/digits/cloud.onnx", "minio"):
            rig.cluster.create(obj)
        deadline = started + 180
        while (rig.cluster.get(JOINT_INFERENCE_SERVICE, "default", "digits").get("status") or {}).get(
                "phase") != "Running":
            if time.perf_counter() > deadline:
                raise TimeoutError(f"digits was not Running within 180 s\n{rig.logs()}")
            time.sleep(0.05)
        running_s = time.perf_counter() - started
    return {"running_s": running_s, "download_s": download_s, "overhead_s": running_s - download_s}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.storage")
    parser.add_argument("--quick", action="store_true", help="a 20 MB model instead of 200 MB, one repeat")
    parser.add_argument("--size-mb", type=int, default=0, help="model size (default 200; 20 with --quick)")
    parser.add_argument("--repeat", type=int, default=0, help="runs of each transfer, best kept (default 3; 1 quick)")
    parser.add_argument("--skip-rig", action="store_true", help="only the download figure")
    add_report_options(parser)
    args = parser.parse_args(argv)
    size = args.size_mb or (20 if args.quick else 200)
    repeat = args.repeat or (1 if args.quick else 3)
    report = Report("storage", args.quick, args.save_report)
    tmp = Path(tempfile.mkdtemp(prefix="sedna-bench-storage-"))
    moto, env = _moto(tmp)
    try:
        load_before = round(os.getloadavg()[0], 2)
        dl = download_vs_cp(tmp, env, size, repeat)
        load = {"load1_before": load_before, "load1_after": round(os.getloadavg()[0], 2)}
        report.figure("download_vs_cp_ratio", round(dl["ratio"], 3), "ratio", size_mb=size,
                      cp_s=round(dl["cp_s"], 3), download_s=round(dl["download_s"], 3), **load)
        report.figure("wire_floor_vs_cp_ratio", round(dl["cp_s"] / dl["wire_s"], 3), "ratio", size_mb=size,
                      cp_s=round(dl["cp_s"], 3), wire_s=round(dl["wire_s"], 3), **load)
        report.figure("transfer_vs_wire_floor_ratio", round(dl["wire_s"] / dl["transfer_s"], 3), "ratio",
                      size_mb=size, wire_s=round(dl["wire_s"], 3), transfer_s=round(dl["transfer_s"], 3), **load)
        report.figure("initializer_startup_s", round(dl["download_s"] - dl["transfer_s"], 3), "s", size_mb=size, **load)
        if not args.skip_rig:
            load_before = round(os.getloadavg()[0], 2)
            rig = apply_to_running(tmp, env)
            report.figure("s3_apply_to_running_overhead_s", round(rig["overhead_s"], 3), "s",
                          running_s=round(rig["running_s"], 3), download_s=round(rig["download_s"], 3),
                          load1_before=load_before, load1_after=round(os.getloadavg()[0], 2))
    finally:
        moto.terminate()
        moto.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)
    report.write_markdown(GOALS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
