"""The LC's worker report API rejects bad input with a message naming the field, and stores nothing.

The reports here use the LC's operator token; worker credentials are in ``tests/security``.
"""

from __future__ import annotations

import pytest

from tests.hub.harness import LC, ji_report, joint_inference
from tests.support.procs import free_port

pytestmark = pytest.mark.processes


def job(kind: str, name: str) -> dict:
    return {"apiVersion": "sedna.io/v1alpha1", "kind": kind, "metadata": {"name": name, "namespace": "default"},
            "spec": {}}


@pytest.fixture(scope="module")
def lc(tmp_path_factory):
    # No GM listens on this address: the API must work without one, on the objects the LC holds.
    lc = LC(tmp_path_factory.mktemp("api"), f"127.0.0.1:{free_port()}", "edge-0", "t0").hold(
        joint_inference("ji", "edge-0"), job("FederatedLearningJob", "job"), job("IncrementalLearningJob", "job"),
        job("LifelongLearningJob", "job")).start()
    yield lc
    lc.stop()


GOOD = ji_report("w1", "ji", 10, 2)


@pytest.mark.parametrize(("token", "worker", "body", "raw", "status", "message"), [
    ("wrong", "w1", GOOD, None, 401, "wrong bearer token"),
    ("", "w1", GOOD, None, 401, "missing bearer token"),
    (None, "w2", GOOD, None, 400, "field 'name': 'w1' does not match the worker name 'w2' in the URL path"),
    (None, "w1", None, b"{not json", 400, "field 'body': is not valid JSON"),
    (None, "w1", None, b"[1, 2]", 400, "field 'body': must be a JSON object, got list"),
    (None, "w1", {**GOOD, "ownerName": ""}, None, 400, "field 'ownerName': is required"),
    (None, "w1", {**GOOD, "ownerInfo": [1]}, None, 400, "field 'ownerInfo': must be a JSON object, got list"),
    (None, "w1", {**GOOD, "results": "x"}, None, 400, "field 'results': must be a list of JSON objects"),
    (None, "w1", {**GOOD, "ownerKind": "reidjob"}, None, 400,
     "field 'ownerKind': 'reidjob' has no manager on this LC (known: federatedlearningjob, "
     "incrementallearningjob, jointinferenceservice, lifelonglearningjob)"),
    (None, "t1", {"name": "t1", "ownerName": "other", "ownerKind": "lifelonglearningjob", "kind": "train"}, None, 403,
     "ownerName: lifelonglearningjob default/other is not held by this LC (node 'edge-0')"),
    (None, "t1", {"name": "t1", "ownerName": "job", "ownerKind": "lifelonglearningjob", "kind": "fly"}, None, 400,
     "field 'kind': 'fly' is not a lifelong-learning report"),
    (None, "w1", ji_report("w1", "ji", -1, 0), None, 400,
     "field 'ownerInfo.inferenceNumber': must be a non-negative integer, got -1"),
    (None, "w1", {**GOOD, "ownerInfo": {"inferenceNumber": 3}}, None, 400,
     "field 'ownerInfo.hardExampleNumber': is required in jointinferenceservice reports"),
])
def test_bad_reports_are_refused_and_nothing_is_queued(lc, token, worker, body, raw, status, message) -> None:
    kwargs = {} if token is None else {"token": token}
    reply = lc.post(worker, body, raw=raw, **kwargs)
    assert reply.status_code == status
    assert reply.json()["Status"] == status
    assert message in reply.json()["Message"]
    assert lc.health()["outbox"] == 0


def test_good_reports_of_every_kind_are_queued_for_the_gm(lc) -> None:
    before = lc.health()["outbox"]
    assert lc.post("w1", GOOD).json() == {"Status": 200, "Message": "OK"}
    for kind in ("federatedlearningjob", "incrementallearningjob"):
        body = {"name": "t1", "namespace": "default", "ownerName": "job", "ownerKind": kind, "kind": "train",
                "status": "completed", "results": [{"format": "onnx", "url": "/m.onnx"}]}
        assert lc.post("t1", body).json() == {"Status": 200, "Message": "OK"}
    assert lc.health() == {"status": "ok", "hub": "disconnected", "outbox": before + 3}
