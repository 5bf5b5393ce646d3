"""Bad certificates are refused before HAProxy is touched, with the file named."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.edge.tls_harness import make_certificate, with_foreign_key

from steadylink.edge import check_certificates
from steadylink.errors import ConfigError


def test_a_good_certificate_passes(tmp_path: Path) -> None:
    check_certificates([make_certificate(tmp_path)])


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.pem does not exist"):
        check_certificates([tmp_path / "missing.pem"])


def test_an_expired_certificate_is_refused(tmp_path: Path) -> None:
    expired = make_certificate(tmp_path, expired=True)
    with pytest.raises(ConfigError, match=rf"{expired} expired on 2020-01-02"):
        check_certificates([expired])


def test_one_that_expires_later_is_refused_then(tmp_path: Path) -> None:
    good = make_certificate(tmp_path)
    with pytest.raises(ConfigError, match="expired"):
        check_certificates([good], now=datetime(2100, 1, 1, tzinfo=UTC))


def test_a_key_that_does_not_match_is_refused(tmp_path: Path) -> None:
    mixed = with_foreign_key(tmp_path)
    with pytest.raises(ConfigError, match=rf"private key in {mixed} does not belong"):
        check_certificates([mixed])


def test_a_file_without_a_key_is_refused(tmp_path: Path) -> None:
    make_certificate(tmp_path)
    bare = tmp_path / "bare.pem"
    bare.write_text((tmp_path / "site-work" / "cert.pem").read_text())
    with pytest.raises(ConfigError, match="holds no private key"):
        check_certificates([bare])


def test_the_first_bad_one_of_several_is_named(tmp_path: Path) -> None:
    good = make_certificate(tmp_path)
    with pytest.raises(ConfigError, match="nothing.pem"):
        check_certificates([good, tmp_path / "nothing.pem"])
