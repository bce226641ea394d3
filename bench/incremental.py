"""Incremental-learning benchmark: deploy overhead per round and accuracy before and after each round.

Runs the digits example (:mod:`examples.incremental_learning.digits.run`) on the embedded control
plane: a model trained on 40 samples, then rounds of 300 labelled samples appended to the
Dataset index, each trained, evaluated and deployed by hot update. ``deploy_overhead_s`` is the
mean over rounds of (time from feeding the samples to the new model answering requests) minus
(time in the train and eval workers): the triggers, the GM <-> LC round trips, Pod starts and the
hot update. Goal: <= 2 s per round. ``--quick`` runs one round (``accuracy_round_2`` is then omitted).

Run: ``python -m bench.incremental [--quick]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bench._report import Report, add_report_options


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Incremental learning benchmark")
    parser.add_argument("--quick", action="store_true", help="one round instead of two")
    add_report_options(parser)
    args = parser.parse_args(argv)
    from examples.incremental_learning.digits.run import run

    report = Report("incremental", args.quick, save=args.save_report)
    rounds = 1 if args.quick else 2
    with tempfile.TemporaryDirectory(prefix="bench-il-") as workdir:
        result = run(Path(workdir), rounds=rounds, log=lambda line: print(line, file=sys.stderr, flush=True))
    overheads = [r["overhead_s"] for r in result["rounds"]]
    report.figure("deploy_overhead_s", round(sum(overheads) / len(overheads), 3), "s",
                  per_round=[round(o, 2) for o in overheads],
                  total_s=[round(r["total_s"], 2) for r in result["rounds"]],
                  worker_s=[round(r["worker_s"], 2) for r in result["rounds"]], goal="<= 2")
    for i, accuracy in enumerate(result["accuracy"]):
        report.figure(f"accuracy_round_{i}", round(accuracy, 4), "fraction", test_samples=540)
    report.write_markdown({"deploy_overhead_s": "<= 2 s per round", "accuracy_round_1": "> accuracy_round_0",
                           "accuracy_round_2": ">= accuracy_round_1"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
