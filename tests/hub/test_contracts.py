"""The GM <-> LC contracts and the SDK agree: kind names, report bodies, joint-inference counters.

The SDK may not import ``sedna.controlplane`` (an import-linter contract), so the few facts it
repeats (owner kinds, the report body, the ``ownerInfo`` keys) are pinned here, and one test
follows the counters from a real SDK worker through a real LC and the hub into the status.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gm.cluster import interface
from gm.cluster.interface import JOINT_INFERENCE_SERVICE
from gm.cluster.local.store import LocalStore
from sedna.cli import _kinds as cli_kinds
from sedna.common.config import WorkerConfig
from sedna.controlplane import kinds, reports
from sedna.controlplane.counters import OWNER_INFO_KEYS, JointCounters
from sedna.controlplane.errors import BadReport
from sedna.core.hard_examples import HardExampleStore
from sedna.core.joint_inference import JointInference
from sedna.core.joint_inference.stats import OWNER_KIND as JI_OWNER_KIND
from sedna.core.joint_inference.stats import JointStats
from sedna.service.lc_client import LCReport
from tests.hub.harness import GM, LC, WORKER_TOKEN, joint_inference, wait_until


@pytest.mark.parametrize("kind", kinds.ALL, ids=lambda k: k.key)
def test_the_gm_api_kinds_and_the_cli_kinds_are_the_control_plane_kinds(kind: kinds.SednaKind) -> None:
    api = interface.kind_by_name(kind.key)
    assert (api.kind, api.plural, api.api_version, api.label_prefix) == (
        kind.kind, kind.plural, kind.api_version, f"{kind.key}.sedna.io")
    assert all(interface.kind_by_name(name) is api for name in kind.names())
    cli = cli_kinds.find(kind.kind)
    assert (cli.kind, cli.plural, cli.api_version, cli.short, cli.ref) == (
        kind.kind, kind.plural, kind.api_version, kind.short, kind.key)
    assert kinds.find(kind.short[0] if kind.short else kind.plural) is kind
    assert kinds.by_key(kind.key) is kind


@pytest.mark.parametrize("kind", kinds.ALL, ids=lambda k: k.key)
def test_the_crd_names_the_kind_as_the_control_plane_does(kind: kinds.SednaKind) -> None:
    import yaml

    crd = yaml.safe_load((Path(__file__).parents[2] / "crds" / "bases" / f"sedna.io_{kind.plural}.yaml").read_text())
    names = crd["spec"]["names"]
    assert (crd["spec"]["group"], [v["name"] for v in crd["spec"]["versions"]]) == (kinds.GROUP, [kinds.VERSION])
    assert (names["kind"], names["plural"], names["singular"], tuple(names.get("shortNames", ()))) == (
        kind.kind, kind.plural, kind.key, kind.short)


def test_every_sedna_kind_of_the_gm_is_a_control_plane_kind() -> None:
    assert [k.kind for k in interface.SEDNA_KINDS] == [k.kind for k in kinds.ALL]


def test_an_unknown_kind_key_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match=r"'reidjob' is not a Sedna kind \(known: dataset, "):
        kinds.by_key("reidjob")
    assert kinds.find("teapots") is None


def test_the_sdks_owner_kinds_are_control_plane_keys() -> None:
    from sedna.core.federated_learning import OWNER_KIND as FL
    from sedna.core.incremental_learning import OWNER_KIND as IL

    owner_kinds = {"joint inference": JI_OWNER_KIND, "federated": FL, "incremental": IL}
    assert owner_kinds == {"joint inference": kinds.JOINT_INFERENCE_SERVICE.key,
                           "federated": kinds.FEDERATED_LEARNING_JOB.key,
                           "incremental": kinds.INCREMENTAL_LEARNING_JOB.key}


def test_the_sdks_report_body_parses_into_the_lcs_worker_report() -> None:
    sent = LCReport(owner_kind=kinds.FEDERATED_LEARNING_JOB.key, owner_name="fl", kind="train", status="running",
                    owner_info={"currentRound": 2}, results=[{"format": "onnx", "url": "/m.onnx"}])

    got = reports.parse("fl-train-0", json.dumps(sent.to_body("fl-train-0", "team-a")).encode())

    assert got == reports.WorkerReport(worker="fl-train-0", namespace="team-a", owner_name="fl",
                                       owner_kind="federatedlearningjob", kind="train", status="running",
                                       owner_info={"currentRound": 2},
                                       results=[{"format": "onnx", "url": "/m.onnx"}])
    assert got.payload() == {"phase": "train", "status": "running", "worker": "fl-train-0",
                             "output": {"models": [{"format": "onnx", "url": "/m.onnx"}],
                                        "ownerInfo": {"currentRound": 2}}}


def test_the_sdks_owner_info_has_exactly_the_contracts_keys_and_values() -> None:
    stats = JointStats(started_at=0.0)
    stats.add(inferences=8, hard_examples=2, cloud_failures=1, fallbacks=1)

    info = stats.owner_info()

    assert tuple(info) == OWNER_INFO_KEYS
    counters = JointCounters.from_owner_info(info)
    assert (counters.inferences, counters.hard_examples, counters.offload_ratio, counters.cloud_failures,
            counters.fallbacks, counters.start_time) == (8, 2, 0.25, 1, 1, "1970-01-01T00:00:00Z")
    assert counters.owner_info() == info


@pytest.mark.parametrize(("info", "field", "message"), [
    ({"hardExampleNumber": 1}, "ownerInfo.inferenceNumber", "is required in jointinferenceservice reports"),
    ({"inferenceNumber": 3, "hardExampleNumber": 1.5}, "ownerInfo.hardExampleNumber",
     "must be a non-negative integer, got 1.5"),
    ({"inferenceNumber": 3, "hardExampleNumber": 1, "fallbacks": True}, "ownerInfo.fallbacks",
     "must be a non-negative integer, got True"),
    ({"inferenceNumber": 3, "hardExampleNumber": 1, "uploadCloudRatio": 2}, "ownerInfo.uploadCloudRatio",
     "must be a number between 0 and 1, got 2"),
    ({"inferenceNumber": 3, "hardExampleNumber": 1, "startTime": 5}, "ownerInfo.startTime",
     "must be a timestamp string, got 5"),
])
def test_bad_counters_name_their_field(info: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(BadReport) as caught:
        JointCounters.from_owner_info(info)
    assert (caught.value.field, str(caught.value)) == (field, f"field {field!r}: {message}")


def test_totals_sum_counts_and_weigh_the_ratio_by_inferences() -> None:
    a = JointCounters(10, 5, 0.5, 1, 2, "2024-01-01T00:00:05Z", "2024-01-01T00:01:00Z")
    b = JointCounters(30, 3, 0.1, 0, 1, "2024-01-01T00:00:01Z", "2024-01-01T00:02:00Z")

    total = JointCounters.total([a, b])

    assert total == JointCounters(40, 8, round((5 + 3) / 40, 6), 1, 3, "2024-01-01T00:00:01Z",
                                  "2024-01-01T00:02:00Z")
    assert JointCounters.total([]) == JointCounters()
    assert total.status("now")["inference"] == {"count": 40, "hardExamples": 8, "offloadRatio": 0.2,
                                                "cloudFailures": 1, "fallbacks": 3,
                                                "updateTime": "2024-01-01T00:02:00Z"}


class FlakyCloud:
    """Answers every other hard example; the others fail as an unreachable cloud does."""

    def __init__(self) -> None:
        self.calls = 0

    def predict(self, data: Any, timeout: float | None = None) -> np.ndarray:
        from sedna.common.errors import CloudUnavailableError

        self.calls += 1
        if self.calls % 2 == 0:
            raise CloudUnavailableError("connection refused")
        return np.array([[1.0, 0.0]])


class Edge:
    def predict(self, data: Any) -> np.ndarray:
        return np.array([[0.5, 0.5]]) if np.asarray(data).reshape(-1)[0] < 0 else np.array([[0.0, 1.0]])


@pytest.mark.processes
def test_an_sdk_workers_counters_reach_the_resource_status_unchanged(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "gm.db")
    store.create(joint_inference("ji", "edge-0"))
    gm = GM(tmp_path, {"edge-0": "t0"}).start()
    lc = LC(tmp_path, gm.address, "edge-0", "t0").start()
    try:
        # the LC takes reports only about objects it holds: let the hub deliver the service first
        wait_until(lambda: "jointinferenceservice/default/ji" in lc.objects(), message="the service on the LC")
        cfg = WorkerConfig.from_env({"SERVICE_NAME": "ji", "WORKER_NAME": "ji-edge-0", "NAMESPACE": "default",
                                     "LC_SERVER": lc.url, "LC_TOKEN": WORKER_TOKEN,
                                     "STATE_DIR": str(tmp_path / "worker")})
        with JointInference(Edge(), {"method": "CrossEntropy", "param": {"threshold_cross_entropy": 0.5}},
                            config=cfg, cloud=FlakyCloud(), store=HardExampleStore(tmp_path / "hard"),
                            offload_interval=3600, report_period=3600) as ji:
            for x in (1.0, -1.0, -2.0, 3.0, -4.0, 5.0, 6.0, -7.0):
                ji.infer(np.array([x]))
            snap = ji.stats.snapshot()
        # closing sent the last report: the status shows what the worker counted, nothing more or less

        def status() -> dict[str, Any]:
            return store.get(JOINT_INFERENCE_SERVICE, "default", "ji").get("status") or {}

        wait_until(lambda: status().get("inference", {}).get("count") == 8, message="the worker's counters in status")
        inference = status()["inference"]
        assert {k: v for k, v in inference.items() if k != "updateTime"} == {
            "count": snap["inferences"], "hardExamples": snap["hard_examples"], "offloadRatio": snap["offload_ratio"],
            "cloudFailures": snap["cloud_failures"], "fallbacks": snap["fallbacks"]}
        assert (snap["inferences"], snap["hard_examples"], snap["cloud_failures"], snap["fallbacks"]) == (8, 4, 2, 2)
        assert time.strptime(inference["updateTime"], "%Y-%m-%dT%H:%M:%SZ")
        assert status()["metrics"] == [{"key": "inferenceNumber", "value": "8"},
                                       {"key": "hardExampleNumber", "value": "4"},
                                       {"key": "uploadCloudRatio", "value": "0.5"}]
    finally:
        lc.stop()
        gm.stop()
        store.close()


def test_a_bad_setting_of_the_gm_or_the_lc_is_one_kind_of_error(tmp_path: Path) -> None:
    from gm.settings import from_args as gm_settings
    from lc.settings import from_args as lc_settings
    from sedna.common.errors import SettingsError

    with pytest.raises(SettingsError, match=r"--node \(or NODE_NAME\) is required"):
        lc_settings(["--gm-address", "127.0.0.1:9000"], environ={})
    with pytest.raises(SettingsError, match=r"--token-file: cannot read '.*missing'"):
        gm_settings(["--token-file", str(tmp_path / "missing")], environ={})
