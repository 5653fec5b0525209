"""Regenerates the Python gRPC code from the .proto files: ``python proto/codegen.py``
(``./scripts/genProto.sh``).

The .proto files live under ``proto/`` at the path of their package (``datasentinel/v1``), so
protoc writes plain absolute imports (``from datasentinel.v1 import scoring_pb2``) and nothing
needs patching. Needs the ``dev`` extra (grpcio-tools). It sits beside the shared package, not in
it: a developer tool that no image needs.
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parent
PROTO_FILES = (
    "datasentinel/v1/scoring.proto",
    "datasentinel/oip/model_config.proto",
    "datasentinel/oip/grpc_predict_v2.proto",
)


def generate(out_dir: Path) -> None:
    """Writes the generated modules for every .proto file under ``out_dir``."""
    from grpc_tools import protoc  # dev-only dependency

    well_known = resources.files("grpc_tools") / "_proto"
    out_dir.mkdir(parents=True, exist_ok=True)
    for proto in PROTO_FILES:
        args = [
            "protoc",
            f"-I{PROTO_ROOT}",
            f"-I{well_known}",
            f"--python_out={out_dir}",
            f"--pyi_out={out_dir}",
            f"--grpc_python_out={out_dir}",
            str(PROTO_ROOT / proto),
        ]
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed on {proto}")


def generated_files(root: Path) -> dict[str, str]:
    """Maps each generated file's path (relative to ``root``) to its text."""
    found = {}
    for proto in PROTO_FILES:
        stem = root / proto.removesuffix(".proto")
        for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py"):
            path = stem.with_name(stem.name + suffix)
            found[str(path.relative_to(root))] = path.read_text() if path.exists() else ""
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=PROTO_ROOT, help="output root (proto/)")
    args = parser.parse_args(argv)
    generate(args.out)
    print(f"generated code for {', '.join(PROTO_FILES)} under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
