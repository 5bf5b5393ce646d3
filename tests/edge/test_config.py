from __future__ import annotations

import dataclasses
import socket
import subprocess
import time
from pathlib import Path

import pytest
from tests.edge.edge_harness import Upstream, running_edge

import steadylink.edge as edge_api
from steadylink.edge import (
    EdgeConfig,
    SlotSetting,
    build_check_command,
    check_config,
    find_haproxy,
    render_config,
)
from steadylink.errors import ConfigError

RUN = Path("/tmp/sl-run")


def lines_of(config: EdgeConfig) -> list[str]:
    return [line.strip() for line in render_config(config).splitlines()]


def test_every_slot_is_a_unix_socket_server_in_maintenance_by_default() -> None:
    lines = lines_of(EdgeConfig(run_dir=RUN, slots=4))
    servers = [line for line in lines if line.startswith("server ")]
    observe = "observe layer7 error-limit 5 on-error mark-down"
    assert servers == [
        *(f"server s{n} unix@/tmp/sl-run/slot{n}.sock weight 0 {observe} disabled" for n in range(4)),
        *(f"server s{n}b unix@/tmp/sl-run/slot{n}.sock backup weight 1 disabled" for n in range(4)),
    ]


def test_initial_slot_settings_become_weights_and_states() -> None:
    config = EdgeConfig(
        run_dir=RUN,
        slots=3,
        initial={0: SlotSetting(100, "ready"), 1: SlotSetting(20, "drain")},
    )
    servers = [line for line in lines_of(config) if line.startswith("server ")]
    assert servers[0].startswith("server s0 unix@/tmp/sl-run/slot0.sock weight 100 observe layer7")
    assert servers[1].startswith("server s1 unix@/tmp/sl-run/slot1.sock weight 0 observe layer7")
    assert servers[2].endswith(" disabled")
    # the fallback that is ready is the serving slot's: the most weight among ready slots
    assert servers[3:] == [
        "server s0b unix@/tmp/sl-run/slot0.sock backup weight 1",
        "server s1b unix@/tmp/sl-run/slot1.sock backup weight 1 disabled",
        "server s2b unix@/tmp/sl-run/slot2.sock backup weight 1 disabled",
    ]


def test_backend_retries_safe_requests_elsewhere_and_watches_responses() -> None:
    lines = lines_of(EdgeConfig(run_dir=RUN, error_limit=7, retries=3))
    assert "balance roundrobin" in lines
    assert "option httpchk GET /healthz" in lines
    assert "retries 3" in lines
    assert "retry-on conn-failure empty-response response-timeout 500 502 503 504" in lines
    assert "http-request disable-l7-retry unless { method GET HEAD OPTIONS }" in lines
    assert "option redispatch 1" in lines
    assert "http-response set-header X-Served-By %[srv_name,regsub(b$,)]" in lines
    default_server = next(line for line in lines if line.startswith("default-server"))
    assert " check inter 1000ms fastinter 250ms" in default_server
    slot = next(line for line in lines if line.startswith("server s0 "))
    assert "observe layer7 error-limit 7 on-error mark-down" in slot
    fallback = next(line for line in lines if line.startswith("server s0b "))
    assert "observe" not in fallback and " backup " in fallback


def test_frontend_sets_forwarding_and_request_id_headers() -> None:
    lines = lines_of(EdgeConfig(run_dir=RUN, host="0.0.0.0", port=9000))
    assert "bind 0.0.0.0:9000" in lines
    assert "http-request set-header X-Forwarded-For %[src]" in lines
    assert any(line.startswith("unique-id-format ") for line in lines)
    # an id the app would not keep is replaced here, so edge and app answers carry the same kind
    assert "acl safe_request_id req.hdr(x-request-id) -m reg ^[A-Za-z0-9._:@/+=-]{1,128}$" in lines
    assert "http-request set-header X-Request-ID %[unique-id] unless safe_request_id" in lines
    assert not any("ssl crt" in line for line in lines)


def test_edge_answers_come_before_the_rules_for_requests_bound_for_the_app() -> None:
    # an edge answer needs no forwarding headers: they would cost it time for nothing
    lines = lines_of(EdgeConfig(run_dir=RUN, edge_redirects=True))
    first_answer = next(i for i, line in enumerate(lines) if line.startswith("http-request return"))
    assert all(
        first_answer < i for i, line in enumerate(lines) if line.startswith("http-request set-header")
    )


