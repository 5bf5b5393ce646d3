"""One frozen settings object: ``steadylink.toml`` + ``STEADYLINK_*`` environment.

Precedence, lowest first: defaults, the TOML file, the environment, explicit
overrides (command-line flags). Top-level keys map to ``STEADYLINK_<KEY>``;
section keys to ``STEADYLINK_<SECTION>_<KEY>`` (e.g.
``STEADYLINK_LINKS_CODE_LENGTH=8``). Lists in the environment are
comma-separated. Unknown keys and values of the wrong type fail loudly at
start-up with the key's name; ``steadylink.example.toml`` documents them all.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steadylink.errors import ConfigError

CONFIG_FILE_NAME = "steadylink.toml"
DEFAULT_DATA_DIR = "steadylink-data"
REDIRECT_STATUSES = (301, 302, 307, 308)
# The first customer's contract: 20 minutes of downtime a year.
DEFAULT_BUDGET_MINUTES = 20.0
YEAR_MINUTES = 365 * 24 * 60


@dataclass(frozen=True)
class LinkSettings:
    code_length: int = 7
    max_url_length: int = 2048
    redirect_status: int = 302
    blocked_domains: tuple[str, ...] = ()
    own_hosts: tuple[str, ...] = ()
    anonymous_create: bool = True
    upload_max_bytes: int = 10 * 1024 * 1024
    cache_size: int = 1_000_000
    cache_warm: bool = True
    click_flush_seconds: float = 1.0
    compact_seconds: float = 1.0
    invalidation_poll_seconds: float = 1.0


@dataclass(frozen=True)
class LimitSettings:
    create_per_minute: int = 60
    redis_url: str | None = None
    password_attempts_per_minute: int = 10
    password_checks: int = 1


@dataclass(frozen=True)
class StoreSettings:
    timeout_seconds: float = 0.5
    disk_reserve_bytes: int = 64 * 1024 * 1024


@dataclass(frozen=True)
class ReleaseSettings:
    keep_releases: int = 5
    gates: tuple[str, ...] = ("ruff", "compile", "tests", "import")
    test_args: tuple[str, ...] = ()
    build_extras: tuple[str, ...] = ()
    require_approval: bool = False
    stage_sample: int = 0
    stage_latency_factor: float = 3.0
    canary_steps: tuple[int, ...] = (5, 25, 50, 100)
    canary_min_requests: int = 50
    canary_min_seconds: float = 3.0
    canary_error_factor: float = 5.0
    canary_error_floor: float = 0.01
    canary_latency_factor: float = 3.0
    bake_seconds: float = 30.0
    stage_power: float = 0.99
    stage_concurrency: int = 8
    workers: int = 2
    memory_growth_factor: float = 3.0
    memory_growth_floor_mb: float = 200.0
    memory_ceiling_mb: float = 4096.0
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class WatchSettings:
    journal_retention_days: int = 400
    probe_interval_seconds: float = 1.0
    probe_timeout_seconds: float = 0.8
    create_probe_seconds: float = 10.0
    ui_probe_seconds: float = 10.0
    create_probe_failed_runs: int = 2
    ui_probe_failed_runs: int = 2
    front_door_failed_seconds: int = 3
    error_ratio_max: float = 0.05
    error_ratio_seconds: int = 10
    error_ratio_min_requests: int = 50
    latency_window_seconds: int = 60
    probes_stale_seconds: float = 5.0
    disk_used_max_percent: float = 90.0
    database_timeout_seconds: float = 2.0
    database_check_seconds: float = 5.0
    backup_max_age_hours: float = 24.0
    loop_lag_max_seconds: float = 0.5
    renotify_seconds: float = 600.0
    heartbeat_url: str | None = None
    heartbeat_seconds: float = 60.0


@dataclass(frozen=True)
class SloSettings:
    budget_minutes_per_year: float = DEFAULT_BUDGET_MINUTES
    availability_percent: float | None = None  # when set, it defines the budget instead
    period_days: int = 365
    redirect_latency_ms: float = 100.0
    latency_percent: float = 99.0


@dataclass(frozen=True)
class NotifySettings:
    pagerduty_routing_key: str | None = None
    pagerduty_events_url: str = "https://events.pagerduty.com/v2/enqueue"
    apprise_urls: tuple[str, ...] = ()
    escalation_urls: tuple[str, ...] = ()
    escalate_after_seconds: float = 900.0
    timeout_seconds: float = 5.0
    max_attempts: int = 8


@dataclass(frozen=True)
class IncidentSettings:
    traffic_retention_days: int = 14
    unguarded_minutes: int = 60
    worker_log_max_mb: int = 50
    worker_log_keep: int = 5
    worker_log_max_age_days: int = 7


@dataclass(frozen=True)
class StatusSettings:
    title: str = "steadylink"
    subscribers: tuple[str, ...] = ()


@dataclass(frozen=True)
class EdgeSettings:
    redirects: bool = True
    map_max_links: int = 1_000_000
    tls_cert: tuple[Path, ...] = ()
    tls_port: int = 8443
    hsts_seconds: int = 31_536_000


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path(DEFAULT_DATA_DIR)
    database: str | None = None
    base_url: str = "http://127.0.0.1:8080"
    host: str = "127.0.0.1"
    port: int = 8080
    ops_port: int = 8081
    log_level: str = "info"
    access_log: bool = True
    release_id: str = "dev"
    ops_host: str = "127.0.0.1"
    metrics_networks: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    links: LinkSettings = field(default_factory=LinkSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    release: ReleaseSettings = field(default_factory=ReleaseSettings)
    watch: WatchSettings = field(default_factory=WatchSettings)
    slo: SloSettings = field(default_factory=SloSettings)
    notify: NotifySettings = field(default_factory=NotifySettings)
    incidents: IncidentSettings = field(default_factory=IncidentSettings)
    status: StatusSettings = field(default_factory=StatusSettings)
    edge: EdgeSettings = field(default_factory=EdgeSettings)

    @property
    def database_url(self) -> str:
        if self.database:
            return self.database
        return f"sqlite:///{(self.data_dir / 'links.db').resolve()}"

    @property
    def files_dir(self) -> Path:
        return self.data_dir / "files"

    @property
    def visits_dir(self) -> Path:
        """The visit spool: the workers' visit files, until the compactor folds them."""
        return self.data_dir / "visits"

    def with_overrides(self, **overrides: Any) -> Settings:
        clean = {k: v for k, v in overrides.items() if v is not None}
        if "data_dir" in clean:
            clean["data_dir"] = Path(clean["data_dir"])
        return _validated(dataclasses.replace(self, **clean))


