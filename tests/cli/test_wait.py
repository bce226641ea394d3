"""``sedna wait`` returns as soon as the condition holds and fails with a clear error when time runs out."""

from __future__ import annotations

import threading
import time

import pytest

from gm.cluster.interface import MODEL
from sedna.cli._errors import CliError
from sedna.cli.waiting import parse_duration, parse_for
from tests.cli.conftest import Api, model

pytestmark = pytest.mark.processes


def later(seconds: float, action) -> threading.Thread:
    def run() -> None:
        time.sleep(seconds)
        action()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def ready(api: Api, name: str, status: str = "True") -> None:
    api.store.patch_status(MODEL, "default", name, {"conditions": [{"type": "Ready", "status": status}]})


def test_wait_returns_when_the_condition_becomes_true(api: Api) -> None:
    api.store.create(model("m"))
    ready(api, "m", "False")
    later(1.0, lambda: ready(api, "m"))
    started = time.monotonic()
    out = api.sedna("wait", "model/m", "--for=condition=Ready", "--timeout", "20s")
    elapsed = time.monotonic() - started
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "model/m condition met"
    assert 1.0 <= elapsed < 10.0


def test_wait_times_out_naming_the_object_and_what_it_shows(api: Api) -> None:
    api.store.create(model("m"))
    ready(api, "m", "False")
    started = time.monotonic()
    out = api.sedna("wait", "models", "m", "--for", "condition=Ready", "--timeout", "1s")
    assert out.returncode == 1
    assert out.stderr.strip() == ("error: timed out after 1s waiting for condition Ready=True on models/m "
                                  "(it shows conditions Ready=False)")
    assert time.monotonic() - started < 15.0


def test_wait_for_delete_and_for_a_jsonpath_value(api: Api) -> None:
    api.store.create(model("a"))
    api.store.create(model("b"))
    later(0.5, lambda: api.store.delete(MODEL, "default", "a"))
    later(0.5, lambda: api.store.patch_status(MODEL, "default", "b", {"phase": "Served"}))
    gone = api.sedna("wait", "model/a", "--for=delete", "--timeout=20s")
    assert (gone.returncode, gone.stdout.strip()) == (0, "model/a deleted"), gone.stderr
    served = api.sedna("wait", "model/b", "--for=jsonpath={.status.phase}=Served", "--timeout=20s")
    assert (served.returncode, served.stdout.strip()) == (0, "model/b condition met"), served.stderr


def test_wait_for_a_missing_object_fails_at_once(api: Api) -> None:
    out = api.sedna("wait", "ji/nope", "--for=condition=Ready")
    assert out.returncode == 1
    assert out.stderr.strip() == "error: jointinferenceservice 'nope' not found in namespace 'default'"


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30.0), ("2m", 120.0), ("1h", 3600.0), ("250ms", 0.25),
                                               ("7", 7.0)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["Ready", "condition=", "jsonpath=.status", "jsonpath={status}"])
def test_bad_for_is_named(bad: str) -> None:
    with pytest.raises(CliError, match="--for: expected"):
        parse_for(bad)


def test_condition_matching_uses_the_latest_entry_of_a_type() -> None:
    cond = parse_for("condition=Running")
    history = {"status": {"conditions": [{"type": "Running", "status": "True"},
                                         {"type": "Running", "status": "False"}]}}
    assert not cond.met(history)
    assert parse_for("condition=running=false").met(history)
