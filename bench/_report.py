"""Shared output of every benchmark: one JSON line per figure, and a markdown report."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any


class Report:
    """Collects figures, prints each as a JSON line at once, writes ``bench/reports/<bench>.md`` at the end."""

    def __init__(self, bench: str, quick: bool) -> None:
        self.bench = bench
        self.quick = quick
        self.rows: list[dict[str, Any]] = []

    def figure(self, metric: str, value: Any, unit: str, **extra: Any) -> None:
        row = {"bench": self.bench, "metric": metric, "value": value, "unit": unit, **extra}
        self.rows.append(row)
        print(json.dumps(row), flush=True)

    def write_markdown(self, goals: dict[str, str] | None = None) -> Path:
        out = Path(__file__).resolve().parent / "reports" / f"{self.bench}.md"
        out.parent.mkdir(exist_ok=True)
        lines = [f"# bench.{self.bench}", "",
                 f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.machine()}, "
                 f"Python {platform.python_version()}{' (--quick)' if self.quick else ''}.", "",
                 "| metric | value | unit | goal | details |", "|---|---|---|---|---|"]
        for row in self.rows:
            details = ", ".join(f"{k}={v}" for k, v in row.items() if k not in ("bench", "metric", "value", "unit"))
            value = f"{row['value']:.4g}" if isinstance(row["value"], float) else row["value"]
            goal = (goals or {}).get(row["metric"], "")
            lines.append(f"| {row['metric']} | {value} | {row['unit']} | {goal} | {details} |")
        out.write_text("\n".join(lines) + "\n")
        return out
