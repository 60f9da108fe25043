"""Server settings, declared once as data.

Each setting has a name, a type, a default, an environment variable and a help text; the same
declaration drives the `serve` flags, the environment, validation and docs/operations.md.
Precedence: flag, then environment, then default.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from audiences_server.core.tracking import MAX_TIME_MS, MIN_TIME_MS


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true or false, not {text!r}")


def _choice(*options: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in options:
            raise ValueError(f"expected one of {', '.join(options)}, not {text!r}")
        return text

    parse.choices = options  # type: ignore[attr-defined]  # shown in --help by add_arguments
    return parse


def time_ms(text: str) -> int | None:
    """An ISO-8601 time with a zone, as milliseconds since the epoch; empty is None."""
    if not text.strip():
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"expected an ISO-8601 time such as 2024-01-01T00:00:00Z, not {text!r}") from None
    if moment.tzinfo is None:
        raise ValueError(f"expected a time with a zone (Z or +HH:MM), not {text!r}")
    ms = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    if not MIN_TIME_MS <= ms <= MAX_TIME_MS:  # `9999-12-31T23:59:59-05:00` is in the year 10000 in UTC
        raise ValueError(f"expected a time from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z, not {text!r}")
    return ms


def _between(read: Callable[[str], float], low: float, high: float, expected: str) -> Callable[[str], Any]:
    """A number `read` from the text, from `low` to `high` (`nan` fails every comparison); else
    "expected {expected}, not …". Past them a setting only ever fails later (a tick interval past
    what a timer takes killed the evaluator's thread; a grace of `inf` never stops)."""

    def parse(text: str) -> Any:
        try:
            value = read(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise ValueError(f"expected {expected}, not {text!r}")
        return value

    return parse


def _whole_between(low: int, high: int, unit: str = "") -> Callable[[str], int]:
    """A whole number (of `unit`) from `low` to `high`."""
    return _between(int, low, high, f"a whole number{' of ' + unit if unit else ''} from {low:,} to {high:,}")


# The longest --shutdown-grace-s: an hour. A grace is waited out whole while a stream stays open
# (an idle `WatchChanges`), so a larger one is a shutdown that does not end in practice.
MAX_SHUTDOWN_GRACE_S = 3600.0
# Seconds, finite, from 0 to MAX_SHUTDOWN_GRACE_S.
_grace_seconds = _between(float, 0, MAX_SHUTDOWN_GRACE_S, f"seconds from 0 to {MAX_SHUTDOWN_GRACE_S:g}")


_PORT = re.compile(r"-?[0-9]+")
MAX_PORT = 65535


def listen_address(text: str) -> str:
    """HOST:PORT with a port from 0 (any free one) to 65535.

    Checked here, before anything binds: gRPC binds port 99999 as 34463 (it keeps the low 16
    bits) and an address without a port as port 443.
    """
    _, colon, port = text.rpartition(":")
    if not colon or not _PORT.fullmatch(port):
        raise ValueError(f"expected HOST:PORT (port 0 picks a free one), not {text!r}")
    if port.startswith("-") or int(port) > MAX_PORT:
        raise ValueError(f"{text!r} has port {port}; ports are 0 (any free one) to {MAX_PORT}")
    return text


def _address_or_off(text: str) -> str:
    """HOST:PORT as `listen_address`, or empty: the listener is off."""
    return listen_address(text) if text else text


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# IPv4 addresses as a dual-stack socket reports them (`::ffff:10.0.0.1`).
_IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def ip_networks(text: str) -> tuple[IPNetwork, ...]:
    """IP addresses and CIDR networks, IPv4 or IPv6, separated by commas (an address is a network
    of one); empty is none. An IPv4-mapped IPv6 entry is taken as the IPv4 it maps, as the HTTP
    listener compares its peers (`http.proxies`).

    A network with host bits set (`10.0.0.1/8`) is refused rather than read as `10.0.0.0/8`: in a
    list of whom to trust, a typo must not widen what is trusted. So is an address with a zone
    (`fe80::1%eth0`): peers are compared without theirs.
    """
    networks: list[IPNetwork] = []
    for entry in (piece.strip() for piece in text.split(",")):
        if entry:
            networks.append(_ip_network(entry))
    return tuple(networks)


def _ip_network(entry: str) -> IPNetwork:
    if "%" in entry:
        raise ValueError(f"{entry!r} has a zone (%...); give the address or network without it")
    try:
        network = ipaddress.ip_network(entry)
    except ValueError:
        try:
            meant = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or CIDR network (give a comma-separated list such "
                             "as 10.0.0.0/8,192.0.2.7,2001:db8::/32)") from None
        raise ValueError(f"{entry!r} has host bits set; the network is {meant}") from None
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_IPV4_MAPPED):
        mapped = network.network_address.ipv4_mapped
        assert mapped is not None  # within ::ffff:0:0/96
        return ipaddress.IPv4Network((mapped, network.prefixlen - 96))
    return network


@dataclass(frozen=True)
class Setting:
    """One declared setting."""

    name: str
    parse: Callable[[str], Any]
    default: str
    help: str

    @property
    def env(self) -> str:
        """The environment variable that sets it."""
        return "AUDIENCES_" + self.name.upper()

    @property
    def flag(self) -> str:
        """The command-line flag that sets it."""
        return "--" + self.name.replace("_", "-")


SETTINGS: tuple[Setting, ...] = (
    Setting("db", Path, "var/audiences.db", "the SQLite database file"),
    Setting("listen", listen_address, "127.0.0.1:50051",
            "address the gRPC server listens on (HOST:PORT; port 0 picks one)"),
    Setting("http_listen", _address_or_off, "127.0.0.1:8080",
            "address of the HTTP listener: Segment's tracking and Profile APIs, /metrics, /healthz, /readyz "
            "(HOST:PORT; port 0 picks one; empty turns it off)"),
    Setting("tls_cert", str, "", "PEM certificate chain both listeners serve (TLS); needs --tls-key"),
    Setting("tls_key", str, "", "PEM private key of --tls-cert"),
    Setting("tls_client_ca", str, "",
            "PEM CA bundle: clients must present a certificate it signed (mutual TLS); needs --tls-cert"),
    Setting("trusted_proxies", ip_networks, "",
            "IP addresses and CIDR networks (comma-separated) of the proxies in front of the HTTP listener: their "
            "connections have no per-address cap, and a request's client is read from their X-Forwarded-For; "
            "empty trusts none"),
    Setting("insecure", _bool, "false",
            "allow plaintext on an address other than loopback (otherwise refused without --tls-cert)"),
    Setting("synchronous", _choice("FULL", "NORMAL"), "FULL",
            "SQLite durability: FULL survives power loss, NORMAL survives a crash of the process"),
    Setting("log_format", _choice("auto", "json", "console"), "auto",
            "log format: auto is console on a terminal and JSON otherwise"),
    Setting("log_level", _choice("debug", "info", "warning", "error"), "info", "lowest level logged"),
    Setting("workers", _whole_between(1, 1024), "16", "threads running the engine's blocking work for RPCs"),
    Setting("tick_interval_ms", _whole_between(1, 3_600_000, "milliseconds"), "200",
            "shortest time between two evaluator ticks (1 ms to 1 hour)"),
    Setting("tick_budget_ms", _whole_between(1, 3_600_000, "milliseconds"), "1000",
            "a tick starts no new job after running this long; what waits goes to the next tick"),
    Setting("tick_slice", _whole_between(0, 1_000_000_000), "0",
            "most waiting work (touched profiles plus profiles with a next change time due) one tick takes;"
            " 0: bounded by time only"),
    Setting("backfill_scan_ahead", _bool, "true",
            "a backfill of 5,000 profiles or more has a second process scan the events of its next chunk while"
            " the writer evaluates the current one, and a big live job has it scan part of its profiles"),
    Setting("manual_clock", _bool, "false",
            "tests only: the evaluator's clock moves only when set through the admin API"),
    Setting("clock_start", time_ms, "",
            "with --manual-clock: the time (ISO-8601, e.g. 2024-01-01T00:00:00Z) the clock starts at on a "
            "database where it never ran; later starts resume the time it had"),
    Setting("credentials_file", str, "",
            "where first start writes the bootstrap tokens (default: credentials.json beside the database)"),
    Setting("shutdown_grace_s", _grace_seconds, "10",
            "seconds in-flight calls get to finish on shutdown (0 to 3600)"),
    Setting("history_retention_days", _whole_between(1, 100_000, "days"), "90",
            "days each profile's membership history and each definition's size series are kept"),
)


@dataclass(frozen=True)
class Settings:
    """The resolved settings of one server."""

    db: Path = Path("var/audiences.db")
    listen: str = "127.0.0.1:50051"
    http_listen: str = "127.0.0.1:8080"
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    trusted_proxies: tuple[IPNetwork, ...] = ()
    insecure: bool = False
    synchronous: str = "FULL"
    log_format: str = "auto"
    log_level: str = "info"
    workers: int = 16
    tick_interval_ms: int = 200
    tick_budget_ms: int = 1000
    tick_slice: int = 0
    backfill_scan_ahead: bool = True
    manual_clock: bool = False
    clock_start: int | None = None  # milliseconds since the epoch
    credentials_file: str = ""
    shutdown_grace_s: float = 10.0
    history_retention_days: int = 90

    @property
    def credentials_path(self) -> Path:
        """Where the bootstrap credentials live."""
        return Path(self.credentials_file) if self.credentials_file else self.db.parent / "credentials.json"

    def replace(self, **changes: Any) -> Settings:
        """A copy with some settings changed."""
        return dataclasses.replace(self, **changes)


# What the admin commands (`spaces`, `tokens`, `backup`, `restore`, `db`, …) read: they take
# only these flags and environment variables, so that a serve-only setting (a bad
# `AUDIENCES_WORKERS` in the environment) never stops a backup.
ADMIN_SETTINGS = frozenset({"db", "synchronous"})


def add_arguments(parser: argparse.ArgumentParser, names: Collection[str] | None = None) -> None:
    """Adds one flag per setting (of `names`, if given) to a command's parser."""
    for setting in SETTINGS:
        if names is not None and setting.name not in names:
            continue
        # A true-or-false setting also works as a bare flag: `--insecure` means `--insecure true`.
        described = f"{setting.help} (env {setting.env}, default {setting.default!r})"
        if setting.parse is _bool:
            parser.add_argument(setting.flag, dest=setting.name, default=None, nargs="?", const="true",
                                help=described)
        else:
            choices = getattr(setting.parse, "choices", None)
            metavar = "{" + ",".join(choices) + "}" if choices else None
            parser.add_argument(setting.flag, dest=setting.name, default=None, metavar=metavar, help=described)


def resolve(flags: Mapping[str, str | None], environ: Mapping[str, str],
            names: Collection[str] | None = None) -> Settings:
    """Builds the settings from flags, then the environment, then the defaults; with `names`,
    the other settings take their defaults.

    Raises:
        ValueError: a value does not parse; the message names the setting.
    """
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        text = flags.get(setting.name)
        if names is not None and setting.name not in names:
            text = setting.default
        elif text is None:
            text = environ.get(setting.env, setting.default)
        try:
            values[setting.name] = setting.parse(text)
        except ValueError as bad:
            raise ValueError(f"{setting.flag} / {setting.env}: {bad}") from None
    return Settings(**values)
