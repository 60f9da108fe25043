"""The client installs alone: `pip install ./clients/python` into a fresh virtualenv, no server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What the fresh interpreter prints: the client's version, whether the server is importable, and
# the installed distribution's licence and requirements.
PROBE = """
import importlib.metadata, importlib.util, json, audiences, audiences.aio, audiences.v1.admin_pb2_grpc
meta = importlib.metadata.metadata("audiences-client")
print(json.dumps({
    "version": audiences.__version__,
    "server": importlib.util.find_spec("audiences_server") is not None,
    "license": meta["License-Expression"],
    "requires": sorted(r.split(">")[0].split("=")[0] for r in meta.get_all("Requires-Dist")),
    "client": audiences.__file__,
}))
"""


@pytest.mark.packaging
@pytest.mark.timeout(300)
def test_client_installs_alone_into_a_fresh_virtualenv(tmp_path: Path) -> None:
    """A fresh venv with only `pip install ./clients/python` imports `audiences` (its async
    client and typed stubs too) from its own site-packages, has no server package, runs the
    `audiences` command, and declares Apache-2.0 and only grpcio, grpcio-status and protobuf."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONPATH": ""}
    env.pop("VIRTUAL_ENV", None)
    install = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(ROOT / "clients" / "python")],
        env=env, capture_output=True, text=True, check=False,
    )
    assert install.returncode == 0, install.stderr
    probe = subprocess.run([str(venv / "bin" / "python"), "-c", PROBE], env=env, cwd=tmp_path,
                           capture_output=True, text=True, check=True)
    found = json.loads(probe.stdout)
    assert found["server"] is False
    assert found["client"].startswith(str(venv))
    assert found["license"] == "Apache-2.0"
    assert found["requires"] == ["grpcio", "grpcio-status", "protobuf"]
    helped = subprocess.run([str(venv / "bin" / "audiences"), "--help"], env=env, capture_output=True, text=True,
                            check=True)
    assert "COMMAND" in helped.stdout


@pytest.mark.packaging
@pytest.mark.timeout(300)
def test_the_server_distribution_carries_the_client(tmp_path: Path) -> None:
    """`pip install .` from a checkout needs nothing outside it: the server's wheel holds the
    `audiences` package, both commands and the console's built pages, and requires no separate
    client distribution."""
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                            "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("audiences_server-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(info).decode()
        scripts = archive.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert {"audiences/__init__.py", "audiences/cli.py", "audiences/v1/ingest_pb2.py",
            "audiences_server/server.py"} <= names
    # The web console's built pages ship; its front-end sources and their node_modules do not.
    console = "audiences_server/http/console/"
    assert {f"{console}static/index.html", f"{console}static/console.js", f"{console}static/console.css"} <= names
    assert not [n for n in names if n.startswith(f"{console}web/")]
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert requires
    assert not [line for line in requires if "audiences-client" in line]
    assert "audiences = audiences.cli:main" in scripts
    assert "audiences-server = audiences_server.cli:main" in scripts
