"""Incremental-learning benchmark: deploy overhead per round and accuracy before and after each round.

Runs the digits example (:mod:`examples.incremental_learning.digits.run`) on the embedded control
plane: a model trained on 40 samples, then rounds of 300 labelled samples appended to the
Dataset index, each trained, evaluated and deployed by hot update. ``deploy_overhead_s`` is the
mean over rounds of (time from feeding the samples to the new model answering requests) minus
(time in the train and eval workers): the triggers, the GM <-> LC round trips, Pod starts and the
hot update. Goal: <= 2 s per round. ``--quick`` runs one round (``accuracy_round_2`` is then omitted).

``il_retry_backoff_factor``: the same job with a broken initial model, so every train attempt fails,
on a GM whose stage back-off base is shortened to :data:`RETRY_BASE` seconds. The gap before an
attempt is the time from the previous attempt's failure to its start (the back-off, plus the LC's
trigger check); the figure is the median ratio of successive gaps over the first four attempts.
CrashLoopBackOff doubles: goal >= 1.8.

Run: ``python -m bench.incremental [--quick] [--retry-only]``
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench._report import Report, add_report_options

RETRY_BASE = 2.0
ATTEMPTS = 4


def retry_gaps(workdir: Path, base: float = RETRY_BASE, attempts: int = ATTEMPTS,
               timeout: float = 240.0) -> list[float]:
    """Seconds from each failed train attempt to the next one's start, for the first ``attempts``."""
    from examples.incremental_learning.digits.prepare import feed, prepare
    from examples.incremental_learning.digits.run import JOB, Watcher, manifest, sedna
    from tests.support.procs import free_port

    state = workdir / "state"
    sedna("local", "up", "--nodes", "cloud,edge-0", state_dir=state,
          env={"SEDNA_GM_STAGE_RETRY_BASE_SECONDS": str(base)})
    try:
        layout = prepare(workdir / "data")
        layout.initial_model.write_bytes(b"not a model")  # every train attempt fails loading it
        (workdir / "retry.yaml").write_text(manifest(layout.root, free_port(), free_port()))
        sedna("apply", "-f", str(workdir / "retry.yaml"), state_dir=state)
        feed(layout, 0, 300)
        watcher, first_seen = Watcher(state), {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for cond in watcher.poll().get("conditions") or []:
                if cond["stage"] == "Train" and cond["type"] in ("Starting", "Failed"):
                    key = (cond["type"], cond.get("lastTransitionTime"), json.loads(cond.get("data") or "{}")
                           .get("round"))
                    first_seen.setdefault(key, time.monotonic())
            starts = sorted(t for (kind, *_), t in first_seen.items() if kind == "Starting")
            fails = sorted(t for (kind, *_), t in first_seen.items() if kind == "Failed")
            if len(starts) >= attempts + 1 and len(fails) >= attempts:
                return [start - fail for fail, start in zip(fails[:attempts], starts[1:attempts + 1], strict=True)]
            time.sleep(0.05)
        raise TimeoutError(f"{JOB}: fewer than {attempts + 1} train attempts within {timeout:.0f}s")
    finally:
        sedna("local", "down", state_dir=state, check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Incremental learning benchmark")
    parser.add_argument("--quick", action="store_true", help="one round instead of two")
    parser.add_argument("--retry-only", action="store_true", help="only il_retry_backoff_factor")
    add_report_options(parser)
    args = parser.parse_args(argv)
    from examples.incremental_learning.digits.run import run

    report = Report("incremental", args.quick, save=args.save_report)
    rounds = 1 if args.quick else 2
    if not args.retry_only:
        with tempfile.TemporaryDirectory(prefix="bench-il-") as workdir:
            result = run(Path(workdir), rounds=rounds, log=lambda line: print(line, file=sys.stderr, flush=True))
        overheads = [r["overhead_s"] for r in result["rounds"]]
        report.figure("deploy_overhead_s", round(sum(overheads) / len(overheads), 3), "s",
                      per_round=[round(o, 2) for o in overheads],
                      total_s=[round(r["total_s"], 2) for r in result["rounds"]],
                      worker_s=[round(r["worker_s"], 2) for r in result["rounds"]], goal="<= 2")
        for i, accuracy in enumerate(result["accuracy"]):
            report.figure(f"accuracy_round_{i}", round(accuracy, 4), "fraction", test_samples=540)
    with tempfile.TemporaryDirectory(prefix="bench-il-retry-") as workdir:
        gaps = retry_gaps(Path(workdir))
    ratios = [later / earlier for earlier, later in itertools.pairwise(gaps)]
    report.figure("il_retry_backoff_factor", round(statistics.median(ratios), 3), "ratio",
                  gaps_s=[round(g, 2) for g in gaps], base_s=RETRY_BASE, goal=">= 1.8")
    report.write_markdown({"deploy_overhead_s": "<= 2 s per round", "accuracy_round_1": "> accuracy_round_0",
                           "accuracy_round_2": ">= accuracy_round_1", "il_retry_backoff_factor": ">= 1.8"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
