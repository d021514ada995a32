"""``bulkresign emulator``: run the local GenAuth until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import gc
import ipaddress
import os
import secrets
import signal
import sys
from pathlib import Path
from typing import IO, cast

from bulkresign.cli import ExitCode
from bulkresign.emulator import (
    DEMO_ACCESS_KEY_ID,
    DEMO_ACCESS_KEY_SECRET,
    Emulator,
    EmulatorConfig,
    Faults,
    serve,
)
from bulkresign.emulator.config import DEMO_USERPOOL_ID, ReResign, UnknownIds, UnknownReads
from bulkresign.errors import ConfigError
from bulkresign.files import open_private

__all__ = ["register"]

DEFAULT_PORT = 8787


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``emulator`` sub-command."""
    p = sub.add_parser(
        "emulator",
        help="run a local GenAuth to rehearse against (tests, demo, benchmarks)",
        description="Serve the GenAuth management API's token, resign and read-back calls "
        "locally. Credentials: $GENAUTH_ACCESS_KEY_ID / $GENAUTH_ACCESS_KEY_SECRET, or the "
        "documented demo keys when unset.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port (default {DEFAULT_PORT}; 0 picks a free one)",
    )
    users = p.add_mutually_exclusive_group()
    users.add_argument(
        "--users",
        type=Path,
        metavar="FILE",
        help="JSONL file, one user a line: user_id, email, phone, ...",
    )
    users.add_argument(
        "--generate",
        type=int,
        metavar="N",
        help="N synthetic users (user i: user{i}@example.com, ...)",
    )
    users.add_argument(
        "--implicit",
        action="store_true",
        help="every 24-hex user_id exists (for 10M-ID benchmarks)",
    )
    p.add_argument("--userpool-id", default=DEMO_USERPOOL_ID, help="the pool tokens are scoped to")
    p.add_argument(
        "--rate-limit",
        type=float,
        default=300.0,
        metavar="QPS",
        help="calls per sliding second per userpool, 1 or more; 0 = unlimited (default 300)",
    )
    p.add_argument(
        "--latency-ms", type=float, default=0.0, metavar="MS", help="added to every answer (0)"
    )
    p.add_argument(
        "--latency-jitter-ms",
        type=float,
        default=0.0,
        metavar="MS",
        help="the latency is uniform in MS either side of --latency-ms (0)",
    )
    p.add_argument(
        "--unknown-ids",
        choices=[u.value for u in UnknownIds],
        default=UnknownIds.FAIL_BATCH.value,
        help="a resign call naming an unknown ID: refuse it whole with 404/2004 (default), or "
        "resign the others and answer success",
    )
    p.add_argument(
        "--unknown-reads",
        choices=[u.value for u in UnknownReads],
        default=UnknownReads.OMIT.value,
        help="a read-back naming an unknown ID: omit it (default), or fail with 404/2004",
    )
    p.add_argument(
        "--re-resign",
        choices=[r.value for r in ReResign],
        default=ReResign.SUCCESS.value,
        help="a resign call naming a user resigned already: answer success (default), or "
        "refuse it whole with 422",
    )
    for name, what in (
        ("error-before", "502/503 before applying a resign call"),
        ("error-after", "500/502 after applying a resign call"),
        ("reset-after", "TCP reset after applying a resign call"),
        ("stall-after", "held answer (--stall-seconds) to an applied resign call"),
        ("read-error", "502/503 answering a read-back call"),
    ):
        p.add_argument(
            f"--{name}", type=float, default=0.0, metavar="P", help=f"probability of a {what}"
        )
    p.add_argument(
        "--stall-seconds", type=float, default=30.0, metavar="S", help="how long (default 30)"
    )
    p.add_argument(
        "--token-ttl",
        type=float,
        default=7200.0,
        metavar="S",
        help="seconds a management token lives (default 7200, as the API's)",
    )
    p.add_argument("--retry-after", type=float, metavar="S", help="send Retry-After with 429s")
    p.add_argument("--seed", type=int, default=0, help="seed of the fault and jitter draws")
    p.add_argument(
        "--state",
        type=Path,
        metavar="FILE",
        help="SQLite file keeping statuses and resign counts across restarts",
    )
    p.add_argument(
        "--ready-file",
        type=Path,
        metavar="FILE",
        help="write the URL here once listening (for scripts waiting on it)",
    )
    p.set_defaults(func=handle)


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    """The emulator configuration the options and the environment describe."""
    key_id = os.environ.get("GENAUTH_ACCESS_KEY_ID")
    secret = os.environ.get("GENAUTH_ACCESS_KEY_SECRET")
    if bool(key_id) != bool(secret):
        # As the client refuses it: half a key pair paired with the demo half is nobody's key.
        raise ConfigError(
            "set both GENAUTH_ACCESS_KEY_ID and GENAUTH_ACCESS_KEY_SECRET, or neither for the "
            "demo keys"
        )
    return EmulatorConfig(
        rate_limit=args.rate_limit or None,
        latency_ms=args.latency_ms,
        latency_jitter_ms=args.latency_jitter_ms,
        token_ttl=args.token_ttl,
        unknown_ids=args.unknown_ids,
        unknown_reads=args.unknown_reads,
        re_resign=args.re_resign,
        faults=Faults(
            error_before=args.error_before,
            error_after=args.error_after,
            reset_after=args.reset_after,
            stall_after=args.stall_after,
            stall_seconds=args.stall_seconds,
            read_error=args.read_error,
        ),
        seed=args.seed,
        retry_after=args.retry_after,
        access_key_id=key_id or DEMO_ACCESS_KEY_ID,
        access_key_secret=secret or DEMO_ACCESS_KEY_SECRET,
        userpool_id=args.userpool_id,
        implicit=args.implicit,
        state_file=args.state,
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def handle(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM; exit 0 after a clean stop."""
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be 0..65535, not {args.port}")
    if args.generate is not None and args.generate < 0:
        raise ConfigError(f"--generate must be >= 0, not {args.generate}")
    emulator = Emulator(config_from_args(args))
    if args.users is not None:
        emulator.load_users(args.users)
    elif args.generate:
        emulator.generate(args.generate)
    if not _is_loopback(args.host):
        print(
            f"bulkresign emulator: WARNING: binding {args.host} exposes a FAKE GenAuth that "
            "accepts the demo credentials to the network. Use 127.0.0.1 unless you mean it.",
            file=sys.stderr,
        )
    # The pool and the modules live as long as the server: keep them out of full collections,
    # whose pauses would make the rate window see queued requests as one burst.
    gc.freeze()
    asyncio.run(_serve_until_signal(emulator, args.host, args.port, args.ready_file))
    return ExitCode.OK


async def _serve_until_signal(
    emulator: Emulator, host: str, port: int, ready_file: Path | None
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with serve(emulator, host, port) as server:
            cfg = emulator.config
            users = "implicit users" if cfg.implicit else f"{len(emulator.store)} users"
            rate = "unlimited" if cfg.rate_limit is None else f"{cfg.rate_limit:g}/s"
            demo = " (demo keys)" if cfg.access_key_id == DEMO_ACCESS_KEY_ID else ""
            print(
                f"bulkresign emulator: listening on {server.url} — userpool {cfg.userpool_id}, "
                f"access key {cfg.access_key_id}{demo}, {users}, rate limit {rate}",
                flush=True,
            )
            if ready_file is not None:
                _write_ready(ready_file, server.url)
            await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    oracle = emulator.oracle(summary=True)
    print(
        f"bulkresign emulator: stopped — {oracle['resign_requests']} resign calls, "
        f"{oracle['resigned_total']} users resigned, {oracle['throttled']} throttled",
        file=sys.stderr,
    )


def _write_ready(path: Path, url: str) -> None:
    """Write ``url`` to ``path`` whole: to a temporary name first, then rename over it."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    with cast(IO[bytes], open_private(tmp, "wb", new=True)) as f:
        f.write(f"{url}\n".encode())
    os.replace(tmp, path)
