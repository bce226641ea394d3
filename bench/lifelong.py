"""Lifelong-learning benchmark: Ianvs' metrics over the digits-cameras stream, against a global model.

Learning figures come from :mod:`examples.lifelong_learning.digits_cameras.simulate` (the SDK's
train / update / inference on local KB copies, one process): five camera sites, four of them
arriving as unseen tasks, 700 edge samples per arrival. The baseline retrains one global model
on every labelled sample the cloud has received so far (the same samples the knowledge base got).
``kb_publish_to_serving_s`` comes from the plain-process example
(:mod:`examples.lifelong_learning.digits_cameras.run`): time from publishing a KB version on the
KB server to the inference worker answering with it (it polls every 0.5 s).
``control_plane_label_to_serving_s`` and ``control_plane_apply_to_serving_s`` come from the same story
through the control plane (:mod:`examples.lifelong_learning.digits_cameras.control_plane`: ``sedna local
up``, GM, LCs, the job's KB, train / eval Pods): from appending a new site's labelled samples to the
Dataset's index to the edge answering with the new version (the LC's trigger check every 1 s, a Train
and an Eval Pod, publishing, a 0.5 s poll), and from ``sedna apply`` to the first version served.

Goals: ``bwt >= baseline_bwt``, ``forget_rate <= baseline_forget_rate``, ``cloud_sample_share <= 0.2``,
``unseen_precision >= 0.9``, ``unseen_recall >= 0.8``, ``kb_publish_to_serving_s <= 2``,
``control_plane_label_to_serving_s <= 15``.
``--quick`` brings one site online in the process and control-plane runs instead of four and two (the
simulation is the same).

Run: ``python -m bench.lifelong [--quick]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bench._report import Report, add_report_options

GOALS = {"bwt": ">= baseline_bwt", "forget_rate": "<= baseline_forget_rate", "cloud_sample_share": "<= 0.2",
         "unseen_precision": ">= 0.9", "unseen_recall": ">= 0.8", "kb_publish_to_serving_s": "<= 2 s",
         "control_plane_label_to_serving_s": "<= 15 s"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Lifelong learning benchmark")
    parser.add_argument("--quick", action="store_true", help="one new site in the process and control-plane runs")
    add_report_options(parser)
    args = parser.parse_args(argv)
    from examples.lifelong_learning.digits_cameras.control_plane import run as run_local
    from examples.lifelong_learning.digits_cameras.run import run
    from examples.lifelong_learning.digits_cameras.simulate import simulate

    report = Report("lifelong", args.quick, args.save_report)
    with tempfile.TemporaryDirectory(prefix="bench-ll-") as tmp:
        result = simulate(Path(tmp) / "sim", log=lambda line: print(line, file=sys.stderr, flush=True))
        served = run(Path(tmp) / "procs", sites=1 if args.quick else 4,
                     log=lambda line: print(line, file=sys.stderr, flush=True))
        local = run_local(Path(tmp) / "local", sites=1 if args.quick else 2,
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
    rounds = [r["seconds"] for r in local["rounds"]]
    report.figure("control_plane_label_to_serving_s", round(max(rounds), 3), "s",
                  mean=round(sum(rounds) / len(rounds), 3), rounds=len(rounds), trigger_period_s=1, poll_period_s=0.5)
    report.figure("control_plane_apply_to_serving_s", round(local["apply_to_serving_s"], 3), "s")
    path = report.write_markdown(GOALS)
    from examples.lifelong_learning.digits_cameras.stream import build_stream
    from examples.plots import task_matrix

    sites = [task.name for task in build_stream()]  # columns: every site but the first
    task_matrix(path.parent / "lifelong_matrix.png", result.matrix, sites[1:],
                [f"{sites[0]} only"] + [f"+ {name}" for name in sites[1:]])
    return 0


if __name__ == "__main__":
    sys.exit(main())
