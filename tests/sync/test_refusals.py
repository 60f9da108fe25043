"""What SyncService refuses, naming the field: URLs no request can go to, and enum values the
contract does not have; a destination stored before its URL was refused sends nothing and says
so once, not on every round of its worker."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from audiences.v1 import common_pb2, sync_pb2
from google.protobuf import duration_pb2, field_mask_pb2
from structlog.testing import capture_logs

from audiences_server.engine.destinations import webhook as webhook_kind
from tests.conftest import error_reason, field_violations
from tests.evaluator.conftest import Space
from tests.sync.conftest import FAST, Receiver, admin, connect, ref, wait_for, webhook

BAD_URLS = [
    "http://[::1/",  # brackets unbalanced
    "http://[zz]/",  # brackets around something not an IP address
    "http://127.0.0.1:99999/",
    "http://127.0.0.1:0/",
    "http://127.0.0.1:-1/",
    "http://127.0.0.1:abc/",
    "http://a:b:c/",
    "http://:80/",  # no host
    "http://127.0.0.1:9/a b c",
    "http://127.0.0.1:9/p\x00q",
    "http://127.0.0.1:9/p\tq",
    "http://127.0.0.1:9/p\x7fq",
    "http://☃.net/",  # a host with no IDNA form
    "http://a..b/x",  # an empty label, which the resolver refuses
    "http://" + "a" * 70 + ".example/",  # a label over 63 characters
    "http://xn--zz.example/",  # an A-label that is no punycode
    "http://%zz/",  # a host name with a character no host name has
]


def _refused(call: Callable[..., Any], *args: Any) -> grpc.RpcError:
    """The error of a call that must fail with INVALID_ARGUMENT."""
    with pytest.raises(grpc.RpcError) as caught:
        call(*args)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    return caught.value


def _create(space: Space, destination: sync_pb2.Destination) -> sync_pb2.Destination:
    return space.running.sync.CreateDestination(sync_pb2.CreateDestinationRequest(destination=destination),
                                                metadata=admin(space)).destination


def _update(space: Space, destination: sync_pb2.Destination, *paths: str) -> sync_pb2.Destination:
    request = sync_pb2.UpdateDestinationRequest(destination=destination,
                                                update_mask=field_mask_pb2.FieldMask(paths=paths))
    return space.running.sync.UpdateDestination(request, metadata=admin(space)).destination


@pytest.mark.parametrize("url", BAD_URLS)
def test_a_url_no_request_can_go_to_is_refused(space: Space, url: str) -> None:
    """A malformed host, a port that is not 1 to 65535, no host, a space or control character
    (which would go into the request line as it is): INVALID_ARGUMENT DESTINATION_INVALID naming
    the field, when creating a webhook or Segment destination and when updating its URL."""
    failure = _refused(_create, space, sync_pb2.Destination(key="hook", webhook=sync_pb2.WebhookConfig(url=url)))
    assert error_reason(failure) == "DESTINATION_INVALID"
    assert [f for f, _ in field_violations(failure)] == ["webhook.url"]
    assert failure.details().startswith("`webhook.url` must be an http or https URL: ")
    failure = _refused(_create, space, sync_pb2.Destination(
        key="seg", segment=sync_pb2.SegmentConfig(base_url=url, write_key="k")))
    assert (error_reason(failure), field_violations(failure)[0][0]) == ("DESTINATION_INVALID", "segment.base_url")
    _create(space, sync_pb2.Destination(key="hook", webhook=sync_pb2.WebhookConfig(url="http://127.0.0.1:9/in")))
    for paths in (["webhook.url"], ["webhook"], []):
        failure = _refused(_update, space, sync_pb2.Destination(key="hook", webhook=sync_pb2.WebhookConfig(url=url)),
                           *paths)
        assert (error_reason(failure), field_violations(failure)[0][0]) == ("DESTINATION_INVALID", "webhook.url")
    shown = space.running.sync.GetDestination(sync_pb2.GetDestinationRequest(key="hook"), metadata=admin(space))
    assert shown.destination.webhook.url == "http://127.0.0.1:9/in"


@pytest.mark.parametrize(("url", "why"), [
    ("http://[::1/", "invalid host (Invalid IPv6 URL)"),
    ("http://127.0.0.1:99999/", "invalid port '99999' (a port is 1 to 65535)"),
    ("http://127.0.0.1:9/a b", "' ' at position 20 (a space or control character is percent-encoded in a URL"),
    ("ftp://h/", "it starts with neither http:// nor https://"),
])
def test_a_refused_url_says_why(space: Space, url: str, why: str) -> None:
    """The message says what is wrong with the URL."""
    failure = _refused(_create, space, sync_pb2.Destination(key="hook", webhook=sync_pb2.WebhookConfig(url=url)))
    assert failure.details().startswith(f"`webhook.url` must be an http or https URL: {why}")


@pytest.mark.parametrize("url", ["http://alice:s3cret@127.0.0.1:9/in", "https://alice@h.example/in",
                                 "https://:s3cret@h.example/in", "http://@h.example/in"])
def test_a_url_with_credentials_is_refused_without_repeating_them(space: Space, url: str) -> None:
    """Credentials before the host (`user:password@`) are never sent (neither client sends them)
    and would be read back: INVALID_ARGUMENT DESTINATION_INVALID naming the field and saying
    where they go instead, for a webhook (`headers`) and for Segment (its write key), when
    creating and when updating; the message does not repeat them."""
    why = "it has credentials before the host (`user:password@`), which are never sent; "
    failure = _refused(_create, space, sync_pb2.Destination(key="hook", webhook=sync_pb2.WebhookConfig(url=url)))
    assert (error_reason(failure), field_violations(failure)[0][0]) == ("DESTINATION_INVALID", "webhook.url")
    assert failure.details() == (f"`webhook.url` must be an http or https URL: {why}set them in `webhook.headers`, as"
                                 " an `Authorization` header")
    failure = _refused(_create, space, sync_pb2.Destination(
        key="seg", segment=sync_pb2.SegmentConfig(base_url=url, write_key="k")))
    assert (error_reason(failure), field_violations(failure)[0][0]) == ("DESTINATION_INVALID", "segment.base_url")
    assert failure.details() == (f"`segment.base_url` must be an http or https URL: {why}a Segment source"
                                 " authenticates with `segment.write_key` (sent as HTTP Basic auth)")
    _create(space, sync_pb2.Destination(key="hook", webhook=sync_pb2.WebhookConfig(url="http://127.0.0.1:9/in")))
    failure = _refused(_update, space, sync_pb2.Destination(key="hook", webhook=sync_pb2.WebhookConfig(url=url)),
                       "webhook.url")
    assert (error_reason(failure), field_violations(failure)[0][0]) == ("DESTINATION_INVALID", "webhook.url")
    assert "alice" not in failure.details()
    assert "s3cret" not in failure.details()


@pytest.mark.parametrize("url", ["http://[::1]:8080/in", "https://h.example:443/in?a=1", "http://h.example:/in",
                                 "https://bücher.example/in/é", "http://h.example/a%20b",
                                 "http://h.example/in@x?to=a@b#c@d"])
def test_urls_that_are_sent_are_accepted(space: Space, url: str) -> None:
    """An IPv6 host in brackets, an empty port (the default), an internationalised host, a path
    percent-encoded or not (non-ASCII is percent-encoded when sent), an `@` after the host: kept
    as given."""
    made = _create(space, sync_pb2.Destination(key="hook", webhook=sync_pb2.WebhookConfig(url=url)))
    assert made.webhook.url == url


@pytest.mark.parametrize("style", [sync_pb2.WEBHOOK_PAYLOAD_STYLE_EVENT, sync_pb2.WEBHOOK_PAYLOAD_STYLE_LIST])
def test_both_styles_send_the_same_request_line(space: Space, receiver: Receiver, style: int) -> None:
    """EVENT style's own HTTP/1.1 client reads a URL as httpx (LIST style) does: a path and a
    query with characters outside ASCII are percent-encoded, not written raw."""
    space.define("pro", "trait('plan') = 'pro'")
    space.send({"type": "identify", "userId": "u1", "traits": {"plan": "pro"}})
    space.tick()
    webhook(space, "hook", receiver.url + "/hoök?q=é", style=style)
    connect(space, "hook", "pro", send_identify=True)
    wait_for(receiver.calls, what="the call")
    assert {r.path for r in receiver.accepted} == {"/ho%C3%B6k?q=%C3%A9"}


def _worker_lines(logged: list[dict[str, Any]], space: Space, key: str) -> list[str]:
    (destination_id,), = space.running.query(
        "SELECT destination_id FROM destinations WHERE space_id = ? AND key = ?", (space.space_id, key))
    return [e["event"] for e in logged if e.get("destination") == destination_id]


@pytest.mark.parametrize("style", [sync_pb2.WEBHOOK_PAYLOAD_STYLE_EVENT, sync_pb2.WEBHOOK_PAYLOAD_STYLE_LIST])
def test_a_stored_url_no_request_can_go_to_is_told_once(space: Space, receiver: Receiver, style: int,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A destination stored before its URL was refused (port 99999, as the check let through
    before): its worker cannot build its sink, says so once (`sync_sink_failed`) rather than a
    traceback every second, and keeps its deliveries queued; once its URL is updated they go."""
    space.define("pro", "trait('plan') = 'pro'")
    space.send({"type": "identify", "userId": "u1", "traits": {"plan": "pro"}})
    space.tick()
    with capture_logs() as logged:
        with monkeypatch.context() as patched:
            patched.setattr(webhook_kind, "check_url", lambda value, field, credentials: None)  # as before the check
            webhook(space, "hook", "http://127.0.0.1:99999/in", style=style)
        connect(space, "hook", "pro", send_identify=True)
        time.sleep(2.5)  # a worker's round each second at least
        assert _worker_lines(logged, space, "hook") == ["sync_sink_failed"]
        assert receiver.calls() == []
        _update(space, sync_pb2.Destination(key="hook", webhook=sync_pb2.WebhookConfig(url=receiver.url)),
                "webhook.url")
        assert [c["userId"] for c in wait_for(receiver.calls, what="the queued call")] == ["u1"]
    assert _worker_lines(logged, space, "hook") == ["sync_sink_failed"]