def load_settings(
    config_file: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build the settings from defaults, the TOML file, the environment and overrides."""
    env = os.environ if environ is None else environ
    path = config_file or _find_config_file(env)
    raw: dict[str, Any] = {}
    if path is not None:
        raw = _read_toml(path)
    values = _build(Settings, raw, env, prefix="STEADYLINK_", where=str(path or "defaults"))
    settings = Settings(**values)
    return settings.with_overrides(**overrides)


def _find_config_file(env: Mapping[str, str]) -> Path | None:
    named = env.get("STEADYLINK_CONFIG")
    if named:
        path = Path(named)
        if not path.is_file():
            raise ConfigError(f"STEADYLINK_CONFIG names {named!r}, which is not a file.")
        return path
    local = Path(CONFIG_FILE_NAME)
    return local if local.is_file() else None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"Config file {path} does not exist.") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}. Fix the file or move it away.") from exc


def _build(
    cls: type[Any], raw: dict[str, Any], env: Mapping[str, str], *, prefix: str, where: str
) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in known:
            section = prefix.removeprefix("STEADYLINK_").rstrip("_").lower()
            name = f"{section}.{key}" if section else key
            raise ConfigError(f"Unknown setting {name!r} in {where}; see steadylink.example.toml.")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        env_name = f"{prefix}{f.name.upper()}"
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            section = raw.get(f.name, {})
            if not isinstance(section, dict):
                raise ConfigError(f"Setting {f.name!r} in {where} must be a table ([{f.name}]).")
            values[f.name] = hint(**_build(hint, section, env, prefix=env_name + "_", where=where))
            continue
        if env_name in env:
            values[f.name] = _coerce(env[env_name], hint, env_name, from_env=True)
        elif f.name in raw:
            values[f.name] = _coerce(raw[f.name], hint, f.name, from_env=False)
    return values


def _coerce(value: Any, hint: Any, name: str, *, from_env: bool) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        inner = next(a for a in args if a is not type(None))
        if value in ("", None):
            return None
        return _coerce(value, inner, name, from_env=from_env)
    try:
        if hint is bool:
            if isinstance(value, bool):
                return value
            if from_env and str(value).lower() in ("1", "true", "yes", "on"):
                return True
            if from_env and str(value).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if hint in (int, float):
            if isinstance(value, bool) or (not from_env and not isinstance(value, (int, float))):
                raise ValueError(value)
            return hint(value)
        if hint is str:
            if not isinstance(value, str):
                raise ValueError(value)
            return value
        if hint is Path:
            if not isinstance(value, str):
                raise ValueError(value)
            return Path(value)
        if origin is tuple:
            items = [v.strip() for v in value.split(",") if v.strip()] if from_env else value
            if isinstance(items, str):  # one value where a list may be given (edge.tls_cert)
                items = [items]
            if not isinstance(items, list):
                raise ValueError(value)
            return tuple(_coerce(v, args[0], name, from_env=from_env) for v in items)
    except (ValueError, TypeError) as exc:
        expected = getattr(hint, "__name__", str(hint))
        raise ConfigError(f"Setting {name!r} must be {expected}, got {value!r}.") from exc
    raise ConfigError(f"Setting {name!r} has an unsupported type {hint!r}.")


def _validated(settings: Settings) -> Settings:
    links = settings.links
    checks = [
        (
            links.redirect_status in REDIRECT_STATUSES,
            "links.redirect_status must be 301, 302, 307 or 308",
        ),
        (5 <= links.code_length <= 32, "links.code_length must be between 5 and 32"),
        (links.max_url_length >= 64, "links.max_url_length must be at least 64"),
        (links.upload_max_bytes > 0, "links.upload_max_bytes must be positive"),
        (links.click_flush_seconds > 0, "links.click_flush_seconds must be positive"),
        (links.compact_seconds > 0, "links.compact_seconds must be positive"),
        (settings.limits.create_per_minute >= 0, "limits.create_per_minute must be 0 or more"),
        (
            settings.limits.password_attempts_per_minute >= 0,
            "limits.password_attempts_per_minute must be 0 or more",
        ),
        (settings.limits.password_checks >= 1, "limits.password_checks must be 1 or more"),
        (settings.store.timeout_seconds > 0, "store.timeout_seconds must be positive"),
        (settings.store.disk_reserve_bytes >= 0, "store.disk_reserve_bytes must be 0 or more"),
        (0 < settings.port < 65536, "port must be between 1 and 65535"),
        (0 < settings.ops_port < 65536, "ops_port must be between 1 and 65535"),
        (
            settings.base_url.startswith(("http://", "https://")),
            "base_url must start with http:// or https://",
        ),
        (
            all(0 < s <= 100 for s in settings.release.canary_steps),
            "release.canary_steps must be percentages 1..100",
        ),
        (
            list(settings.release.canary_steps) == sorted(set(settings.release.canary_steps))
            and bool(settings.release.canary_steps),
            "release.canary_steps must be increasing, e.g. [5, 25, 50, 100]",
        ),
        (settings.release.keep_releases >= 1, "release.keep_releases must be 1 or more"),
        (settings.release.workers >= 1, "release.workers must be 1 or more"),
        (settings.release.stage_sample >= 0, "release.stage_sample must be 0 (from stage_power) or more"),
        (0 < settings.release.stage_power < 1, "release.stage_power must be between 0 and 1"),
        (0 < settings.release.canary_error_floor < 1, "release.canary_error_floor must be between 0 and 1"),
        (settings.release.stage_concurrency >= 1, "release.stage_concurrency must be 1 or more"),
        (settings.release.memory_growth_factor >= 1, "release.memory_growth_factor must be 1 or more"),
        (settings.release.memory_growth_floor_mb > 0, "release.memory_growth_floor_mb must be above 0"),
        (settings.release.memory_ceiling_mb > 0, "release.memory_ceiling_mb must be above 0"),
        (settings.watch.journal_retention_days >= 1, "watch.journal_retention_days must be 1 or more"),
        *_watch_checks(settings),
        (
            settings.incidents.traffic_retention_days >= 1,
            "incidents.traffic_retention_days must be 1 or more",
        ),
        (settings.incidents.worker_log_max_mb >= 1, "incidents.worker_log_max_mb must be 1 or more"),
        (settings.incidents.worker_log_keep >= 1, "incidents.worker_log_keep must be 1 or more"),
        (
            settings.incidents.worker_log_max_age_days >= 1,
            "incidents.worker_log_max_age_days must be 1 or more",
        ),
        (settings.edge.map_max_links >= 1, "edge.map_max_links must be 1 or more"),
        (0 < settings.edge.tls_port < 65536, "edge.tls_port must be between 1 and 65535"),
        (settings.edge.hsts_seconds >= 0, "edge.hsts_seconds must be 0 or more"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message + ".")
    for network in settings.metrics_networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise ConfigError(
                f"metrics_networks: {network!r} is not a network; write e.g. 10.0.0.0/8 or ::1/128."
            ) from None
    return settings


def _watch_checks(settings: Settings) -> list[tuple[bool, str]]:
    """The [watch], [slo] and [notify] sections; a window must hold at least one probe."""
    watch, slo, notify = settings.watch, settings.slo, settings.notify
    tick = watch.probe_interval_seconds
    windows = {
        "watch.front_door_failed_seconds": watch.front_door_failed_seconds,
        "watch.error_ratio_seconds": watch.error_ratio_seconds,
        "watch.latency_window_seconds": watch.latency_window_seconds,
        "watch.probes_stale_seconds": watch.probes_stale_seconds,
        "watch.create_probe_seconds": watch.create_probe_seconds,
        "watch.ui_probe_seconds": watch.ui_probe_seconds,
    }
    return [
        (
            slo.availability_percent is None or 0 < slo.availability_percent < 100,
            "slo.availability_percent must be between 0 and 100, e.g. 99.99",
        ),
        (
            0 < slo.budget_minutes_per_year < YEAR_MINUTES,
            f"slo.budget_minutes_per_year must be above 0 and below a year ({YEAR_MINUTES}), e.g. 20",
        ),
        (
            slo.availability_percent is None or slo.budget_minutes_per_year == DEFAULT_BUDGET_MINUTES,
            "set slo.availability_percent or slo.budget_minutes_per_year, not both",
        ),
        (0 < slo.latency_percent < 100, "slo.latency_percent must be between 0 and 100, e.g. 99"),
        (slo.redirect_latency_ms > 0, "slo.redirect_latency_ms must be positive"),
        (slo.period_days >= 1, "slo.period_days must be 1 or more"),
        (0.1 <= tick <= 60, "watch.probe_interval_seconds must be between 0.1 and 60"),
        (
            0 < watch.probe_timeout_seconds <= tick,
            "watch.probe_timeout_seconds must be positive and at most watch.probe_interval_seconds",
        ),
        *(
            (value >= tick, f"{name} ({value}) is shorter than watch.probe_interval_seconds ({tick})")
            for name, value in windows.items()
        ),
        (watch.create_probe_failed_runs >= 1, "watch.create_probe_failed_runs must be 1 or more"),
        (watch.ui_probe_failed_runs >= 1, "watch.ui_probe_failed_runs must be 1 or more"),
        (0 < watch.error_ratio_max < 1, "watch.error_ratio_max must be between 0 and 1, e.g. 0.05"),
        (watch.error_ratio_min_requests >= 1, "watch.error_ratio_min_requests must be 1 or more"),
        (0 < watch.disk_used_max_percent < 100, "watch.disk_used_max_percent must be between 0 and 100"),
        (watch.database_timeout_seconds > 0, "watch.database_timeout_seconds must be positive"),
        (
            watch.database_check_seconds >= tick,
            "watch.database_check_seconds must be at least the probe interval",
        ),
        (watch.backup_max_age_hours > 0, "watch.backup_max_age_hours must be positive"),
        (watch.loop_lag_max_seconds > 0, "watch.loop_lag_max_seconds must be positive"),
        (watch.renotify_seconds >= 10, "watch.renotify_seconds must be 10 or more"),
        (watch.heartbeat_seconds >= 5, "watch.heartbeat_seconds must be 5 or more"),
        (notify.escalate_after_seconds > 0, "notify.escalate_after_seconds must be positive"),
        (notify.timeout_seconds > 0, "notify.timeout_seconds must be positive"),
        (notify.max_attempts >= 1, "notify.max_attempts must be 1 or more"),
    ]
