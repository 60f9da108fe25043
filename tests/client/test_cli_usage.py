"""The CLI's usage refusals and options an outside review found wrong: `destinations create
--config`, an address's port, TLS files that are readable but unusable, `export --json`,
`--json` after `explain` and `audit`, negative and out-of-range numbers and bad times, a
missing token, the retention range, and `sentAt` on the event commands."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import audiences
import grpc
import pytest
import trustme

from tests.client.conftest import Result
from tests.client.test_cli_insight import _buyers

Run = Callable[..., Result]


def _refusal(run_cli: Run, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """The exit status and standard error of a command refused by argparse or by the CLI."""
    try:
        result = run_cli(*args)
    except SystemExit as refused:
        return int(refused.code or 0), capsys.readouterr().err
    return result.code, result.err


# -- destinations create --config ---------------------------------------------------------------


@pytest.mark.parametrize("config", ['{"nope": 1}', "[1]", '"s"', '{"batchSize": "abc"}',
                                    '{"batchSize": 99999999999999999999}', "notjson"])
def test_a_config_that_is_not_the_kinds_settings_is_a_usage_error(run_cli: Run, capsys: pytest.CaptureFixture[str],
                                                                  unique: Callable[[str], str], config: str) -> None:
    """An unknown field, a non-object, a wrongly typed or too large value, or no JSON at all:
    one line naming --config, exit 2 (no traceback, nothing created)."""
    key = unique("cfg")
    code, err = _refusal(run_cli, capsys, "destinations", "create", key, "--webhook", "http://127.0.0.1:1/",
                         "--config", config)
    last = err.splitlines()[-1]  # after argparse's usage lines, if it refused
    assert (code, "Traceback" in err) == (2, False)
    assert last.startswith(("audiences: --config: ", "audiences destinations create: error: argument --config: "))
    assert key not in run_cli("destinations", "list").out


def test_config_fields_of_another_kind_name_the_kinds_fields(run_cli: Run, unique: Callable[[str], str]) -> None:
    """`--kind postgres --config '{"connectionString": …}'` says the field is not one of the
    kind's, and lists them; the kind's own fields are taken."""
    result = run_cli("destinations", "create", unique("pg"), "--kind", "postgres",
                     "--config", '{"connectionString": "postgres://u:p@h/db"}')
    assert (result.code, result.err.count("\n")) == (2, 1)
    assert result.err.startswith("audiences: --config: postgres settings have no field 'connectionString'; "
                                 "they are dsn,")
    key = unique("hook")
    made = run_cli("destinations", "create", key, "--webhook", "http://127.0.0.1:1/", "--config", '{"batchSize": 5}')
    assert made.code == 0, made.err
    assert json.loads(run_cli("--json", "destinations", "show", key).out)["webhook"]["batch_size"] == 5
    assert run_cli("destinations", "delete", key).code == 0


# -- --address ----------------------------------------------------------------------------------


def test_an_address_port_out_of_range_is_refused(run_cli: Run) -> None:
    """`--address 127.0.0.1:99999` is refused (exit 2) instead of dialling port 34463."""
    result = run_cli("--address", "127.0.0.1:99999", "audiences", "list")
    assert (result.code, result.err) == (
        2, "audiences: '127.0.0.1:99999' has port 99999; ports are 1 to 65535 (--address or AUDIENCES_ADDRESS)\n")
    assert run_cli("--address", "[::1]:0", "tick").code == 2
    with pytest.raises(audiences.InvalidArgument) as caught:
        audiences.Client("localhost:65536", "token")
    assert (caught.value.reason, caught.value.metadata["port"]) == ("ADDRESS_INVALID", "65536")
    audiences.Client("localhost:65535", "token").close()
    audiences.Client("dns:///localhost:1", "token").close()


# -- TLS files that can be read but not used ------------------------------------------------------


@pytest.fixture
def tls_files(tmp_path: Path) -> Path:
    """A CA, a client certificate and its key, and the key of another certificate."""
    authority = trustme.CA()
    mine, other = authority.issue_cert("client.example"), authority.issue_cert("other.example")
    authority.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    authority.private_key_pem.write_to_path(str(tmp_path / "ca.key"))
    mine.cert_chain_pems[0].write_to_path(str(tmp_path / "client.pem"))
    mine.private_key_pem.write_to_path(str(tmp_path / "client.key"))
    other.private_key_pem.write_to_path(str(tmp_path / "other.key"))
    return tmp_path


def test_a_tls_file_that_cannot_be_used_is_a_usage_error(run_cli: Run, tls_files: Path) -> None:
    """A key given as the CA, or a client certificate and a key that are not a pair: exit 2
    naming the file, not "cannot reach the server" (exit 3) after a failed handshake."""
    result = run_cli("--tls-ca-file", str(tls_files / "ca.key"), "tick")
    assert (result.code, result.err.count("\n")) == (2, 1), result.err
    assert result.err.startswith(f"audiences: the TLS CA file {tls_files / 'ca.key'} holds no usable certificate")
    assert result.err.endswith("(--tls-ca-file or AUDIENCES_TLS_CA_FILE)\n")
    result = run_cli("--tls-ca-file", str(tls_files / "ca.pem"), "--tls-cert-file", str(tls_files / "client.pem"),
                     "--tls-key-file", str(tls_files / "other.key"), "tick")
    assert (result.code, result.err) == (
        2, f"audiences: the TLS key file {tls_files / 'other.key'} is not the private key of the certificate in "
        f"{tls_files / 'client.pem'} (--tls-key-file or AUDIENCES_TLS_KEY_FILE)\n")
    result = run_cli("--tls-ca-file", str(tls_files / "ca.pem"), "--tls-cert-file", str(tls_files / "client.key"),
                     "--tls-key-file", str(tls_files / "client.key"), "tick")
    assert result.code == 2
    assert "(--tls-cert-file or AUDIENCES_TLS_CERT_FILE)" in result.err
    with pytest.raises(audiences.InvalidArgument) as caught:
        audiences.Client("127.0.0.1:1", "token", tls_ca_file=tls_files / "client.key")
    assert (caught.value.code, caught.value.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "TLS_FILE_UNREADABLE")
    audiences.Client("127.0.0.1:1", "token", tls_ca_file=tls_files / "ca.pem", tls_cert_file=tls_files / "client.pem",
                     tls_key_file=tls_files / "client.key").close()


# -- --json on export, explain and audit -------------------------------------------------------------


def test_export_json_prints_rows_keyed_by_the_header(client: audiences.Client, run_cli: Run,
                                                     unique: Callable[[str], str], tmp_path: Path) -> None:
    """`audiences export KEY --json` prints a JSON list of the CSV's rows, keyed by its header;
    with --output the CSV goes to the file and --json says where."""
    key, big, _ = _buyers(client, run_cli, unique)
    for args in (("audiences", "export", key, "--json"), ("--json", "audiences", "export", key)):
        result = run_cli(*args)
        assert result.code == 0, result.err
        rows = json.loads(result.out)
        assert [row["user_id"] for row in rows] == [big]
        assert set(rows[0]) >= {"profile_id", "user_id"}
    out = tmp_path / "members.csv"
    result = run_cli("audiences", "export", key, "--output", str(out), "--json")
    assert json.loads(result.out) == {"output": str(out), "bytes": out.stat().st_size}
    assert out.read_text().startswith("profile_id")


def test_explain_and_audit_take_json_after_the_verb(client: audiences.Client, run_cli: Run,
                                                    unique: Callable[[str], str]) -> None:
    """`explain KEY REF --json` and `audit --json` print JSON, like every other command."""
    key, big, _ = _buyers(client, run_cli, unique)
    explained = run_cli("explain", key, f"user_id:{big}", "--json")
    assert explained.code == 0, explained.err
    assert json.loads(explained.out)["value_json"] == "true"
    audit = run_cli("audit", "--json", "--target", key)
    assert audit.code == 0, audit.err
    assert any(entry["target"] == key for entry in json.loads(audit.out)["entries"])


# -- numbers and times -------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "option"), [
    (("watch", "feed", "--limit", "-5"), "--limit"),
    (("audiences", "members", "k", "--page-size", "5000000000"), "--page-size"),
    (("audiences", "members", "k", "--page-size", "-1"), "--page-size"),
    (("explain", "k", "user_id:x", "--max-evidence", "99999999999999999999"), "--max-evidence"),
    (("explain", "k", "user_id:x", "--at", "notatime"), "--at"),
    (("clock", "--set", "notatime"), "--set"),
    (("audiences", "preview", "-d", "x", "--sample", "3000000000"), "--sample"),
    (("audiences", "diff", "k", "-d", "x", "--sample", "-2"), "--sample"),
    (("audiences", "history", "k", "--changes", "--limit", "-1"), "--limit"),
    (("audit", "--limit", "-3"), "--limit"),
    (("profile", "traits", "user_id:x", "--limit", "0"), "--limit"),
])
def test_numbers_and_times_out_of_range_name_the_option(run_cli: Run, capsys: pytest.CaptureFixture[str],
                                                        args: tuple[str, ...], option: str) -> None:
    """A negative count, a number past the protobuf field's range, or a time that is not
    ISO-8601: exit 2 with argparse's one line naming the option, nothing sent."""
    code, err = _refusal(run_cli, capsys, *args)
    assert code == 2
    assert f"argument {option}:" in err
    assert "Value out of range" not in err


