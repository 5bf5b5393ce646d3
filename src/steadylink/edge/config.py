"""HAProxy's configuration as a pure function of one frozen ``EdgeConfig``.

Releases sit in fixed server *slots* (``s0``..``sN``) of the backend ``app``,
each pointing at ``<run_dir>/slot<N>.sock``. Putting a release into traffic is
a runtime API call on its slot, so the normal deploy path never reloads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from steadylink.edge.redirects import REDIRECT_REASONS, edge_redirect_rules, edge_visit_sections
from steadylink.errors import ConfigError

BACKEND = "app"
MAX_WEIGHT = 256
# sun_path is 108 bytes on Linux (104 on the BSDs); keep a margin for the NUL.
MAX_SOCKET_PATH = 103
# What HAProxy 2.6 accepts in "retry-on" as a status code.
RETRYABLE_STATUSES = frozenset({401, 403, 404, 408, 425, 500, 501, 502, 503, 504})

SlotState = Literal["ready", "drain", "maint"]
# The app's request-id rule (web/logs.py _SAFE_ID) as an HAProxy regex.
SAFE_REQUEST_ID = r"^[A-Za-z0-9._:@/+=-]{1,128}$"
# Mozilla's "intermediate" profile: TLS 1.2 with forward-secret AEAD ciphers, and TLS 1.3.
TLS12_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
)
TLS13_CIPHERSUITES = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"


@dataclass(frozen=True)
class SlotSetting:
    """How one slot starts: its weight and administrative state."""

    weight: int = 0
    state: SlotState = "maint"


@dataclass(frozen=True)
class EdgeConfig:
    run_dir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    slots: int = 4
    # certificate files (chain and key in one PEM each); empty: no TLS
    tls_certs: tuple[Path, ...] = ()
    tls_port: int = 8443
    # Strict-Transport-Security max-age on TLS answers; 0 sends none
    hsts_seconds: int = 31_536_000
    # HAProxy answers plain links from <run_dir>/links.map itself (edge/linkmap.py)
    edge_redirects: bool = False
    redirect_status: int = 302
    # listening sockets HAProxy inherits (edge/listeners.py): the plain port's, then the TLS
    # port's; empty: HAProxy binds host:port itself
    listen_fds: tuple[int, ...] = ()
    # None: HAProxy derives it from the file-descriptor limit (ulimit -n).
    maxconn: int | None = None
    # None: one thread per CPU HAProxy may run on (bench/edge.py pins it to one core, one thread)
    nbthread: int | None = None
    timeout_connect_ms: int = 2_000
    timeout_client_ms: int = 30_000
    timeout_server_ms: int = 30_000
    timeout_http_request_ms: int = 10_000
    timeout_keep_alive_ms: int = 10_000
    check_inter_ms: int = 1_000
    check_fastinter_ms: int = 250
    error_limit: int = 5
    retries: int = 2
    # 500 is included on purpose: a GET a bad canary answers with 500 is
    # replayed on another slot. HAProxy 2.6 then counts the failed attempt in
    # the slot's "wredis", not in "hrsp_5xx" nor in "observe layer7".
    retry_statuses: tuple[int, ...] = (500, 502, 503, 504)
    hard_stop_after_s: int = 30
    initial: dict[int, SlotSetting] = field(default_factory=dict)

    @property
    def config_file(self) -> Path:
        return self.run_dir / "haproxy.cfg"

    @property
    def stats_socket(self) -> Path:
        return self.run_dir / "haproxy.sock"

    @property
    def master_socket(self) -> Path:
        return self.run_dir / "master.sock"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "haproxy.pid"

    @property
    def state_file(self) -> Path:
        return self.run_dir / "server-state"

    @property
    def link_map(self) -> Path:
        return self.run_dir / "links.map"

    @property
    def visit_socket(self) -> Path:
        """Where HAProxy forwards its ring of edge visits (``edge/visits.py`` listens)."""
        return self.run_dir / "visits.sock"

    @property
    def has_tls(self) -> bool:
        return bool(self.tls_certs)

    @property
    def listen_ports(self) -> list[int]:
        """The front door's ports, plain HTTP first: one listening socket each."""
        return [self.port, self.tls_port] if self.has_tls else [self.port]

    def slot_socket(self, slot: int) -> Path:
        return self.run_dir / f"slot{slot}.sock"


def name_slot(slot: int) -> str:
    """The HAProxy server name of a slot: ``s0``, ``s1``..."""
    return f"s{slot}"


def name_fallback(slot: int) -> str:
    """The slot's fallback server (``s0b``): the same socket, as a backup (see ``_backend``)."""
    return f"s{slot}b"


