"""Generate the client code for `proto/`: Python into `clients/python/audiences/v1/`, TypeScript
into `clients/typescript/src/gen/`.

The toolchain is pinned, so a fresh generation is byte-for-byte reproducible: protoc comes from
`grpcio-tools`, the typed `*_pb2_grpc.pyi` stubs from `mypy-protobuf` and the `google/rpc` protos
(the error details the TypeScript client decodes) from `googleapis-common-protos`, all three at
the exact versions the `dev` extra of pyproject.toml names (checked here before generating);
the TypeScript generator, ts-proto, comes from clients/typescript/package-lock.json through
`npm ci`. `--check` generates into a temporary folder and fails when the committed copy differs.
"""

from __future__ import annotations

import argparse
import filecmp
import importlib.metadata
import shutil
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
TS_ROOT = ROOT / "clients" / "typescript"
PINNED = ("grpcio-tools", "mypy-protobuf", "googleapis-common-protos")
# The ts-proto options: clients on @grpc/grpc-js, ES modules with `.js` import suffixes (what
# Node's resolver needs), Node's Buffer for bytes.
TS_PROTO_OPTIONS = "outputServices=grpc-js,env=node,esModuleInterop=true,importSuffix=.js"
# The google.rpc protos the TypeScript client reads from a failed call's status details.
RPC_PROTOS = ("google/rpc/status.proto", "google/rpc/error_details.proto")


@dataclass(frozen=True)
class Target:
    """One language's generated folder: `root` is where protoc writes, `folder` what it owns."""

    root: Path
    folder: Path

    def files(self, root: Path | None = None) -> set[Path]:
        """The generated files under `root` (default: the committed copy), relative to it."""
        base = self.root if root is None else root
        return {p.relative_to(base) for p in (base / self.folder).rglob("*") if p.is_file()}


PYTHON = Target(ROOT / "clients" / "python", Path("audiences") / "v1")
TYPESCRIPT = Target(TS_ROOT / "src", Path("gen"))


def check_toolchain() -> None:
    """Exits unless each pinned generator is installed at the version pyproject.toml names."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    pins = {}
    for spec in extras:
        name, exact, version = spec.partition("==")
        if exact:
            pins[name.strip()] = version.strip()
    for name in PINNED:
        if name not in pins:
            sys.exit(f"pyproject.toml's dev extra must pin {name} (name==version)")
        installed = importlib.metadata.version(name)
        if installed != pins[name]:
            sys.exit(f"{name} {installed} is installed but {pins[name]} is pinned; run `make gen` from a fresh .venv")


def _plugin(name: str, folder: Path) -> Path:
    path = folder / name
    if not path.exists():
        sys.exit(f"{path} is missing: install the toolchain first (`make gen` does)")
    return path


def _protoc(args: list[str]) -> None:
    if protoc.main(["grpc_tools.protoc", *args]) != 0:
        sys.exit("protoc failed")


def generate(python_root: Path, ts_root: Path) -> None:
    """Runs protoc over every .proto file under proto/ into the two roots."""
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    rpc_protos = Path(importlib.metadata.distribution("googleapis-common-protos").locate_file(""))
    includes = [f"-I{PROTO_ROOT}", f"-I{well_known}", f"-I{rpc_protos}"]
    (python_root / PYTHON.folder).mkdir(parents=True, exist_ok=True)
    bin_dir = Path(sys.executable).parent
    _protoc([
        *includes,
        f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc', bin_dir)}",
        f"--python_out={python_root}",
        f"--pyi_out={python_root}",
        f"--grpc_python_out={python_root}",
        f"--mypy_grpc_out=quiet:{python_root}",
        *protos,
    ])
    (python_root / PYTHON.folder / "__init__.py").write_text(
        '"""Generated code for the audiences.v1 protobuf package. Do not edit."""\n'
    )
    out = ts_root / TYPESCRIPT.folder
    out.mkdir(parents=True, exist_ok=True)
    _protoc([
        *includes,
        f"--plugin=protoc-gen-ts_proto={_plugin('protoc-gen-ts_proto', TS_ROOT / 'node_modules' / '.bin')}",
        f"--ts_proto_out={out}",
        f"--ts_proto_opt={TS_PROTO_OPTIONS}",
        *protos,
        *RPC_PROTOS,
    ])


def _differences(target: Target, fresh: Path) -> list[str]:
    want, have = target.files(fresh), target.files()
    return sorted(
        str(target.root.relative_to(ROOT) / p)
        for p in want | have
        if p not in want or p not in have or not filecmp.cmp(fresh / p, target.root / p, shallow=False)
    )


def check() -> int:
    """Compares a fresh generation with the committed copy; returns the exit status."""
    with tempfile.TemporaryDirectory() as tmp:
        python_root, ts_root = Path(tmp) / "python", Path(tmp) / "typescript"
        generate(python_root, ts_root)
        differ = _differences(PYTHON, python_root) + _differences(TYPESCRIPT, ts_root)
    if differ:
        print("generated code is stale; run `make gen`:", *differ, sep="\n  ")
        return 1
    print("generated code is up to date")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the committed copy differs")
    check_only = parser.parse_args().check
    check_toolchain()
    if check_only:
        return check()
    for target in (PYTHON, TYPESCRIPT):
        shutil.rmtree(target.root / target.folder, ignore_errors=True)
    generate(PYTHON.root, TYPESCRIPT.root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
