"""Certificate files checked before HAProxy is started or reloaded with them.

HAProxy itself refuses a missing file or a key that does not match its
certificate, but says so in its own words, and happily serves an expired
certificate. Each file is checked here first, with ``openssl`` (part of every
system that has HAProxy), and a bad one stops ``up`` or ``edge reload`` with
one sentence naming the file — before anything that serves is touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from steadylink.errors import ConfigError

_TIMEOUT = 10.0


def check_certificates(paths: Sequence[Path], *, now: datetime | None = None) -> None:
    """ConfigError naming the first file that is missing, unreadable, expired or mismatched."""
    for path in paths:
        check_certificate(path, now=now)


def check_certificate(path: Path, *, now: datetime | None = None) -> None:
    if not path.is_file():
        raise ConfigError(f"Certificate file {path} does not exist; check edge.tls_cert.", field="tls_cert")
    if not os.access(path, os.R_OK):
        raise ConfigError(f"Certificate file {path} is not readable by this user.", field="tls_cert")
    text = path.read_text(errors="replace")
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ConfigError(f"{path} holds no PEM certificate.", field="tls_cert")
    if "PRIVATE KEY-----" not in text:
        raise ConfigError(
            f"{path} holds no private key; put the chain and the key in one file.", field="tls_cert"
        )
    end = _openssl(path, "x509", "-noout", "-enddate").strip().removeprefix("notAfter=")
    try:
        expires = datetime.strptime(end, "%b %d %H:%M:%S %Y %Z").replace(tzinfo=UTC)
    except ValueError as exc:
        raise ConfigError(f"Cannot read the expiry date of {path} ({end!r}).", field="tls_cert") from exc
    if expires <= (now or datetime.now(UTC)):
        raise ConfigError(
            f"Certificate {path} expired on {expires:%Y-%m-%d %H:%M} UTC; renew it first.", field="tls_cert"
        )
    certificate_key = _openssl(path, "x509", "-noout", "-pubkey")
    private_key = _openssl(path, "pkey", "-pubout")
    if certificate_key.strip() != private_key.strip():
        raise ConfigError(
            f"The private key in {path} does not belong to its certificate.", field="tls_cert"
        )


def _openssl(path: Path, *args: str) -> str:
    binary = shutil.which("openssl")
    if binary is None:
        raise ConfigError("openssl is not installed; it checks edge.tls_cert (run scripts/setup).")
    try:
        done = subprocess.run(
            [binary, args[0], "-in", str(path), *args[1:]],
            capture_output=True, text=True, timeout=_TIMEOUT, check=False, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise ConfigError(f"openssl took too long to read {path}.", field="tls_cert") from exc
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or ["unreadable"])[0][:200]
        raise ConfigError(f"{path} cannot be read as a certificate with its key ({why}).", field="tls_cert")
    return done.stdout