def fallback_slot(weights: dict[int, int]) -> int | None:
    """The slot whose fallback is ready: the one with the most traffic (the serving release)."""
    serving = [(weight, -slot) for slot, weight in weights.items() if weight > 0]
    return -max(serving)[1] if serving else None


def render_config(config: EdgeConfig) -> str:
    """The complete haproxy.cfg for ``config``; raises ConfigError when invalid."""
    validate_config(config)
    parts = [_global(config), _defaults(config)]
    if config.edge_redirects:
        parts.append(edge_visit_sections(config))
    parts += [_frontend(config), _backend(config)]
    return "\n".join(line for part in parts for line in part)


def validate_config(config: EdgeConfig) -> None:
    """Fail loudly, naming the field, on a config HAProxy would reject or misread."""
    checks = [
        (0 < config.port < 65536, "port", "must be between 1 and 65535"),
        (0 < config.tls_port < 65536, "tls_port", "must be between 1 and 65535"),
        (not config.has_tls or config.tls_port != config.port, "tls_port", "must differ from port"),
        (config.hsts_seconds >= 0, "hsts_seconds", "must be 0 or more"),
        (config.redirect_status in REDIRECT_REASONS, "redirect_status", "must be 301, 302, 307 or 308"),
        (1 <= config.slots <= 64, "slots", "must be between 1 and 64"),
        (
            len(config.listen_fds) in (0, len(config.listen_ports))
            and min(config.listen_fds, default=0) >= 0,
            "listen_fds",
            "must hold one socket per port (the TLS port's second)",
        ),
        (config.retries >= 0, "retries", "must be 0 or more"),
        (config.error_limit >= 1, "error_limit", "must be 1 or more"),
        (config.maxconn is None or config.maxconn >= 1, "maxconn", "must be 1 or more"),
        (
            set(config.retry_statuses) <= RETRYABLE_STATUSES,
            "retry_statuses",
            f"must be among {sorted(RETRYABLE_STATUSES)}",
        ),
        (
            all(0 <= slot < config.slots for slot in config.initial),
            "initial",
            f"names a slot outside 0..{config.slots - 1}",
        ),
        (
            all(0 <= s.weight <= MAX_WEIGHT for s in config.initial.values()),
            "initial",
            f"weights must be between 0 and {MAX_WEIGHT}",
        ),
    ]
    for ok, name, problem in checks:
        if not ok:
            raise ConfigError(f"Edge setting {name!r} {problem}.", field=name)
    paths = [config.stats_socket, config.master_socket, config.visit_socket]
    paths += [config.slot_socket(n) for n in range(config.slots)]
    for path in paths:
        if len(str(path)) > MAX_SOCKET_PATH:
            raise ConfigError(
                f"Socket path {path} is longer than {MAX_SOCKET_PATH} bytes; use a shorter run directory.",
                field="run_dir",
            )
    for named in [config.run_dir, *config.tls_certs]:
        if any(c.isspace() or c in "\"'#\\" for c in str(named)):
            raise ConfigError(f"Path {str(named)!r} must not contain spaces, quotes or '#'.")


def _global(config: EdgeConfig) -> list[str]:
    lines = [
        "global",
        f"    stats socket {config.stats_socket} mode 600 level admin expose-fd listeners",
        "    stats timeout 10s",
        f"    server-state-file {config.state_file}",
        f"    hard-stop-after {config.hard_stop_after_s}s",
    ]
    if config.maxconn is not None:
        lines.append(f"    maxconn {config.maxconn}")
    if config.nbthread is not None:
        lines.append(f"    nbthread {config.nbthread}")
    if config.has_tls:
        lines += [
            f"    ssl-default-bind-ciphers {TLS12_CIPHERS}",
            f"    ssl-default-bind-ciphersuites {TLS13_CIPHERSUITES}",
            "    ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets",
        ]
    return [*lines, ""]


def _defaults(config: EdgeConfig) -> list[str]:
    return [
        "defaults",
        "    mode http",
        "    option http-keep-alive",
        "    http-reuse safe",
        f"    timeout connect {config.timeout_connect_ms}ms",
        f"    timeout client {config.timeout_client_ms}ms",
        f"    timeout server {config.timeout_server_ms}ms",
        f"    timeout http-request {config.timeout_http_request_ms}ms",
        f"    timeout http-keep-alive {config.timeout_keep_alive_ms}ms",
        f"    timeout check {config.timeout_connect_ms}ms",
        "    timeout queue 5s",
        "    load-server-state-from-file global",
        "",
    ]


