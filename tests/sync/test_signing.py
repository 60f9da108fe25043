"""Webhook signing: Standard Webhooks headers verified with the `standardwebhooks` library on the
receiving side, replays refused, the deprecated HMAC header kept."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import time
from datetime import UTC, datetime, timedelta
from unittest import mock

import grpc
import pytest
import standardwebhooks
from audiences.v1 import sync_pb2

from audiences_server.engine.destinations.webhook import Signer
from tests.conftest import error_reason
from tests.evaluator.conftest import Space
from tests.sync.conftest import SECRET, Receiver, Request, admin, connect, wait_for, webhook


def _members(space: Space, *users: str) -> None:
    space.send(*({"type": "identify", "userId": u, "traits": {"plan": "pro"}} for u in users))


def _replay(receiver: Receiver, request: Request) -> int:
    """Sends a captured request again, byte for byte, as an attacker who recorded it would."""
    conn = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=5)
    try:
        conn.request("POST", request.path, body=request.raw, headers=request.headers)
        return conn.getresponse().status
    finally:
        conn.close()


def test_each_request_verifies_with_the_library(space: Space, receiver: Receiver) -> None:
    """Every EVENT-style request carries webhook-id (the call's messageId), webhook-timestamp (the
    time it was sent) and webhook-signature, and verifies with the standardwebhooks library; the
    same request with its body changed does not."""
    receiver.verifying = True
    _members(space, "u1", "u2")
    space.define("pro", "trait('plan') = 'pro'")
    space.tick()
    webhook(space, "hook", receiver.url)
    connect(space, "hook", "pro", send_identify=True, send_track=True)
    wait_for(lambda: len(receiver.accepted) >= 4, what="four signed calls")
    assert not receiver.refused
    for request in receiver.accepted:
        assert standardwebhooks.Webhook(SECRET).verify(request.raw, request.headers) == request.body
        assert request.headers["webhook-id"] == request.body["messageId"]
        assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    tampered = receiver.accepted[0].raw.replace(b'"pro":true', b'"pro":false')
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(SECRET).verify(tampered, receiver.accepted[0].headers)


def test_a_replay_is_refused(space: Space, receiver: Receiver) -> None:
    """A captured request sent again is not processed a second time (its webhook-id was seen),
    and one replayed after the five-minute tolerance fails verification outright."""
    receiver.verifying = True
    _members(space, "u1")
    space.define("pro", "trait('plan') = 'pro'")
    space.tick()
    webhook(space, "hook", receiver.url)
    connect(space, "hook", "pro", send_identify=True)
    captured = wait_for(lambda: receiver.accepted, what="a signed call")[0]
    assert _replay(receiver, captured) == 200
    assert len(receiver.accepted) == 1
    assert [r.headers["webhook-id"] for r in receiver.refused] == [captured.headers["webhook-id"]]
    later = datetime.now(UTC) + timedelta(minutes=6)
    with mock.patch("standardwebhooks.webhooks.datetime", wraps=datetime) as clock:
        clock.now.return_value = later
        with pytest.raises(standardwebhooks.WebhookVerificationError, match="too old"):
            standardwebhooks.Webhook(SECRET).verify(captured.raw, captured.headers)


def test_list_batches_are_signed_with_an_id_of_their_calls(space: Space, receiver: Receiver) -> None:
    """A LIST-style batch verifies too; its webhook-id is derived from its calls' message ids."""
    receiver.verifying = True
    _members(space, "u1", "u2", "u3")
    space.define("pro", "trait('plan') = 'pro'")
    space.tick()
    webhook(space, "hook", receiver.url, style=sync_pb2.WEBHOOK_PAYLOAD_STYLE_LIST, batch_size=3)
    connect(space, "hook", "pro", send_identify=True)
    request = wait_for(lambda: receiver.accepted, what="a batch")[0]
    assert len(request.body["batch"]) == 3
    assert request.headers["webhook-id"].startswith("bat_")
    assert standardwebhooks.Webhook(SECRET).verify(request.raw, request.headers) == request.body


def test_a_retry_keeps_its_id_and_is_signed_again(space: Space, receiver: Receiver) -> None:
    """A request that failed is retried with the same webhook-id and a fresh, valid signature."""
    receiver.verifying = True
    receiver.failures = [500]
    _members(space, "u1")
    space.define("pro", "trait('plan') = 'pro'")
    space.tick()
    webhook(space, "hook", receiver.url)
    connect(space, "hook", "pro", send_identify=True)
    request = wait_for(lambda: receiver.accepted, what="the retried call")[0]
    assert receiver.attempts == 2
    assert request.headers["webhook-id"] == request.body["messageId"]
    assert request.headers["webhook-id"] in receiver.seen_ids


@pytest.mark.parametrize("secret", ["s3cret", "whsec_not base64!", "whsec_" + "QUJD" * 3])
def test_a_malformed_signing_secret_is_refused(space: Space, secret: str) -> None:
    """A signing secret that is not `whsec_` and the base64 of 24 to 64 bytes is INVALID_ARGUMENT
    naming `webhook.signing_secret`."""
    message = sync_pb2.Destination(key="hook", webhook=sync_pb2.WebhookConfig(url="http://127.0.0.1:9/",
                                                                              signing_secret=secret))
    with pytest.raises(grpc.RpcError) as caught:
        space.running.sync.CreateDestination(sync_pb2.CreateDestinationRequest(destination=message),
                                             metadata=admin(space))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(caught.value) == "DESTINATION_INVALID"
    assert "webhook.signing_secret" in caught.value.details()


def test_the_signing_secret_is_never_read_back(space: Space) -> None:
    """The secret is stored but read back empty, with `signing_secret_set`."""
    created = webhook(space, "hook", "http://127.0.0.1:9/")
    assert created.webhook.signing_secret == ""
    assert created.webhook.signing_secret_set
    assert not created.webhook.hmac_secret_set


def test_the_deprecated_hmac_secret_still_signs(space: Space, receiver: Receiver) -> None:
    """A destination with the deprecated `hmac_secret` still gets `X-Audiences-Signature:
    sha256=<hex>`, the HMAC-SHA256 of the raw body, as before."""
    _members(space, "u1")
    space.define("pro", "trait('plan') = 'pro'")
    space.tick()
    config = sync_pb2.WebhookConfig(url=receiver.url, hmac_secret="s3cret")
    space.running.sync.CreateDestination(sync_pb2.CreateDestinationRequest(
        destination=sync_pb2.Destination(key="old", webhook=config)), metadata=admin(space))
    connect(space, "old", "pro", send_identify=True)
    request = wait_for(lambda: receiver.accepted, what="a call")[0]
    expected = "sha256=" + hmac.new(b"s3cret", request.raw, hashlib.sha256).hexdigest()
    assert request.headers["X-Audiences-Signature"] == expected
    assert "webhook-signature" not in request.headers


@pytest.mark.parametrize("body", [b'{"a":1}', '{"name":"Zoë ✓"}'.encode(), b""])
def test_signatures_are_the_specifications(body: bytes) -> None:
    """The signature the server computes over the body's bytes is the one the library computes
    for the same id, timestamp and body, and the library verifies it."""
    now = int(time.time())
    headers = dict(Signer({"signing_secret": SECRET}).signatures("msg_1", body, now))
    library = standardwebhooks.Webhook(SECRET)
    assert headers == {"webhook-id": "msg_1", "webhook-timestamp": str(now),
                       "webhook-signature": library.sign("msg_1", datetime.fromtimestamp(now, UTC), body.decode())}
    library.verify(body, headers, json_parse=False)