@pytest.mark.parametrize("value", [99, 3, -1])
def test_an_unknown_payload_style_is_refused(space: Space, value: int) -> None:
    """Enums are open: a payload style the contract does not have is INVALID_ARGUMENT
    ENUM_INVALID naming `webhook.payload_style` (as ProfilesService refuses one), when creating
    and when updating it; an update whose mask leaves it out does not read it."""
    config = sync_pb2.WebhookConfig(url="http://127.0.0.1:9/in", payload_style=value)
    failure = _refused(_create, space, sync_pb2.Destination(key="hook", webhook=config))
    assert error_reason(failure) == "ENUM_INVALID"
    assert field_violations(failure) == [("webhook.payload_style", "unknown value")]
    assert failure.details() == f"`webhook.payload_style` has no value {value}"
    _create(space, sync_pb2.Destination(key="hook", webhook=sync_pb2.WebhookConfig(url="http://127.0.0.1:9/in")))
    for paths in (["webhook.payload_style"], ["webhook"], []):
        failure = _refused(_update, space, sync_pb2.Destination(key="hook", webhook=config), *paths)
        assert (error_reason(failure), field_violations(failure)) == (
            "ENUM_INVALID", [("webhook.payload_style", "unknown value")])
    moved = _update(space, sync_pb2.Destination(key="hook", webhook=sync_pb2.WebhookConfig(
        url="http://127.0.0.1:9/moved", payload_style=value)), "webhook.url")
    assert (moved.webhook.url, moved.webhook.payload_style) == (
        "http://127.0.0.1:9/moved", sync_pb2.WEBHOOK_PAYLOAD_STYLE_EVENT)


