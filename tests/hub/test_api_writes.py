"""Writes through the GM's REST API (as ``sedna apply`` sends them) are validated, then reach the LCs."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.hub.harness import GM, LC, dataset, wait_until
from tests.support.procs import free_port

pytestmark = pytest.mark.processes

DATASETS = "/apis/sedna.io/v1alpha1/namespaces/default/datasets"


def test_an_api_write_is_validated_and_reaches_its_node(tmp_path: Path) -> None:
    api_port = free_port()
    gm = GM(tmp_path, {"edge-0": "t0"}, "--api-port", str(api_port), "--api-token", "api-secret").start()
    lc = LC(tmp_path, gm.address, "edge-0", "t0").start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{api_port}", headers={"Authorization": "Bearer api-secret"},
                          trust_env=False, timeout=10) as api:
            bad = api.post(DATASETS, json=dataset("ds-bad", "edge-0", "/nowhere/bad.json", fmt="json"))
            created = api.post(DATASETS, json=dataset("ds-a", "edge-0", "/nowhere/a.txt"))

            assert bad.status_code == 422
            assert [c["field"] for c in bad.json()["details"]["causes"]] == ["spec.format"]
            assert created.status_code == 201, created.text
            version = created.json()["metadata"]["resourceVersion"]
            wait_until(lambda: lc.objects() == {"dataset/default/ds-a": version}, message="ds-a on edge-0")
            assert api.get(f"{DATASETS}/ds-bad").status_code == 404
    finally:
        lc.stop()
        gm.stop()
