"""HTML pages: templates, security headers, negotiated errors, file downloads,
and the home form's fields turned into a link.

Every HTML answer goes through ``render_page`` so it carries the strict CSP;
errors go through ``error_response`` so browsers get a friendly page and API
clients a JSON body. Static files are read once at import and served with a
content hash in their URL, so they can be cached for a year.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.types import Message, Receive

from steadylink.errors import Conflict, InvalidInput
from steadylink.links.codes import check_custom_code
from steadylink.links.model import Link, NewLink, StoredFile
from steadylink.links.service import create_link_async
from steadylink.web.context import AppContext
from steadylink.web.errors import upload_too_large

HTML_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
HTML_HEADERS = {
    "Content-Security-Policy": HTML_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cache-Control": "no-store",
}
DOWNLOAD_HEADERS = {
    "Content-Security-Policy": "sandbox; default-src 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "private, no-store",
}
STATIC_CACHE = "public, max-age=31536000, immutable"
CHART_HEIGHT = 120
BAR_WIDTH = 22
BAR_STEP = 28
_STATIC_DIR = Path(__file__).parent / "static"


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    media_type: str
    version: str


def static_file(body: bytes, media_type: str) -> StaticFile:
    """A file served with its content hash as the version in its URL."""
    return StaticFile(body, media_type, hashlib.sha256(body).hexdigest()[:12])


def load_static(directory: Path) -> dict[str, StaticFile]:
    """Every file of ``directory`` (the app's and the guard's static folders), read once."""
    found: dict[str, StaticFile] = {}
    for path in sorted(directory.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            if media_type.startswith("text/") or media_type.endswith(("javascript", "svg+xml")):
                media_type += "; charset=utf-8"
            found[path.name] = static_file(path.read_bytes(), media_type)
    return found


STATIC_FILES = load_static(_STATIC_DIR)


def static_url(name: str) -> str:
    """The cache-busting URL of a static file (fails loudly for a missing one)."""
    return f"/static/{name}?v={STATIC_FILES[name].version}"


_templates = Environment(
    loader=PackageLoader("steadylink.web", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_templates.globals.update(static_url=static_url, bar_width=BAR_WIDTH, bar_step=BAR_STEP)


def render_page(name: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    """Render ``templates/<name>`` with the HTML security headers."""
    html = _templates.get_template(name).render(**context)
    return HTMLResponse(html, status_code=status, headers=HTML_HEADERS)


def answer_head(request: Request, response: Response) -> Response:
    """For ``HEAD``, the ``GET`` answer's status and headers (its Content-Length too), no body."""
    if request.method == "HEAD":
        response.body = b""
    return response


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


ERROR_TITLES = {
    403: "Wrong password",
    404: "This link does not exist",
    410: "This link is no longer available",
    429: "Slow down a little",
}


