"""The lifelong packages' public surface is pinned, and importing the SDK side stays cheap."""

from __future__ import annotations

import subprocess
import sys


def test_exported_names_are_pinned() -> None:
    import sedna.algorithms.lifelong as algorithms
    import sedna.core.lifelong_learning as core
    import sedna.service.kb as kb

    assert core.__all__ == ["OWNER_KIND", "LifelongLearning"]
    assert kb.__all__ == ["KBClient", "KBServer", "KBSettings", "LocalKB", "open_source"]
    assert algorithms.__all__ == sorted(algorithms.__all__) and "UpdateStrategyDefault" in algorithms.__all__


def test_importing_the_lifelong_sdk_loads_no_server_or_database_stack() -> None:
    code = ("import sys, sedna.core.lifelong_learning, sedna.service.kb; "
            "print(sorted(m for m in ('fastapi', 'uvicorn', 'psycopg', 'onnx', 'onnxruntime', 'jsonschema', 'httpx') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
