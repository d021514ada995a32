"""The one exception tree of bulkresign.

Every error the package raises on purpose derives from :class:`BulkResignError`. The tree separates
what went wrong *before* anything was sent (input, configuration, ledger) from the outcome of a call
to GenAuth, and splits those outcomes by the only question that matters for an irreversible
operation: *could the server have applied it?*

```
BulkResignError
├── InputError               a file, line or value we were given is unusable (exit 2)
├── ConfigError              usage, credentials, host or TLS settings are wrong (exit 2)
├── LedgerError              the state file is unreadable, foreign, or unsafe
│   └── LedgerMismatch       the state file belongs to another input, host, pool or ID type
└── ApiError                 the outcome of one call to GenAuth
    ├── NotApplied           the server certainly did not apply it: safe to send again
    │   ├── ConnectFailed    no connection was made, so no request left
    │   └── Throttled        HTTP 429 / statusCode 429; carries retry_after when the server sent it
    ├── Rejected             a business error (statusCode 4xx): nothing was applied
    ├── InDoubt              the request may have been applied: read back before sending again
    └── Fatal                the run cannot go on: stop sending, record what is in flight
        ├── AuthFailed       credentials refused, or a 401 that survives one re-authentication
        ├── PermissionDenied statusCode 403: the key may not call this endpoint
        └── TLSFailed        certificate verification failed
```

The split follows Jepsen's ``:ok`` / ``:fail`` / ``:info`` histories
(https://github.com/jepsen-io/jepsen/blob/main/doc/tutorial/06-refining.md): an ``InDoubt`` call is
concurrent with the rest of the run until a read-back resolves it.
"""

from __future__ import annotations

__all__ = [
    "ApiError",
    "AuthFailed",
    "BulkResignError",
    "ConfigError",
    "ConnectFailed",
    "Fatal",
    "InDoubt",
    "InputError",
    "LedgerError",
    "LedgerMismatch",
    "NotApplied",
    "PermissionDenied",
    "Rejected",
    "TLSFailed",
    "Throttled",
]


class BulkResignError(Exception):
    """Root of every error bulkresign raises on purpose."""


class InputError(BulkResignError):
    """An input file, line or value cannot be used.

    ``str()`` is the one-line message shown to the operator: it names the file and, when known,
    the line number.
    """

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        self.reason = message
        """The message without the file and line."""
        self.path = path
        self.line = line
        where = path if path is not None else ""
        if line is not None:
            where = f"{where}:{line}" if where else f"line {line}"
        super().__init__(f"{where}: {message}" if where else message)


class ConfigError(BulkResignError):
    """Usage, credentials, host or TLS configuration is wrong; nothing has been sent."""


class LedgerError(BulkResignError):
    """The state file cannot be opened, is corrupt, or has unsafe permissions."""


class LedgerMismatch(LedgerError):
    """The state file was made for another input, ID type, endpoint, host or userpool."""


class ApiError(BulkResignError):
    """The outcome of one call to the GenAuth API that was not a success.

    Attributes:
        status_code: the envelope's ``statusCode`` (or the HTTP status when there was no envelope).
        api_code: the envelope's ``apiCode``, when present.
        request_id: the envelope's ``requestId``, when present.
        http_status: the HTTP status of the response, when one arrived.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        api_code: int | None = None,
        request_id: str | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.api_code = api_code
        self.request_id = request_id
        self.http_status = http_status


class NotApplied(ApiError):
    """The server certainly did not apply the call; sending it again is safe."""


class ConnectFailed(NotApplied):
    """No connection could be made, so no request left this machine."""


class Throttled(NotApplied):
    """The userpool's rate limit refused the call (HTTP 429 or body statusCode 429).

    ``retry_after`` is the pause in seconds the server asked for, or ``None``;
    GenAuth documents none.
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        status_code: int | None = 429,
        request_id: str | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(
            message, status_code=status_code, request_id=request_id, http_status=http_status
        )
        self.retry_after = retry_after


class Rejected(ApiError):
    """The server refused the call with a business error (statusCode 4xx); nothing was applied."""


class InDoubt(ApiError):
    """The call may have been applied: a read timeout, a reset after sending, a 5xx, or garbage.

    Never send it again blind; read the users back first.
    """


class Fatal(ApiError):
    """The run cannot go on (credentials, permission, TLS): stop, record what is in flight."""


class AuthFailed(Fatal):
    """The credentials were refused, or a 401 persisted after one re-authentication."""


class PermissionDenied(Fatal):
    """The access key may not call this endpoint (statusCode 403)."""


class TLSFailed(Fatal):
    """The server's certificate failed verification."""
