"""Lifelong-learning benchmark: Ianvs' metrics over the digits-cameras stream, against a global model.

Learning figures come from :mod:`examples.lifelong_learning.digits_cameras.simulate` (the SDK's
train / update / inference on local KB copies, one process): five camera sites, four of them
arriving as unseen tasks, 700 edge samples per arrival. The baseline retrains one global model
on every labelled sample the cloud has received so far (the same samples the knowledge base got).
``kb_publish_to_serving_s`` comes from the plain-process example
(:mod:`examples.lifelong_learning.digits_cameras.run`): time from publishing a KB version on the
KB server to the inference worker answering with it (it polls every 0.5 s).

Goals: ``bwt >= baseline_bwt``, ``forget_rate <= baseline_forget_rate``, ``cloud_sample_share <= 0.2``,
``unseen_precision >= 0.9``, ``unseen_recall >= 0.8``, ``kb_publish_to_serving_s <= 2``.
``--quick`` brings one site online in the process run instead of four (the simulation is the same).

Run: ``python -m bench.lifelong [--quick]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bench._report import Report

GOALS = {"bwt": ">= baseline_bwt", "forget_rate": "<= baseline_forget_rate", "cloud_sample_share": "<= 0.2",
         "unseen_precision": ">= 0.9", "unseen_recall": ">= 0.8", "kb_publish_to_serving_s": "<= 2 s"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Lifelong learning benchmark")
    parser.add_argument("--quick", action="store_true", help="one site in the process run instead of four")
    args = parser.parse_args(argv)
    from examples.lifelong_learning.digits_cameras.run import run
    from examples.lifelong_learning.digits_cameras.simulate import simulate

    report = Report("lifelong", args.quick)
    with tempfile.TemporaryDirectory(prefix="bench-ll-") as tmp:
        result = simulate(Path(tmp) / "sim", log=lambda line: print(line, file=sys.stderr, flush=True))
        served = run(Path(tmp) / "procs", sites=1 if args.quick else 4,
                     log=lambda line: print(line, file=sys.stderr, flush=True))
    figures = result.figures()
    tasks = len(result.matrix[0]) + 1
    for name in ("bwt", "baseline_bwt", "fwt", "baseline_fwt", "forget_rate", "baseline_forget_rate",
                 "task_avg_acc", "baseline_task_avg_acc"):
        report.figure(name, round(figures[name], 4), "accuracy", tasks=tasks)
    report.figure("cloud_sample_share", round(figures["cloud_sample_share"], 4), "fraction",
                  inferred=result.inferred, sent=result.sent)
    report.figure("unseen_precision", round(figures["unseen_precision"], 4), "fraction")
    report.figure("unseen_recall", round(figures["unseen_recall"], 4), "fraction")
    times = served["publish_to_serving_s"]
    report.figure("kb_publish_to_serving_s", round(max(times), 3), "s", mean=round(sum(times) / len(times), 3),
                  versions=len(times), poll_period_s=0.5)
    report.write_markdown(GOALS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
