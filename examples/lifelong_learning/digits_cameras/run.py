"""The digits-cameras lifelong-learning example as plain processes (``python -m ...digits_cameras.run``).

1. A knowledge-base server starts (``workers.lifelong.kb``, SQLite, bearer token, 127.0.0.1).
2. The train worker learns the first site (upright digits) and registers KB version 1; the eval
   worker scores it; the version is published.
3. The inference worker starts at the edge (``workers.lifelong.infer``): it copies the published
   version into its local KB directory and serves it over OIP v2, polling for new versions.
4. Each new camera site comes online: the edge answers its traffic; the samples it flags as
   unseen are labelled (here: the stream's labels) and sent to the cloud, where the train
   worker (``HAS_COMPLETED_INITIAL_TRAINING=true``, ``CLOUD_KB_INDEX``) learns the new task and
   the eval worker approves the new version; publishing it, the edge serves it within a poll.
5. The KB server stops; the edge keeps answering from its local copy. Everything stops and the
   working directory is removed (unless ``--workdir`` names one to keep).

``run(workdir, sites=4)`` returns what happened per site (used by ``bench.lifelong``).
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from examples.lifelong_learning.digits_cameras.processes import free_port, start, stop, wait_port
from examples.lifelong_learning.digits_cameras.processes import run as run_worker
from examples.lifelong_learning.digits_cameras.stream import build_stream, phases
from sedna.algorithms.lifelong.samples import TaskSamples

DEFINITION = '{"method": "TaskDefinitionByDataAttr", "param": {"attribute": ["site"]}}'
JOB = "digits-cameras"


def _csv(path: Path, samples: TaskSamples) -> str:
    from workers.lifelong.data import save_table

    return str(save_table(path, samples, ["site"]))


def run(workdir: Path, sites: int = 4, collect: int = 100, batch: int = 20,
        log: Callable[[str], Any] = print) -> dict[str, Any]:
    """Run the example in ``workdir``; return per-site figures and the publish-to-serving times."""
    from sedna.service.inference.rest_client import RestInferenceClient
    from sedna.service.kb.client import KBClient

    workdir.mkdir(parents=True, exist_ok=True)
    tasks = build_stream()
    stream = phases(tasks)[:sites]
    token, kb_port, rest_port = secrets.token_hex(16), free_port(), free_port()
    kb_url = f"http://127.0.0.1:{kb_port}"
    common = {"KB_SERVER": kb_url, "KB_TOKEN": token, "JOB_NAME": JOB, "attribute": "site",
              "task_definition": DEFINITION, "heldout_ratio": "0.25", "LOG_LEVEL": "WARNING"}
    procs = []
    kb = start("workers.lifelong.kb", {"KB_BIND_PORT": str(kb_port), "KB_PATH": str(workdir / "kb"),
                                       "KB_TOKEN": token}, workdir / "kb.log")
    procs.append(kb)
    result: dict[str, Any] = {"sites": [], "publish_to_serving_s": []}
    try:
        wait_port(kb_port, kb, workdir / "kb.log")
        client = KBClient(kb_url, token)

        def train_and_eval(round_: int, data: Path, test: Path, update: bool) -> int:
            env = {**common, "TRAIN_DATASET_URL": str(data), "OUTPUT_URL": str(workdir / "cloud" / f"train-{round_}")}
            if update:
                env.update(HAS_COMPLETED_INITIAL_TRAINING="true", CLOUD_KB_INDEX=f"{kb_url}/knowledgebase/index/"
                                                                                 f"{client.versions()[-1]['version']}")
            run_worker("workers.lifelong.train", env, workdir / "train.log")
            trained = client.versions()[-1]["version"]
            run_worker("workers.lifelong.eval", {**common, "MODEL_URLS": f"{kb_url}/knowledgebase/index/{trained}",
                                                 "TEST_DATASET_URL": str(test), "publish": "false",
                                                 "OUTPUT_URL": str(workdir / "cloud" / f"eval-{round_}")},
                       workdir / "eval.log")
            return int(client.versions()[-1]["version"])

        first = train_and_eval(0, Path(_csv(workdir / "data" / "train-0.csv", tasks[0].train)),
                               Path(_csv(workdir / "data" / "test-0.csv", tasks[0].test)), update=False)
        client.publish(first)
        log(f"knowledge base version {first} published: site {tasks[0].name!r} learned")
        infer = start("workers.lifelong.infer", {
            **common, "MODEL_URLS": f"{kb_url}/knowledgebase/index", "EDGE_KB_DIR": str(workdir / "edge"),
            "MODEL_HOT_UPDATE": "true", "MODEL_POLL_PERIOD_SECONDS": "1", "KB_POLL_PERIOD_SECONDS": "0.5",
            "EDGE_BIND_PORT": str(rest_port),
            "EDGE_GRPC_PORT": str(free_port()), "unseen_save_url": str(workdir / "edge" / "unseen")},
            workdir / "infer.log")
        procs.append(infer)
        wait_port(rest_port, infer, workdir / "infer.log")
        edge = RestInferenceClient(f"http://127.0.0.1:{rest_port}")

        def ask(samples: TaskSamples) -> tuple[np.ndarray, np.ndarray, int]:
            answer = edge.infer(JOB, {"features": samples.x})
            return (answer.outputs["probabilities"], answer.outputs["unseen"].astype(bool),
                    int(answer.parameters.get("kb_version", -1)))

        def learn(n: int, site: int, labelled: TaskSamples) -> None:
            tests = TaskSamples.concat([t.test for t in tasks[: site + 1]])
            version = train_and_eval(n, Path(_csv(workdir / "data" / f"train-{n}.csv", labelled)),
                                     Path(_csv(workdir / "data" / f"test-{n}.csv", tests)), update=True)
            published = time.monotonic()
            client.publish(version)
            while ask(tasks[site].test.subset(np.arange(5)))[2] != version:
                if time.monotonic() - published > 60:
                    raise TimeoutError(f"the edge did not serve version {version} within 60 s")
                time.sleep(0.02)
            serving = time.monotonic() - published
            probabilities, unseen, _ = ask(tasks[site].test)
            accuracy = float((probabilities.argmax(axis=1) == tasks[site].test.y).mean())
            result["publish_to_serving_s"].append(serving)
            result["sites"].append({"site": tasks[site].name, "labelled": len(labelled), "version": version,
                                    "accuracy": accuracy, "still_unseen": float(unseen.mean())})
            log(f"site {tasks[site].name!r}: {len(labelled)} flagged samples labelled -> version {version}, served "
                f"{serving:.2f}s after publishing; accuracy on the site {accuracy:.3f}")

        for n, phase in enumerate(stream, start=1):
            collected: list[TaskSamples] = []
            flagged = learned = 0
            for start_row in range(0, len(phase.samples), batch):
                part = phase.samples.subset(np.arange(start_row, min(start_row + batch, len(phase.samples))))
                _, unseen, _ = ask(part)
                flagged += int(unseen.sum())
                if not learned and unseen.any():
                    collected.append(part.subset(unseen))
                if not learned and sum(len(c) for c in collected) >= collect:
                    learn(n, phase.new, TaskSamples.concat(collected))
                    learned = 1
            result["sites"][-1].update(flagged=flagged, total=len(phase.samples))
            log(f"    {flagged} of the phase's {len(phase.samples)} samples went to the cloud")
        stop(kb)
        probabilities, _, served = ask(tasks[0].test)
        accuracy = float((probabilities.argmax(axis=1) == tasks[0].test.y).mean())
        result["served_while_kb_down"] = {"version": served, "accuracy": accuracy}
        log(f"KB server stopped: the edge still serves version {served} from its local copy "
            f"(accuracy on site {tasks[0].name!r}: {accuracy:.3f})")
        edge.close()
        client.close()
    finally:
        for proc in reversed(procs):
            stop(proc)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, help="keep files here (default: a temporary directory, removed)")
    parser.add_argument("--sites", type=int, default=4, help="new camera sites to bring online (1-4)")
    args = parser.parse_args(argv)
    if args.workdir is not None:
        run(args.workdir, args.sites)
        return 0
    with tempfile.TemporaryDirectory(prefix="ll-digits-") as tmp:
        run(Path(tmp), args.sites)
    return 0


if __name__ == "__main__":
    sys.exit(main())
