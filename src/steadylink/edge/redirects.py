"""HAProxy's rules for answering plain links itself, and for handing their visits on.

A ``GET``/``HEAD /<code>`` whose path is a key of the link map
(``edge/linkmap.py``) is answered by the frontend with the app's own answer
— the configured status, the exact ``Location``, ``Cache-Control: private,
max-age=0``, a ``text/plain`` body naming the status, the request id — before
any backend is chosen, so it needs no release and no worker. Every other
request goes to the release as before. The answer also says
``X-Served-By: edge`` (the app's carry the slot's name), so probes see which
path answered.

Visits: each ``GET`` answered this way is logged — and nothing else is —
into an in-memory ``ring`` that HAProxy forwards over a unix stream to the
visit reader (``edge/visits.py``), which batches them into the visit spool.
A log line is ``<pid> <seq> /<code>\\t<referer>\\t<user-agent>``; the headers
are JSON-escaped (``json(ascii)``), so no header can end a line early, and
``seq`` counts this HAProxy process's edge visits (a one-entry stick table),
so the reader can tell a lost line from a late one and reports every gap.
Logging costs about what the ring costs: no syscall per visit in HAProxy,
large reads in the reader.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from steadylink.edge.config import EdgeConfig

REDIRECT_REASONS = {
    301: "Moved Permanently",
    302: "Found",
    307: "Temporary Redirect",
    308: "Permanent Redirect",
}
VISIT_RING = "visits"
VISIT_TABLE = "edge_visits"
# 32 MB: at 70k visits/s (~80 bytes each) about 6 s of visits wait here while the
# reader restarts; past that HAProxy drops lines, and the reader counts them lost.
RING_BYTES = 32 << 20
MAX_LINE = 4096
SERVED_BY_EDGE = "edge"


def edge_visit_sections(config: EdgeConfig) -> list[str]:
    """The ring that carries visits to the reader, and the counter that numbers them."""
    return [
        f"ring {VISIT_RING}",
        "    format raw",
        f"    maxlen {MAX_LINE}",
        f"    size {RING_BYTES}",
        "    timeout connect 1s",
        "    timeout server 30s",
        f"    server reader unix@{config.visit_socket}",
        "",
        f"backend {VISIT_TABLE}",
        "    stick-table type integer size 1 store gpc0",
        "",
    ]


def edge_redirect_rules(config: EdgeConfig) -> list[str]:
    """Frontend lines: look the path up, log a GET's visit, answer."""
    body = REDIRECT_REASONS[config.redirect_status]
    visit = "is_edge { method GET }"
    answer = (
        f'    http-request return status {config.redirect_status} content-type "text/plain; charset=utf-8"'
        f' string "{body}\\n" hdr location "%[var(txn.location)]" hdr cache-control "private, max-age=0"'
    )
    return [
        f"    log ring@{VISIT_RING} len {MAX_LINE} format raw local0",
        # a connection that sent nothing is no visit (a request cut off before its rules
        # ran is logged with no number, and the reader passes it over)
        "    option dontlognull",
        '    log-format "%pid %[var(txn.visit)] %HPO\\t%[capture.req.hdr(0),json(ascii)]'
        '\\t%[capture.req.hdr(1),json(ascii)]"',
        f"    http-request set-var(txn.location) path,map({config.link_map}) if METH_GET",
        "    acl is_edge var(txn.location) -m found",
        # only edge-answered GETs are logged: the app counts its own visits
        f"    http-request set-log-level silent unless {visit}",
        "    http-request capture req.hdr(referer) len 1024 if is_edge",
        "    http-request capture req.hdr(user-agent) len 512 if is_edge",
        f"    http-request track-sc2 int(1) table {VISIT_TABLE} if {visit}",
        # one atomic step: an increment and a separate read let two threads read the
        # same number (one visit counted twice as a resend, another as lost)
        f"    http-request set-var(txn.visit) sc_inc_gpc0(2) if {visit}",
        # the client's id when the app would keep it (``safe_request_id``, edge/config.py), else a new one
        f"{answer} hdr x-request-id \"%[req.hdr(x-request-id)]\" hdr x-served-by {SERVED_BY_EDGE}"
        " if is_edge safe_request_id",
        f'{answer} hdr x-request-id "%[unique-id]" hdr x-served-by {SERVED_BY_EDGE} if is_edge',
    ]
