"""`audiences-server cluster …`: run the identity stage or a shard as a process, a whole cluster on
one machine for trying it, and append calls to it as a front does (docs/scaling.md)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import faulthandler
import json
import os
import signal
import sys
import threading
from collections.abc import Awaitable
from concurrent import futures
from pathlib import Path
from types import FrameType
from typing import Any

import apsw
import structlog
from grpc import aio

from audiences_server import logs
from audiences_server.cluster.control import make_front
from audiences_server.cluster.front import Front
from audiences_server.cluster.identity import IdentityStage, keep_partitions
from audiences_server.cluster.local import STOP_S, run_local
from audiences_server.cluster.log import JetStreamLog
from audiences_server.cluster.reads import ShardReads, serve_shard_reads
from audiences_server.cluster.shard import Shard
from audiences_server.engine.clock import Clock
from audiences_server.engine.engine import Engine
from audiences_server.engine.ingest import calls_of, check_batch_limits, decode_body
from audiences_server.errors import InvalidArgument
from audiences_server.server import create_server
from audiences_server.settings import Settings, add_arguments, listen_address, resolve, time_ms

log = structlog.get_logger(__name__)
# How long a front waits for NATS at start before it says so and exits.
CONNECT_TIMEOUT_S = 30
# How long a role has to stop after SIGTERM or SIGINT before it ends itself: a little longer than
# `cluster local` gives it before its SIGKILL, for when nothing is left to send that kill.
STOP_DEADLINE_S = STOP_S + 5
# How long a role's work has to end by itself once told to stop before it is cancelled.
STOP_GRACE_S = 5.0
_deadline_armed = threading.Lock()


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Adds `cluster identity`, `cluster shard` and `cluster local` to the command line."""
    cluster = commands.add_parser("cluster", help="run a role of a cluster over NATS JetStream (docs/scaling.md)")
    roles = cluster.add_subparsers(dest="role", required=True)
    identity = roles.add_parser("identity", help="resolve calls to profiles and route them to partitions")
    shard = roles.add_parser("shard", help="store and evaluate partitions' profiles, each on its own file")
    shard.add_argument("--partition", type=int, action="append", required=True, dest="partitions_run",
                       metavar="P", help="a partition this process runs; once per partition")
    shard.add_argument("--listen", action="append", default=[], metavar="HOST:PORT", type=_host_port,
                       help="serve profile reads and definitions' status to fronts on host:port (no tokens: a "
                       "private address); once per partition, in the order of --partition")
    shard.add_argument("--data-dir", type=Path, default=None,
                       help="where partition P's SQLite file is, as partition-P.db (instead of --db)")
    shard.add_argument("--db", type=Path, default=None, help="the SQLite file of the only partition (or --data-dir)")
    identity.add_argument("--db", type=Path, required=True, help="this role's SQLite file")
    copy = roles.add_parser("copy-partition", help="copy a partition's file (SQLite's online backup) to move it")
    copy.add_argument("source", type=Path, help="the partition's file where it ran")
    copy.add_argument("target", type=Path, help="its file in the other process's data directory (must not exist)")
    for parser in (identity, shard):
        parser.add_argument("--nats", default="nats://127.0.0.1:4222", help="the NATS server's URL")
        parser.add_argument("--manual-clock", action="store_true",
                            help="the clock moves only with the log's clock entries (tests)")
        parser.add_argument("--clock-start", type=_clock_start, default=None,
                            help="the manual clock's first time: ISO-8601 (as the front takes it), or ms since 1970")
    identity.add_argument("--partitions", type=int, required=True, help="how many partitions (P)")
    front = roles.add_parser("front", help="serve the HTTP and gRPC APIs, appending calls to the log instead of "
                             "storing them (the serve flags apply)")
    front.add_argument("--nats", default="nats://127.0.0.1:4222", help="the NATS server's URL")
    front.add_argument("--shard", action="append", required=True, dest="shards", metavar="HOST:PORT", type=_host_port,
                       help="a partition's read endpoint (its --listen); once per partition, in partition order")
    add_arguments(front)
    send = roles.add_parser("send", help="append calls (a tracking API body on stdin) to the cluster, as a front")
    send.add_argument("--nats", default="nats://127.0.0.1:4222", help="the NATS server's URL")
    send.add_argument("--space-id", type=int, default=1, help="the space (1: the bootstrap's `default`)")
    local = roles.add_parser("local", help="a nats-server, a front, the identity stage and N shards on this machine, "
                             "each started again if it dies")
    local.add_argument("--dir", type=Path, default=Path("var/cluster"), help="where the files go")
    local.add_argument("--shards", type=int, default=2, help="how many shard processes")
    local.add_argument("--partitions", type=int, default=None,
                       help="how many partitions (P, default: one per shard process); partition p runs in "
                       "process p mod --shards")
    local.add_argument("--port", type=int, default=4222, help="the nats-server's port")
    local.add_argument("--listen", default="127.0.0.1:50051", type=_host_port, help="the front's gRPC address")
    local.add_argument("--http-listen", default="127.0.0.1:8080", type=_host_port, help="the front's HTTP address")
    local.add_argument("--shard-port", type=int, default=50061,
                       help="partition p serves its read endpoint on 127.0.0.1:(this + p)")