# -- tokens --------------------------------------------------------------------------------------------


def test_a_missing_or_non_string_token_is_a_usage_error(run_cli: Run, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """No token found, or a credentials file whose token is not a string: nothing was sent, so
    it is bad usage (exit 2), not "refused by the server" (exit 1)."""
    numbers = tmp_path / "numbers.json"
    numbers.write_text('{"tokens": {"admin": 5}}')
    result = run_cli("--credentials-file", str(numbers), "audiences", "list")
    assert result.code == 2
    assert result.err.startswith("audiences: no `admin` token: pass --admin-token")
    monkeypatch.delenv("AUDIENCES_CREDENTIALS_FILE")
    monkeypatch.chdir(tmp_path)  # no var/credentials.json here
    assert run_cli("--address", "127.0.0.1:1", "audiences", "list").code == 2


# -- retention -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("days", ["0", "0.5", "3000000", "100000.5"])
def test_retention_days_outside_the_servers_range_are_refused(run_cli: Run, capsys: pytest.CaptureFixture[str],
                                                             days: str) -> None:
    """The client's range is the server's: at least 1 day and at most 100,000 days."""
    for args in (("spaces", "retention", "shop", days), ("spaces", "create", "shop", "--event-retention-days", days)):
        code, err = _refusal(run_cli, capsys, *args)
        assert code == 2
        assert "must be a number of days at least 1 and at most 100,000" in err


def test_retention_days_at_the_ends_of_the_range_are_taken(run_cli: Run, unique: Callable[[str], str]) -> None:
    """1 and 100,000 days pass the client and the server."""
    for days in ("1", "100000"):
        name = unique("keep").replace("_", "-")
        result = run_cli("--json", "spaces", "create", name, "--event-retention-days", days)
        assert result.code == 0, result.err
        assert json.loads(result.out)["event_retention"] == f"{int(days) * 86400}s"


# -- sentAt --------------------------------------------------------------------------------------------


def test_event_commands_send_sent_at_so_the_server_corrects_skew(client: audiences.Client, run_cli: Run,
                                                                 unique: Callable[[str], str]) -> None:
    """A call without --timestamp is dated by the server's clock (its originalTimestamp is
    corrected with the batch's sentAt), not this machine's: the test server's manual clock is
    far from the wall clock. A --timestamp given is kept."""
    clock = client.get_evaluator_status().clock_time.ToDatetime(tzinfo=dt.UTC)
    assert abs(clock - dt.datetime.now(dt.UTC)) > dt.timedelta(days=1)  # else this test proves nothing
    user = unique("skew")
    assert run_cli("track", user, "Skewed").code == 0
    assert run_cli("track", user, "Given", "--timestamp", "2027-01-01T00:00:00Z").code == 0
    events = {e.event: e for e in client.list_events(f"user_id:{user}").events}
    skewed = events["Skewed"]
    received = skewed.receive_time.ToDatetime(tzinfo=dt.UTC)
    assert abs(skewed.event_time.ToDatetime(tzinfo=dt.UTC) - received) < dt.timedelta(seconds=30)
    assert events["Given"].event_time.ToDatetime(tzinfo=dt.UTC) == dt.datetime(2027, 1, 1, tzinfo=dt.UTC)



@pytest.mark.parametrize("verb", ["traits", "history"])
def test_an_empty_profile_is_a_usage_error(run_cli: Run, capsys: pytest.CaptureFixture[str], verb: str) -> None:
    """Every `profile` verb refuses an empty profile alike, naming what it wants; `history` used to
    pass it on and be told to name a definition, which the command cannot take."""
    code, err = _refusal(run_cli, capsys, "profile", verb, " ")
    assert code == 2
    assert "name a profile: TYPE:VALUE (user_id:ada) or prf_…, not an empty string" in err
