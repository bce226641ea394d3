"""Build the two digits ONNX models where ``resources.yaml`` points.

``python -m examples.joint_inference.digits.prepare`` trains the edge and cloud models on
scikit-learn's bundled digits (no download) and writes ``edge.onnx`` and ``cloud.onnx`` into
``.sedna/models/digits/`` (relative to the current directory, next to the state ``sedna local up``
keeps in ``./.sedna``), which is where the Models in ``resources.yaml`` point. Run it from the
directory where you run ``sedna local up``; ``--out DIR`` writes elsewhere (then point the
Models' ``spec.url`` there). Already-built models are reused; each line printed names a file and
its sha256 digest, the value ``MODEL_SHA256`` pins.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

DEFAULT_OUT = Path(".sedna") / "models" / "digits"


def sha256_of(path: Path) -> str:
    """The hex sha256 digest of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"where to write the models (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    from examples.joint_inference.digits.models import build_models

    info = build_models(args.out)
    for role in ("edge", "cloud"):
        path = Path(str(info[role]))
        print(f"{role:5} model  {path}  ({info[f'{role}_params']} parameters, sha256 {sha256_of(path)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
