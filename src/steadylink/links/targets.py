"""Rules for link targets: what a short link may point at."""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

import idna

from steadylink.errors import InvalidInput

ALLOWED_SCHEMES = ("http", "https")
_BLANK_OR_CONTROL = re.compile(r"[\x00-\x20\x7f]")
# A host name IDNA leaves as it is: lower-case letters, digits and hyphens, in
# labels of 1 to 63 characters that neither start nor end with a hyphen nor
# hold one in 3rd and 4th place (as ``xn--``), at most 253 characters in all.
_LDH_LABEL = r"(?!-)(?!..--)[a-z0-9-]{1,63}(?<!-)"
_LDH_NAME = re.compile(rf"(?=.{{1,253}}\Z){_LDH_LABEL}(?:\.{_LDH_LABEL})*")


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
    if _BLANK_OR_CONTROL.search(url):
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
    if _is_listed(host, _normal_hosts(tuple(own_hosts))):
        raise InvalidInput(
            "The URL points at this shortener itself, which would loop.", field="url"
        )
    if _is_listed(host, _normal_domains(tuple(blocked_domains))):
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
    # Most hosts are plain ASCII names, which IDNA returns unchanged at ~10 µs
    # a call (a tenth of a whole create).
    if is_plain_name(host):
        return host
    return _encoded_host(host)


def is_plain_name(host: str) -> bool:
    """True if ``host`` is a lower-case ASCII name that IDNA would leave as it is.

    An all-digit last label may be an IPv4 address, so such hosts are not plain.
    """
    return _LDH_NAME.fullmatch(host) is not None and not host.rpartition(".")[2].isdigit()


def _encoded_host(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise InvalidInput(f"The URL's host name is not valid: {exc}.", field="url") from None


# The shortener's own hosts and the blocked domains come from the settings:
# the same few tuples every time, normalised once.
@functools.lru_cache(maxsize=64)
def _normal_hosts(hosts: tuple[str, ...]) -> frozenset[str]:
    return frozenset(_normal_host(h) for h in hosts if h)


@functools.lru_cache(maxsize=64)
def _normal_domains(domains: tuple[str, ...]) -> frozenset[str]:
    return frozenset(d.lower().strip(".") for d in domains if d)


def _is_listed(host: str, domains: frozenset[str]) -> bool:
    return any(host == d or host.endswith("." + d) for d in domains)
