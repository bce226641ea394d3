"""The README's main job: the digits joint-inference service end to end.

``python -m examples.joint_inference.digits.run`` applies ``resources.yaml`` to the
embedded local backend (``sedna local up``), streams the test split through the edge
worker the control plane started, prints the report and tears everything down.
``--processes`` runs the two workers as plain processes instead, without a control plane.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", action="store_true", help="run the workers without the control plane")
    parser.add_argument("--workdir", type=Path, default=None, help="models, state and logs (default: a temp dir)")
    args, rest = parser.parse_known_args(argv)
    workdir = ["--workdir", str(args.workdir)] if args.workdir else []
    if args.processes:
        from examples.joint_inference.digits.processes import main as run_processes

        return run_processes([*workdir, *rest])
    from examples.joint_inference.digits.run_local import main as run_local

    return int(run_local([*workdir, *rest]) or 0)


if __name__ == "__main__":
    sys.exit(main())
