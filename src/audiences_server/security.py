"""What keeps a server's listeners and database its own: TLS, the plaintext rule, the instance lock."""

from __future__ import annotations

import fcntl
import ipaddress
import os
import ssl
from pathlib import Path

import grpc

from audiences_server.settings import Settings
from audiences_server.store.db import create_private


def _host(address: str) -> str:
    host = address.rsplit(":", 1)[0] if ":" in address else address
    return host.strip("[]")


def is_loopback(address: str) -> bool:
    """Whether a HOST:PORT address only accepts connections from this machine."""
    host = _host(address)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve anywhere


def check_plaintext(settings: Settings) -> None:
    """Refuses settings that would serve plaintext beyond this machine, or half a TLS setup.

    Raises:
        ValueError: says which flag is missing.
    """
    if bool(settings.tls_cert) != bool(settings.tls_key):
        raise ValueError("--tls-cert and --tls-key go together")
    if settings.tls_client_ca and not settings.tls_cert:
        raise ValueError("--tls-client-ca (mutual TLS) needs --tls-cert and --tls-key")
    if settings.tls_cert or settings.insecure:
        return
    for flag, address in (("--listen", settings.listen), ("--http-listen", settings.http_listen)):
        if address and not is_loopback(address):
            raise ValueError(
                f"{flag} {address} is not a loopback address: serve it with --tls-cert and --tls-key, "
                "or say --insecure to allow plaintext")


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as failed:
        raise ValueError(f"cannot read the {what} {path}: {failed.strerror}") from None


def grpc_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """The gRPC listener's TLS credentials, or None for plaintext."""
    if not settings.tls_cert:
        return None
    # Loaded through OpenSSL first: gRPC reports a key that is not the certificate's, or a file
    # that is no certificate, only as a failure to bind the port.
    http_ssl_context(settings)
    pair = (_read(settings.tls_key, "TLS key"), _read(settings.tls_cert, "TLS certificate"))
    client_ca = _read(settings.tls_client_ca, "client CA") if settings.tls_client_ca else None
    return grpc.ssl_server_credentials([pair], root_certificates=client_ca, require_client_auth=client_ca is not None)


def http_ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The HTTP listener's TLS context, or None for plaintext."""
    if not settings.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
    except (OSError, ssl.SSLError) as failed:
        named = f"--tls-cert {settings.tls_cert}" + (f" and --tls-key {settings.tls_key}" if settings.tls_key else "")
        raise ValueError(f"cannot load the TLS certificate and key ({named}): {_reason(failed)}") from None
    if settings.tls_client_ca:
        try:
            context.load_verify_locations(settings.tls_client_ca)
        except (OSError, ssl.SSLError) as failed:
            raise ValueError(f"cannot load --tls-client-ca {settings.tls_client_ca}: {_reason(failed)}") from None
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _reason(failed: OSError | ssl.SSLError) -> str:
    """What went wrong loading a TLS file, without the errno prefix (`[Errno 2] …`)."""
    if isinstance(failed, ssl.SSLError) or not failed.strerror:
        return str(failed)
    return failed.strerror + (f": {failed.filename}" if failed.filename else "")


class InstanceLock:
    """An exclusive `flock` on the database file itself, held while a server runs on it (or a
    restore writes it): a symlink or a hard link to the file is the same file, so a second server
    or a restore through one is refused too.

    `flock` and SQLite's POSIX locks do not meet, but closing any descriptor of a file drops every
    POSIX lock the process holds on it, SQLite's included: the descriptor stays open until
    `release`, once the engine has closed its connections. The kernel drops the `flock` when the
    process dies (kill -9 too), so a crash never leaves a stale lock.
    """

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    @classmethod
    def take(cls, db: Path) -> InstanceLock:
        """Locks the database, creating it (0600, in 0700 folders) when missing.

        Raises:
            OSError: another server holds it; the message says so.
        """
        create_private(db)
        fd = os.open(db, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OSError(f"another server is already running on {db}; one server per database") from None
        return cls(fd)

    def release(self) -> None:
        """Lets another server start on the database."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
