"""Shared output of every benchmark: one JSON line per figure, and a markdown report.

A run writes its report into an untracked directory, ``$SEDNA_BENCH_OUT`` or else ``bench/out/``
(git-ignored), so ``make bench`` never rewrites a committed file. The summaries committed in
``bench/reports/`` change only on purpose: ``python -m bench.<name> --save-report`` writes the
report there as well.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
SAVED_DIR = BENCH_DIR / "reports"


def output_dir() -> Path:
    """Where this run's reports go: ``$SEDNA_BENCH_OUT``, else ``bench/out/``."""
    return Path(os.environ.get("SEDNA_BENCH_OUT") or BENCH_DIR / "out")


def add_report_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--save-report`` to a benchmark's command line."""
    parser.add_argument("--save-report", action="store_true",
                        help=f"also write the report to {SAVED_DIR.relative_to(BENCH_DIR.parent)}/ "
                             "(the committed summary; default: only $SEDNA_BENCH_OUT or bench/out/)")


def write_report(bench: str, text: str, save: bool = False) -> Path:
    """Write ``<bench>.md`` into :func:`output_dir` (and ``bench/reports/`` when ``save``); the path written."""
    out = output_dir() / f"{bench}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    if save:
        SAVED_DIR.mkdir(exist_ok=True)
        (SAVED_DIR / f"{bench}.md").write_text(text)
    return out


class Report:
    """Collects figures, prints each as a JSON line at once, writes ``<bench>.md`` at the end."""

    def __init__(self, bench: str, quick: bool, save: bool = False) -> None:
        self.bench = bench
        self.quick = quick
        self.save = save
        self.rows: list[dict[str, Any]] = []

    def figure(self, metric: str, value: Any, unit: str, **extra: Any) -> None:
        row = {"bench": self.bench, "metric": metric, "value": value, "unit": unit, **extra}
        self.rows.append(row)
        print(json.dumps(row), flush=True)

    def write_markdown(self, goals: dict[str, str] | None = None) -> Path:
        lines = [f"# bench.{self.bench}", "",
                 f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.machine()}, "
                 f"Python {platform.python_version()}{' (--quick)' if self.quick else ''}.", "",
                 "| metric | value | unit | goal | details |", "|---|---|---|---|---|"]
        for row in self.rows:
            details = ", ".join(f"{k}={v}" for k, v in row.items() if k not in ("bench", "metric", "value", "unit"))
            value = f"{row['value']:.4g}" if isinstance(row["value"], float) else row["value"]
            goal = (goals or {}).get(row["metric"], "")
            lines.append(f"| {row['metric']} | {value} | {row['unit']} | {goal} | {details} |")
        return write_report(self.bench, "\n".join(lines) + "\n", self.save)
