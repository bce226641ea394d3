"""The CLI as a shell sees it: --version, one error style, help that lists short names, completion scripts."""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

pytestmark = pytest.mark.processes

ROOT = Path(__file__).resolve().parents[2]


def sedna(*args: str, code: str = "") -> subprocess.CompletedProcess[str]:
    """Run the CLI (``code`` runs first in the same interpreter, e.g. to hide a package)."""
    program = f"import sys\n{code}\nfrom sedna.cli import main\nsys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", program, *args], capture_output=True, text=True, timeout=60,
                          cwd=ROOT)


def test_version_comes_from_package_metadata() -> None:
    out = sedna("--version")
    assert (out.returncode, out.stdout.strip()) == (0, f"sedna-py {metadata.version('sedna-py')}")


def test_unknown_kind_lists_the_short_names() -> None:
    out = sedna("get", "nosuchkind", "--server", "http://127.0.0.1:9", "--token", "x")
    assert out.returncode == 1
    assert out.stderr.startswith("error: unknown resource type 'nosuchkind' (known: datasets, models, "
                                 "jointinferenceservices (ji), federatedlearningjobs (fl),")


def test_get_help_lists_kinds_with_short_names() -> None:
    text = sedna("get", "--help").stdout
    assert "jointinferenceservices     ji       JointInferenceService" in text
    assert "-o {wide,yaml,json,name}" in text


def test_usage_errors_use_the_same_prefix() -> None:
    out = sedna("get", "ji", "-o", "xml")
    assert out.returncode == 2
    assert "error: argument -o/--output: invalid choice: 'xml'" in out.stderr
    assert "Traceback" not in out.stderr


def test_an_unreachable_api_is_one_line_not_a_traceback() -> None:
    out = sedna("get", "ji", "--server", "http://127.0.0.1:9", "--token", "x")
    assert out.returncode == 1
    assert out.stderr.startswith("error: cannot reach the API at http://127.0.0.1:9")
    assert len(out.stderr.strip().splitlines()) == 1


def test_a_missing_optional_package_names_what_to_install() -> None:
    out = sedna("completion", "bash", code="sys.modules['shtab'] = None")
    assert out.returncode == 1
    assert out.stderr.strip() == ("error: `sedna completion` needs the Python package 'shtab', which is not "
                                  "installed: pip install 'shtab'")
    out = sedna("device", "simulate", "--service", "digits", "--broker", "127.0.0.1:9",
                code="sys.modules['sklearn'] = None")
    assert out.returncode == 1
    assert out.stderr.strip() == "error: the device simulator needs scikit-learn: pip install scikit-learn"


def test_bash_completion_sources_cleanly_and_completes_commands_kinds_and_formats() -> None:
    script = sedna("completion", "bash").stdout
    probe = r"""
set -eu
source /dev/stdin
complete -p sedna
comp() { COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMPREPLY=(); _shtab_sedna; echo "${COMPREPLY[*]}"; }
comp sedna wa
comp sedna get federated
comp sedna get ji -o ""
comp sedna completion ""
"""
    out = subprocess.run(["bash", "-c", probe], input=script, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    lines = out.stdout.splitlines()
    assert lines[0] == "complete -o bashdefault -F _shtab_sedna sedna"
    assert lines[1:] == ["wait", "federatedlearningjob federatedlearningjobs", "wide yaml json name", "bash zsh"]


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed (apt-get install zsh)")
def test_zsh_completion_loads_under_compinit(tmp_path: Path) -> None:
    script = tmp_path / "_sedna"
    script.write_text(sedna("completion", "zsh").stdout)
    probe = f'autoload -Uz compinit && compinit -u -d {tmp_path}/zcompdump && eval "$(<{script})" && ' \
            "print -r -- $_comps[sedna]"
    out = subprocess.run(["zsh", "-f", "-c", probe], capture_output=True, text=True, timeout=30)
    assert (out.returncode, out.stdout.strip(), out.stderr) == (0, "_shtab_sedna", "")
