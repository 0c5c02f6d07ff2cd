"""Throwaway PostgreSQL servers for the test suite.

``PostgresServer`` gives tests a real PostgreSQL server and empty databases on it:

    with PostgresServer() as server:
        dsn = server.create_database("lit_test_1")
        ...  # connect to ``dsn`` with asyncpg
        server.drop_database("lit_test_1")

Where the server comes from:

* If ``LIT_MEMORY_TEST_POSTGRES_URL`` is set (e.g. ``postgresql://postgres@db:5432/postgres``),
  that server is used: databases are created and dropped on it, and ``start``/``stop`` leave
  the server itself alone.
* Otherwise a private cluster is created with ``initdb`` in a fresh temporary directory and
  started with ``pg_ctl`` on a free port on 127.0.0.1 (trust authentication, loopback only,
  fsync off: it is throwaway).  ``stop()`` shuts it down and removes the directory; an
  ``atexit`` hook does the same for servers that were never stopped.

PostgreSQL refuses to run as root, so when the tests run as root the server binaries run as the
``postgres`` system user (or a dedicated ``lit_memory_pg`` system user, created if needed).

``postgres_unavailable_reason()`` returns ``None`` when a server can be had, otherwise a message
that says how to enable the PostgreSQL tests; use it to skip them.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import grp
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "ENV_URL",
    "PostgresServer",
    "find_binaries",
    "postgres_unavailable_reason",
    "validate_database_name",
]

ENV_URL = "LIT_MEMORY_TEST_POSTGRES_URL"

#: Superuser created by ``initdb`` in local clusters.
SUPERUSER = "postgres"
#: System user the server runs as when the tests run as root and ``postgres`` does not exist.
FALLBACK_SYSTEM_USER = "lit_memory_pg"

_DATABASE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_PROTECTED_DATABASES = frozenset({"postgres", "template0", "template1"})
_BINARIES = ("initdb", "pg_ctl")
# Longest path a Unix socket address can hold on Linux (108 bytes including the NUL).
_MAX_SOCKET_PATH = 107
_PORT_ATTEMPTS = 3

_T = TypeVar("_T")


# --------------------------------------------------------------------------------------------
# Finding the server


def _is_bindir(path: Path) -> bool:
    return all(os.access(path / name, os.X_OK) and (path / name).is_file() for name in _BINARIES)


def _version_key(path: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/<version>/bin: "15", "9.6", ...
    parts = re.findall(r"\d+", path.parent.name)
    return tuple(int(part) for part in parts) or (-1,)


def _pg_config_bindir() -> Path | None:
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    try:
        result = subprocess.run(
            [pg_config, "--bindir"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    output = result.stdout.strip()
    if result.returncode != 0 or not output:
        return None
    return Path(output)


def find_binaries() -> Path | None:
    """Return the directory holding ``initdb`` and ``pg_ctl``, or ``None`` if there is none.

    Looked for, in order: ``pg_config --bindir``; the highest ``/usr/lib/postgresql/*/bin``
    (Debian and Ubuntu); ``initdb`` and ``pg_ctl`` on ``PATH``.
    """
    candidates: list[Path] = []
    bindir = _pg_config_bindir()
    if bindir is not None:
        candidates.append(bindir)
    candidates.extend(
        sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    )
    initdb = shutil.which("initdb")
    if initdb is not None:
        # pg_ctl finds the ``postgres`` binary next to its own resolved path, so prefer the
        # directory the (usually symlinked) tools really live in.
        candidates.append(Path(initdb).resolve().parent)
        candidates.append(Path(initdb).parent)
    for candidate in candidates:
        if _is_bindir(candidate):
            return candidate
    return None


def _asyncpg_missing() -> bool:
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        return True
    return False


def postgres_unavailable_reason() -> str | None:
    """``None`` if the PostgreSQL tests can run, otherwise why not and how to enable them."""
    if _asyncpg_missing():
        return "asyncpg is not installed: install it (pip install 'lit-memory[postgres]')"
    if os.environ.get(ENV_URL):
        return None
    if find_binaries() is None:
        return (
            "PostgreSQL server binaries (initdb, pg_ctl) not found: install the postgresql "
            "package (apt-get install postgresql) or set "
            f"{ENV_URL}=postgresql://user@host:port/postgres"
        )
    return None


# --------------------------------------------------------------------------------------------
# Helpers


def validate_database_name(name: str) -> str:
    """Return ``name`` if it is a safe database name (letters, digits, underscore), else raise.

    The first character must be a letter or underscore and the name at most 63 characters, so
    the name is also a valid unquoted SQL identifier.
    """
    if not isinstance(name, str) or _DATABASE_NAME.fullmatch(name) is None:
        raise ValueError(
            f"invalid database name {name!r}: use 1-63 letters, digits and underscores, "
            "starting with a letter or underscore"
        )
    return name


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_async(factory: Callable[[], Awaitable[_T]]) -> _T:
    """Run a coroutine to completion from synchronous code.

    Uses ``asyncio.run``; if this thread already runs an event loop (for example when called
    from an async fixture), the coroutine runs on a fresh loop in a worker thread instead.
    """

    async def main() -> _T:
        return await factory()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as executor:
        return executor.submit(asyncio.run, main()).result()


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(could not read {path}: {exc})"
    return "\n".join(text.splitlines()[-lines:])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        # "<pid> (<comm>) <state> ...": a zombie has exited and only awaits reaping.
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


@dataclass(frozen=True)
class _RunAs:
    """The unprivileged user the server binaries run as when we are root."""

    name: str
    uid: int
    gid: int

    @classmethod
    def from_passwd(cls, entry: pwd.struct_passwd) -> _RunAs:
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid)


def _system_user() -> _RunAs:
    for name in ("postgres", FALLBACK_SYSTEM_USER):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        if entry.pw_uid != 0:
            return _RunAs.from_passwd(entry)
    useradd = shutil.which("useradd") or "useradd"
    try:
        result = subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
             FALLBACK_SYSTEM_USER],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )  # fmt: skip
        output = (result.stdout + result.stderr).strip()
    except (OSError, subprocess.SubprocessError) as exc:
        output = str(exc)
    try:
        # Also covers a concurrent test process having just created the same user.
        return _RunAs.from_passwd(pwd.getpwnam(FALLBACK_SYSTEM_USER))
    except KeyError:
        raise RuntimeError(
            "running as root, and PostgreSQL refuses to run as root; there is no 'postgres' "
            f"user and creating '{FALLBACK_SYSTEM_USER}' with useradd failed: {output}"
        ) from None


def _traversable_by(path: Path, user: _RunAs) -> bool:
    """Whether ``user`` can search every directory from ``/`` down to ``path``."""
    groups = {user.gid, *(g.gr_gid for g in _groups_of(user.name))}
    for directory in [path, *path.parents]:
        try:
            st = directory.stat()
        except OSError:
            return False
        mode = st.st_mode
        if st.st_uid == user.uid:
            allowed = bool(mode & stat.S_IXUSR)
        elif st.st_gid in groups:
            allowed = bool(mode & stat.S_IXGRP)
        else:
            allowed = bool(mode & stat.S_IXOTH)
        if not allowed:
            return False
    return True


def _groups_of(user_name: str) -> list[grp.struct_group]:
    return [group for group in grp.getgrall() if user_name in group.gr_mem]


def _make_tempdir(user: _RunAs | None) -> Path:
    """A fresh private directory for the cluster, owned by whoever runs the server."""
    socket_suffix = len("/.s.PGSQL.65535") + len("lit-memory-pg-XXXXXXXX/")
    bases = [Path(tempfile.gettempdir()), Path("/tmp")]
    for base in bases:
        if len(str(base)) + socket_suffix > _MAX_SOCKET_PATH:
            continue
        if user is not None and not _traversable_by(base, user):
            continue
        break
    else:
        raise RuntimeError(
            f"no usable temporary directory for a PostgreSQL cluster (tried {bases}): it must be "
            "short enough for a Unix socket path"
            + (f" and reachable by user {user.name!r}" if user else "")
        )
    path = Path(tempfile.mkdtemp(prefix="lit-memory-pg-", dir=base))
    if user is not None:
        os.chown(path, user.uid, user.gid)
    path.chmod(0o700)
    return path


def _clean_env(home: Path | None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env.update(LC_ALL="C", LANG="C")
    if home is not None:
        env["HOME"] = str(home)
    return env


# --------------------------------------------------------------------------------------------
# The server


_LIVE: dict[int, PostgresServer] = {}


@atexit.register
def _stop_leftover_servers() -> None:
    for server in list(_LIVE.values()):
        with contextlib.suppress(Exception):
            server.stop()


class PostgresServer:
    """A PostgreSQL server for tests: a throwaway local cluster, or the one named by
    ``LIT_MEMORY_TEST_POSTGRES_URL``.

    Args:
        bindir: directory holding ``initdb`` and ``pg_ctl``; found with ``find_binaries()``
            when omitted.
        external_url: use this server instead of starting one; defaults to
            ``$LIT_MEMORY_TEST_POSTGRES_URL``.
        settings: extra server settings (``-c name=value``) for a local cluster.
        startup_timeout: seconds to wait for a local server to accept connections.
    """

    def __init__(
        self,
        bindir: str | os.PathLike[str] | None = None,
        *,
        external_url: str | None = None,
        settings: Mapping[str, str] | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        if external_url is None:
            external_url = os.environ.get(ENV_URL) or None
        if external_url is not None and urlsplit(external_url).scheme not in (
            "postgres",
            "postgresql",
        ):
            raise ValueError(
                f"{ENV_URL} must be a URL like postgresql://user@host:port/postgres, "
                f"got {external_url!r}"
            )
        self._external_url = external_url
        self._bindir = Path(bindir) if bindir is not None else None
        self._settings = dict(settings or {})
        self._startup_timeout = startup_timeout
        self._tempdir: Path | None = None
        self._port: int | None = None
        self._run_as: _RunAs | None = None
        self._owner_pid: int | None = None
        self._started = False

    # -- properties ---------------------------------------------------------------------

    @property
    def is_external(self) -> bool:
        """True when using the server given by ``LIT_MEMORY_TEST_POSTGRES_URL``."""
        return self._external_url is not None

    @property
    def running(self) -> bool:
        return self._started

    @property
    def host(self) -> str:
        if self._external_url is not None:
            return urlsplit(self._external_url).hostname or "localhost"
        return "127.0.0.1"

    @property
    def port(self) -> int:
        if self._external_url is not None:
            return urlsplit(self._external_url).port or 5432
        if self._port is None:
            raise RuntimeError("the PostgreSQL server is not started")
        return self._port

    @property
    def data_dir(self) -> Path | None:
        """The local cluster's data directory (``None`` for an external server)."""
        return self._tempdir / "data" if self._tempdir is not None else None

    @property
    def log_path(self) -> Path | None:
        """The local server's log file (``None`` for an external server)."""
        return self._tempdir / "server.log" if self._tempdir is not None else None

    @property
    def url(self) -> str:
        """DSN of the maintenance database: ``postgresql://postgres@127.0.0.1:<port>/postgres``
        for a local cluster, ``$LIT_MEMORY_TEST_POSTGRES_URL`` as given for an external one."""
        if self._external_url is not None:
            return self._external_url
        return self.dsn("postgres")

    def dsn(self, database: str) -> str:
        """DSN of ``database`` on this server (the database need not exist)."""
        if self._external_url is not None:
            parts = urlsplit(self._external_url)
            return urlunsplit(parts._replace(path="/" + validate_database_name(database)))
        if not self._started:
            raise RuntimeError("the PostgreSQL server is not started")
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{validate_database_name(database)}"

    # -- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> PostgresServer:
        """Start the server (no-op if started, or if using an external server)."""
        if self._started:
            return self
        if self._external_url is not None:
            self._started = True
            return self
        bindir = self._bindir or find_binaries()
        if bindir is None:
            raise RuntimeError(postgres_unavailable_reason() or "PostgreSQL binaries not found")
        self._bindir = bindir
        self._run_as = _system_user() if os.geteuid() == 0 else None
        self._tempdir = _make_tempdir(self._run_as)
        self._owner_pid = os.getpid()
        _LIVE[id(self)] = self
        try:
            self._initdb()
            self._start_postmaster()
        except BaseException:
            self._shutdown()
            raise
        self._started = True
        return self

    def stop(self) -> None:
        """Stop a local server and delete its files (external servers are left alone)."""
        if self._external_url is not None:
            self._started = False
            return
        self._shutdown()

    def _shutdown(self) -> None:
        _LIVE.pop(id(self), None)
        self._started = False
        tempdir = self._tempdir
        if tempdir is None:
            return
        if self._owner_pid is not None and self._owner_pid != os.getpid():
            self._tempdir = None
            return  # a forked child: the server belongs to the parent
        try:
            data = tempdir / "data"
            if (data / "postmaster.pid").exists():
                self._pg_ctl_stop(data)
        finally:
            self._tempdir = None
            self._port = None
            shutil.rmtree(tempdir, ignore_errors=True)

    # -- running the binaries -----------------------------------------------------------

    def _run(
        self, args: list[str], *, timeout: float, what: str
    ) -> subprocess.CompletedProcess[str]:
        assert self._bindir is not None and self._tempdir is not None
        command = [str(self._bindir / args[0]), *args[1:]]
        kwargs: dict[str, Any] = {}
        if self._run_as is not None:
            kwargs.update(user=self._run_as.uid, group=self._run_as.gid, extra_groups=[])
        try:
            return subprocess.run(
                command,
                cwd=self._tempdir,
                env=_clean_env(self._tempdir if self._run_as is not None else None),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=timeout,
                check=False,
                **kwargs,
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"{what} timed out after {timeout:.0f}s") from exc
        except OSError as exc:
            user = f" as user {self._run_as.name!r}" if self._run_as else ""
            raise RuntimeError(f"{what}: could not run {command[0]}{user}: {exc}") from exc

    def _initdb(self) -> None:
        assert self._tempdir is not None
        result = self._run(
            [
                "initdb",
                "-D", str(self._tempdir / "data"),
                f"--username={SUPERUSER}",
                "--auth-local=trust",
                "--auth-host=trust",
                "-E", "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            timeout=120,
            what="initdb",
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(
                f"initdb failed (exit {result.returncode}):\n{result.stdout.strip()}"
            )

    def _server_options(self, port: int) -> str:
        assert self._tempdir is not None
        settings = {
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "listen_addresses": "127.0.0.1",
            "port": str(port),
            "unix_socket_directories": str(self._tempdir),
            "max_connections": "200",
            **self._settings,
        }
        # pg_ctl passes this string to the postgres command line through /bin/sh.
        options = ["-F"]
        for name, value in settings.items():
            if re.fullmatch(r"[a-z_][a-z0-9_.]*", name) is None:
                raise ValueError(f"invalid server setting name {name!r}")
            options += ["-c", shlex.quote(f"{name}={value}")]
        return " ".join(options)

    def _start_postmaster(self) -> None:
        assert self._tempdir is not None
        log = self._tempdir / "server.log"
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            port = _free_port()
            log_start = log.stat().st_size if log.exists() else 0
            try:
                result = self._run(
                    [
                        "pg_ctl", "start",
                        "-D", str(self._tempdir / "data"),
                        "-l", str(log),
                        "-w",
                        "-t", str(max(1, int(self._startup_timeout))),
                        "-o", self._server_options(port),
                    ],
                    timeout=self._startup_timeout + 30,
                    what="pg_ctl start",
                )  # fmt: skip
            except RuntimeError as exc:
                raise RuntimeError(f"{exc}\n--- tail of {log} ---\n{_tail(log)}") from exc
            if result.returncode == 0:
                self._port = port
                return
            new_log = log.read_bytes()[log_start:].decode(errors="replace") if log.exists() else ""
            port_taken = "could not bind" in new_log or "already in use" in new_log
            if port_taken and attempt < _PORT_ATTEMPTS:
                continue  # another process took the port between our probe and the bind
            raise RuntimeError(
                f"PostgreSQL server failed to start (pg_ctl exit {result.returncode}):\n"
                f"{result.stdout.strip()}\n--- tail of {log} ---\n{_tail(log)}"
            )

    def _pg_ctl_stop(self, data: Path) -> None:
        pid = _read_postmaster_pid(data)
        try:
            result = self._run(
                ["pg_ctl", "stop", "-D", str(data), "-m", "immediate", "-w", "-t", "30"],
                timeout=60,
                what="pg_ctl stop",
            )
            stopped = result.returncode == 0
        except Exception:
            stopped = False
        if pid is None or stopped or not _is_postmaster_of(pid, data):
            return
        # pg_ctl could not stop it: kill the postmaster; its children exit when it dies.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)

    # -- databases ----------------------------------------------------------------------

    def create_database(self, name: str) -> str:
        """Create the empty database ``name`` and return its DSN.

        Fails (``asyncpg.DuplicateDatabaseError``) if it already exists.
        """
        validate_database_name(name)
        self._require_started()

        async def create(conn: Any) -> None:
            # The name is validated above and quoted here; it cannot carry SQL.
            await conn.execute(
                f'CREATE DATABASE "{name}" TEMPLATE template0 '
                "ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C.UTF-8'"
            )

        self._with_connection(create)
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        """Drop the database ``name`` if it exists, disconnecting its clients (PostgreSQL 13+)."""
        validate_database_name(name)
        if name in _PROTECTED_DATABASES:
            raise ValueError(f"refusing to drop the {name!r} database")
        self._require_started()

        async def drop(conn: Any) -> None:
            force = " WITH (FORCE)" if conn.get_server_version().major >= 13 else ""
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}"{force}')

        self._with_connection(drop)

    def _require_started(self) -> None:
        if not self._started:
            raise RuntimeError("the PostgreSQL server is not started: call start() first")

    def _with_connection(self, action: Callable[[Any], Awaitable[None]]) -> None:
        import asyncpg

        url = self.url

        async def run() -> None:
            conn = await asyncpg.connect(url, timeout=30)
            try:
                await action(conn)
            finally:
                await conn.close()

        _run_async(run)

    def __repr__(self) -> str:
        if self._external_url is not None:
            where = f"external {self.host}:{self.port}"
        elif self._started:
            where = f"127.0.0.1:{self._port}"
        else:
            where = "not started"
        return f"<PostgresServer {where}>"


def _is_postmaster_of(pid: int, data: Path) -> bool:
    """Whether ``pid`` is still the postmaster serving ``data`` (guards against PID reuse)."""
    if not _pid_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # no /proc at all: trust postmaster.pid
    except OSError:
        return False
    return os.fsencode(str(data)) in cmdline


def _read_postmaster_pid(data: Path) -> int | None:
    try:
        first = (data / "postmaster.pid").read_text().split("\n", 1)[0].strip()
        return int(first)
    except (OSError, ValueError):
        return None