@pytest.mark.parametrize("value", [99, 4, -2])
def test_an_unknown_identifier_selection_is_refused(space: Space, value: int) -> None:
    """ConnectDestination, UpdateConnection (when its mask names the field) and ExportAudience
    refuse an identifier selection the contract does not have: ENUM_INVALID naming the field."""
    sync, meta = space.running.sync, admin(space)
    space.define("pro", "trait('plan') = 'pro'")
    _create(space, sync_pb2.Destination(key="feed", grpc_feed=sync_pb2.GrpcFeedConfig(), delivery_policy=FAST))
    failure = _refused(lambda: connect(space, "feed", "pro", identifier_selection=value))
    assert (error_reason(failure), field_violations(failure)) == (
        "ENUM_INVALID", [("connection.identifier_selection", "unknown value")])
    connect(space, "feed", "pro")
    connection = sync_pb2.Connection(destination_key="feed", computation=ref("pro"), identifier_selection=value)
    for paths in (["identifier_selection"], ["*"], []):
        request = sync_pb2.UpdateConnectionRequest(connection=connection,
                                                   update_mask=field_mask_pb2.FieldMask(paths=paths))
        failure = _refused(lambda r: sync.UpdateConnection(r, metadata=meta), request)
        assert (error_reason(failure), field_violations(failure)) == (
            "ENUM_INVALID", [("connection.identifier_selection", "unknown value")])
    kept = sync.UpdateConnection(sync_pb2.UpdateConnectionRequest(
        connection=connection, update_mask=field_mask_pb2.FieldMask(paths=["external_id_types"])),
        metadata=meta).connection
    assert kept.identifier_selection == sync_pb2.IDENTIFIER_SELECTION_ALL
    failure = _refused(lambda: list(sync.ExportAudience(sync_pb2.ExportAudienceRequest(
        collection=common_pb2.COLLECTION_USERS, key="pro", identifier_selection=value), metadata=meta)))
    assert (error_reason(failure), field_violations(failure)) == (
        "ENUM_INVALID", [("identifier_selection", "unknown value")])


