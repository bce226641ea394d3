"""The dashboard in a real headless Chromium against a real GM: login, no console errors, live updates.

The GM is ``python -m gm`` (local backend, dry run); resources come from the examples through
``sedna apply``; status changes are written through the API's status subresource, as the hub
writes the reports it receives; one real LC connects to the hub for the nodes table.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.dashboard.browser import Console
from tests.dashboard.conftest import EDGE_TOKEN, GM, ROOT
from tests.hub.harness import LC, ji_report, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.processes]
JI_YAML = ROOT / "examples/joint_inference/digits/resources.yaml"
FL_YAML = ROOT / "examples/federated_learning/digits/job.yaml"


@pytest.fixture(scope="module")
def applied(gm: GM) -> GM:
    for manifest in (JI_YAML, FL_YAML):
        out = gm.sedna("apply", "-f", str(manifest))
        assert out.returncode == 0, out.stderr
    gm.patch_status("jointinferenceservices", "digits", {"inference": {
        "count": 1200, "hardExamples": 180, "offloadRatio": 0.15, "cloudFailures": 2, "fallbacks": 2,
        "updateTime": "2024-01-01T00:00:00Z"}})
    gm.patch_status("federatedlearningjobs", "digits-fl", {"currentRound": 4, "latestMetrics": {"accuracy": 0.91},
                                                           "roundHistory": [
        {"round": r, "clients": c, "failures": 3 - c, "metrics": {"accuracy": a, "loss": lo}}
        for r, c, a, lo in ((1, 3, 0.61, 1.2), (2, 2, 0.78, 0.7), (3, 3, 0.86, 0.5), (4, 3, 0.91, 0.3))]})
    return gm


@pytest.fixture
def page(browser: Any, applied: GM) -> Iterator[Any]:
    page = browser.new_page()
    try:
        yield page
    finally:
        page.close()


def login(page: Any, gm: GM, path: str = "/") -> None:
    page.goto(gm.dashboard.rstrip("/") + path)
    if "/login" in page.url:
        page.fill("#token", gm.token)
        page.click("button[type=submit]")
    page.wait_for_selector("#live.on", timeout=15000)


def test_unauthenticated_requests_are_refused(applied: GM, browser: Any) -> None:
    base = applied.dashboard.rstrip("/")
    with httpx.Client(follow_redirects=False, timeout=10) as http:
        page = http.get(f"{base}/jointinferenceservices/default/digits")
        assert page.status_code == 303 and "/login?next=" in page.headers["location"]
        assert "1200" not in page.text
        assert http.get(f"{base}/stream?page=/").status_code == 401
        assert http.get(f"{base}/api/nodes").status_code == 401
        with httpx.Client(follow_redirects=False, timeout=10, cookies={"sedna_dashboard": "9999999999.00ff"}) as forger:
            assert forger.get(f"{base}/api/nodes").status_code == 401
        wrong = http.post(f"{base}/login", data={"token": "not-the-token", "next": "/dashboard/"})
        assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
        bearer = http.get(f"{base}/api/nodes", headers={"Authorization": f"Bearer {applied.token}"})
        assert bearer.status_code == 200
    browser.clear_cookies()
    tab = browser.new_page()
    try:
        tab.goto(f"{base}/jointinferenceservices/default/digits")
        assert "/dashboard/login" in tab.url
        assert tab.query_selector('[data-figure="Inferences"]') is None
    finally:
        tab.close()


def test_login_sets_a_strict_httponly_cookie_and_keeps_the_token_out_of_urls(browser: Any, applied: GM) -> None:
    context = browser  # the module's persistent profile: log out first so the form shows
    page = context.new_page()
    try:
        seen: list[str] = []
        page.on("request", lambda r: seen.append(r.url))
        page.goto(applied.dashboard.rstrip("/") + "/kinds/federatedlearningjobs")
        if "/login" not in page.url:
            page.click(".logout button")
            page.goto(applied.dashboard.rstrip("/") + "/kinds/federatedlearningjobs")
        assert "/login" in page.url
        page.fill("#token", applied.token)
        page.click("button[type=submit]")
        page.wait_for_selector("#live.on")
        assert page.url.endswith("/dashboard/kinds/federatedlearningjobs")
        assert not any(applied.token in url for url in seen)
        cookie = next(c for c in context.cookies() if c["name"] == "sedna_dashboard")
        assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (True, "Strict", "/dashboard/")
        assert applied.token not in cookie["value"]
        assert page.evaluate("document.cookie") == ""
    finally:
        page.close()


@pytest.mark.parametrize("path", ["/", "/kinds/jointinferenceservices", "/jointinferenceservices/default/digits",
                                  "/federatedlearningjobs/default/digits-fl", "/kinds/incrementallearningjobs"])
def test_pages_load_with_no_console_errors_under_a_strict_csp(page: Any, applied: GM, path: str) -> None:
    console = Console(page)
    login(page, applied, path)
    response = page.goto(applied.dashboard.rstrip("/") + path)
    page.wait_for_selector("#live.on")
    assert response.status == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert "unsafe-inline" not in response.headers["content-security-policy"]
    assert console.problems == []


def cells(row: Any) -> dict[str, str]:
    return {td.get_attribute("data-col"): td.inner_text().strip() for td in row.query_selector_all("td[data-col]")}


def test_numbers_match_sedna_get(page: Any, applied: GM) -> None:
    login(page, applied, "/kinds/jointinferenceservices")
    shown = cells(page.wait_for_selector('tr[data-name="digits"]'))
    out = applied.sedna("get", "ji")
    assert out.returncode == 0, out.stderr
    header, row = (re.split(r"\s{2,}", line.strip()) for line in out.stdout.strip().splitlines()[:2])
    cli = dict(zip(header, row, strict=True))
    for column in ("PHASE", "READY", "OFFLOAD", "INFERENCES"):
        assert shown[column] == cli[column], column
    assert (shown["OFFLOAD"], shown["INFERENCES"]) == ("0.15", "1200")

    login(page, applied, "/kinds/federatedlearningjobs")
    fl = cells(page.wait_for_selector('tr[data-name="digits-fl"]'))
    out = applied.sedna("get", "fl", "digits-fl")
    header, row = (re.split(r"\s{2,}", line.strip()) for line in out.stdout.strip().splitlines()[:2])
    assert (fl["ROUND"], fl["ACCURACY"]) == (dict(zip(header, row, strict=True))["ROUND"], "0.91")


def test_a_status_change_appears_without_a_reload(page: Any, applied: GM) -> None:
    login(page, applied, "/jointinferenceservices/default/digits")
    page.evaluate("window.__notReloaded = true")
    before = page.inner_text('[data-figure="Inferences"]')
    started = time.monotonic()
    applied.patch_status("jointinferenceservices", "digits", {"inference": {"count": 4321, "offloadRatio": 0.25}})
    expect(page.locator('[data-figure="Inferences"]')).to_have_text("4321", timeout=10000)
    assert time.monotonic() - started < 5
    assert page.inner_text('[data-figure="Offload ratio"]') == "0.25"
    assert page.evaluate("window.__notReloaded") is True
    assert before != "4321"
    assert len(page.query_selector_all("#detail svg.chart circle.dot")) >= 2  # the count over time: two samples


def test_fl_page_draws_the_curve_and_participants_per_round(page: Any, applied: GM) -> None:
    login(page, applied, "/federatedlearningjobs/default/digits-fl")
    titles = [t.text_content() for t in page.query_selector_all("#detail svg title")]
    assert "accuracy 2: 0.78" in titles and "loss 4: 0.3" in titles
    assert [t for t in titles if t.startswith("clients")] == ["clients 1: 3", "clients 2: 2", "clients 3: 3",
                                                              "clients 4: 3"]
    page.evaluate("window.__notReloaded = true")
    applied.patch_status("federatedlearningjobs", "digits-fl", {"roundHistory": [
        {"round": 5, "clients": 1, "failures": 2, "metrics": {"accuracy": 0.93, "loss": 0.2}}]})
    page.wait_for_selector("#detail svg title >> text=clients 5: 1", state="attached", timeout=10000)
    assert page.evaluate("window.__notReloaded") is True


def test_nodes_show_the_hub_session_of_a_real_lc_and_its_reports_reach_the_ji_page(
        page: Any, applied: GM, tmp_path: Path) -> None:
    login(page, applied, "/")
    row = 'tr[data-node="edge-0"] td.hub'
    assert page.inner_text(row) == "never connected"
    lc = LC(tmp_path, applied.hub, "edge-0", EDGE_TOKEN).start()
    try:
        wait_until(lc.connected, timeout=30, message="the LC to connect")
        expect(page.locator(row)).to_have_text("connected", timeout=10000)
        # the LC takes reports only about objects it holds
        wait_until(lambda: "jointinferenceservice/default/digits" in lc.objects(), message="the service on the LC")
        reply = lc.post("digits-edge", ji_report("digits-edge", "digits", 5000, 600))
        assert reply.status_code < 300, reply.text
        wait_until(lambda: "5000" in applied.sedna("get", "ji", "digits").stdout, timeout=30,
                   message="the report in the status")
        node = page.locator('tr[data-node="edge-0"] td')
        expect(node.nth(6)).to_have_text(re.compile(r"^[1-9][0-9]*$"), timeout=10000)  # REPORTS this session
        expect(node.nth(5)).to_contain_text("ago")  # LAST REPORT
    finally:
        lc.stop()
    expect(page.locator(row)).to_have_text("disconnected", timeout=15000)
    login(page, applied, "/jointinferenceservices/default/digits")
    assert page.inner_text('[data-figure="Inferences"]') == "5000"
