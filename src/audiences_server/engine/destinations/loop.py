"""An asyncio event loop on a thread of its own, for the requests destinations send.

One loop serves every destination of a server: a request costs a callback on it instead of a
thread (and the interpreter lock handed from thread to thread), and thousands of requests a
second fit on one thread. It starts on first use and stops with the sync service.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any


class IoLoop:
    """A lazily started event loop thread; callables are handed to it from any thread."""

    def __init__(self, name: str = "sync-io") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop, started on first use."""
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever, name=self._name, daemon=True)
                self._thread.start()
            return self._loop

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> None:
        """Runs `callback(*args)` on the loop's thread, soon; nothing once the loop is closed
        (what the callback was for, a request or a connection, went with it). Called on the
        loop's own thread (an answer freeing a slot, say), it only queues the callback: waking
        the loop through its self-pipe would cost two system calls for nothing."""
        with self._lock:
            loop, thread = self._loop, self._thread
        if loop is None:
            return
        if thread is not None and thread.ident == threading.get_ident():
            loop.call_soon(callback, *args)
        else:
            loop.call_soon_threadsafe(callback, *args)

    def close(self) -> None:
        """Stops the loop: what is still in flight on it is abandoned."""
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        if not thread.is_alive():
            loop.close()