@pytest.mark.parametrize("text", ["dlq_" + "9" * 5_000, f"dlq_{2**63}", "dlq_", "dlq_-1", "dlq_１"])
def test_a_dead_letter_id_that_is_no_number_is_refused(space: Space, text: str) -> None:
    """An id whose number has thousands of digits, is past 64 bits or is no number is
    INVALID_ARGUMENT naming `dead_letter_ids`."""
    _create(space, sync_pb2.Destination(key="hook", webhook=sync_pb2.WebhookConfig(url="http://127.0.0.1:9/in")))
    failure = _refused(lambda: space.running.sync.RedriveDeadLetters(sync_pb2.RedriveDeadLettersRequest(
        destination_key="hook", dead_letter_ids=[text]), metadata=admin(space)))
    assert (error_reason(failure), field_violations(failure)[0][0]) == ("DEAD_LETTER_ID_INVALID", "dead_letter_ids")


@pytest.mark.parametrize(("headers", "why"), [
    ({"X-Team": "café"}, "'é' at position 3 of its value"),
    ({"X-Team": "a\x01b"}, "'\\x01' at position 1 of its value"),
    ({"X-Team": "a\nb"}, "'\\n' at position 1 of its value"),
    ({"X Team": "a"}, "a header name is a token"),
])
def test_a_header_no_request_can_carry_is_refused(space: Space, headers: dict[str, str], why: str) -> None:
    """Header values are printable ASCII (httpx, which sends LIST batches, encodes nothing else):
    anything else is refused when the destination is created or updated, saying where."""
    failure = _refused(_create, space, sync_pb2.Destination(
        key="hook", webhook=sync_pb2.WebhookConfig(url="http://127.0.0.1:9/in", headers=headers)))
    assert (error_reason(failure), field_violations(failure)[0][0]) == ("DESTINATION_INVALID", "webhook.headers")
    assert why in failure.details()
    _create(space, sync_pb2.Destination(key="hook", webhook=sync_pb2.WebhookConfig(url="http://127.0.0.1:9/in")))
    failure = _refused(_update, space, sync_pb2.Destination(
        key="hook", webhook=sync_pb2.WebhookConfig(headers=headers)), "webhook.headers")
    assert field_violations(failure)[0][0] == "webhook.headers"


