"""What the emulator does: credentials, rate limit, latency, business switches and injected faults.

Both dataclasses are frozen and validated on construction, so a bad value on the command line, in
Python or in a ``POST /__emulator/config`` body fails with one line naming the field and the value.
:func:`changed` applies a JSON-shaped partial update (the runtime config endpoint) to a config.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from bulkresign.errors import ConfigError

__all__ = [
    "DEMO_ACCESS_KEY_ID",
    "DEMO_ACCESS_KEY_SECRET",
    "DEMO_USERPOOL_ID",
    "DEMO_USERPOOL_NAME",
    "EmulatorConfig",
    "Faults",
    "ReResign",
    "UnknownIds",
    "UnknownReads",
    "changed",
    "public_view",
]

#: Credentials the emulator accepts when none are configured. They are public on purpose: the
#: emulator is a rehearsal target, never a place for real keys.
DEMO_ACCESS_KEY_ID = "64e5a1b2c3d4e5f6a7b8c9d0"
DEMO_ACCESS_KEY_SECRET = "emulator-demo-secret-not-for-real-use"  # noqa: S105 - public demo value
DEMO_USERPOOL_ID = "64e5a1b2c3d4e5f6a7b8c9d1"
#: Put in every token as ``userpool_name``: real pool names are often Chinese, and non-ASCII claims
#: are what makes a payload's base64url contain ``-``/``_`` and trip the Python SDK.
DEMO_USERPOOL_NAME = "演示用户池"


class UnknownIds(StrEnum):
    """What a resign call naming an ID the pool does not know does."""

    FAIL_BATCH = "fail-batch"
    """statusCode 404, apiCode 2004, nothing applied."""
    IGNORE = "ignore"
    """The known IDs are resigned and the call succeeds."""


class UnknownReads(StrEnum):
    """What a read-back naming an ID the pool does not know does (the API documents neither)."""

    OMIT = "omit"
    """The unknown IDs are simply absent from ``data``."""
    FAIL = "fail"
    """statusCode 404, apiCode 2004, naming the first unknown ID; no data."""


class ReResign(StrEnum):
    """What resigning a user who is already Resigned does."""

    SUCCESS = "success"
    """The call succeeds (and the oracle counts a second resignation)."""
    ERROR = "error"
    """statusCode 422, nothing applied."""


def _probability(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and 0.0 <= value <= 1.0):
        raise ConfigError(f"emulator: {name} must be a probability in [0, 1], not {value!r}")


def _non_negative(name: str, value: float | None, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
        raise ConfigError(f"emulator: {name} must be a finite number >= 0, not {value!r}")


@dataclass(frozen=True, slots=True)
class Faults:
    """Injected failures, each a probability drawn per call from the emulator's seeded RNG.

    The ``*_after`` faults apply the resignation first, then lose or spoil the answer, so only a
    read-back can tell the client what happened. They hit resign calls that succeed.
    """

    error_before: float = 0.0
    """Resign calls: HTTP 502/503 with an HTML body; nothing applied."""
    error_after: float = 0.0
    """Resign calls: applied, then HTTP 500/502 with an HTML body."""
    reset_after: float = 0.0
    """Resign calls: applied, then the TCP connection is reset with no response."""
    stall_after: float = 0.0
    """Resign calls: applied, then the answer is held for ``stall_seconds``."""
    stall_seconds: float = 30.0
    read_error: float = 0.0
    """Read-back calls: HTTP 502/503 with an HTML body. Separate from ``error_before`` so a run
    with ``error_before=1`` can still reconcile."""

    def __post_init__(self) -> None:
        for name in ("error_before", "error_after", "reset_after", "stall_after", "read_error"):
            _probability(name, getattr(self, name))
        _non_negative("stall_seconds", self.stall_seconds)


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    """Everything that shapes the emulator's answers. Strings are accepted for the enums."""

    rate_limit: float | None = 300.0
    """Accepted API calls per userpool in any sliding 1-second window; ``None`` or 0: unlimited."""
    latency_ms: float = 0.0
    """Mean delay added to each API call before it is handled."""
    latency_jitter_ms: float = 0.0
    """The delay is uniform in ``latency_ms ± latency_jitter_ms`` (never below 0)."""
    token_ttl: float = 7200.0
    """``expires_in`` of minted tokens, in seconds; a short one makes tokens expire mid-run."""
    unknown_ids: UnknownIds | str = UnknownIds.FAIL_BATCH
    unknown_reads: UnknownReads | str = UnknownReads.OMIT
    re_resign: ReResign | str = ReResign.SUCCESS
    faults: Faults = field(default_factory=Faults)
    seed: int = 0
    retry_after: float | None = None
    """Seconds sent as ``Retry-After`` with each 429; ``None`` sends none (as GenAuth documents)."""
    jwt_sdk_safe: bool = True
    """Mint tokens whose payload base64url has no ``-``/``_``; ``False`` mints only tokens that
    have one, to reproduce the Python SDK's padding crash."""
    access_key_id: str = DEMO_ACCESS_KEY_ID
    access_key_secret: str = field(default=DEMO_ACCESS_KEY_SECRET, repr=False)
    userpool_id: str = DEMO_USERPOOL_ID
    userpool_name: str = DEMO_USERPOOL_NAME
    implicit: bool = False
    """Every 24-hex ``user_id`` exists and is Activated until resigned; only changes are stored."""
    state_file: Path | None = None
    """SQLite file keeping statuses and resign counts across restarts."""

    def __post_init__(self) -> None:
        for name, kind in (
            ("unknown_ids", UnknownIds),
            ("unknown_reads", UnknownReads),
            ("re_resign", ReResign),
        ):
            try:
                object.__setattr__(self, name, kind(getattr(self, name)))
            except ValueError:
                choices = ", ".join(u.value for u in kind)
                raise ConfigError(
                    f"emulator: {name} must be one of {choices}, not {getattr(self, name)!r}"
                ) from None
        if self.rate_limit == 0:
            object.__setattr__(self, "rate_limit", None)
        if self.rate_limit is not None:
            _non_negative("rate_limit", self.rate_limit)
            if self.rate_limit < 1:
                raise ConfigError(
                    f"emulator: rate_limit counts calls per 1-second window, so it must be >= 1 "
                    f"(or 0 for unlimited), not {self.rate_limit!r}"
                )
        _non_negative("latency_ms", self.latency_ms)
        _non_negative("latency_jitter_ms", self.latency_jitter_ms)
        _non_negative("retry_after", self.retry_after, allow_none=True)
        if not (isinstance(self.token_ttl, int | float) and self.token_ttl >= 1):
            raise ConfigError(f"emulator: token_ttl must be >= 1 second, not {self.token_ttl!r}")
        if not isinstance(self.faults, Faults):
            raise ConfigError(f"emulator: faults must be a Faults, not {self.faults!r}")
        for name in ("access_key_id", "access_key_secret", "userpool_id"):
            if not (isinstance(getattr(self, name), str) and getattr(self, name)):
                raise ConfigError(f"emulator: {name} must be a non-empty string")


