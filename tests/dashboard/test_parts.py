"""The dashboard's parts on their own: session cookies, safe redirects, JI samples, change routing."""

from __future__ import annotations

import asyncio
import time

import pytest

from gm.cluster.interface import JOINT_INFERENCE_SERVICE, MODEL
from gm.cluster.local.store import LocalStore
from gm.dashboard import views
from gm.dashboard.auth import SESSION_SECONDS, Auth, safe_next
from gm.dashboard.live import Live, Subscriber


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_cookie_expires_and_cannot_be_forged_or_reused_with_another_token() -> None:
    clock = Clock()
    auth = Auth("secret", "/dashboard", clock)
    cookie = auth.session()
    assert auth.session_ok(cookie) and "secret" not in cookie
    assert not Auth("other", "/dashboard", clock).session_ok(cookie)
    expiry, _, signature = cookie.partition(".")
    assert not auth.session_ok(f"{int(expiry) + 3600}.{signature}")  # a longer life needs a new signature
    clock.now += SESSION_SECONDS + 1
    assert not auth.session_ok(cookie)


@pytest.mark.parametrize(("target", "expected"), [
    ("/dashboard/kinds/models", "/dashboard/kinds/models"), ("//evil.example/x", "/dashboard/"),
    ("https://evil.example/", "/dashboard/"), ("/metrics", "/dashboard/"), (None, "/dashboard/"),
    ("/dashboard/\\evil", "/dashboard/")])
def test_login_redirects_stay_inside_the_dashboard(target: str | None, expected: str) -> None:
    assert safe_next(target, "/dashboard") == expected


def ji() -> dict:
    return {"apiVersion": "sedna.io/v1alpha1", "kind": "JointInferenceService",
            "metadata": {"name": "ji", "namespace": "default"}, "spec": {}}


def test_ji_samples_are_kept_per_change_of_the_counters_only() -> None:
    store = LocalStore(":memory:")
    clock = Clock()
    live = Live(store, kinds=(JOINT_INFERENCE_SERVICE,), clock=clock)
    live.start()
    try:
        store.create(ji())
        for count, phase in ((10, "Running"), (10, "Ready"), (12, "Ready")):  # the phase alone adds no sample
            clock.now += 5
            store.patch_status(JOINT_INFERENCE_SERVICE, "default", "ji", {"phase": phase, "inference": {
                "count": count, "offloadRatio": 0.1}})
        for _ in range(200):  # the informer's watch delivers the changes on its own thread
            current = live.get("jointinferenceservices", "default", "ji") or {}
            if ((current.get("status") or {}).get("inference") or {}).get("count") == 12:
                break
            time.sleep(0.05)
        assert [(s.count, s.offload_ratio) for s in live.samples("default", "ji")] == [(10, 0.1), (12, 0.1)]
    finally:
        live.stop()
        store.close()


def test_a_change_marks_only_the_regions_of_a_page_it_touches() -> None:
    loop = asyncio.new_event_loop()
    try:
        page = views.view_for("/jointinferenceservices/default/ji", Live(LocalStore(":memory:"), kinds=()))
        assert page is not None
        subscriber = Subscriber(page.interest, loop)
        subscriber.offer("jointinferenceservices", {"metadata": {"namespace": "default", "name": "other"}}, 1)
        subscriber.offer("models", {"metadata": {"namespace": "default", "name": "ji"}}, 2)
        assert subscriber.take() == set()
        subscriber.offer("jointinferenceservices", {"metadata": {"namespace": "default", "name": "ji"}}, 3)
        subscriber.offer("pods", {"metadata": {"namespace": "default", "name": "p", "labels": {
            "jointinferenceservice.sedna.io/name": "ji"}}}, 4)
        assert subscriber.take() == {"summary", "detail", "workers"}
    finally:
        loop.close()


def test_unknown_pages_have_no_view() -> None:
    live = Live(LocalStore(":memory:"), kinds=(MODEL,))
    assert views.view_for("/kinds/secrets", live) is None
    assert views.view_for("/pods/default/x", live) is None
    assert views.view_for("/a/b/c/d", live) is None
    assert views.view_for("/", live) is not None