def _host_port(text: str) -> str:
    """HOST:PORT with a port from 0 to 65535, as `serve --listen` takes it (a usage error otherwise)."""
    try:
        return listen_address(text)
    except ValueError as bad:
        raise argparse.ArgumentTypeError(str(bad)) from None


def run(args: argparse.Namespace) -> int:
    """Runs the role the command names until SIGTERM or SIGINT; returns the exit status."""
    logs.configure("auto", "info")
    if args.role == "local":
        return run_local(args)
    if args.role == "front":
        return _front(args)
    if args.role == "send":
        return asyncio.run(_send(args.nats, args.space_id, sys.stdin.buffer.read()))
    refused = _refusal(args)
    if refused:
        print(f"audiences-server: {refused}", file=sys.stderr)
        return 2
    if args.role == "copy-partition":
        copy_partition(args.source, args.target)
        return 0
    return _serve_role(args)


def _serve_role(args: argparse.Namespace) -> int:
    """An identity stage or a shard process until SIGTERM or SIGINT; 2 for a file made for
    another cluster (the identity stage's P)."""
    try:
        asyncio.run(_serve(args))
    except ValueError as refused:
        print(f"audiences-server: {refused}", file=sys.stderr)
        return 2
    return 0


def _clock_start(text: str) -> int | None:
    """`--clock-start` of the identity stage and the shards: milliseconds since the epoch, or an
    ISO-8601 time with a zone, as the front's (and `serve`'s) `--clock-start` takes it."""
    if text.strip().lstrip("-").isdigit():
        return int(text)
    try:
        return time_ms(text)
    except ValueError as bad:
        raise argparse.ArgumentTypeError(str(bad)) from None


def engine_for(db: Path, manual_clock: bool, clock_start: int | None) -> Engine:
    """A role's engine on its own file, with the space every role shares (the bootstrap's `default`)."""
    db.parent.mkdir(parents=True, exist_ok=True)
    engine = Engine(Settings(db=db, manual_clock=manual_clock, clock_start=clock_start,
                             credentials_file=str(db.with_suffix(".credentials.json"))))
    engine.bootstrap()
    return engine


def copy_partition(source: Path, target: Path) -> None:
    """Copies a partition's file with SQLite's online backup (a consistent copy even while the
    partition runs; moving it, it is stopped first, so that the copy holds its last position)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(apsw.Connection(str(source), flags=apsw.SQLITE_OPEN_READONLY)) as src, \
            contextlib.closing(apsw.Connection(str(target))) as dst:
        src.setbusytimeout(5000)
        with dst.backup("main", src, "main") as backup:
            while not backup.done:
                backup.step(1024)


def partition_files(args: argparse.Namespace) -> list[Path]:
    """Each partition's file, in the order of `--partition`."""
    if args.db is not None:
        return [args.db]
    return [args.data_dir / f"partition-{p}.db" for p in args.partitions_run]


def _refusal(args: argparse.Namespace) -> str | None:
    if args.role == "copy-partition":
        return "the source must exist and the target must not" \
            if args.target.exists() or not args.source.exists() else None
    if args.role == "identity":
        return "the partitions must be >= 1" if args.partitions < 1 else None
    return _shard_refusal(args)


def _shard_refusal(args: argparse.Namespace) -> str | None:
    partitions = args.partitions_run
    if any(p < 0 for p in partitions) or len(set(partitions)) != len(partitions):
        return "every --partition must be >= 0 and given once"
    if (args.db is None) == (args.data_dir is None):
        return "give either --db (one partition) or --data-dir"
    if args.db is not None and len(partitions) != 1:
        return "--db holds one partition: give --data-dir for several"
    if args.listen and len(args.listen) != len(partitions):
        return "give --listen once per --partition, or not at all"
    return None


