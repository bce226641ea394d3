"""Regenerate the Python modules of every ``sedna/proto/*.proto`` (run from anywhere).

The generated ``*_pb2.py`` / ``*_pb2_grpc.py`` files are committed, so installing the
project never needs grpcio-tools; run ``make proto`` after editing a ``.proto``.
"""

from __future__ import annotations

import pathlib
import sys


def main() -> int:
    import grpc_tools
    from grpc_tools import protoc

    root = pathlib.Path(__file__).resolve().parent.parent
    include = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    protos = sorted((root / "sedna" / "proto").glob("*.proto"))
    for proto in protos:
        rel = proto.relative_to(root)
        code = protoc.main(
            ["protoc", f"-I{root}", f"-I{include}", f"--python_out={root}", f"--pyi_out={root}",
             f"--grpc_python_out={root}", str(rel)]
        )
        if code != 0:
            print(f"protoc failed on {rel}", file=sys.stderr)
            return code
        print(f"generated {rel}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
