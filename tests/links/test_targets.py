import ipaddress

import idna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steadylink.errors import InvalidInput
from steadylink.links.targets import is_plain_name, normalise_target


def normal(url: object, **kw: object) -> str:
    return normalise_target(url, max_length=2048, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://example.com", "https://example.com/"),
        ("HTTPS://Example.COM/Path?q=1#frag", "https://example.com/Path?q=1#frag"),
        ("http://bücher.example/straße", "http://xn--bcher-kva.example/straße"),
        ("  https://example.com/x  ", "https://example.com/x"),
        ("http://[::1]:8080/a", "http://[::1]:8080/a"),
        ("http://127.0.0.1:9/", "http://127.0.0.1:9/"),
    ],
)
def test_targets_are_normalised(given: str, expected: str) -> None:
    assert normal(given) == expected


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("", "missing"),
        ("   ", "missing"),
        ("example.com/page", "no scheme"),
        ("javascript:alert(1)", "Only http and https"),
        ("data:text/html,hi", "Only http and https"),
        ("file:///etc/passwd", "Only http and https"),
        ("ftp://example.com/", "Only http and https"),
        ("https://bank.example@evil.example/", "user name"),
        ("https://exa mple.com/", "white space"),
        ("https://example.com/\x00", "control"),
        ("https://example.com:99999/", "port"),
        ("https:///path", "no host"),
        (42, "string"),
        (None, "string"),
    ],
)
def test_bad_targets_are_refused_naming_the_field(given: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as info:
        normal(given)
    assert info.value.field == "url"


def test_too_long_targets_are_refused() -> None:
    with pytest.raises(InvalidInput, match="longer than"):
        normalise_target("https://example.com/" + "a" * 100, max_length=64)


def test_links_to_the_shortener_itself_are_refused() -> None:
    with pytest.raises(InvalidInput, match="loop"):
        normal("https://SL.example/abc", own_hosts=["sl.example"])
    with pytest.raises(InvalidInput, match="loop"):
        normal("http://127.0.0.1:8080/abc", own_hosts=["127.0.0.1"])


@pytest.mark.parametrize(
    "url",
    [
        "http://127.1:8080/abc",
        "http://2130706433:8080/abc",
        "http://0x7f.1:8080/abc",
        "http://0x7f000001/abc",
        "http://0177.0.0.1/abc",
        "http://0177.0.1/abc",
        "http://127.0.0.1./abc",
        "http://[::ffff:7f00:1]:8080/abc",
        "http://[::ffff:127.0.0.1]/abc",
        "http://[0:0:0:0:0:ffff:7f00:0001]/abc",
    ],
)
def test_every_form_of_an_own_ip_address_is_a_loop(url: str) -> None:
    """Browsers read all of these as 127.0.0.1: the loop check must too."""
    with pytest.raises(InvalidInput, match="loop"):
        normal(url, own_hosts=["127.0.0.1"])
    with pytest.raises(InvalidInput, match="loop"):
        normal(url, own_hosts=["127.1"])  # an own host written in a short form


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://10.1/", "http://10.0.0.1/"),
        ("http://0x0a.0.0.1/", "http://10.0.0.1/"),
        ("http://167772161/x", "http://10.0.0.1/x"),
        ("http://[::ffff:a00:1]/", "http://[::ffff:a00:1]/"),
    ],
)
def test_ip_addresses_are_stored_as_browsers_read_them(given: str, expected: str) -> None:
    assert normal(given, own_hosts=["127.0.0.1"]) == expected


@pytest.mark.parametrize("url", ["http://256.1.1.1/", "http://1.2.3.4.5.6/x.1", "http://08.1/", "http://ex.123/"])
def test_hosts_that_end_in_a_number_but_are_no_address_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput):
        normal(url)


def test_blocked_domains_and_their_subdomains_are_refused() -> None:
    with pytest.raises(InvalidInput, match="blocked"):
        normal("https://www.Bad.example/", blocked_domains=["bad.example"])
    assert normal("https://notbad.example/", blocked_domains=["bad.example"])


def _label_texts() -> st.SearchStrategy[str]:
    label = st.from_regex(r"[a-z0-9]{2}--[a-z0-9]{0,3}|[az09-]{0,5}|[a-z0-9-]{60,66}", fullmatch=True)
    names = st.lists(label, min_size=1, max_size=6).map(".".join)
    return names | st.text(alphabet="aZ0-._ü", max_size=20)


@settings(max_examples=500, deadline=None)
@given(_label_texts())
def test_a_plain_name_is_what_idna_makes_of_it(host: str) -> None:
    # The fast path skips IDNA only where IDNA would return the host unchanged.
    if not is_plain_name(host):
        return
    with pytest.raises(ValueError):
        ipaddress.ip_address(host)
    assert idna.encode(host, uts46=True).decode("ascii") == host


@pytest.mark.parametrize(
    "host", ["example.com", "a-b.c9", "localhost", "x" * 63 + ".example", "123.a", ".".join(["a" * 63] * 3 + ["a" * 61])]
)
def test_plain_names(host: str) -> None:
    assert is_plain_name(host)


@pytest.mark.parametrize(
    "host",
    ["1.2.3.4", "a.123", "xn--bcher-kva.example", "ab--cd.example", "-a.example", "a-.example",
     "a..b", "x" * 64 + ".example", ".".join(["a" * 63] * 4), "Example.com", "foo_bar.example", "bücher.example", ""],
)
def test_names_that_go_the_long_way(host: str) -> None:
    assert not is_plain_name(host)