async def _run_partitions(args: argparse.Namespace, the_log: JetStreamLog, stop: asyncio.Event) -> None:
    """Every partition of the process side by side on this loop, each its own engine, file,
    consumer and read endpoint, until `stop`."""
    engines: list[Engine] = []
    endpoints: list[tuple[aio.Server, futures.ThreadPoolExecutor, int]] = []
    try:
        shards = []
        for partition, db in zip(args.partitions_run, partition_files(args), strict=True):
            engine = await asyncio.to_thread(engine_for, db, args.manual_clock, args.clock_start)
            engines.append(engine)
            shards.append(Shard(engine, the_log, partition))  # before the delivery workers: it names their ids
            if not args.manual_clock:
                engine.start()  # the evaluator ticks on the system clock
            log.info("shard_started", partition=partition, db=str(db))
        # No --listen: no endpoint (else one per partition, checked).
        for partition, engine, address in zip(args.partitions_run, engines, args.listen, strict=False):
            endpoints.append(await serve_shard_reads(engine, address))
            log.info("shard_reads_started", partition=partition, address=address, port=endpoints[-1][2])
        await until_stopped(asyncio.gather(*(shard.run(stop) for shard in shards)), stop)
    finally:
        for server, pool, _ in endpoints:
            await server.stop(5)
            pool.shutdown()
        for engine in engines:
            await asyncio.to_thread(engine.close)


async def until_stopped(work: Awaitable[Any], stop: asyncio.Event, grace_s: float = STOP_GRACE_S) -> None:
    """Awaits a role's work, which ends by itself once `stop` is set; if it has not `grace_s`
    later, it is cancelled (a role is built to be stopped at any point). An append waiting for a
    log that went away meanwhile (the command killed, nats-server with it) would otherwise hold
    the role for its 30 s timeout, and the next request as long again."""
    task = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            await asyncio.wait({task}, timeout=grace_s)
        if not task.done():
            log.warning("role_work_cancelled", after_s=grace_s)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return
        task.result()
    finally:
        stopping.cancel()


def _stopped_by_signals() -> asyncio.Event:
    """An event the running loop sets on SIGTERM or SIGINT (which also arms the stop's deadline)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def stopping() -> None:
        stop.set()
        end_unless_stopped_within(STOP_DEADLINE_S)

    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stopping)
    return stop


def end_unless_stopped_within(seconds: float) -> None:
    """Told to stop: a role still running `seconds` later ends itself, its threads' stacks printed
    first (exit status 1). `cluster local` kills a role that overruns its stop, but when the
    command was itself killed (its roles told by the kernel) nothing else would; every role is
    built to be killed at any point, so ending there loses nothing a stop would have kept. The
    deadline is faulthandler's own thread, which needs no GIL: it ends a role stuck anywhere."""
    if not _deadline_armed.acquire(blocking=False):
        return  # armed by the first signal already
    faulthandler.dump_traceback_later(seconds, exit=True)


async def _serve(args: argparse.Namespace) -> None:
    if args.role == "identity":
        await _serve_identity(args)
        return
    stop = _stopped_by_signals()
    the_log = await _connect_unless_stopped(args.nats, stop)
    if the_log is None:
        return
    try:
        agreed = await the_log.agree_partitions(None)
        beyond = [p for p in args.partitions_run if agreed is not None and p >= agreed]
        if agreed is not None and beyond:
            raise ValueError(f"this cluster has {agreed} partitions (0 to {agreed - 1}), recorded in its log;"
                             f" there is no partition {beyond[0]}")
        await _run_partitions(args, the_log, stop)
    finally:
        await _close(the_log)


async def _serve_identity(args: argparse.Namespace) -> None:
    engine = await asyncio.to_thread(engine_for, args.db, args.manual_clock, args.clock_start)
    stop = _stopped_by_signals()
    try:
        # Before the log: a file made for another P is refused whether NATS answers or not. A new
        # file records P only once the log agrees (IdentityStage), so a refused start leaves it new.
        await asyncio.to_thread(engine.writer.run, lambda conn: keep_partitions(conn, args.partitions, record=False))
        the_log = await _connect_unless_stopped(args.nats, stop)
        if the_log is None:
            return
        try:
            agreed = await the_log.agree_partitions(args.partitions)
            if agreed != args.partitions:
                raise ValueError(f"this cluster has {agreed} partitions, recorded in its log by the role that"
                                 f" first started; this identity stage was given --partitions {args.partitions}")
            stage = IdentityStage(engine.writer, the_log, args.partitions)
            log.info("identity_stage_started", partitions=args.partitions, db=str(args.db))
            await until_stopped(stage.run(stop), stop)
        finally:
            await _close(the_log)
    finally:
        await asyncio.to_thread(engine.close)


