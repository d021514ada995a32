"""The emulator's state and business rules without HTTP: users, tokens, rate window, oracle.

:mod:`bulkresign.emulator.api` turns requests into calls on an :class:`Emulator`; tests can also
drive one directly (``set_status``, ``oracle``, ``reconfigure``). Everything here runs on the
server's event loop thread and never blocks it; the server opens, writes and closes the state file
from worker threads.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bulkresign.emulator.config import EmulatorConfig, ReResign, UnknownIds, changed
from bulkresign.emulator.faults import FaultInjector
from bulkresign.emulator.implicit import ImplicitStore
from bulkresign.emulator.oracle import Counters, oracle_view
from bulkresign.emulator.ratelimit import SlidingWindow
from bulkresign.emulator.state import StateFile
from bulkresign.emulator.store import ExplicitStore, StateRow, UserStore
from bulkresign.emulator.tokens import TokenIssuer
from bulkresign.emulator.users import (
    User,
    load_users_file,
    parse_user,
    synthetic_user,
    synthetic_user_id,
)
from bulkresign.errors import ConfigError
from bulkresign.models import IdType, UserStatus

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["Clock", "Emulator", "ManualClock", "ResignHook", "Sleep", "Verdict"]

#: Wall-clock seconds since the epoch (token ``iat``/``exp`` and user dates are derived from it).
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
#: ``on_resign(path, user_ids, request)``, awaited before a well-formed resign call is applied.
ResignHook = Callable[[str, list[str], "web.Request"], Awaitable[None]]


class ManualClock:
    """A :data:`Clock` that moves only when told to: tests of expiry and rate limits use it."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``."""
        if seconds < 0:
            raise ValueError(f"time cannot go backwards (advance by {seconds})")
        self.now += seconds


@dataclass(frozen=True, slots=True)
class Verdict:
    """The envelope fields a business rule decided: statusCode, message, apiCode."""

    status_code: int
    message: str
    api_code: int | None = None


_OK = Verdict(200, "操作成功")


