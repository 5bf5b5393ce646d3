"""Rules for link targets: what a short link may point at."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

import idna

from steadylink.errors import InvalidInput

ALLOWED_SCHEMES = ("http", "https")


def normalise_target(
    url: object,
    *,
    max_length: int,
    own_hosts: Iterable[str] = (),
    blocked_domains: Iterable[str] = (),
) -> str:
    """Return the target in normal form, or raise InvalidInput naming ``url``.

    Only http and https; the host is IDNA-encoded and lower-cased; user
    names in the authority (``https://bank.com@evil.example``), control
    characters and white space are refused; links to the shortener's own
    hosts (loops) and to blocked domains are refused.
    """
    if not isinstance(url, str):
        raise InvalidInput("The URL must be a string.", field="url")
    url = url.strip()
    if not url:
        raise InvalidInput(
            "The URL is missing; give the address the link should lead to.", field="url"
        )
    if len(url) > max_length:
        raise InvalidInput(f"The URL is longer than {max_length} characters.", field="url")
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in url):
        raise InvalidInput("The URL holds white space or control characters.", field="url")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        if not parts.scheme or "." in parts.scheme:
            raise InvalidInput(
                "The URL has no scheme; write it in full, like https://example.com/page.",
                field="url",
            )
        raise InvalidInput(
            f"Only http and https links can be shortened, not {parts.scheme}:.", field="url"
        )
    if "@" in parts.netloc:
        raise InvalidInput("The URL may not carry a user name or password.", field="url")
    host = _normal_host(parts.hostname or "")
    try:
        port = parts.port
    except ValueError:
        raise InvalidInput("The URL's port is not a number from 1 to 65535.", field="url") from None
    if _is_listed(host, {_normal_host(h) for h in own_hosts if h}):
        raise InvalidInput(
            "The URL points at this shortener itself, which would loop.", field="url"
        )
    if _is_listed(host, {d.lower().strip(".") for d in blocked_domains if d}):
        raise InvalidInput(f"Links to {host} are blocked on this service.", field="url")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    normal = urlunsplit((scheme, netloc, parts.path or "/", parts.query, parts.fragment))
    if len(normal) > max_length:
        raise InvalidInput(f"The URL is longer than {max_length} characters.", field="url")
    return normal


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def _normal_host(host: str) -> str:
    host = host.strip().rstrip(".").lower()
    if not host:
        raise InvalidInput("The URL has no host name.", field="url")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise InvalidInput(f"The URL's host name is not valid: {exc}.", field="url") from None


def _is_listed(host: str, domains: set[str]) -> bool:
    return any(host == d or host.endswith("." + d) for d in domains)
