"""A bench-only gRPC server that does no work: the baseline of the streaming and unary ingest figures.

It runs in a child process, built like the real server (src/audiences_server/server.py): a
`grpc.aio` server with coroutine handlers and the same 8 MiB receive limit. It implements
IngestService from the generated servicer base:

- `Track` answers an empty `TrackResponse` at once (the unary baseline);
- `StreamCalls` parses each message (gRPC decodes the protobuf; the call's JSON text, or its
  typed form, is decoded to a dict as the real server does) and drops it, then answers with the
  count (the streaming baseline).

It has no interceptor: the real server's per-call authentication, request id and log line are
part of what the figures measure against it. The other RPCs answer UNIMPLEMENTED.

    python bench/baseline_server.py [--listen 127.0.0.1:0]

prints `listening HOST:PORT` on stdout once it serves, and stops on SIGTERM or SIGINT.
`BaselineServer` starts one from another script.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from audiences.v1 import ingest_pb2, ingest_pb2_grpc, tracking_pb2
from google.protobuf import json_format
from grpc import aio

RECEIVE_LIMIT = 8 * 1024 * 1024  # as in audiences_server.server.create_server


def parse(item: tracking_pb2.TrackingCall) -> dict[str, Any] | None:
    """The call as a dict, as the real server's `convert.tracking_call` makes it (or None)."""
    kind = item.WhichOneof("call")
    if kind is None:
        return None
    if kind == "json":
        value = json.loads(item.json)
        return value if isinstance(value, dict) else None
    return json_format.MessageToDict(getattr(item, kind))


class DropServicer(ingest_pb2_grpc.IngestServiceServicer):
    """Answers Track with nothing and parses then drops a stream."""

    async def Track(self, request: ingest_pb2.TrackRequest, context: Any) -> ingest_pb2.TrackResponse:
        return ingest_pb2.TrackResponse()

    async def StreamCalls(self, request_iterator: AsyncIterator[ingest_pb2.StreamCallsRequest],
                          context: Any) -> ingest_pb2.StreamCallsResponse:
        accepted = rejected = 0
        async for request in request_iterator:
            if parse(request.call) is None:
                rejected += 1
            else:
                accepted += 1
        return ingest_pb2.StreamCallsResponse(accepted_count=accepted, rejected_count=rejected)


class BaselineServer:
    """This script running in a child process."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__))], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line.startswith("listening "):
            self.proc.kill()
            raise RuntimeError(f"the baseline server did not start: {line!r}")
        self.address = line.split()[1]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


async def _serve(listen: str) -> None:
    server = aio.server(options=[("grpc.max_receive_message_length", RECEIVE_LIMIT)])
    ingest_pb2_grpc.add_IngestServiceServicer_to_server(DropServicer(), server)
    port = server.add_insecure_port(listen)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await server.start()
    print(f"listening {listen.rsplit(':', 1)[0]}:{port}", flush=True)
    await stopping.wait()
    await server.stop(1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listen", default="127.0.0.1:0")
    args = parser.parse_args()
    asyncio.run(_serve(args.listen))
    return 0


if __name__ == "__main__":
    sys.exit(main())
