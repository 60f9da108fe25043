"""What the roles refuse or pass over: entries that are not entries, definitions not built yet."""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from audiences_server.cluster import roles as cluster_roles
from audiences_server.cluster.entries import decode
from audiences_server.cluster.front import Front
from audiences_server.cluster.identity import IdentityStage
from audiences_server.cluster.log import CALLS, JetStreamLog, LocalLog, partition_subject
from audiences_server.cluster.roles import engine_for
from audiences_server.cluster.shard import Shard
from audiences_server.engine.clock import Clock, ManualClock
from audiences_server.engine.computations import Spec
from audiences_server.errors import InvalidArgument, Unimplemented
from tests.cluster.conftest import NatsServer, free_port
from tests.cluster.harness import Cluster
from tests.cluster.streams import T0


def test_unreadable_entries_are_logged_and_skipped(tmp_path: Path) -> None:
    """Garbage on `aud.calls` and on a partition is passed over by the identity stage and the
    shard, the calls after it are stored, and the shard still knows the last identity serial it
    applied: a call entry published again after the garbage is not stored twice."""
    log = LocalLog()

    async def connect() -> LocalLog:
        return log

    cluster = Cluster(tmp_path, connect, shards=1, start_ms=T0)
    try:
        cluster.loop_run(log.append(CALLS, b"\xff not json"))
        cluster.send([{"type": "track", "userId": "u1", "event": "After", "messageId": "after"}])
        cluster.tick(T0 + 1)
        call = next(e for e in log.entries(partition_subject(0)) if decode(e.data)["t"] == "call")
        cluster.loop_run(log.append(partition_subject(0), b"\xff not json"))
        cluster.loop_run(log.append(partition_subject(0), call.data))  # as if the identity stage published it again
        cluster.tick(T0 + 2)
        assert [message for _, message, _ in cluster.stored().events] == ["after"]
    finally:
        cluster.close()


def test_interpreted_account_definitions_are_refused_as_unimplemented_on_either_clock() -> None:
    """A front, on the manual clock or the system clock, accepts an account audience the fast
    path compiles, and refuses with UNIMPLEMENTED an account definition the interpreter would
    evaluate (an account-level stream, an account computed trait); a definition that does not
    check is refused with INVALID_ARGUMENT. Only what was accepted is appended."""

    async def scenario() -> None:
        log = LocalLog()
        fronts = [Front(log, ManualClock(T0)), Front(log, Clock())]
        interpreted = [Spec("audience", "accounts", "busy", definition="event('Signed Up').count() >= 1"),
                       Spec("computed_trait", "accounts", "orders", definition="event('Order Completed').count()")]
        for front in fronts:
            for spec in interpreted:
                with pytest.raises(Unimplemented) as refused:
                    await front.define(1, spec)
                assert refused.value.reason == "CLUSTER_ACCOUNTS_INTERPRETED_UNIMPLEMENTED", spec.key
            with pytest.raises(InvalidArgument):
                await front.define(1, Spec("audience", "users", "bad", definition="event('x').count( >= 1"))
        compiled = Spec("audience", "accounts", "big", definition="trait('size') > 10 AND ANY trait('plan') = 'pro'")
        await fronts[0].define(1, compiled)
        await fronts[1].define(1, Spec("audience", "accounts", "all_big", definition="ALL trait('size') > 10"))
        await fronts[0].define(1, Spec("audience", "users", "good", definition="trait('plan') = 'pro'"))
        assert [decode(e.data)["spec"]["key"] for e in log.entries(CALLS)] == ["big", "all_big", "good"]

    asyncio.run(scenario())


