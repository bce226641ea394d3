"""The suite's own rules hold: process tests are marked, nothing is left running or in the temp dir.

Each case runs a small pytest session in a child process with the plugins of ``tests/support``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.processes
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    pytester.makeconftest('pytest_plugins = ["tests.support.process_guard", "tests.support.tmp_guard"]\n')
    pytester.makeini("[pytest]\nmarkers =\n    processes: starts child processes\n")
    return pytester


def test_an_unmarked_test_that_starts_a_process_fails_naming_the_marker(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import subprocess, sys

        def test_quiet():
            assert True

        def test_sneaky():
            subprocess.run([sys.executable, "-c", "pass"], check=True)
        """
    )
    result = inner.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_sneaky*",
                                 "*started 1 process(es) but is not marked @pytest.mark.processes*"])


def test_a_marked_test_may_start_processes_but_not_leave_them_running(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import subprocess, sys
        import pytest

        @pytest.mark.processes
        def test_tidy():
            subprocess.run([sys.executable, "-c", "pass"], check=True)

        @pytest.mark.processes
        def test_leaky():
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        """
    )
    result = inner.runpytest_subprocess("-p", "no:cacheprovider", "-W", "ignore::ResourceWarning")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_leaky*", "*left 1 child process(es) running*sleep(60)*"])


def test_a_temporary_directory_left_behind_fails_the_session(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import tempfile

        def test_forgets_to_clean_up():
            tempfile.mkdtemp(prefix="forgotten-")
        """
    )
    result = inner.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*tests left 1 entries in the temporary directory (now removed): forgotten-*"])


def test_what_a_shared_fixtures_process_starts_during_a_test_is_the_fixtures(inner: pytest.Pytester) -> None:
    # a browser started by a module fixture opens a renderer for a test's tab and keeps it: not the test's to stop
    inner.makepyfile(
        """
        import os, signal, subprocess, sys
        import pytest

        SERVER = ("import subprocess, sys\\n"
                  "for line in sys.stdin:\\n"
                  "    subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\\n"
                  "    print('started', flush=True)\\n")

        @pytest.fixture(scope="module")
        def server():
            proc = subprocess.Popen([sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    text=True, start_new_session=True)
            yield proc
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

        @pytest.mark.processes
        def test_asks_the_server_for_a_helper(server):
            server.stdin.write("go\\n")
            server.stdin.flush()
            assert server.stdout.readline() == "started\\n"

        @pytest.mark.processes
        def test_then_another(server):
            assert server.poll() is None
        """
    )
    result = inner.runpytest_subprocess("-p", "no:cacheprovider", "-W", "ignore::ResourceWarning")
    result.assert_outcomes(passed=2)
