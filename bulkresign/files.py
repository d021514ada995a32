"""Private files: the ledger, logs, reports and journals hold personal data (emails, phones).

Every file bulkresign writes is created with mode 0600 whatever the umask, and a file we are
asked to reuse is refused when group or others may read it, or when another user owns it.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import re
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Literal, cast

from bulkresign.errors import ConfigError

__all__ = [
    "PRIVATE_MODE",
    "check_private",
    "ensure_private",
    "is_sqlite",
    "names_open_file",
    "open_private",
    "refuse_replacing",
    "replacing",
    "run_files",
]

PRIVATE_MODE = 0o600
_SQLITE_MAGIC = b"SQLite format 3\0"


def ensure_private(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if it does not exist; leave an existing file alone.

    SQLite creates its ``-wal`` and ``-shm`` files with the database file's mode
    (https://sqlite.org/src/file?name=src/os_unix.c, ``findCreateFileMode``), so creating the
    database this way makes all three private.
    """
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_MODE)
    except FileExistsError:
        return
    os.close(fd)
    os.chmod(path, PRIVATE_MODE)  # the umask can only narrow the mode; be explicit anyway


def check_private(path: Path) -> None:
    """Refuse a file that group or others can access, or that another user owns."""
    _refuse_shared(path, path.stat())


def _refuse_shared(path: Path, st: os.stat_result) -> None:
    if st.st_uid != os.getuid():
        raise ConfigError(f"{path}: owned by another user (uid {st.st_uid}); refusing to use it")
    if stat.S_IMODE(st.st_mode) & 0o077:
        if not stat.S_ISREG(st.st_mode):  # a shared device (/dev/null) takes no chmod advice
            raise ConfigError(f"{path}: not a private regular file; name a file of its own")
        raise ConfigError(
            f"{path}: mode {stat.S_IMODE(st.st_mode):04o} lets group or others at a file that "
            f"holds personal data or secrets; run: chmod 600 {path}"
        )


def open_private(
    path: Path, mode: Literal["w", "a", "wb", "ab"] = "w", *, new: bool = False
) -> IO[str] | IO[bytes]:
    """Open ``path`` for writing or appending, creating it with mode 0600 (with ``new``, only
    creating it: a temporary name someone else made first is refused).

    An existing file keeps its content for ``"a"``/``"ab"`` and is truncated for ``"w"``/``"wb"``;
    either way it must already be private. A symbolic link is never followed: its target is
    someone else's file as far as this can tell.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_APPEND if mode.startswith("a") else 0)
    try:
        fd = os.open(path, flags | (os.O_EXCL if new else 0), PRIVATE_MODE)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ConfigError(f"{path}: a symbolic link; name the file itself") from None
        raise
    try:
        # Checked on the open file, before anything in it is cut: a shared file is refused.
        _refuse_shared(path, os.fstat(fd))
        os.fchmod(fd, PRIVATE_MODE)
        if not mode.startswith("a"):
            os.ftruncate(fd, 0)
    except BaseException:
        os.close(fd)
        raise
    if "b" in mode:
        return os.fdopen(fd, mode)
    return os.fdopen(fd, mode, encoding="utf-8", newline="\n")


def run_files(state: Path) -> dict[str, Path]:
    """A run's state file and the records a run writes beside it by default, by what they are."""
    return {
        "state file": state,
        "state file's -wal": Path(f"{state}-wal"),
        "state file's -shm": Path(f"{state}-shm"),
        "log": Path(f"{state}.log"),
        "audit journal": Path(f"{state}.journal"),
    }


def refuse_replacing(output: Path, needed: dict[str, Path], ours: tuple[bytes, ...]) -> None:
    """Refuse to write ``output`` over anything but a file of the same kind bulkresign wrote
    before (its content starts with one of ``ours``) or an empty one.

    ``needed`` (the run's own files) are named in the refusal, found by inode (a hard link or a
    symlink included) or by resolved path; anything else — another run's ledger, its ``-wal``,
    a journal or log under any name — is refused by its content.
    """
    if output.is_symlink():
        raise ConfigError(f"{output}: a symbolic link; name the file itself")
    try:
        st = output.stat()
    except OSError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"{output}: not a regular file")
    target = output.resolve()
    for what, path in needed.items():
        try:
            same = st is not None and path.exists() and os.path.samestat(st, path.stat())
        except OSError:
            same = False
        if same or path.resolve() == target:
            raise ConfigError(f"{output}: that is the run's {what}; write elsewhere")
    if st is None or st.st_size == 0:
        return
    try:
        with output.open("rb") as existing:
            head = existing.read(max(map(len, ours)))
    except OSError:
        return  # unreadable: the write itself will say why
    if not head.startswith(ours):
        what = "a SQLite database (a state file?)" if is_sqlite(output) else "not a file it wrote"
        raise ConfigError(f"{output}: exists and is {what}; bulkresign replaces only its own")


def is_sqlite(path: Path) -> bool:
    """Whether ``path`` starts as a SQLite database does (https://sqlite.org/fileformat.html)."""
    try:
        with path.open("rb") as existing:
            return existing.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC
    except OSError:
        return False


def names_open_file(path: Path | str, fd: int) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (not moved, replaced or deleted)."""
    try:
        named = os.stat(path)
    except OSError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


@contextlib.contextmanager
def replacing(output: Path) -> Iterator[IO[str]]:
    """A private file beside ``output`` that replaces it once the block completes (a report:
    a reader never sees half of one, and one killed half way leaves the old one)."""
    if output.exists() and not output.is_file():
        raise ConfigError(f"{output}: not a regular file; leave out --output to write to stdout")
    # A report killed while written left its temp file, full of IDs: ours by name, removed.
    for stale in output.parent.glob(f".{glob.escape(output.name)}.*.tmp"):
        if re.fullmatch(rf"\.{re.escape(output.name)}\.[0-9a-f]{{8}}\.tmp", stale.name):
            stale.unlink(missing_ok=True)
    temp = output.with_name(f".{output.name}.{secrets.token_hex(4)}.tmp")
    try:
        out = cast("IO[str]", open_private(temp, "w", new=True))
    except OSError as exc:
        raise ConfigError(f"{output}: cannot write the report ({exc.strerror})") from None
    try:
        with out:
            yield out
        os.replace(temp, output)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        if exc.filename is None:  # a write to the open file: say which (a full disk, say)
            raise OSError(exc.errno, exc.strerror, str(output)) from None
        raise
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
