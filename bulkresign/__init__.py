"""bulkresign: resign very large lists of GenAuth users exactly once, resumably.

The package reads as the data flow; see ARCHITECTURE.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from bulkresign._version import (
    __version__,
)
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

if TYPE_CHECKING:
    from bulkresign.batching import Ingest
    from bulkresign.client import GenAuthClient, GenAuthReader
    from bulkresign.config import Credentials, Secret, Timeouts
    from bulkresign.inputspec import Format, InputSpec
    from bulkresign.job import JobConfig, JobOutcome, run_job
    from bulkresign.ledger import Ledger
    from bulkresign.limiter import RateLimiter

#: Names served on first use, so that importing one stage (``plan``, say) does not import
#: the HTTP client and aiohttp with it.
_LAZY = {
    "Credentials": "bulkresign.config",
    "Format": "bulkresign.inputspec",
    "GenAuthClient": "bulkresign.client",
    "GenAuthReader": "bulkresign.client",
    "Ingest": "bulkresign.batching",
    "InputSpec": "bulkresign.inputspec",
    "JobConfig": "bulkresign.job",
    "JobOutcome": "bulkresign.job",
    "Ledger": "bulkresign.ledger",
    "RateLimiter": "bulkresign.limiter",
    "Secret": "bulkresign.config",
    "Timeouts": "bulkresign.config",
    "run_job": "bulkresign.job",
}


def __getattr__(name: str) -> object:
    """Import a lazily served public name on first use (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'bulkresign' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "ApiError",
    "AuthFailed",
    "Batch",
    "BatchState",
    "BulkResignError",
    "ConfigError",
    "ConnectFailed",
    "Credentials",
    "Endpoint",
    "Fatal",
    "Format",
    "GenAuthClient",
    "GenAuthReader",
    "IdType",
    "InDoubt",
    "Ingest",
    "InputError",
    "InputSpec",
    "JobConfig",
    "JobOutcome",
    "Ledger",
    "LedgerError",
    "LedgerMismatch",
    "LineOutcome",
    "MAX_BATCH",
    "NotApplied",
    "PermissionDenied",
    "RateLimiter",
    "Rejected",
    "ResignResult",
    "Secret",
    "TLSFailed",
    "Throttled",
    "Timeouts",
    "UserRecord",
    "UserStatus",
    "__version__",
    "run_job",
]