def test_global_section_exposes_an_admin_socket_and_the_state_file() -> None:
    lines = lines_of(EdgeConfig(run_dir=RUN))
    assert "stats socket /tmp/sl-run/haproxy.sock mode 600 level admin expose-fd listeners" in lines
    assert "server-state-file /tmp/sl-run/server-state" in lines
    assert "load-server-state-from-file global" in lines
    assert not any(line.startswith("maxconn") for line in lines)


def test_tls_certificate_adds_an_https_bind() -> None:
    lines = lines_of(EdgeConfig(run_dir=RUN, tls_certs=(Path("/etc/ssl/site.pem"),), tls_port=8443))
    assert "bind 127.0.0.1:8443 ssl crt /etc/ssl/site.pem alpn h2,http/1.1" in lines


def test_rendering_is_a_pure_function() -> None:
    config = EdgeConfig(run_dir=RUN)
    assert render_config(config) == render_config(config)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"port": 0}, "port"),
        ({"slots": 0}, "slots"),
        ({"retry_statuses": (500, 418)}, "retry_statuses"),
        ({"initial": {9: SlotSetting(1, "ready")}}, "initial"),
        ({"initial": {0: SlotSetting(300, "ready")}}, "initial"),
        ({"run_dir": Path("/tmp/" + "x" * 120)}, "run_dir"),
    ],
)
def test_invalid_settings_fail_loudly_naming_the_field(changes: dict[str, object], field: str) -> None:
    config = EdgeConfig(**{"run_dir": RUN, **changes})  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as caught:
        render_config(config)
    assert caught.value.field == field


def test_haproxy_accepts_the_rendered_config(tmp_path: Path) -> None:
    config = EdgeConfig(run_dir=Path("/tmp/sl-check"), initial={1: SlotSetting(50, "ready")}, maxconn=1000)
    path = tmp_path / "haproxy.cfg"
    path.write_text(render_config(config))
    done = subprocess.run(
        build_check_command(find_haproxy(), path), capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_check_config_reports_haproxys_complaint(tmp_path: Path) -> None:
    config = EdgeConfig(run_dir=tmp_path / "run", tls_certs=(tmp_path / "missing.pem",))
    with pytest.raises(ConfigError, match="missing.pem"):
        check_config(config)


def test_a_missing_haproxy_says_how_to_install_it() -> None:
    with pytest.raises(ConfigError, match="haproxy is not installed; run scripts/setup") as caught:
        find_haproxy("no-such-haproxy-binary")
    assert caught.value.exit_code != 0


def test_public_api_matches_all() -> None:
    exported = {name for name in dir(edge_api) if not name.startswith("_")}
    modules = {
        "config", "figures", "process", "runtime", "certs", "linkmap", "mapsync", "redirector",
        "redirects", "visitreader", "visits", "listeners",
    }
    assert set(edge_api.__all__) == exported - modules
    assert sorted(edge_api.__all__) == edge_api.__all__


def test_a_trickled_body_is_cut_off_like_slow_headers(
    edge_config: EdgeConfig, upstreams: list[Upstream]
) -> None:
    """A real HAProxy: one body byte every 0.3 s never goes quiet for `timeout client`,
    so only waiting for the body within `timeout http-request` ends it."""
    config = dataclasses.replace(edge_config, timeout_http_request_ms=1_000)
    with running_edge(config) as edge:
        edge.runtime.set_state(0, "ready")
        edge.runtime.set_weight(0, 1)
        with socket.create_connection(("127.0.0.1", config.port), timeout=10) as client:
            client.sendall(b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 200\r\n\r\n")
            started = time.monotonic()
            answer = b""
            for _ in range(200):  # 60 s of trickle if nothing cuts it off
                try:
                    client.sendall(b"a")
                except OSError:
                    break
                client.settimeout(0.3)
                try:
                    answer += client.recv(4096)
                except TimeoutError:
                    continue
                if answer:
                    break
            waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    assert waited < 5, waited
    assert upstreams[0].behaviour.hits == 0  # the worker never saw it
