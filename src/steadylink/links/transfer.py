"""Import and export of links: CSV, JSON records, and the original app's ``urls.json``.

An import is planned first and written second. ``plan_import`` reads the whole
file and checks every row against the same rules the link service applies
(code rules, target rules, visit limits), without writing anything;
``apply_import`` writes only a plan without problems, and if an insert still
fails half-way (a code taken meanwhile) it deletes what it inserted, so an
import lands whole or not at all.

Imports keep what the source says about a link: its creation time, visit
count, disabled flag, and an expiry even if it has passed (the link then stays
gone, as it was). Formats that cannot carry a password hash or a file never
export such links silently: they are left out and reported, because a
protected link must not come back unprotected.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import mimetypes
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TextIO, overload

from steadylink.clock import Clock, utc
from steadylink.errors import Conflict, InvalidInput, SteadylinkError
from steadylink.links.codes import check_custom_code, fold
from steadylink.links.files import FileStore, safe_file_name
from steadylink.links.model import PROBE_OWNER, Link, LinkKind, StoredFile
from steadylink.links.passwords import hash_password
from steadylink.links.service import MAX_VISITS_LIMIT, own_hosts
from steadylink.links.store import Store
from steadylink.links.targets import normalise_target
from steadylink.settings import Settings

CSV_COLUMNS = ("code", "url", "created_at", "expires_at", "max_visits", "visits", "is_disabled")


class Format(StrEnum):
    AUTO = "auto"
    CSV = "csv"
    JSON = "json"
    URLS_JSON = "urls-json"


@dataclass(frozen=True, slots=True)
class Problem:
    """A row that cannot be imported or exported, and where it is."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class ImportPlan:
    format: Format
    links: list[Link] = field(default_factory=list)
    sources: dict[str, FileSource] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    conflicts: list[Problem] = field(default_factory=list)
    skipped: list[Problem] = field(default_factory=list)
    where: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ImportResult:
    imported: int
    skipped: list[Problem]


@dataclass(frozen=True, slots=True)
class ExportResult:
    exported: int
    skipped: list[Problem]


# records -------------------------------------------------------------------


def link_record(link: Link, *, base_url: str) -> dict[str, Any]:
    """A link as the API (``LinkOut``) and ``--json`` show it."""
    stored = link.file
    return {
        "code": link.code,
        "short_url": f"{base_url.rstrip('/')}/{link.code}",
        "url": link.url,
        "kind": link.kind.value,
        "file": {"name": stored.name, "size": stored.size, "content_type": stored.content_type}
        if stored
        else None,
        "created_at": iso(link.created_at),
        "updated_at": iso(link.updated_at),
        "expires_at": iso(link.expires_at),
        "max_visits": link.max_visits,
        "visits": link.visits,
        "is_disabled": link.is_disabled,
        "has_password": link.has_password,
        "owner": link.owner,
    }


def export_record(link: Link, *, base_url: str) -> dict[str, Any]:
    """A link record with what a faithful re-import needs besides: file digest, password hash."""
    record = link_record(link, base_url=base_url)
    if link.file is not None:
        record["file"]["sha256"] = link.file.sha256
    record["password_hash"] = link.password_hash
    return record


