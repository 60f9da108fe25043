"""The client's and the CLI's operator commands: spaces, tokens, profile deletions and
suppressions, against the shared server with its bootstrap operator token."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import Callable

import audiences
import pytest
from audiences.v1 import operator_pb2

from tests.client.conftest import Result
from tests.conftest import Running

Run = Callable[..., Result]


def test_client_issues_lists_and_revokes_tokens(client: audiences.Client, server: Running,
                                                unique: Callable[[str], str]) -> None:
    """A space made through the client gets a token that works until the client revokes it."""
    name = unique("ops").replace("_", "-")
    space = client.create_space(name, event_retention=dt.timedelta(days=30))
    assert space.event_retention.seconds == 30 * 86_400
    assert name in [s.name for s in client.iter_spaces(page_size=1)]
    assert not client.set_event_retention(name, None).HasField("event_retention")
    made = client.create_token("read", space=name, label="bi", ttl=dt.timedelta(hours=1))
    assert [(t.token_id, t.label) for t in client.iter_tokens(space=name)] == [(made.token.token_id, "bi")]
    reader = audiences.Client(f"127.0.0.1:{server.port}", read_token=made.secret, credentials_file="/nonexistent")
    try:
        with pytest.raises(audiences.AudiencesError) as unknown:
            reader.get_traits("user_id:nobody")
        assert unknown.value.reason == "PROFILE_NOT_FOUND"
        assert client.revoke_token(made.token.token_id).state == operator_pb2.TOKEN_STATE_REVOKED
        with pytest.raises(audiences.AudiencesError) as revoked:
            reader.get_traits("user_id:nobody")
        assert revoked.value.reason == "TOKEN_REVOKED"
    finally:
        reader.close()


def test_client_deletes_a_profile_and_lifts_its_suppression(client: audiences.Client,
                                                            unique: Callable[[str], str]) -> None:
    """delete_profile returns a PENDING deletion that becomes COMPLETE; its identifier is listed
    as suppressed until delete_suppression."""
    user = unique("gone")
    client.identify(user_id=user, traits={"plan": "pro"})
    client.flush()
    deletion = client.delete_profile(f"user_id:{user}", suppress=True, delivery_timeout=0)
    assert deletion.deletion_id.startswith("del_")
    deadline = time.monotonic() + 20
    while client.get_profile_deletion(deletion.deletion_id).state != operator_pb2.DELETION_STATE_COMPLETE:
        assert time.monotonic() < deadline, "the deletion did not complete"
        time.sleep(0.05)
    assert deletion.deletion_id in [d.deletion_id for d in client.iter_profile_deletions()]
    listed = {(s.external_id.type, s.external_id.value) for s in client.iter_suppressions()}
    assert ("user_id", user) in listed
    client.delete_suppression(f"user_id:{user}")
    assert ("user_id", user) not in {(s.external_id.type, s.external_id.value) for s in client.iter_suppressions()}


def test_cli_operator_commands(run_cli: Run, unique: Callable[[str], str]) -> None:
    """`spaces`, `tokens`, `deletions` and `suppressions` print for people and for scripts."""
    name = unique("cli-space").replace("_", "-")
    created = run_cli("spaces", "create", name, "--event-retention-days", "30")
    assert created.code == 0, created.err
    assert "30 days" in created.out
    assert name in run_cli("spaces", "list").out
    made = run_cli("--json", "tokens", "create", "write", "--space", name, "--label", "cli")
    token = json.loads(made.out)
    assert token["secret"].startswith("aud_write_")
    listing = run_cli("tokens", "list", "--space", name).out
    assert token["token"]["token_id"] in listing
    assert token["secret"] not in listing
    assert run_cli("tokens", "revoke", token["token"]["token_id"]).out.startswith("revoked ")
    user = unique("cli_gone")
    run_cli("identify", user, "--traits", '{"plan": "pro"}')
    deleted = run_cli("deletions", "create", f"user_id:{user}", "--suppress", "--delivery-timeout", "0", "--wait")
    assert deleted.code == 0, deleted.err
    assert "complete" in deleted.out
    assert f"user_id:{user}" in run_cli("suppressions", "list").out
    assert run_cli("suppressions", "delete", f"user_id:{user}").code == 0
    missing = run_cli("suppressions", "delete", f"user_id:{user}")
    assert (missing.code, "SUPPRESSION_NOT_FOUND" in missing.err) == (1, True)


def test_async_client_operator_methods(server: Running) -> None:
    """AsyncClient has the operator methods too: awaited calls and async listings."""

    async def body() -> tuple[str, list[str]]:
        async with audiences.AsyncClient(f"127.0.0.1:{server.port}", server.tokens) as client:
            space = await client.get_space()
            return space.name, [t.label async for t in client.iter_tokens()]

    name, labels = asyncio.run(body())
    assert name == "default"
    assert "bootstrap" in labels