@pytest.mark.parametrize("style", [sync_pb2.WEBHOOK_PAYLOAD_STYLE_EVENT, sync_pb2.WEBHOOK_PAYLOAD_STYLE_LIST])
def test_a_stored_header_no_request_can_carry_is_told_once(space: Space, receiver: Receiver, style: int,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A header value outside ASCII stored before it was refused: neither style sends (httpx
    cannot, and the EVENT style does not send what the other could not), the worker says so
    once and keeps the deliveries queued until the header is fixed."""
    space.define("pro", "trait('plan') = 'pro'")
    space.send({"type": "identify", "userId": "u1", "traits": {"plan": "pro"}})
    space.tick()
    with capture_logs() as logged:
        with monkeypatch.context() as patched:
            patched.setattr(webhook_kind.Webhook, "check", lambda self, settings: None)  # as before the check
            webhook(space, "hook", receiver.url, style=style, headers={"X-Team": "café"})
        connect(space, "hook", "pro", send_identify=True)
        time.sleep(2.5)
        assert _worker_lines(logged, space, "hook") == ["sync_sink_failed"]
        assert receiver.calls() == []
        _update(space, sync_pb2.Destination(key="hook", webhook=sync_pb2.WebhookConfig(headers={"X-Team": "cafe"})),
                "webhook.headers")
        assert [r.headers["X-Team"] for r in wait_for(lambda: receiver.accepted, what="the call")] == ["cafe"]


@pytest.mark.parametrize(("policy", "field", "why"), [
    (sync_pb2.DeliveryPolicy(request_timeout=duration_pb2.Duration(seconds=315_576_000_000)),
     "delivery_policy.request_timeout", "must be at most 3,600 seconds"),
    (sync_pb2.DeliveryPolicy(max_backoff=duration_pb2.Duration(seconds=86_401)),
     "delivery_policy.max_backoff", "must be at most 86,400 seconds"),
    (sync_pb2.DeliveryPolicy(initial_backoff=duration_pb2.Duration(seconds=700)),
     "delivery_policy.initial_backoff", "must not be longer than `delivery_policy.max_backoff` (600,000 ms)"),
    (sync_pb2.DeliveryPolicy(initial_backoff=duration_pb2.Duration(seconds=-1)),
     "delivery_policy.initial_backoff", "must be positive"),
])
def test_a_delivery_policy_that_cannot_be_used_is_refused(space: Space, policy: sync_pb2.DeliveryPolicy,
                                                          field: str, why: str) -> None:
    """A request timeout a socket refuses (thousands of years), a backoff past a day, an initial
    backoff longer than the maximum: refused naming the contract's field, when creating and
    when updating."""
    config = sync_pb2.WebhookConfig(url="http://127.0.0.1:9/in")
    failure = _refused(_create, space, sync_pb2.Destination(key="hook", webhook=config, delivery_policy=policy))
    assert field_violations(failure)[0][0] == field
    assert failure.details() == f"`{field}` {why}"
    _create(space, sync_pb2.Destination(key="hook", webhook=config))
    failure = _refused(_update, space, sync_pb2.Destination(key="hook", delivery_policy=policy), "delivery_policy")
    assert field_violations(failure)[0][0] == field


@pytest.mark.parametrize("paths", [[], ["*"], ["grpc_feed"], ["segment.write_key"]])
@pytest.mark.parametrize("other", [
    sync_pb2.Destination(key="hook", grpc_feed=sync_pb2.GrpcFeedConfig()),
    sync_pb2.Destination(key="hook", segment=sync_pb2.SegmentConfig(base_url="http://127.0.0.1:1/v1", write_key="k")),
])
def test_another_kinds_config_is_refused_whatever_the_mask(space: Space, paths: list[str],
                                                           other: sync_pb2.Destination) -> None:
    """Another kind's config is DESTINATION_KIND_IMMUTABLE whether the mask names it, is empty
    (every field set) or `*`: never answered OK and ignored, nor refused for an empty URL."""
    _create(space, sync_pb2.Destination(key="hook", webhook=sync_pb2.WebhookConfig(url="http://127.0.0.1:9/in")))
    failure = _refused(_update, space, other, *paths)
    assert error_reason(failure) == "DESTINATION_KIND_IMMUTABLE", failure.details()
    shown = space.running.sync.GetDestination(sync_pb2.GetDestinationRequest(key="hook"), metadata=admin(space))
    assert (shown.destination.WhichOneof("config"), shown.destination.webhook.url) == ("webhook",
                                                                                       "http://127.0.0.1:9/in")


def test_an_update_of_every_field_keeps_enabled_unless_set(space: Space) -> None:
    """`*` with `enabled` unset keeps the destination enabled (unset means true); set, it
    applies. An empty mask reads every field set, output-only ones a client sends back aside."""
    made = _create(space, sync_pb2.Destination(key="hook", webhook=sync_pb2.WebhookConfig(url="http://127.0.0.1:9/in")))
    config = sync_pb2.WebhookConfig(url="http://127.0.0.1:9/moved")
    assert _update(space, sync_pb2.Destination(key="hook", name="n", webhook=config), "*").enabled
    assert not _update(space, sync_pb2.Destination(key="hook", webhook=config, enabled=False), "*").enabled
    sent_back = sync_pb2.Destination()
    sent_back.CopyFrom(made)
    sent_back.name = "renamed"
    updated = _update(space, sent_back)
    assert (updated.name, updated.enabled, updated.webhook.url) == ("renamed", True, "http://127.0.0.1:9/in")


@pytest.mark.parametrize(("destination", "field"), [
    (sync_pb2.Destination(key="hook", name="n" * 257, webhook=sync_pb2.WebhookConfig(url="http://127.0.0.1:9/in")),
     "name"),
    (sync_pb2.Destination(key="hook", webhook=sync_pb2.WebhookConfig(url="http://127.0.0.1:9/in",
                                                                     headers={"X-Big": "v" * 8_193})),
     "webhook.headers"),
    (sync_pb2.Destination(key="hook", webhook=sync_pb2.WebhookConfig(url="http://127.0.0.1:9/in",
                                                                     headers={"X" * 257: "v"})),
     "webhook.headers"),
    (sync_pb2.Destination(key="hook", webhook=sync_pb2.WebhookConfig(url="http://127.0.0.1:9/in",
                                                                     headers={f"X-{n}": "v" for n in range(65)})),
     "webhook.headers"),
    (sync_pb2.Destination(key="hook", webhook=sync_pb2.WebhookConfig(url="http://127.0.0.1:9/" + "p" * 8_200)),
     "webhook.url"),
])
def test_fields_past_their_limits_are_refused(space: Space, destination: sync_pb2.Destination, field: str) -> None:
    """A name over 256 characters, a header name over 256 or value over 8,192, more than 64
    headers, a URL over 8,192 characters: INVALID_ARGUMENT FIELD_TOO_LONG naming the field,
    when creating and when updating."""
    failure = _refused(_create, space, destination)
    assert (error_reason(failure), field_violations(failure)[0][0]) == ("FIELD_TOO_LONG", field)
    _create(space, sync_pb2.Destination(key="hook", webhook=sync_pb2.WebhookConfig(url="http://127.0.0.1:9/in")))
    failure = _refused(_update, space, destination)
    assert (error_reason(failure), field_violations(failure)[0][0]) == ("FIELD_TOO_LONG", field)


@pytest.mark.parametrize(("config", "field", "why"), [
    ({"segment": sync_pb2.SegmentConfig(base_url="http://127.0.0.1:9", write_key="k" * 8_193)}, "segment.write_key",
     "`segment.write_key` is 8,193 characters long; at most 8,192"),
    ({"postgres": sync_pb2.PostgresConfig(dsn="host=127.0.0.1 password=" + "p" * 8_192)}, "postgres.dsn",
     "`postgres.dsn` is 8,216 characters long; at most 8,192"),
    ({"postgres": sync_pb2.PostgresConfig(dsn="host=127.0.0.1", include_traits=[f"t{n}" for n in range(301)])},
     "postgres.include_traits", "`postgres.include_traits` has 301 traits; at most 300"),
    ({"csv": sync_pb2.CsvConfig(include_traits=["plan", "t" * 1_025])}, "csv.include_traits",
     "`csv.include_traits[1]` is 1,025 characters long; at most 1,024"),
])
def test_secrets_and_trait_lists_past_their_limits_are_refused(space: Space, tmp_path: Any, config: dict[str, Any],
                                                               field: str, why: str) -> None:
    """A write key or a connection string over 8,192 characters, more than 300 traits to include
    or a trait name over 1,024: each goes into every request or file, so it is refused at create."""
    if "csv" in config:
        config["csv"].directory = str(tmp_path)
    failure = _refused(_create, space, sync_pb2.Destination(key="out", **config))
    assert (error_reason(failure), field_violations(failure)[0][0]) == ("FIELD_TOO_LONG", field)
    assert failure.details().startswith(why)


@pytest.mark.parametrize(("request_fields", "field", "reason"), [
    ({"include_traits": ["plan", ""]}, "include_traits", "EXPORT_INVALID"),
    ({"include_traits": [f"t{n}" for n in range(301)]}, "include_traits", "FIELD_TOO_LONG"),
    ({"external_id_types": ["a\x00b"]}, "external_id_types", "EXPORT_INVALID"),
])
def test_an_export_of_columns_no_profile_has_is_refused(space: Space, request_fields: dict[str, Any], field: str,
                                                       reason: str) -> None:
    """An export's identifier types and traits are checked as a CSV destination's are."""
    space.define("pro", "trait('plan') = 'pro'")
    stream = space.running.sync.ExportAudience(sync_pb2.ExportAudienceRequest(
        collection=1, key="pro", **request_fields), metadata=admin(space))
    failure = _refused(lambda: list(stream))
    assert (error_reason(failure), field_violations(failure)[0][0]) == (reason, field)


def test_destinations_at_their_limits_are_listed_in_replies_a_client_accepts(space: Space) -> None:
    """Destinations with every header at its limit (about half a megabyte each) are listed a few
    per reply, each reply within the 4 MiB a default client accepts, and none is left out."""
    headers = {f"X-{n:02d}" + "h" * 252: "v" * 8_192 for n in range(64)}
    keys = [f"hook_{n}" for n in range(9)]
    for key in keys:
        _create(space, sync_pb2.Destination(key=key, name="n" * 256, webhook=sync_pb2.WebhookConfig(
            url="http://127.0.0.1:9/in", headers=headers)))
    listed, token, pages = [], "", 0
    while True:
        page = space.running.sync.ListDestinations(sync_pb2.ListDestinationsRequest(page_size=50, page_token=token),
                                                   metadata=admin(space))
        assert page.ByteSize() <= 4 * 1024 * 1024
        listed += [d.key for d in page.destinations]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert (listed, pages > 1) == (keys, True)


@pytest.mark.parametrize(("destination", "field", "why"), [
    (sync_pb2.Destination(key="d", csv=sync_pb2.CsvConfig(directory="/tmp",
                                                          interval=duration_pb2.Duration(seconds=-1))),
     "csv.interval", "must not be negative"),
    (sync_pb2.Destination(key="d", grpc_feed=sync_pb2.GrpcFeedConfig(retention=duration_pb2.Duration(seconds=-1))),
     "grpc_feed.retention", "must not be negative"),
    (sync_pb2.Destination(key="d", grpc_feed=sync_pb2.GrpcFeedConfig(retention=duration_pb2.Duration(nanos=1))),
     "grpc_feed.retention", "must be at least 1 ms (unset or 0 for the default)"),
    (sync_pb2.Destination(key="d", grpc_feed=sync_pb2.GrpcFeedConfig(), delivery_policy=sync_pb2.DeliveryPolicy(
        request_timeout=duration_pb2.Duration(nanos=1))),
     "delivery_policy.request_timeout", "must be at least 1 ms (unset or 0 for the default)"),
])
def test_durations_are_refused_by_their_contract_name(space: Space, destination: sync_pb2.Destination, field: str,
                                                      why: str) -> None:
    """A negative duration, or a positive one under a millisecond (which, read as 0 ms, would
    silently mean the default), is refused naming the field as the contract does (not the
    `_ms` setting it is kept as)."""
    failure = _refused(_create, space, destination)
    assert (error_reason(failure), field_violations(failure)[0][0]) == ("DESTINATION_INVALID", field)
    assert failure.details() == f"`{field}` {why}"


@pytest.mark.parametrize(("types", "reason", "why"), [
    ([""], "CONNECTION_INVALID", "`connection.external_id_types[0]` is empty"),
    (["email", "a\x00b"], "CONNECTION_INVALID", "`connection.external_id_types[1]` contains the control character"),
    (["t" * 100_000], "FIELD_TOO_LONG", "`connection.external_id_types[0]` is 100,000 characters long"),
    ([f"t{n}" for n in range(51)], "FIELD_TOO_LONG", "`connection.external_id_types` has 51 types; at most 50"),
])
def test_identifier_types_no_identifier_has_are_refused(space: Space, tmp_path: Any, types: list[str], reason: str,
                                                        why: str) -> None:
    """An empty identifier type, one with a control character, one past 100 characters or more
    than 50: refused naming the field and saying which, on a connection and in a CSV destination."""
    space.define("pro", "trait('plan') = 'pro'")
    _create(space, sync_pb2.Destination(key="feed", grpc_feed=sync_pb2.GrpcFeedConfig()))
    failure = _refused(lambda: connect(space, "feed", "pro", external_id_types=types))
    assert (error_reason(failure), field_violations(failure)[0][0]) == (reason, "connection.external_id_types")
    assert failure.details().startswith(why)
    failure = _refused(_create, space, sync_pb2.Destination(key="files", csv=sync_pb2.CsvConfig(
        directory=str(tmp_path), external_id_types=types)))
    assert field_violations(failure)[0][0] == "csv.external_id_types"


def test_a_connection_string_libpq_cannot_read_is_refused_without_repeating_it(space: Space) -> None:
    """A DSN that is not a connection string is refused naming the field, and its text (which may
    hold a password) is in neither the message nor the field violation."""
    dsn = "postgresql://u:PWLEAK3@[bad/db"
    failure = _refused(_create, space, sync_pb2.Destination(key="pg", postgres=sync_pb2.PostgresConfig(dsn=dsn)))
    assert (error_reason(failure), field_violations(failure)[0][0]) == ("DESTINATION_INVALID", "postgres.dsn")
    assert "PWLEAK3" not in failure.details()
    assert all("PWLEAK3" not in said for _, said in field_violations(failure))