@overload
def iso(value: datetime) -> str: ...
@overload
def iso(value: None) -> None: ...
def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``, as the API writes it."""
    if value is None:
        return None
    return utc(value).isoformat().replace("+00:00", "Z")


# export --------------------------------------------------------------------


def export_links(*, store: Store, settings: Settings, fmt: Format, out: TextIO) -> ExportResult:
    """Write every link, oldest first, to ``out`` in ``fmt``; streamed, not held in memory."""
    writer = {
        Format.CSV: _export_csv,
        Format.JSON: _export_json,
        Format.URLS_JSON: _export_urls_json,
    }
    if fmt not in writer:
        raise InvalidInput(f"Cannot export as {fmt.value!r}; use csv, json or urls-json.", field="format")
    return writer[fmt](store.iter_links(), settings, out)


def _export_csv(links: Iterator[Link], settings: Settings, out: TextIO) -> ExportResult:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    count, skipped = 0, []
    for link in links:
        if link.url is None or link.has_password:
            why = "a file link" if link.url is None else "password-protected"
            skipped.append(Problem(link.code, f"{why}; CSV cannot carry it, use --format json"))
            continue
        record = link_record(link, base_url=settings.base_url)
        writer.writerow([_csv_cell(record[column]) for column in CSV_COLUMNS])
        count += 1
    return ExportResult(count, skipped)


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _export_json(links: Iterator[Link], settings: Settings, out: TextIO) -> ExportResult:
    count = 0
    out.write("[")
    for link in links:
        out.write(",\n  " if count else "\n  ")
        out.write(json.dumps(export_record(link, base_url=settings.base_url), ensure_ascii=False))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return ExportResult(count, [])


def _export_urls_json(links: Iterator[Link], settings: Settings, out: TextIO) -> ExportResult:
    count, skipped = 0, []
    out.write("{")
    for link in links:
        if link.has_password:
            skipped.append(Problem(link.code, "password-protected; urls.json cannot carry it"))
            continue
        entry = {"url": link.url} if link.file is None else {"file": link.file.name}
        out.write(",\n  " if count else "\n  ")
        out.write(f"{json.dumps(link.code)}: {json.dumps(entry, ensure_ascii=False)}")
        count += 1
    out.write("\n}\n" if count else "}\n")
    return ExportResult(count, skipped)


# import --------------------------------------------------------------------


def plan_import(
    *,
    store: Store,
    settings: Settings,
    clock: Clock,
    source: Path,
    fmt: Format = Format.AUTO,
    skip_existing: bool = False,
) -> ImportPlan:
    """Read ``source`` and check every row; write nothing."""
    text = _read_text(source)
    fmt = detect_format(source, text) if fmt is Format.AUTO else fmt
    plan = ImportPlan(fmt)
    now = utc(clock.now())
    seen: dict[str, str] = {}
    for raw in _PARSERS[fmt](text, source):
        try:
            link, file_source = _check_row(raw, settings=settings, now=now, folder=source.parent)
        except _SkipRow as skip:
            plan.skipped.append(Problem(raw.where, str(skip)))
            continue
        except SteadylinkError as exc:
            plan.problems.append(Problem(raw.where, exc.message))
            continue
        if fold(link.code) in seen:
            same = f"the code {link.code!r} is already used at {seen[fold(link.code)]} of this file"
            plan.problems.append(Problem(raw.where, same))
            continue
        seen[fold(link.code)] = raw.where
        if store.get_link(link.code) is not None:
            existing = Problem(raw.where, f"the code {link.code!r} already exists")
            (plan.skipped if skip_existing else plan.conflicts).append(existing)
            continue
        plan.links.append(link)
        plan.where[link.code] = raw.where
        if file_source is not None and link.file is not None:
            plan.sources[link.file.sha256] = file_source
    return plan


def apply_import(*, store: Store, files: FileStore, plan: ImportPlan, skip_existing: bool) -> ImportResult:
    """Write a checked plan, all or nothing."""
    if plan.problems:
        raise InvalidInput(
            f"Nothing was imported: {len(plan.problems)} row(s) have problems, "
            f"the first: {plan.problems[0]}. Fix them and import again.",
            field="file",
        )
    if plan.conflicts:
        raise Conflict(
            f"Nothing was imported: {len(plan.conflicts)} code(s) already exist, "
            f"the first: {plan.conflicts[0]}. Use --skip-existing to import the rest.",
            field="code",
        )
    for source in plan.sources.values():
        # content-addressed: a blob written for an import that then fails is harmless
        files.save_bytes(source.path.read_bytes(), name=source.name, content_type=source.content_type)
    skipped = list(plan.skipped)
    inserted: list[str] = []
    try:
        for link in plan.links:
            try:
                store.insert_link(link)
            except Conflict:
                where = plan.where.get(link.code, link.code)
                taken = Problem(where, f"the code {link.code!r} is taken (letter case aside)")
                if not skip_existing:
                    raise Conflict(
                        f"Nothing was imported: {taken}. Use --skip-existing to import the rest.",
                        field="code",
                    ) from None
                skipped.append(taken)
                continue
            inserted.append(link.code)
    except BaseException:
        for code in reversed(inserted):
            store.delete_link(code)
        raise
    return ImportResult(len(inserted), skipped)


# reading rows ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FileSource:
    """A file an urls.json entry names, found next to the json, to store on import."""

    path: Path
    name: str
    content_type: str | None


@dataclass(frozen=True, slots=True)
class _Row:
    where: str
    code: Any = None
    url: Any = None
    file_name: Any = None
    file: Any = None
    created_at: Any = None
    updated_at: Any = None
    expires_at: Any = None
    max_visits: Any = None
    visits: Any = None
    is_disabled: Any = None
    has_password: Any = None
    password_hash: Any = None
    password: Any = None
    owner: Any = None
    error: str | None = None


class _SkipRow(Exception):
    """A row left out on purpose (reported, not fatal): its file is missing."""


_ROW_FIELDS = frozenset(_Row.__dataclass_fields__) - {"where", "file_name", "error"}


def _parse_csv(text: str, source: Path) -> Iterator[_Row]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = set(reader.fieldnames or ())
    if not {"code", "url"} <= header:
        raise InvalidInput(f"{source}: the CSV header must name at least code and url.", field="file")
    unknown = header - set(CSV_COLUMNS)
    if unknown:
        raise InvalidInput(f"{source}: unknown CSV column(s) {', '.join(sorted(unknown))}.", field="file")
    for record in reader:
        values = {k: (v if v != "" else None) for k, v in record.items() if k in CSV_COLUMNS}
        if None in record:
            yield _Row(f"line {reader.line_num}", error="the row has more fields than the header")
            continue
        yield _Row(f"line {reader.line_num}", **values)


def _parse_json(text: str, source: Path) -> Iterator[_Row]:
    data = _load_json(text, source)
    if not isinstance(data, list):
        raise InvalidInput(f"{source}: a JSON import is a list of link records.", field="file")
    for i, item in enumerate(data, start=1):
        where = f"item {i}"
        if not isinstance(item, dict):
            yield _Row(where, error="a link record must be a JSON object")
            continue
        values = {k: v for k, v in item.items() if k in _ROW_FIELDS}
        yield _Row(where, **values)


def _parse_urls_json(text: str, source: Path) -> Iterator[_Row]:
    data = _load_json(text, source)
    if not isinstance(data, dict):
        raise InvalidInput(f'{source}: urls.json maps codes to {{"url": ...}}.', field="file")
    for code, entry in data.items():
        where = f"key {code!r}"
        if not isinstance(entry, dict) or len(entry.keys() & {"url", "file"}) != 1:
            yield _Row(where, code, error='each entry must be {"url": "..."} or {"file": "..."}')
        elif "file" in entry:
            yield _Row(where, code, file_name=entry["file"])
        else:
            yield _Row(where, code, url=entry["url"])


_PARSERS = {Format.CSV: _parse_csv, Format.JSON: _parse_json, Format.URLS_JSON: _parse_urls_json}


def _load_json(text: str, source: Path) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"{source} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}).",
            field="file",
        ) from None


# checking rows ---------------------------------------------------------------


def _check_row(
    raw: _Row, *, settings: Settings, now: datetime, folder: Path
) -> tuple[Link, FileSource | None]:
    """The link a row stands for, by the service's rules; InvalidInput names the field."""
    if raw.error:
        raise InvalidInput(raw.error)
    code = check_custom_code(raw.code if isinstance(raw.code, str) else "")
    url, stored, source = None, None, None
    if raw.file_name is not None:
        source = _find_original_file(raw.file_name, folder)
        stored = _describe(source, max_bytes=settings.links.upload_max_bytes)
    elif raw.file is not None:
        stored = _stored_file(raw.file, settings)
    else:
        url = normalise_target(
            raw.url,
            max_length=settings.links.max_url_length,
            own_hosts=own_hosts(settings),
            blocked_domains=settings.links.blocked_domains,
        )
    created_at = _time(raw.created_at, "created_at") or now
    link = Link(
        code=code,
        kind=LinkKind.URL if url is not None else LinkKind.FILE,
        url=url,
        file=stored,
        created_at=created_at,
        updated_at=_time(raw.updated_at, "updated_at") or created_at,
        expires_at=_time(raw.expires_at, "expires_at"),
        max_visits=_whole(raw.max_visits, "max_visits", minimum=1),
        visits=_whole(raw.visits, "visits", minimum=0) or 0,
        is_disabled=_flag(raw.is_disabled, "is_disabled"),
        password_hash=_password_hash(raw),
        owner=_owner(raw.owner),
    )
    return link, source