#: Fields ``POST /__emulator/config`` may change while the emulator runs.
_RUNTIME_FIELDS = frozenset(
    {
        "rate_limit",
        "latency_ms",
        "latency_jitter_ms",
        "token_ttl",
        "unknown_ids",
        "unknown_reads",
        "re_resign",
        "seed",
        "retry_after",
        "jwt_sdk_safe",
    }
)


def changed(config: EmulatorConfig, update: Mapping[str, object]) -> EmulatorConfig:
    """Return ``config`` with the runtime-changeable fields in ``update`` replaced.

    ``update["faults"]`` is a partial mapping of :class:`Faults` fields. Unknown or fixed fields
    (credentials, ``implicit``, ``state_file``) raise :class:`ConfigError`.
    """
    fault_fields = {f.name for f in dataclasses.fields(Faults)}
    changes: dict[str, object] = {}
    for key, value in update.items():
        if key == "faults":
            if not isinstance(value, Mapping) or not set(value) <= fault_fields:
                raise ConfigError(
                    f"emulator: faults must be an object with fields {sorted(fault_fields)}"
                )
            try:
                changes["faults"] = dataclasses.replace(config.faults, **value)
            except TypeError as exc:
                raise ConfigError(f"emulator: bad faults value: {exc}") from None
        elif key in _RUNTIME_FIELDS:
            changes[key] = value
        else:
            raise ConfigError(f"emulator: {key!r} cannot be changed at runtime")
    try:
        return dataclasses.replace(config, **changes)  # type: ignore[arg-type]
    except TypeError as exc:
        raise ConfigError(f"emulator: bad config value: {exc}") from None


def public_view(config: EmulatorConfig) -> dict[str, object]:
    """The config as JSON-ready values, without the access key secret."""
    view: dict[str, object] = {}
    for f in dataclasses.fields(config):
        if f.name == "access_key_secret":
            continue
        value = getattr(config, f.name)
        if isinstance(value, Faults):
            value = dataclasses.asdict(value)
        elif isinstance(value, Path):
            value = str(value)
        view[f.name] = value
    return view
