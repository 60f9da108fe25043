"""A commit wakes each event loop waiting on its requests once, whatever the number of requests."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from audiences_server.engine.ingest import Stored, settle
from audiences_server.store.events import StoredCalls


def _outcome(n: int) -> StoredCalls:
    return StoredCalls([n], [], [])


def test_one_wakeup_per_loop_for_a_whole_commit() -> None:
    """Sixteen requests awaited on one loop, settled together from another thread: one
    `call_soon_threadsafe`, every outcome delivered, a failure to its own request only."""

    async def main() -> tuple[list[Any], int]:
        loop = asyncio.get_running_loop()
        calls = 0
        original = loop.call_soon_threadsafe

        def counting(*args: Any, **kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            return original(*args, **kwargs)

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
        stored = [Stored() for _ in range(16)]
        waits = [asyncio.ensure_future(s.committed()) for s in stored]
        await asyncio.sleep(0)  # every waiter registered before the commit
        failure = RuntimeError("request 3 failed")
        outcomes = [(s, i != 3, failure if i == 3 else _outcome(i)) for i, s in enumerate(stored)]
        writer = threading.Thread(target=settle, args=(outcomes,))
        writer.start()
        await asyncio.wait_for(asyncio.gather(*waits), timeout=10)
        writer.join()
        results: list[Any] = []
        for s in stored:
            try:
                results.append(s.result())
            except RuntimeError as error:
                results.append(error)
        return results, calls

    results, calls = asyncio.run(main())
    assert calls == 1
    assert isinstance(results[3], RuntimeError)
    assert [r.accepted for i, r in enumerate(results) if i != 3] == [[i] for i in range(16) if i != 3]


def test_awaiting_after_the_commit_does_not_wait() -> None:
    """A request settled before anyone awaits it is ready at once, and a thread can still wait on it."""
    stored = Stored()
    settle([(stored, True, _outcome(7))])

    async def main() -> StoredCalls:
        await asyncio.wait_for(stored.committed(), timeout=1)
        return stored.result()

    assert asyncio.run(main()).accepted == [7]
    assert stored.result(timeout=0).accepted == [7]


def test_a_cancelled_waiter_does_not_stop_the_others() -> None:
    """A caller that went away (its await cancelled) is skipped; the others still hear of the commit."""

    async def main() -> list[int]:
        gone, kept = Stored(), Stored()
        cancelled = asyncio.ensure_future(gone.committed())
        waiting = asyncio.ensure_future(kept.committed())
        await asyncio.sleep(0)
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        threading.Thread(target=settle, args=([(gone, True, _outcome(1)), (kept, True, _outcome(2))],)).start()
        await asyncio.wait_for(waiting, timeout=10)
        return kept.result().accepted

    assert asyncio.run(main()) == [2]


def test_threads_waiting_before_the_commit_get_its_outcome() -> None:
    """Threads blocked in `result()` (the HTTP and pool paths) wake when the writer settles: each
    with the value, or with the request's failure; one that gives up first times out."""
    ok, failed = Stored(), Stored()
    results: dict[str, Any] = {}

    def wait(name: str, stored: Stored) -> None:
        try:
            results[name] = stored.result(timeout=10).accepted
        except RuntimeError as error:
            results[name] = error

    threads = [threading.Thread(target=wait, args=(f"{name}{i}", s))
               for i in range(3) for name, s in (("ok", ok), ("failed", failed))]
    for thread in threads:
        thread.start()
    with pytest.raises(TimeoutError):
        ok.result(timeout=0.05)
    failure = RuntimeError("the request failed")
    settle([(ok, True, _outcome(5)), (failed, False, failure)])
    for thread in threads:
        thread.join(timeout=10)
    assert {k: v for k, v in results.items() if k.startswith("ok")} == {f"ok{i}": [5] for i in range(3)}
    assert all(results[f"failed{i}"] is failure for i in range(3))
    assert ok.done()
    assert failed.done()