def test_user_definitions_reading_an_account_audience_are_refused_by_every_shard(tmp_path: Path) -> None:
    """A user definition whose `trait('k')` would name an account audience (created after it, or
    before it) is not created by any shard, whichever of the two comes first, while the
    definitions that do not make a user read an account audience are."""
    cluster = Cluster(tmp_path, _local_log, shards=2, start_ms=T0)
    try:
        cluster.define(Spec("audience", "accounts", "vip", definition="ANY trait('plan') = 'pro'"))
        cluster.define(Spec("audience", "users", "in_vip", definition="trait('vip') = true"))  # reads `vip`
        cluster.define(Spec("audience", "users", "golden", definition="trait('gold') = true"))  # a custom trait
        # `golden` would read it:
        cluster.define(Spec("audience", "accounts", "gold", definition="ALL trait('plan') = 'pro'"))
        cluster.tick(T0 + 1)
        for shard in cluster.shards:
            keys = [r[0] for r in shard.engine.readers.get().execute("SELECT key FROM computations ORDER BY key")]
            assert keys == ["golden", "vip"]
    finally:
        cluster.close()


async def _local_log() -> LocalLog:
    return LocalLog()


def test_a_front_refuses_to_move_the_clock_backwards() -> None:
    """`Front.set_clock` checks as one node's `SetClock` does: the same time again is a tick at
    that time, an earlier one is refused (`CLOCK_BACKWARDS`) and appends nothing."""

    async def scenario() -> None:
        log = LocalLog()
        front = Front(log, ManualClock(T0))
        await front.set_clock(T0 + 1_000)
        await front.set_clock(T0 + 1_000)
        with pytest.raises(InvalidArgument) as refused:
            await front.set_clock(T0 + 999)
        assert refused.value.reason == "CLOCK_BACKWARDS"
        assert [decode(e.data)["at"] for e in log.entries(CALLS)] == [T0 + 1_000, T0 + 1_000]

    asyncio.run(scenario())


