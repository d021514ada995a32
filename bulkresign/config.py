"""Where bulkresign finds GenAuth: the host, the access key, and how long a call may take.

Credentials come from the environment or from a private file, never from argv: arguments are
world-readable through ``ps`` and ``/proc/<pid>/cmdline`` (CWE-214, https://cwe.mitre.org/data/
definitions/214.html). The secret is held in :class:`Secret`, whose ``repr``/``str`` are ``***``,
so it cannot reach a log line or a traceback by accident.
"""

from __future__ import annotations

import hmac
import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import orjson

from bulkresign.errors import ConfigError
from bulkresign.files import check_private

__all__ = [
    "CREDENTIALS_FILE_ENV",
    "DEFAULT_HOST",
    "DEFAULT_TIMEOUTS",
    "HOST_ENV",
    "KEY_ID_ENV",
    "KEY_SECRET_ENV",
    "Credentials",
    "Secret",
    "Timeouts",
    "load_credentials",
    "resolve_host",
]

DEFAULT_HOST = "https://api.genauth.ai"
HOST_ENV = "GENAUTH_HOST"
KEY_ID_ENV = "GENAUTH_ACCESS_KEY_ID"
KEY_SECRET_ENV = "GENAUTH_ACCESS_KEY_SECRET"  # noqa: S105 - the variable's name, not its value
CREDENTIALS_FILE_ENV = "GENAUTH_CREDENTIALS_FILE"

