"""The link between LC and GM: TLS, mutual TLS, and dead links detected in bounded time."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.hub import certs
from tests.hub.harness import GM, LC, start_all, wait_until

pytestmark = pytest.mark.processes

PING = 1.0
"""The harness LCs' ``--ping-interval``: 3 silent intervals drop the link."""
BACKOFF_MAX = 1.0
"""The harness LCs' ``--backoff-max``."""
SLACK = 2.5
"""Scheduling allowance on a loaded test machine, seconds."""


def test_lc_connects_to_a_tls_gm_it_verifies_with_the_ca(tmp_path: Path) -> None:
    ca = certs.authority(tmp_path, "hub-ca")
    server = certs.issue(ca, tmp_path, "gm", server=True)
    gm = GM(tmp_path, {"edge-0": "t0", "edge-1": "t1"}, "--tls-cert", str(server.cert),
            "--tls-key", str(server.key)).start()
    other_ca = certs.authority(tmp_path, "other-ca")
    verified, fooled = start_all(LC(tmp_path, gm.address, "edge-0", "t0", "--tls-ca", str(ca.pem)),
                                 LC(tmp_path, gm.address, "edge-1", "t1", "--tls-ca", str(other_ca.pem)))
    try:
        wait_until(verified.connected, message="LC connected over TLS")
        assert gm.metric("sedna_edgehub_streams") == 1
        wait_until(lambda: "UNAVAILABLE" in fooled.log.read_text(), message="the LC trusting another CA to fail")
        assert not fooled.connected()
        assert "UNAVAILABLE" in fooled.log.read_text()
    finally:
        verified.stop()
        fooled.stop()
        gm.stop()


def test_mutual_tls_admits_a_client_certificate_from_the_ca_and_refuses_others(tmp_path: Path) -> None:
    ca = certs.authority(tmp_path, "hub-ca")
    rogue_ca = certs.authority(tmp_path, "rogue-ca")
    server = certs.issue(ca, tmp_path, "gm", server=True)
    good = certs.issue(ca, tmp_path, "edge-0", server=False)
    rogue = certs.issue(rogue_ca, tmp_path, "edge-1", server=False)
    gm = GM(tmp_path, {"edge-0": "t0", "edge-1": "t1", "edge-2": "t2"}, "--tls-cert", str(server.cert),
            "--tls-key", str(server.key), "--client-ca", str(ca.pem)).start()
    tls = ("--tls-ca", str(ca.pem))
    admitted, wrong_cert, no_cert = start_all(
        LC(tmp_path, gm.address, "edge-0", "t0", *tls, "--tls-cert", str(good.cert), "--tls-key", str(good.key)),
        LC(tmp_path, gm.address, "edge-1", "t1", *tls, "--tls-cert", str(rogue.cert), "--tls-key", str(rogue.key)),
        LC(tmp_path, gm.address, "edge-2", "t2", *tls))
    try:
        wait_until(admitted.connected, message="LC with the CA's client certificate connected")
        wait_until(lambda: all("UNAVAILABLE" in lc.log.read_text() for lc in (wrong_cert, no_cert)),
                   message="the LCs without a certificate from the CA to fail their handshakes")
        assert not wrong_cert.connected() and not no_cert.connected()
        assert gm.metric("sedna_edgehub_streams") == 1
        # Refused in the handshake, before any token is looked at.
        assert gm.metric("sedna_edgehub_auth_failures_total") == 0
        assert "UNAVAILABLE" in wrong_cert.log.read_text()
        assert "UNAVAILABLE" in no_cert.log.read_text()
    finally:
        for lc in (admitted, wrong_cert, no_cert):
            lc.stop()
        gm.stop()


def _seconds_until(probe: object, timeout: float, what: str) -> float:
    started = time.monotonic()
    wait_until(probe, timeout=timeout, message=what)  # type: ignore[arg-type]
    return time.monotonic() - started


def test_a_frozen_peer_is_detected_in_bounded_time_and_the_link_comes_back(tmp_path: Path) -> None:
    dead_after = 3.0
    gm = GM(tmp_path, {"edge-0": "t0"}, "--dead-after", str(dead_after)).start()
    lc = LC(tmp_path, gm.address, "edge-0", "t0").start()
    try:
        wait_until(lc.connected, message="LC connected")

        # The GM stops answering: the LC's pings go unanswered; 3 intervals later it drops the link.
        os.kill(gm.proc.pid, signal.SIGSTOP)
        try:
            lost = _seconds_until(lambda: not lc.connected(), 3 * PING + SLACK + 5, "LC to notice the frozen GM")
        finally:
            os.kill(gm.proc.pid, signal.SIGCONT)
        assert lost <= 3 * PING + SLACK
        back = _seconds_until(lc.connected, BACKOFF_MAX + SLACK + 5, "LC to reconnect to the thawed GM")
        assert back <= BACKOFF_MAX + SLACK

        # The LC stops talking: the GM drops its stream after dead_after (checked once a second).
        os.kill(lc.proc.pid, signal.SIGSTOP)
        try:
            dropped = _seconds_until(lambda: gm.metric("sedna_edgehub_streams") == 0, dead_after + 1 + SLACK + 5,
                                     "GM to drop the frozen LC's stream")
        finally:
            os.kill(lc.proc.pid, signal.SIGCONT)
        assert dropped <= dead_after + 1 + SLACK
        wait_until(lc.connected, timeout=BACKOFF_MAX + 3 * PING + SLACK + 5, message="LC to reconnect after thawing")
        assert gm.metric("sedna_edgehub_streams") == 1
    finally:
        lc.stop()
        gm.stop()