def _frontend(config: EdgeConfig) -> list[str]:
    plain, tls = (f"{config.host}:{config.port}", f"{config.host}:{config.tls_port}")
    if config.listen_fds:
        plain, tls = (f"fd@{fd}" for fd in (*config.listen_fds, -1)[:2])
    lines = ["frontend web", f"    bind {plain}"]
    if config.has_tls:
        certs = " ".join(f"crt {path}" for path in config.tls_certs)
        lines.append(f"    bind {tls} ssl {certs} alpn h2,http/1.1")
        lines += _https_only(config)
    lines += [
        r"    unique-id-format %{+X}o\ %ci:%cp_%fi:%fp_%Ts_%rt:%pid",
        # the client's request id, kept only if the app would keep it (web/logs.py)
        f"    acl safe_request_id req.hdr(x-request-id) -m reg {SAFE_REQUEST_ID}",
        # Wait for the body (up to a buffer) within `timeout http-request`, as for
        # the headers: a body trickled a byte at a time is cut off with a 408
        # instead of holding a worker's connection for ever.
        "    option http-buffer-request",
    ]
    if config.edge_redirects:
        # first: an edge answer needs none of the rules for requests bound for the app
        lines += edge_redirect_rules(config)
    lines += [
        # an id the app would not keep is replaced here, so an answer from the
        # edge and one from the app carry the same kind of id
        "    http-request set-header X-Request-ID %[unique-id] unless safe_request_id",
        "    http-request set-header X-Forwarded-For %[src]",
        f"    default_backend {BACKEND}",
        "",
    ]
    return lines


def _https_only(config: EdgeConfig) -> list[str]:
    """Plain HTTP is sent to HTTPS on the same host; TLS answers carry HSTS."""
    port = "" if config.tls_port == 443 else f":{config.tls_port}"
    host = r"%[req.hdr(host),regsub(:[0-9]+$,)]"
    lines = [
        f"    http-request redirect location https://{host}{port}%[capture.req.uri] code 301"
        " unless { ssl_fc }",
        "    http-request set-header X-Forwarded-Proto https if { ssl_fc }",
    ]
    if config.hsts_seconds:
        lines.append(
            "    http-after-response set-header Strict-Transport-Security"
            f' "max-age={config.hsts_seconds}" if {{ ssl_fc }}'
        )
    return lines


def _backend(config: EdgeConfig) -> list[str]:
    retry_on = " ".join(["conn-failure", "empty-response", "response-timeout"])
    retry_on += "".join(f" {status}" for status in config.retry_statuses)
    lines = [
        f"backend {BACKEND}",
        "    balance roundrobin",
        "    option httpchk GET /healthz",
        f"    retries {config.retries}",
        f"    retry-on {retry_on}",
        # HAProxy replays any method; only safe ones may be retried after they reached a server.
        "    http-request disable-l7-retry unless { method GET HEAD OPTIONS }",
        "    option redispatch 1",
        # the slot's name either way: a fallback server answers as its slot
        "    http-response set-header X-Served-By %[srv_name,regsub(b$,)]",
        f"    default-server check inter {config.check_inter_ms}ms"
        f" fastinter {config.check_fastinter_ms}ms downinter {config.check_fastinter_ms}ms rise 2 fall 2",
    ]
    # A slot whose answers are server errors (a canary failing where its health check does
    # not) is marked down after error_limit in a row, so the others take its share. But an
    # outage of what every slot needs — the database — makes the serving slot answer 503s
    # too: marked down, every app request would get HAProxy's "no server is available"
    # instead of the app's own sentence, and links it holds in memory would fail. So each
    # slot also has a fallback server on the same socket, a backup without that
    # observation: HAProxy sends to a backup only when every slot is down, and only the
    # serving slot's fallback is ready (the guard moves it with the traffic).
    observe = f" observe layer7 error-limit {config.error_limit} on-error mark-down"
    serving = fallback_slot({n: s.weight for n, s in config.initial.items() if s.state == "ready"})
    for slot in range(config.slots):
        setting = config.initial.get(slot, SlotSetting())
        # A weight of 0 is how a config file expresses "drain".
        weight = 0 if setting.state == "drain" else setting.weight
        line = f"    server {name_slot(slot)} unix@{config.slot_socket(slot)} weight {weight}{observe}"
        lines.append(line + " disabled" if setting.state == "maint" else line)
    for slot in range(config.slots):
        fallback = f"    server {name_fallback(slot)} unix@{config.slot_socket(slot)} backup weight 1"
        lines.append(fallback if slot == serving else fallback + " disabled")
    lines.append("")
    return lines