def _role(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "audiences_server.cli", "cluster", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_an_identity_stage_keeps_the_partitions_its_file_was_made_with(tmp_path: Path) -> None:
    """P is fixed when the cluster is made: an identity stage's file records it on its first run,
    and a start with another P is refused (status 2), NATS reachable or not, before it routes a
    call to a partition that does not hold its profile."""
    db = tmp_path / "identity.db"
    engine = engine_for(db, manual_clock=False, clock_start=None)
    try:
        IdentityStage(engine.writer, LocalLog(), 2)
        with pytest.raises(ValueError, match="routes to 2 partitions, not 3"):
            IdentityStage(engine.writer, LocalLog(), 3)
    finally:
        engine.close()
    refused = _role("identity", "--db", str(db), "--partitions", "3", "--nats", f"nats://127.0.0.1:{free_port()}")
    _out, err = refused.communicate(timeout=60)
    assert refused.returncode == 2
    assert err.strip().endswith("routes to 2 partitions, not 3: P is fixed when the cluster is made (docs/scaling.md)")


def test_a_shard_file_keeps_the_partition_it_was_made_for(tmp_path: Path) -> None:
    """A shard's file records its partition on its first run; started as another partition (its
    --db and --partition swapped), it is refused before it reads a thing, rather than mixing two
    partitions' profiles that the cluster would then count twice."""
    db = tmp_path / "shard-0.db"
    engine = engine_for(db, manual_clock=True, clock_start=None)
    try:
        Shard(engine, LocalLog(), 0)
        with pytest.raises(ValueError, match=r"shard-0.db holds partition 0, not 1: start it with --partition 0"):
            Shard(engine, LocalLog(), 1)
        Shard(engine, LocalLog(), 0)  # as it was made: it runs
    finally:
        engine.close()


@pytest.mark.parametrize("role", ["identity", "shard"])
def test_a_role_waiting_for_nats_stops_when_told(tmp_path: Path, role: str) -> None:
    """Started while NATS does not answer, an identity stage or a shard process waits for it, and
    SIGTERM stops it at once (status 0), without a traceback."""
    nats = f"nats://127.0.0.1:{free_port()}"
    args = (["--db", str(tmp_path / "identity.db"), "--partitions", "2"] if role == "identity" else
            ["--partition", "0", "--data-dir", str(tmp_path / "shard")])
    process = _role(role, *args, "--nats", nats)
    time.sleep(3)
    assert process.poll() is None  # still waiting for NATS
    process.send_signal(signal.SIGTERM)
    _out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert "Traceback" not in err


def test_every_role_takes_the_clock_start_the_front_takes() -> None:
    """`--clock-start` of the identity stage and the shards takes an ISO-8601 time, as the front's
    does, and still milliseconds; anything else is a usage error naming what it wants."""
    parser = argparse.ArgumentParser()
    cluster_roles.register(parser.add_subparsers(dest="command"))
    for role in (("identity", "--db", "i.db", "--partitions", "2"), ("shard", "--partition", "0", "--data-dir", "d")):
        iso = parser.parse_args(["cluster", *role, "--clock-start", "2026-01-01T00:00:00Z"])
        millis = parser.parse_args(["cluster", *role, "--clock-start", "1767225600000"])
        assert iso.clock_start == millis.clock_start == 1_767_225_600_000
    with pytest.raises(SystemExit):
        parser.parse_args(["cluster", "shard", "--partition", "0", "--clock-start", "tomorrow"])


def test_every_role_agrees_on_the_number_of_partitions(tmp_path: Path, nats: NatsServer) -> None:
    """The first role to start records P in the log; a front naming another number of read
    endpoints, a shard running a partition beyond P, and an identity stage given another P are
    each refused (status 2) with a line saying what the cluster has, before serving anything. A
    front naming too few endpoints used to start and answer 404 for the profiles of the others."""
    identity = _role("identity", "--db", str(tmp_path / "identity.db"), "--partitions", "3", "--nats", nats.url)
    try:
        deadline = time.monotonic() + 60
        while _recorded(nats.url) is None:
            assert identity.poll() is None, identity.communicate()[1]
            assert time.monotonic() < deadline, "the identity stage never recorded P"
            time.sleep(0.2)
        assert _recorded(nats.url) == 3
        shards = [f"--shard=127.0.0.1:{free_port()}" for _ in range(2)]
        front = subprocess.run([sys.executable, "-m", "audiences_server.cli", "cluster", "front", "--db",
                                str(tmp_path / "front.db"), "--nats", nats.url, "--listen", "127.0.0.1:0",
                                "--http-listen", "", *shards], check=False, capture_output=True, text=True,
                               timeout=120)
        assert front.returncode == 2, front.stderr
        assert front.stderr.strip().endswith("this cluster has 3 partitions, recorded in its log; name each one's"
                                             " read endpoint with --shard, in partition order (2 given)")
        shard = _role("shard", "--partition", "1", "--partition", "3", "--data-dir", str(tmp_path / "s"),
                      "--nats", nats.url)
        _out, err = shard.communicate(timeout=60)
        assert shard.returncode == 2, err
        assert err.strip().endswith("this cluster has 3 partitions (0 to 2), recorded in its log; there is no"
                                    " partition 3")
        other = _role("identity", "--db", str(tmp_path / "other.db"), "--partitions", "2", "--nats", nats.url)
        _out, err = other.communicate(timeout=60)
        assert other.returncode == 2, err
        assert "this cluster has 3 partitions, recorded in its log by the role that first started;" in err
        # The refused start left its new file without a P: started again with the right one, it runs.
        again = _role("identity", "--db", str(tmp_path / "other.db"), "--partitions", "3", "--nats", nats.url)
        time.sleep(3)
        assert again.poll() is None, again.communicate()[1]
        again.terminate()
        assert again.wait(30) == 0
        assert identity.poll() is None  # the first is untouched
        sent = subprocess.run([sys.executable, "-m", "audiences_server.cli", "cluster", "send", "--nats", nats.url],
                              input='{"type": "track", "userId": "u1", "event": "E"}', check=False,
                              capture_output=True, text=True, timeout=60)
        assert sent.returncode == 0, sent.stderr
        assert '"status": "accepted"' in sent.stdout
        assert "nats_disconnected" not in sent.stderr  # closing its own connection is not news
    finally:
        identity.terminate()
        identity.wait(30)


def _recorded(url: str) -> int | None:
    async def read() -> int | None:
        the_log = await JetStreamLog.connect(url)
        try:
            return await the_log.agree_partitions(None)
        finally:
            await the_log.close()
    return asyncio.run(read())