def error_response(
    request: Request,
    *,
    status: int,
    kind: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> Response:
    """A friendly HTML page for browsers, ``{"error", "message"}`` JSON for the rest."""
    if wants_html(request):
        page = render_error_html(request, status, {"error": kind, "message": message})
        page.headers.update(headers or {})
        return page
    return JSONResponse({"error": kind, "message": message}, status_code=status, headers=headers)


def render_error_html(request: Request, status: int, body: dict[str, object]) -> Response:
    """The ``render_html`` hook of ``web.errors.install_error_handlers``: friendly pages."""
    return render_page(
        "error.html",
        status=status,
        title=ERROR_TITLES.get(status, "Something is not right"),
        message=str(body.get("message", "")),
        status_code=status,
    )


def content_disposition(name: str) -> str:
    """``attachment`` with an ASCII fallback and the RFC 5987 UTF-8 name."""
    ascii_name = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\;' else "_" for ch in name)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


def file_response(path: Path, stored: StoredFile) -> FileResponse:
    """Serve an uploaded file as a download that a browser never renders or runs."""
    headers = dict(DOWNLOAD_HEADERS)
    headers["Content-Disposition"] = content_disposition(stored.name)
    return FileResponse(path, media_type="application/octet-stream", headers=headers)


@dataclass(frozen=True, slots=True)
class DayBar:
    day: str
    count: int
    x: int
    y: int
    height: int


def day_bars(per_day: dict[str, int], *, last: date, days: int = 30) -> list[DayBar]:
    """Bars of an SVG chart for the ``days`` days ending at ``last`` (empty days too)."""
    first = last - timedelta(days=days - 1)
    counts = [per_day.get((first + timedelta(days=i)).isoformat(), 0) for i in range(days)]
    peak = max(counts) or 1
    bars = []
    for i, count in enumerate(counts):
        height = round(count / peak * CHART_HEIGHT) if count else 0
        if count and height < 2:
            height = 2
        day = (first + timedelta(days=i)).isoformat()
        bars.append(DayBar(day, count, i * BAR_STEP + 3, CHART_HEIGHT - height, height))
    return bars


# the home form ----------------------------------------------------------------

FORM_OVERHEAD = 64 * 1024
EXPIRY_CHOICES = {
    "": None,
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
_CHUNK = 64 * 1024


async def read_form(request: Request, max_file_bytes: int) -> FormData:
    """Parse a posted form, refusing a body larger than a file plus the fields."""
    limit = max_file_bytes + FORM_OVERHEAD
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise upload_too_large(max_file_bytes)
    capped = Request(request.scope, receive=_capped(request.receive, limit, max_file_bytes))
    try:
        return await capped.form(max_files=1, max_fields=16, max_part_size=FORM_OVERHEAD)
    except HTTPException as exc:
        raise InvalidInput(f"The form could not be read: {exc.detail}", field="form") from None


def _capped(receive: Receive, limit: int, max_file_bytes: int) -> Receive:
    seen = 0

    async def capped_receive() -> Message:
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        if seen > limit:
            raise upload_too_large(max_file_bytes)
        return message

    return capped_receive


async def create_from_form(ctx: AppContext, form: FormData) -> Link:
    """Turn the home form into a link; every problem names its field."""
    upload = form.get("file")
    has_file = isinstance(upload, UploadFile) and bool(upload.filename)
    kind = _text(form, "kind") or ("file" if has_file else "url")
    code = _text(form, "code").strip() or None
    if code is not None:
        check_custom_code(code)
        # In a thread: the event loop serves redirects and must not wait for the store.
        if await run_in_threadpool(ctx.store.get_link, code) is not None:
            raise Conflict(f"The code {code!r} is taken; choose another.", field="code")
    new = NewLink(
        code=code,
        expires_at=_expiry(ctx, _text(form, "expires_in")),
        max_visits=_max_visits(_text(form, "max_visits")),
        password=_text(form, "password") or None,
    )
    if kind != "file":
        return await _create(ctx, replace(new, url=_text(form, "url")))
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise InvalidInput("Choose a file to upload.", field="file")
    async with ctx.files.uploading():  # no removal of the uploaded file until its link is stored
        stored = await ctx.files.save_stream(
            _chunks(upload), name=upload.filename, content_type=upload.content_type
        )
        return await _create(ctx, replace(new, file=stored))


async def _create(ctx: AppContext, new: NewLink) -> Link:
    try:
        return await create_link_async(
            insert=ctx.writer.insert, settings=ctx.settings, clock=ctx.clock, rng=ctx.rng, new=new
        )
    except Conflict as exc:
        raise Conflict(exc.message, field=exc.field or "code") from None


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _expiry(ctx: AppContext, choice: str) -> datetime | None:
    if choice not in EXPIRY_CHOICES:
        raise InvalidInput("Choose an expiry from the list.", field="expires_in")
    delta = EXPIRY_CHOICES[choice]
    return None if delta is None else ctx.clock.now() + delta


def _max_visits(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise InvalidInput("Max visits must be a whole number of 1 or more.", field="max_visits")
    return int(text)


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(_CHUNK):
        yield chunk
