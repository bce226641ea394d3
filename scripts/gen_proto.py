"""Regenerate, or check, the Python modules of every ``sedna/proto/*.proto``.

The generated ``*_pb2.py``, ``*_pb2.pyi`` and ``*_pb2_grpc.py`` files are committed, so installing
the project never needs grpcio-tools. They come from one pinned generator, ``GRPCIO_TOOLS`` below:
its protoc writes gencode for protobuf 5.27.2 and its gRPC plugin requires grpcio >= 1.66.2 at run
time, and ``pyproject.toml`` declares exactly these floors. A newer generator would raise them
(gencode is refused by any older protobuf runtime: 7.x gencode does not import beside
tritonclient's protobuf 6.x), so change the pin only together with those floors and the
``min-versions`` constraints in ``.ci/run``.

The generator runs in a virtual environment of its own (``.make/protogen``, made on first use),
since grpcio-tools 1.66 needs protobuf < 6 while the project's environment may hold 6.x or 7.x.

    python scripts/gen_proto.py           # rewrite sedna/proto/*_pb2*.py{,i}  (``make proto``)
    python scripts/gen_proto.py --check   # regenerate into a temporary directory and compare;
                                          # exit 1 naming every stale file (``make check-proto``)
"""

from __future__ import annotations

import argparse
import difflib
import subprocess
import sys
import tempfile
from pathlib import Path

GRPCIO_TOOLS = "1.66.2"
ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "sedna" / "proto"
VENV = ROOT / ".make" / "protogen"
GENERATED = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")
PRIVATE_POOL = ("grpc_predict_v2_pb2.py",)
"""Generated modules whose descriptors go into a pool of their own instead of protobuf's default one.

``grpc_predict_v2.proto`` keeps the Open Inference Protocol's package ``inference`` (the gRPC method
paths, ``/inference.GRPCInferenceService/ModelInfer``, are the protocol), and so does tritonclient's
``grpc_service.proto``: two files defining ``inference.ModelInferRequest`` cannot share the default
pool, and whichever is imported second fails ("duplicate symbol"). In a private pool ours coexists
with Triton's; messages serialize, parse and type-check exactly as before.
"""
_DEFAULT_POOL = "DESCRIPTOR = _descriptor_pool.Default().AddSerializedFile("
_OWN_POOL = "DESCRIPTOR = _descriptor_pool.DescriptorPool().AddSerializedFile("
_OWN_POOL_NOTE = ("# Post-processed by scripts/gen_proto.py: a descriptor pool of its own, since the package\n"
                  "# 'inference' is also tritonclient's (see PRIVATE_POOL there).\n")


def _tools_version(python: Path | str) -> str | None:
    probe = "import importlib.metadata as m; print(m.version('grpcio-tools'))"
    done = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def generator_python() -> Path:
    """A Python with exactly grpcio-tools ``GRPCIO_TOOLS``: this one if it has it, else ``.make/protogen``."""
    if _tools_version(sys.executable) == GRPCIO_TOOLS:
        return Path(sys.executable)
    python = VENV / "bin" / "python"
    if not python.exists() or _tools_version(python) != GRPCIO_TOOLS:
        print(f"creating {VENV.relative_to(ROOT)} with grpcio-tools=={GRPCIO_TOOLS}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        f"grpcio-tools=={GRPCIO_TOOLS}"], check=True)
    return python


def generate(out: Path) -> list[Path]:
    """Generate every ``.proto`` into ``out`` (which mirrors the repository root); the files written."""
    python = generator_python()
    for proto in sorted(PROTO_DIR.glob("*.proto")):
        rel = proto.relative_to(ROOT)
        subprocess.run([str(python), "-m", "grpc_tools.protoc", f"-I{ROOT}", f"--python_out={out}",
                        f"--pyi_out={out}", f"--grpc_python_out={out}", str(rel)], cwd=ROOT, check=True)
    for name in PRIVATE_POOL:
        module = out / PROTO_DIR.relative_to(ROOT) / name
        text = module.read_text()
        if text.count(_DEFAULT_POOL) != 1:
            raise SystemExit(f"{module}: expected one {_DEFAULT_POOL!r}; the generator changed, update gen_proto.py")
        first, rest = text.split("\n", 1)
        module.write_text(first + "\n" + _OWN_POOL_NOTE + rest.replace(_DEFAULT_POOL, _OWN_POOL))
    return sorted(p for p in (out / PROTO_DIR.relative_to(ROOT)).iterdir() if p.name.endswith(GENERATED))


def check() -> int:
    """0 when the committed modules are what the pinned generator makes of the ``.proto`` files now."""
    with tempfile.TemporaryDirectory(prefix="sedna-proto-check-") as tmp:
        fresh = {p.name: p.read_text() for p in generate(Path(tmp))}
    committed = {p.name: p.read_text() for p in PROTO_DIR.iterdir() if p.name.endswith(GENERATED)}
    stale = 0
    for name in sorted(fresh.keys() | committed.keys()):
        if name not in committed:
            print(f"sedna/proto/{name}: missing (run `make proto` and commit it)")
        elif name not in fresh:
            print(f"sedna/proto/{name}: generated from no .proto (delete it)")
        elif fresh[name] != committed[name]:
            diff = difflib.unified_diff(committed[name].splitlines(), fresh[name].splitlines(),
                                        f"committed/{name}", f"regenerated/{name}", lineterm="", n=1)
            print(f"sedna/proto/{name}: stale (run `make proto`)\n" + "\n".join(list(diff)[:20]))
        else:
            continue
        stale += 1
    if stale:
        print(f"{stale} generated file(s) differ from grpcio-tools {GRPCIO_TOOLS}'s output", file=sys.stderr)
        return 1
    print(f"sedna/proto: {len(fresh)} generated files match grpcio-tools {GRPCIO_TOOLS}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with a fresh generation; change nothing")
    args = parser.parse_args(argv)
    if args.check:
        return check()
    for path in generate(ROOT):
        print(f"generated {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