def _find_original_file(name: Any, folder: Path) -> FileSource:
    if not isinstance(name, str) or not name or safe_file_name(name) != name:
        raise InvalidInput("the file name must be a plain name without folders", field="file")
    for candidate in (folder / name, folder / "static" / "user_files" / name):
        if candidate.is_file():
            return FileSource(candidate, name, mimetypes.guess_type(name)[0])
    raise _SkipRow(f"file {name!r} not found next to the json or in static/user_files/; skipped")


def _describe(source: FileSource, *, max_bytes: int) -> StoredFile:
    data = source.path.read_bytes()
    if not data:
        raise InvalidInput(f"the file {source.name!r} is empty", field="file")
    if len(data) > max_bytes:
        raise InvalidInput(f"the file {source.name!r} is over the {max_bytes}-byte limit", field="file")
    return StoredFile(
        hashlib.sha256(data).hexdigest(),
        safe_file_name(source.name),
        len(data),
        source.content_type or "application/octet-stream",
    )


_FILE_SHAPE = "file must be an object with name, size, content_type and sha256"


def _stored_file(value: Any, settings: Settings) -> StoredFile:
    try:
        stored = StoredFile(
            str(value["sha256"]),
            safe_file_name(str(value["name"])),
            int(value["size"]),
            str(value.get("content_type") or "application/octet-stream"),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        raise InvalidInput(_FILE_SHAPE, field="file") from None
    files = FileStore(settings.files_dir, max_bytes=settings.links.upload_max_bytes)
    if not files.path_of(stored.sha256).is_file():
        raise _SkipRow(f"its file is not under {settings.files_dir}; copy the files folder first")
    return stored


def _time(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return utc(datetime.fromisoformat(str(value)))
    except ValueError:
        raise InvalidInput(f"{name} must be an ISO 8601 date and time, not {value!r}", field=name) from None


def _whole(value: Any, name: str, *, minimum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and minimum <= value <= MAX_VISITS_LIMIT:
        return value
    raise InvalidInput(f"{name} must be a whole number of {minimum} or more", field=name)


def _flag(value: Any, name: str) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise InvalidInput(f"{name} must be true or false, not {value!r}", field=name)


def _password_hash(raw: _Row) -> str | None:
    if raw.password_hash is not None:
        if not isinstance(raw.password_hash, str) or not raw.password_hash.startswith("$argon2"):
            raise InvalidInput("password_hash must be an argon2 hash", field="password_hash")
        return raw.password_hash
    if raw.password is not None:
        if not isinstance(raw.password, str) or not 0 < len(raw.password) <= 256:
            raise InvalidInput("password must be text of 1 to 256 characters", field="password")
        return hash_password(raw.password)
    if _flag(raw.has_password, "has_password"):
        raise InvalidInput(
            "has_password is true but the record has no password_hash; export with --format json to keep it",
            field="password_hash",
        )
    return None


def _owner(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise InvalidInput("owner must be text of at most 64 characters", field="owner")
    if value == PROBE_OWNER:
        raise InvalidInput(f"owner {PROBE_OWNER!r} is reserved for the guard's probes", field="owner")
    return value


def detect_format(source: Path, text: str) -> Format:
    if source.suffix.lower() == ".csv":
        return Format.CSV
    stripped = text.lstrip()
    if stripped.startswith("["):
        return Format.JSON
    if stripped.startswith("{"):
        return Format.URLS_JSON
    if stripped.lower().startswith("code"):
        return Format.CSV
    raise InvalidInput(
        f"Cannot tell the format of {source}; name it with --format csv|json|urls-json.",
        field="format",
    )


def _read_text(source: Path) -> str:
    try:
        return source.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InvalidInput(f"{source} does not exist.", field="file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"Cannot read {source}: {exc}.", field="file") from None


__all__ = [
    "CSV_COLUMNS",
    "ExportResult",
    "Format",
    "ImportPlan",
    "ImportResult",
    "Problem",
    "apply_import",
    "detect_format",
    "export_links",
    "export_record",
    "iso",
    "link_record",
    "plan_import",
]
