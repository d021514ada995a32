"""bulkresign: resign very large lists of GenAuth users exactly once, resumably.

The package reads as the data flow; see ARCHITECTURE.md.
"""

from __future__ import annotations

from bulkresign._version import __version__
from bulkresign.batching import Ingest
from bulkresign.client import GenAuthClient, GenAuthReader
from bulkresign.config import Credentials, Secret, Timeouts
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
from bulkresign.inputspec import Format, InputSpec
from bulkresign.job import JobConfig, JobOutcome, run_job
from bulkresign.ledger import Ledger
from bulkresign.limiter import RateLimiter
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
