"""Certificates made by the tests with openssl: good, expired, and with a foreign key."""

from __future__ import annotations

import subprocess
from pathlib import Path

_CA_CONFIG = """[ca]
default_ca = d
[d]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = p
copy_extensions = copy
[p]
commonName = supplied
organizationName = optional
"""


def _run(*argv: str, cwd: Path) -> None:
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True, timeout=30)


def make_certificate(folder: Path, name: str = "site", *, expired: bool = False) -> Path:
    """A self-signed localhost certificate and its key in one PEM file (as HAProxy wants it)."""
    work = folder / f"{name}-work"
    work.mkdir(parents=True)
    _run("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", "key.pem", "-out", "req.csr", "-subj", f"/O={name}/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", cwd=work)  # fmt: skip
    (work / "ca.cnf").write_text(_CA_CONFIG)
    (work / "index.txt").write_text("")
    (work / "serial").write_text("01\n")
    dates = ["-startdate", "20200101000000Z", "-enddate", "20200102000000Z"] if expired else ["-days", "30"]
    _run("openssl", "ca", "-batch", "-config", "ca.cnf", "-selfsign", "-keyfile", "key.pem",
         "-in", "req.csr", "-out", "cert.pem", "-notext", *dates, cwd=work)  # fmt: skip
    combined = folder / f"{name}.pem"
    combined.write_text((work / "cert.pem").read_text() + (work / "key.pem").read_text())
    return combined


def with_foreign_key(folder: Path) -> Path:
    """A certificate whose file holds another certificate's key."""
    one, two = make_certificate(folder, "one"), make_certificate(folder, "two")
    mixed = folder / "mixed.pem"
    mixed.write_text((folder / "one-work" / "cert.pem").read_text() + (folder / "two-work" / "key.pem").read_text())
    assert one.exists() and two.exists()
    return mixed
