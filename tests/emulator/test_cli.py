"""``bulkresign emulator`` as a subprocess: ready file, credentials from the env, SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from bulkresign.cli import main
from bulkresign.cli.emulator import _is_loopback, _write_ready

#: Both ways to start it: the ``bulkresign`` command, and the emulator package on its own.
ENTRY_POINTS = {
    "bulkresign-emulator": ["-m", "bulkresign", "emulator"],
    "python-m-emulator": ["-m", "bulkresign.emulator"],
}


def wait_ready(proc: subprocess.Popen[bytes], ready: Path, timeout: float = 20.0) -> str:
    """The URL the emulator wrote to its ready file (fails if it exits or never gets ready)."""
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"the emulator exited with {proc.returncode}: {err.decode()}")
        if time.monotonic() > deadline:
            pytest.fail("the emulator did not get ready")
        time.sleep(0.02)
    return ready.read_text().strip()


@pytest.fixture(params=list(ENTRY_POINTS), ids=list(ENTRY_POINTS))
def started(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """An emulator process with 10 users and credentials from the environment, and its URL."""
    ready = tmp_path / "ready"
    env = {
        **os.environ,
        "GENAUTH_ACCESS_KEY_ID": "ak-from-env",
        "GENAUTH_ACCESS_KEY_SECRET": "sk-env",
    }
    cmd = [sys.executable, *ENTRY_POINTS[request.param], "--port", "0", "--generate", "10"]
    proc = subprocess.Popen(
        [*cmd, "--ready-file", str(ready)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        yield proc, wait_ready(proc, ready)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def post(url: str, body: object) -> dict[str, object]:
    """POST JSON with the standard library (the process under test is the only server)."""
    req = urllib.request.Request(
        url, data=orjson.dumps(body), headers={"content-type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        answer: dict[str, object] = orjson.loads(resp.read())
    return answer


class TestProcess:
    def test_serves_on_loopback_with_env_credentials(
        self, started: tuple[subprocess.Popen[bytes], str]
    ) -> None:
        """It listens on 127.0.0.1 and takes the access key from the environment."""
        _, url = started
        assert url.startswith("http://127.0.0.1:")
        token = post(
            f"{url}/api/v3/get-management-token",
            {"accessKeyId": "ak-from-env", "accessKeySecret": "sk-env"},
        )
        assert token["statusCode"] == 200
        refused = post(
            f"{url}/api/v3/get-management-token",
            {"accessKeyId": "ak-from-env", "accessKeySecret": "wrong"},
        )
        assert refused["statusCode"] == 401

    def test_sigterm_stops_it_cleanly(self, started: tuple[subprocess.Popen[bytes], str]) -> None:
        """SIGTERM: exit 0, after printing the URL line; the secret is never printed."""
        proc, url = started
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
        assert proc.returncode == 0
        assert url in out.decode()
        assert b"sk-env" not in out + err
        assert b"Traceback" not in err


class TestUsage:
    @pytest.mark.parametrize(
        ("args", "reason"),
        [
            (["--error-before", "2"], "error_before must be a probability"),
            (["--users", "/nonexistent/users.jsonl"], "cannot read users file"),
        ],
    )
    def test_bad_options_are_one_line_errors(self, args: list[str], reason: str) -> None:
        """A bad option exits 2 with one line naming the problem, no traceback."""
        proc = subprocess.run(
            [sys.executable, "-m", "bulkresign.emulator", "--port", "0", *args],
            capture_output=True,
            timeout=30,
        )
        assert proc.returncode == 2
        assert reason in proc.stderr.decode()
        assert b"Traceback" not in proc.stderr

    @pytest.mark.parametrize(
        ("host", "loopback"),
        [("127.0.0.1", True), ("localhost", True), ("::1", True), ("0.0.0.0", False)],
    )
    def test_loopback_detection(self, host: str, loopback: bool) -> None:
        """Binding anything but loopback triggers the loud warning."""
        assert _is_loopback(host) is loopback


def test_the_ready_file_never_writes_through_a_planted_link(tmp_path: Path) -> None:
    """A symbolic link where the ready file goes is replaced, its target left as it was."""
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    ready = tmp_path / "ready"
    ready.symlink_to(victim)
    _write_ready(ready, "http://127.0.0.1:1")
    assert victim.read_text() == "precious\n"
    assert not ready.is_symlink() and ready.read_text() == "http://127.0.0.1:1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ready", "victim"]


@pytest.mark.parametrize("half", ["GENAUTH_ACCESS_KEY_ID", "GENAUTH_ACCESS_KEY_SECRET"])
def test_half_a_key_pair_is_refused(half: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Only one of the two variables set: refused, as the client refuses it (it paired the
    given half with the demo one, and said nothing)."""
    with pytest.MonkeyPatch.context() as mp:
        for k in ("GENAUTH_ACCESS_KEY_ID", "GENAUTH_ACCESS_KEY_SECRET"):
            mp.delenv(k, raising=False)
        mp.setenv(half, "custom")
        assert main(["emulator", "--port", "0"]) == 2
    assert "set both" in capsys.readouterr().err