async def _connect_unless_stopped(url: str, stop: asyncio.Event) -> JetStreamLog | None:
    """The log, once NATS answers; None if SIGTERM or SIGINT comes first (a role started while
    NATS is away waits for it, and stops when told to)."""
    connecting = asyncio.ensure_future(JetStreamLog.connect(url))
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({connecting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if connecting.done():
        stopping.cancel()
        return connecting.result()
    connecting.cancel()
    log.info("stopped_before_the_log_answered", nats=url)
    await asyncio.wait({connecting}, timeout=1.0)
    if not connecting.done():
        # The NATS client can swallow a cancellation (its flush does) and go on reconnecting for
        # ever, and asyncio.run would wait for it at the end: nothing has started, nothing to keep.
        sys.stdout.flush()
        os._exit(0)
    with contextlib.suppress(BaseException):
        connecting.result()
    return None


async def _close(the_log: JetStreamLog) -> None:
    """Closes the log's connection; with NATS away, what could not be flushed is said in one line."""
    try:
        await the_log.close()
    except (OSError, TimeoutError) as failed:
        log.warning("log_close_failed", error=str(failed) or type(failed).__name__)


def _front(args: argparse.Namespace) -> int:
    """The server, its ingest diverted to the log, until SIGTERM or SIGINT."""
    try:
        settings = resolve({k: v for k, v in vars(args).items() if k not in ("command", "role", "nats", "shards")},
                           os.environ)
        logs.configure(settings.log_format, settings.log_level)
        server, port = create_server(settings)
    except (ValueError, OSError) as refused:
        print(f"audiences-server: {refused}", file=sys.stderr)
        return 2
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="log", daemon=True)
    thread.start()
    try:
        the_log = asyncio.run_coroutine_threadsafe(JetStreamLog.connect(args.nats, buffered=False), loop).result(
            CONNECT_TIMEOUT_S)
    except (TimeoutError, OSError) as failed:
        print(f"audiences-server: NATS at {args.nats} did not answer within {CONNECT_TIMEOUT_S} s"
              f" ({str(failed) or type(failed).__name__}); start it, then the front", file=sys.stderr)
        server.stop(0)
        loop.call_soon_threadsafe(loop.stop)
        return 1
    except ValueError as refused:  # a NATS server this cluster cannot run on
        print(f"audiences-server: {refused}", file=sys.stderr)
        server.stop(0)
        loop.call_soon_threadsafe(loop.stop)
        return 2
    agreed = asyncio.run_coroutine_threadsafe(the_log.agree_partitions(len(args.shards)), loop).result(
        CONNECT_TIMEOUT_S)
    if agreed != len(args.shards):
        print(f"audiences-server: this cluster has {agreed} partitions, recorded in its log; name each one's read"
              f" endpoint with --shard, in partition order ({len(args.shards)} given)", file=sys.stderr)
        server.stop(0)
        asyncio.run_coroutine_threadsafe(the_log.close(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        return 2
    shards = ShardReads(args.shards)
    make_front(server.engine, the_log, loop, shards)
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()
        end_unless_stopped_within(STOP_DEADLINE_S)

    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, on_signal)
    server.start()
    log.info("front_started", address=f"{settings.listen.rsplit(':', 1)[0]}:{port}", http_port=server.http_port,
             nats=args.nats)
    while not stopping.wait(0.25):  # timed: a signal's handler runs when the main thread runs bytecode
        pass
    server.stop()
    shards.close()
    asyncio.run_coroutine_threadsafe(the_log.close(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    return 0


async def _send(url: str, space_id: int, body: bytes) -> int:
    """Validates a body as the tracking API does, appends its calls, prints each call's outcome."""
    try:
        calls, defaults = calls_of(decode_body(body))
        check_batch_limits(len(calls), len(body))
    except InvalidArgument as refused:
        print(f"audiences-server: {refused.message}", file=sys.stderr)
        return 1
    the_log = await JetStreamLog.connect(url, buffered=False)
    try:
        results = await Front(the_log, Clock()).submit(space_id, calls, defaults=defaults)
    finally:
        await the_log.close()
    for result in results:
        print(json.dumps(dataclasses.asdict(result)))
    return 0
