"""The demo's pipeline at a small scale: what it prints equals the reference interpreter."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import apsw
import audiences
import pytest

from tests.conftest import Running, start
from tests.evaluator.oracle import expected_values

ROOT = Path(__file__).resolve().parent.parent
T0 = 1_800_000_000_000  # 2027-01-15T08:00:00Z


def _demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo", ROOT / "scripts" / "demo.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["demo"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def manual_server(tmp_path: Path) -> Iterator[Running]:
    """A manual-clock server at T0, so the interpreter can evaluate at the very same time."""
    running = start(tmp_path / "audiences.db", manual_clock=True)
    running.server.engine.clock.set(T0)
    yield running
    running.channel.close()
    running.server.stop(grace=1)


def test_demo_sizes_match_the_reference_interpreter(manual_server: Running) -> None:
    """Every size the demo prints equals a from-scratch evaluation of the same data by
    `audiences_server.core.ql` at the same time, for every definition of the demo."""
    demo = _demo()
    client = audiences.Client(f"127.0.0.1:{manual_server.port}", manual_server.tokens, send_threads=2)
    try:
        printed = demo.run(client, users=300, events=6_000, seed=3, say=lambda _: None)
    finally:
        client.close()
    conn = apsw.Connection(str(manual_server.db), flags=apsw.SQLITE_OPEN_READONLY)
    space_id = next(conn.execute("SELECT space_id FROM spaces WHERE name = 'default'"))[0]
    expected = Counter(
        (collection, key) for (collection, key, _), value in expected_values(conn, space_id, T0).items()
        if value is not None and value is not False
    )
    assert printed == {k: expected[k] for k in printed}
    assert len(printed) == len(demo.DEFINITIONS)
    assert sum(1 for size in printed.values() if size > 0) >= len(printed) - 1, printed  # the data exercises them