# A credentials file holds two short strings; anything larger is not one.
_MAX_CREDENTIALS_BYTES = 64 * 1024
_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?", re.ASCII)
_CREDENTIALS_HINT = (
    f"set {KEY_ID_ENV} and {KEY_SECRET_ENV}, or point {CREDENTIALS_FILE_ENV} (or "
    "--credentials-file) at a 0600 file holding them"
)


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret string that prints as ``***``; call :meth:`reveal` at the one place it is sent."""

    _value: str = field(repr=False)

    def reveal(self) -> str:
        """The secret itself."""
        return self._value

    def __repr__(self) -> str:
        return "***"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))


@dataclass(frozen=True, slots=True)
class Credentials:
    """A GenAuth access key: the userpool ID and secret, or a collaborative admin's key."""

    access_key_id: str
    access_key_secret: Secret


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds a call may spend connecting, waiting between reads, and in total.

    ``connect`` also bounds the wait for a free pooled connection; ``read`` bounds each wait for
    response bytes; ``total`` bounds the whole call, so nothing can hang.
    """

    connect: float = 5.0
    read: float = 30.0
    total: float = 60.0

    def __post_init__(self) -> None:
        for name in ("connect", "read", "total"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ConfigError(
                    f"{name} timeout must be a positive number of seconds, not {value!r}"
                )


DEFAULT_TIMEOUTS = Timeouts()


def load_credentials(
    environ: Mapping[str, str], credentials_file: Path | None = None
) -> Credentials:
    """Find the access key: ``credentials_file``, else the two env variables, else the env file.

    An explicit file wins because it is the most specific request. A file must be private
    (mode 0600, owned by us) and hold either JSON ``{"accessKeyId": …, "accessKeySecret": …}``
    or ``KEY=VALUE`` lines naming the two env variables.
    """
    if credentials_file is not None:
        return _from_file(credentials_file)
    key_id = environ.get(KEY_ID_ENV, "").strip()
    secret = environ.get(KEY_SECRET_ENV, "").strip()
    if key_id and secret:
        return Credentials(key_id, Secret(secret))
    if key_id or secret:
        present, absent = (KEY_ID_ENV, KEY_SECRET_ENV) if key_id else (KEY_SECRET_ENV, KEY_ID_ENV)
        raise ConfigError(f"{present} is set but {absent} is not; set both")
    env_file = environ.get(CREDENTIALS_FILE_ENV, "").strip()
    if env_file:
        return _from_file(Path(env_file))
    raise ConfigError(f"no GenAuth credentials: {_CREDENTIALS_HINT}")


def _from_file(path: Path) -> Credentials:
    try:
        check_private(path)
        with path.open("rb") as fh:
            raw = fh.read(_MAX_CREDENTIALS_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: credentials file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read credentials file ({exc.strerror})") from None
    if len(raw) > _MAX_CREDENTIALS_BYTES:
        raise ConfigError(f"{path}: too large for a credentials file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: credentials file is not UTF-8") from None
    if text.lstrip().startswith("{"):
        key_id, secret = _parse_json(path, text)
    else:
        key_id, secret = _parse_lines(path, text)
    if not key_id or not secret:
        missing = "access key ID" if not key_id else "access key secret"
        raise ConfigError(
            f'{path}: no {missing}; write JSON {{"accessKeyId": …, "accessKeySecret": …}} '
            f"or lines {KEY_ID_ENV}=… and {KEY_SECRET_ENV}=…"
        )
    return Credentials(key_id, Secret(secret))


def _parse_json(path: Path, text: str) -> tuple[str, str]:
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        # The decoder's message quotes the document, which holds the secret: never show it.
        raise ConfigError(f"{path}: credentials file is not valid JSON") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: credentials JSON must be an object")
    values = []
    for name in ("accessKeyId", "accessKeySecret"):
        value = doc.get(name, "")
        if not isinstance(value, str):
            raise ConfigError(f"{path}: {name} must be a string")
        values.append(value.strip())
    return values[0], values[1]


def _parse_lines(path: Path, text: str) -> tuple[str, str]:
    found: dict[str, str] = {}
    for number, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        stripped = stripped.removeprefix("export ").lstrip()
        key, sep, value = stripped.partition("=")
        if not sep or not key.strip():
            # Do not echo the line: it may be the secret with a typo in it.
            raise ConfigError(f"{path}:{number}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        found[key.strip()] = value
    return found.get(KEY_ID_ENV, ""), found.get(KEY_SECRET_ENV, "")


def resolve_host(cli_host: str | None, environ: Mapping[str, str]) -> str:
    """The API origin: ``--host``, else ``GENAUTH_HOST``, else :data:`DEFAULT_HOST`.

    Returns ``scheme://host[:port]`` with no trailing slash. ``https://`` is always allowed;
    ``http://`` only to a loopback address (a local emulator), because the bearer token and
    the access key secret travel in every request.
    """
    if cli_host is not None:
        return _check_host(cli_host, "--host")
    env_host = environ.get(HOST_ENV, "").strip()
    if env_host:
        return _check_host(env_host, HOST_ENV)
    return DEFAULT_HOST


def _check_host(value: str, source: str) -> str:
    text = value.strip()

    def bad(reason: str) -> ConfigError:
        # Never quote a user:password@ back: a secret pasted there would reach the CI's log.
        shown = re.sub(r"(?<=//)[^/?#]*@", "***@", text) if "@" in text else text
        return ConfigError(f"{source} {shown!r}: {reason}")

    if not text:
        raise bad("empty; write e.g. https://api.genauth.ai")
    if any(ord(c) < 0x21 or c == "\x7f" for c in text):
        raise bad("contains spaces or control characters")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise bad(f"not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.netloc:
        raise bad("must start with https:// (or http:// for a loopback emulator)")
    if "@" in parts.netloc:
        raise bad("must not contain user:password@; credentials come from the environment")
    if parts.path not in ("", "/") or parts.query or parts.fragment or text.endswith(("?", "#")):
        raise bad("must be an origin only (scheme://host[:port]), without a path or query")
    hostname = (parts.hostname or "").lower()
    address = _ip(hostname)
    if address is None and not _HOSTNAME.fullmatch(hostname):
        raise bad(f"{hostname!r} is not a valid host name")
    if scheme == "http" and not _is_loopback(hostname, address):
        raise bad(
            f"http:// is allowed only to a loopback address (127.0.0.0/8, ::1, localhost), "
            f"not {hostname}; use https://"
        )
    shown = f"[{hostname}]" if address is not None and address.version == 6 else hostname
    return f"{scheme}://{shown}" + (f":{port}" if port is not None else "")


def _ip(hostname: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(hostname)
    except ValueError:
        return None


def _is_loopback(
    hostname: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address | None
) -> bool:
    if address is not None:
        return address.is_loopback
    return hostname == "localhost"
