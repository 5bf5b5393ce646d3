"""The edge: HAProxy as the front door, driven by code.

Config rendering, the HAProxy process (start, adopt, reload, stop), runtime
API calls on release slots, and per-slot figures. It reports; it never decides
about releases. It also answers plain links itself: the link map and its sync
with the store, the visit reader, TLS certificates.
"""

from steadylink.edge.certs import check_certificates
from steadylink.edge.config import (
    BACKEND,
    EdgeConfig,
    SlotSetting,
    SlotState,
    name_slot,
    render_config,
    validate_config,
)
from steadylink.edge.figures import (
    ServerStats,
    SlotFigures,
    measure_figures,
    parse_server_stats,
)
from steadylink.edge.mapsync import LinkMapSync, MapStatus
from steadylink.edge.process import (
    EdgeProcess,
    MasterStatus,
    adopt_edge,
    build_check_command,
    build_start_command,
    check_config,
    ensure_edge,
    ensure_port_free,
    explain_early_exit,
    explain_start_failure,
    find_haproxy,
    is_edge_running,
    is_process_running,
    read_master_status,
    reload_edge,
    restart_edge,
    start_edge,
    stop_edge,
)
from steadylink.edge.redirector import EdgeRedirects
from steadylink.edge.runtime import (
    RuntimeClient,
    build_set_state,
    build_set_weight,
    wait_for_slot,
)
from steadylink.edge.visitreader import VisitReader, read_visit_state
from steadylink.edge.visits import VisitTally
from steadylink.errors import EdgeError

__all__ = [
    "BACKEND",
    "EdgeConfig",
    "EdgeError",
    "EdgeProcess",
    "EdgeRedirects",
    "LinkMapSync",
    "MapStatus",
    "MasterStatus",
    "RuntimeClient",
    "ServerStats",
    "SlotFigures",
    "SlotSetting",
    "SlotState",
    "VisitReader",
    "VisitTally",
    "adopt_edge",
    "build_check_command",
    "build_set_state",
    "build_set_weight",
    "build_start_command",
    "check_certificates",
    "check_config",
    "ensure_edge",
    "ensure_port_free",
    "explain_early_exit",
    "explain_start_failure",
    "find_haproxy",
    "is_edge_running",
    "is_process_running",
    "measure_figures",
    "name_slot",
    "parse_server_stats",
    "read_master_status",
    "read_visit_state",
    "reload_edge",
    "render_config",
    "restart_edge",
    "start_edge",
    "stop_edge",
    "validate_config",
    "wait_for_slot",
]
