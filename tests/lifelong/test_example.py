"""The digits-cameras example as plain processes ends by itself, serves each new site, and cleans up."""

from __future__ import annotations

from pathlib import Path

import psutil

from examples.lifelong_learning.digits_cameras.run import run


def test_one_new_site_is_detected_learned_published_and_served(tmp_path: Path) -> None:
    lines: list[str] = []
    result = run(tmp_path / "run", sites=1, log=lines.append)
    [site] = result["sites"]
    assert site["site"] == "rotated" and site["version"] >= 2 and site["accuracy"] > 0.75
    assert site["still_unseen"] < 0.1 and site["flagged"] < 0.25 * site["total"]
    assert result["served_while_kb_down"]["version"] == site["version"]
    assert result["publish_to_serving_s"][0] < 10
    mine = [p for p in psutil.Process().children(recursive=True) if p.is_running()
            and p.status() != psutil.STATUS_ZOMBIE]
    assert mine == []
