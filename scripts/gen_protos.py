"""Generate the Python gRPC code for `proto/` into `clients/python/audiences/`.

The toolchain is pinned by the `grpcio-tools` version in pyproject.toml, so a fresh generation
is byte-for-byte reproducible; `--check` generates into a temporary folder and fails when the
committed copy differs.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
OUT_ROOT = ROOT / "clients" / "python"
PACKAGE_DIR = Path("audiences") / "v1"


def generate(out_root: Path) -> None:
    """Runs protoc over every .proto file under proto/ into `out_root`."""
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    include = Path(grpc_tools.__file__).parent / "_proto"
    (out_root / PACKAGE_DIR).mkdir(parents=True, exist_ok=True)
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        *protos,
    ]
    if protoc.main(args) != 0:
        sys.exit("protoc failed")
    (out_root / PACKAGE_DIR / "__init__.py").write_text(
        '"""Generated code for the audiences.v1 protobuf package. Do not edit."""\n'
    )


def generated_files(root: Path) -> set[Path]:
    """Lists the generated files under `root`, relative to it."""
    return {p.relative_to(root) for p in (root / PACKAGE_DIR).glob("*") if p.is_file()}


def check() -> int:
    """Compares a fresh generation with the committed copy; returns the exit status."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        generate(fresh)
        want, have = generated_files(fresh), generated_files(OUT_ROOT)
        differ = sorted(
            str(p) for p in want | have
            if p not in want or p not in have or not filecmp.cmp(fresh / p, OUT_ROOT / p, shallow=False)
        )
    if differ:
        print("generated code is stale; run `make gen`:", *differ, sep="\n  ")
        return 1
    print("generated code is up to date")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the committed copy differs")
    if parser.parse_args().check:
        return check()
    shutil.rmtree(OUT_ROOT / PACKAGE_DIR, ignore_errors=True)
    generate(OUT_ROOT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