class Emulator:
    """A GenAuth userpool as the management API shows it.

    Args:
        config: what the emulator does; defaults to :class:`EmulatorConfig()`.
        clock: wall-clock time in seconds; inject a controllable one to test expiry and limits.
        sleep: how latency is waited; inject a spy to test it without waiting.
        on_resign: awaited with ``(path, user_ids, request)`` before each resign is applied.
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        on_resign: ResignHook | None = None,
    ) -> None:
        cfg = config if config is not None else EmulatorConfig()
        self._config = cfg
        self.clock = clock
        self.sleep = sleep
        self.on_resign = on_resign
        now = clock()
        self.created_at = now
        self.store: UserStore = ImplicitStore(now) if cfg.implicit else ExplicitStore()
        self.counters = Counters(started=now)
        self.tokens = TokenIssuer(cfg.userpool_id, cfg.access_key_id, cfg.userpool_name)
        self.window = SlidingWindow(cfg.rate_limit)
        self.faults = FaultInjector(cfg.seed)
        self._dirty: set[str] = set()
        self._state: StateFile | None = None
        self._rid_prefix = secrets.token_hex(8)
        self._rid = itertools.count()

    def __repr__(self) -> str:
        mode = "implicit" if self._config.implicit else f"{len(self.store)} users"
        return f"Emulator({mode}, pool={self._config.userpool_id})"

    @property
    def config(self) -> EmulatorConfig:
        """The current configuration (replace it with :meth:`reconfigure`)."""
        return self._config

    def reconfigure(self, update: Mapping[str, object] | None = None, **fields: object) -> None:
        """Change runtime fields (rate, latency, switches, faults, seed) while serving."""
        new = changed(self._config, {**(update or {}), **fields})
        if new.seed != self._config.seed:
            self.faults.reseed(new.seed)
        self.window.limit = new.rate_limit
        self._config = new

    # ---- users -------------------------------------------------------------------------------

    def _explicit(self) -> ExplicitStore:
        if not isinstance(self.store, ExplicitStore):
            raise ConfigError("emulator: implicit mode has every 24-hex user; it takes no users")
        return self.store

    def add_users(self, users: Iterable[Mapping[str, object]]) -> int:
        """Add JSONL-shaped user records (see :func:`synthetic_user`); return how many."""
        store, added = self._explicit(), 0
        for n, record in enumerate(users, start=1):
            where = f"user #{n}"
            store.add(parse_user(record, created_at=self.created_at, where=where), where=where)
            added += 1
        return added

    def load_users(self, path: Path) -> int:
        """Add the users of a JSONL file, one object a line; return how many."""
        store, added = self._explicit(), 0
        for where, record in load_users_file(path):
            store.add(parse_user(record, created_at=self.created_at, where=where), where=where)
            added += 1
        return added

    def generate(self, n: int, *, start: int = 0) -> None:
        """Add synthetic users ``start`` .. ``start + n - 1`` (see :func:`synthetic_user`)."""
        store = self._explicit()
        for i in range(start, start + n):
            u = synthetic_user(i)
            store.add(
                User(
                    synthetic_user_id(i),
                    status=UserStatus.ACTIVATED,
                    created_at=self.created_at,
                    email=u["email"],
                    phone=u["phone"],
                    phone_country_code=u["phone_country_code"],
                    username=u["username"],
                    external_id=u["external_id"],
                    identity=u["identity"],
                    sync_relation=u["sync_relation"],
                    department_ids=(f"dept-{i % 8}",),
                ),
                where=f"synthetic user {i}",
            )

    def user(self, user_id: str) -> dict[str, object] | None:
        """The ``UserDto`` of ``user_id`` (with identities and departments), or ``None``."""
        if self.store.resolve(IdType.USER_ID, user_id) is None:
            return None
        return self.store.dto(user_id, identities=True, departments=True)

    def set_status(self, user_id: str, status: UserStatus | str) -> bool:
        """Change a user's status behind the client's back; ``False`` if there is no such user."""
        done = self.store.set_status(user_id, UserStatus(status), self.clock())
        if done and self._state is not None:
            self._dirty.add(user_id)
        return done

    # ---- the business rule of a resign call ----------------------------------------------------

    def resign(self, user_ids: list[str], id_type: IdType) -> Verdict:
        """Apply a well-formed resign call, or refuse it whole; count it in the oracle."""
        counters, store = self.counters, self.store
        known, unknown = store.resolve_many(id_type, user_ids)
        targets = list(dict.fromkeys(known))
        if len(targets) < len(known) or len(set(unknown)) < len(unknown):
            counters.duplicate_id_requests += 1
        cfg = self._config
        if unknown:
            counters.unknown_requested += len(unknown)
            if cfg.unknown_ids is UnknownIds.FAIL_BATCH:
                return Verdict(404, f"用户不存在: {unknown[0]}", 2004)
        if not targets:
            return _OK
        refuse = cfg.re_resign is ReResign.ERROR
        already = store.resign(targets, self.clock(), refuse_resigned=refuse)
        if already:
            counters.re_resign_requested += len(already)
            if refuse:
                return Verdict(422, f"用户已离职，不能重复离职: {already[0]}")
        if self._state is not None:
            self._dirty.update(targets)
        return _OK

    def request_id(self) -> str:
        """A fresh ``requestId``."""
        return f"{self._rid_prefix}{next(self._rid):016x}"

    # ---- oracle --------------------------------------------------------------------------------

    def oracle(self, *, summary: bool = False) -> dict[str, object]:
        """What the emulator saw and did (the ``GET /__emulator/oracle`` body)."""
        view = oracle_view(self.counters, self.store, summary=summary)
        view["users"] = len(self.store)
        view["implicit"] = self._config.implicit
        return view

    def reset_counters(self) -> None:
        """Zero every counter and resign count; statuses stay as they are."""
        had_counts = self.store.resign_counts() if self._state is not None else {}
        self.counters = Counters(started=self.clock())
        self.store.reset_counts()
        self._dirty.update(had_counts)  # so the state file's counts go to zero too

    # ---- the state file ------------------------------------------------------------------------

    def open_state(self) -> None:
        """Open the configured state file and apply its rows (call after adding users)."""
        path = self._config.state_file
        if path is None or self._state is not None:
            return
        self._state = StateFile(Path(path))
        for row in self._state.load():
            self.store.restore(row)

    def take_dirty(self) -> list[StateRow]:
        """The rows of every user changed since the last call (for the flusher to write)."""
        dirty, self._dirty = self._dirty, set()
        rows = []
        for uid in dirty:
            row = self.store.row(uid)
            if row is not None:
                rows.append(row)
        return rows

    @property
    def state(self) -> StateFile | None:
        """The open state file, if any."""
        return self._state

    def close_state(self) -> None:
        """Write what is dirty and close the state file."""
        if self._state is not None:
            self._state.write(self.take_dirty())
            self._state.close()
            self._state = None
