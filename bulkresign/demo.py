"""``make demo``: a whole rehearsal against the local emulator, showing every command.

It starts the emulator seeded from ``samples/demo-users.jsonl`` with throttling and faults on,
then runs — as a user would type them — ``plan``, ``run --yes``, ``status``, ``verify`` and
``audit verify`` on ``samples/demo-input.csv`` (an HR export: emails in mixed case, duplicates,
junk and a few people the userpool does not know), and stops the emulator. Everything it writes
goes to ``demo-run/``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from bulkresign.emulator import (
    DEMO_ACCESS_KEY_ID,
    DEMO_ACCESS_KEY_SECRET,
    Emulator,
    EmulatorConfig,
    Faults,
    serve_in_thread,
)

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
OUT = Path("demo-run")


def _step(title: str, argv: list[str], env: dict[str, str]) -> int:
    print(f"\n\033[1m== {title}\033[0m\n$ bulkresign {shlex.join(argv)}", flush=True)
    command = [sys.executable, "-m", "bulkresign", *argv]
    return subprocess.run(command, env=env, check=False).returncode  # noqa: S603 (our own argv)


def main() -> int:
    """Run the rehearsal; the exit code is the first unexpected one."""
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir()
    emulator = Emulator(
        EmulatorConfig(
            rate_limit=25.0,
            latency_ms=20.0,
            latency_jitter_ms=10.0,
            token_ttl=20.0,
            seed=7,
            faults=Faults(error_before=0.03, error_after=0.03, reset_after=0.03),
        )
    )
    users = emulator.load_users(SAMPLES / "demo-users.jsonl")
    state = OUT / "demo.state"
    source = str(SAMPLES / "demo-input.csv")
    fmt = ["--id-type", "email", "--column", "email"]
    with serve_in_thread(emulator) as server:
        print(
            f"emulator: {users:,} users at {server.url}, limit 25 req/s, 3% of calls fail in "
            "each of three ways (5xx before applying, 5xx after, connection reset after)"
        )
        env = dict(os.environ)
        env.update(
            GENAUTH_ACCESS_KEY_ID=DEMO_ACCESS_KEY_ID,
            GENAUTH_ACCESS_KEY_SECRET=DEMO_ACCESS_KEY_SECRET,
            GENAUTH_HOST=server.url,
        )
        expected = [
            ("plan: what would be sent (no network)", ["plan", source, *fmt], 1),
            (
                "run: asks 40 req/s of a pool limited to 25, so it is throttled and adapts",
                ["run", source, *fmt, "--yes", "--state", str(state), "--rate", "40",
                 "--report", str(OUT / "report.csv"), "--reason", "DEMO-1", "--no-progress"],
                1,
            ),
            ("status", ["status", "--state", str(state)], 0),
            ("verify: read every resigned user back", ["verify", "--state", str(state)], 0),
            ("audit verify: the journal's hash chain, through the ledger's anchor",
             ["audit", "verify", f"{state}.journal", "--state", str(state)], 0),
        ]  # fmt: skip
        for title, argv, want in expected:
            code = _step(title, argv, env)
            if code != want:
                print(f"demo: expected exit {want}, got {code}", file=sys.stderr)
                return code or 1
        oracle = server.oracle(summary=True)
    print(
        f"\nemulator oracle: {oracle['resigned_total']} users resigned, most resigned "
        f"{oracle['max_resign_count']} time(s), {oracle['throttled']} calls throttled, "
        f"faults injected {oracle['faults_injected']}\n"
        f"files: {', '.join(sorted(str(p) for p in OUT.iterdir()))}"
    )
    return 0 if oracle["max_resign_count"] == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
