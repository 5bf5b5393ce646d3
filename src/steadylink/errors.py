"""The one tree of errors steadylink raises on purpose.

Every error carries a message that says what is wrong and what to do, an
``exit_code`` for the CLI and an HTTP ``status`` for the APIs. They are caught
only at the edges (the CLI and the HTTP apps), never in the middle.

    SteadylinkError
    ├── ConfigError           bad steadylink.toml / environment      exit 2, —
    ├── InvalidInput          a field is wrong (names the field)     exit 2, 422
    │   └── TooLarge          a body or upload over its limit        exit 2, 413
    ├── NotFound              no such link / key / release           exit 1, 404
    │   └── Gone              link expired or used up                exit 1, 410
    ├── Conflict              code taken, lock held                  exit 2, 409
    ├── Unauthorized          missing or unknown API key             exit 2, 401
    ├── Forbidden             the key's role does not allow it       exit 2, 403
    ├── RateLimited           too many requests from one client      exit 2, 429
    ├── StoreError            database unreachable, corrupt backup   exit 1, 503
    │   └── DiskFull          the data dir's disk is full            exit 1, 503
    ├── EdgeError             HAProxy unreachable or refused a call  exit 1, 503
    └── ReleaseError          a release step failed                  exit 1, 500
        └── BuildFailed       (release/build.py: carries the step runs)
"""

from __future__ import annotations


class SteadylinkError(Exception):
    """Base of every error steadylink raises on purpose."""

    exit_code = 1
    status = 500
    kind = "error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_json(self) -> dict[str, object]:
        """The body an HTTP client gets (``public_message`` where the message is not for clients)."""
        body: dict[str, object] = {"error": self.kind, "message": self.public_message or self.message}
        if self.field is not None:
            body["field"] = self.field
        return body

    # Set where the message carries what clients must never see (a driver's
    # text: SQL, bound parameters of other users' rows, host:port). The
    # message itself stays for the CLI and the logs.
    public_message: str | None = None


class ConfigError(SteadylinkError):
    exit_code = 2
    kind = "config"


class InvalidInput(SteadylinkError):
    exit_code = 2
    status = 422
    kind = "invalid"


class TooLarge(InvalidInput):
    status = 413
    kind = "too_large"


class NotFound(SteadylinkError):
    status = 404
    kind = "not_found"


class Gone(NotFound):
    status = 410
    kind = "gone"


class Conflict(SteadylinkError):
    exit_code = 2
    status = 409
    kind = "conflict"


class Unauthorized(SteadylinkError):
    exit_code = 2
    status = 401
    kind = "unauthorized"


class Forbidden(SteadylinkError):
    exit_code = 2
    status = 403
    kind = "forbidden"


class RateLimited(SteadylinkError):
    exit_code = 2
    status = 429
    kind = "rate_limited"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StoreError(SteadylinkError):
    status = 503
    kind = "store"
    public_message = (
        "The links database is not answering right now. Try again in a moment; "
        "the request id identifies this in our logs."
    )


class DiskFull(StoreError):
    kind = "disk_full"
    public_message = "The server's disk is full, so nothing was stored; try again later."


class EdgeError(SteadylinkError):
    """HAProxy is unreachable or refused a runtime command."""

    status = 503
    kind = "edge"
    public_message = "The front door is not answering right now; try again in a moment."


class ReleaseError(SteadylinkError):
    kind = "release"
