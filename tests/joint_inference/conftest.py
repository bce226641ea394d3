"""Digits models built once per session (from scikit-learn's bundled data; no download)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def digits_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from examples.joint_inference.digits.models import build_models

    return build_models(Path(tmp_path_factory.mktemp("digits-models")))
