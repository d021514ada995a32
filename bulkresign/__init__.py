"""bulkresign: resign very large lists of GenAuth users exactly once, resumably.

The package reads as the data flow; see ARCHITECTURE.md.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from bulkresign.errors import (
    ApiError,
    AuthFailed,
    BulkResignError,
    ConfigError,
    ConnectFailed,
    Fatal,
    InDoubt,
    InputError,
    LedgerError,
    LedgerMismatch,
    NotApplied,
    PermissionDenied,
    Rejected,
    Throttled,
    TLSFailed,
)
from bulkresign.models import (
    MAX_BATCH,
    Batch,
    BatchState,
    Endpoint,
    IdType,
    LineOutcome,
    ResignResult,
    UserRecord,
    UserStatus,
)

try:
    __version__ = version("bulkresign")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = [
    "MAX_BATCH",
    "ApiError",
    "AuthFailed",
    "Batch",
    "BatchState",
    "BulkResignError",
    "ConfigError",
    "ConnectFailed",
    "Endpoint",
    "Fatal",
    "IdType",
    "InDoubt",
    "InputError",
    "LedgerError",
    "LedgerMismatch",
    "LineOutcome",
    "NotApplied",
    "PermissionDenied",
    "Rejected",
    "ResignResult",
    "TLSFailed",
    "Throttled",
    "UserRecord",
    "UserStatus",
    "__version__",
]
