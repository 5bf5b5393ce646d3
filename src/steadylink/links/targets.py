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
    if _is_listed(_loop_key(host), _normal_hosts(tuple(own_hosts))):
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

    A last label that is a number (``1``, ``0x7f``) makes the host an IPv4
    address for browsers, so such hosts are not plain.
    """
    return _LDH_NAME.fullmatch(host) is not None and _number(host.rpartition(".")[2]) is None


def _encoded_host(host: str) -> str:
    if ":" not in host and _number(host.rpartition(".")[2]) is not None:
        # As browsers read it (WHATWG URL): 127.1, 2130706433, 0x7f.1 and
        # 0177.0.0.1 are all 127.0.0.1 — one form, or the loop check is bypassed.
        address = ipv4_literal(host)
        if address is None:
            raise InvalidInput("The URL's host looks like an IPv4 address but is not one.", field="url")
        return address
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise InvalidInput(f"The URL's host name is not valid: {exc}.", field="url") from None


def ipv4_literal(host: str) -> str | None:
    """``host`` in any IPv4 form browsers accept (1 to 4 parts, each decimal, octal
    with a leading 0 or hex with 0x) as a dotted quad; None if it is not one."""
    labels = host.split(".")
    if labels[-1] == "" and len(labels) > 1:
        labels.pop()  # a trailing dot
    numbers = [_number(label) for label in labels]
    if not 1 <= len(numbers) <= 4 or any(n is None for n in numbers):
        return None
    *leading, last = [n for n in numbers if n is not None]
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last
    for i, n in enumerate(leading):
        value += n << (8 * (3 - i))
    return str(ipaddress.IPv4Address(value))


def _number(label: str) -> int | None:
    """A host label as a number, the way browsers read IPv4 parts; None if it is none."""
    if label[:2] in ("0x", "0X"):
        digits, base = label[2:], 16
    elif len(label) > 1 and label.startswith("0"):
        digits, base = label[1:], 8
    else:
        digits, base = label, 10
    if not digits:
        return 0 if base == 16 else None  # "0x" alone is 0 for browsers
    try:
        return int(digits, base) if digits.isalnum() and digits.isascii() else None
    except ValueError:
        return None


def _loop_key(host: str) -> str:
    """An IPv4-mapped IPv6 address (``::ffff:7f00:1``) compares as its IPv4 address."""
    if ":" in host:
        try:
            mapped = ipaddress.IPv6Address(host).ipv4_mapped
        except ValueError:
            return host
        return str(mapped) if mapped is not None else host
    return host


# The shortener's own hosts and the blocked domains come from the settings:
# the same few tuples every time, normalised once.
@functools.lru_cache(maxsize=64)
def _normal_hosts(hosts: tuple[str, ...]) -> frozenset[str]:
    return frozenset(_loop_key(_normal_host(h)) for h in hosts if h)


@functools.lru_cache(maxsize=64)
def _normal_domains(domains: tuple[str, ...]) -> frozenset[str]:
    return frozenset(d.lower().strip(".") for d in domains if d)


def _is_listed(host: str, domains: frozenset[str]) -> bool:
    return any(host == d or host.endswith("." + d) for d in domains)
