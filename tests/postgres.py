"""A throwaway PostgreSQL server for the tests, and the pytest fixtures around it.

`PostgresServer` runs Debian's PostgreSQL (`initdb`, `pg_ctl`) on a cluster of its own in a
temporary folder, on 127.0.0.1 and a free port, tuned for speed (no fsync). The role
`responder` logs in over TCP with a password checked by scram-sha-256, as in production, so
a wrong password fails; the superuser `postgres` has a password of its own over TCP and is
trusted on the server's Unix socket.

`initdb` refuses to run as root (CI runs the tests as root): then the cluster's folders
belong to the `postgres` user and every server command runs through `runuser -u postgres --`
(or `su`), never as root.

`postgres_server` is one server per pytest run; `pg_url` is the URL of a fresh database per
test. Without the binaries the tests skip, except in CI (`CI` set), where they fail. A test
module takes the fixtures by binding them (an import would make each test that takes them as
an argument a redefinition, ruff's F811):

    from tests import postgres

    postgres_server = postgres.postgres_server
    pg_url = postgres.pg_url

Tests that stop or kill a server should start one of their own (`with PostgresServer(tmp_path)
as server:`, about 0.6 s), not disturb the shared one.
"""

from __future__ import annotations

import itertools
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import psycopg
import pytest
from psycopg import sql

USER = "responder"
PASSWORD = "pw-secret-0123"
DATABASE = "responder"
SUPERUSER = "postgres"
SUPERUSER_PASSWORD = "pg-admin-0123"
OS_USER = "postgres"  # who runs the server when the tests run as root

START_TIMEOUT = 30.0  # seconds
STOP_TIMEOUT = 30.0
MISSING = "PostgreSQL not found: install Debian's postgresql package (apt-get install postgresql)"

# Fast and throwaway: nothing is flushed to disk. synchronous_commit stays on: with fsync off
# it costs only a write() per commit, and off it would let kill() lose the last commits
# (the WAL writer dies with the postmaster before writing them).
SERVER_OPTIONS = ("-c fsync=off", "-c full_page_writes=off")

HBA = """\
# Written by tests/postgres.py.
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 trust
host    all       all   127.0.0.1/32  scram-sha-256
"""


class PostgresUnavailable(Exception):  # noqa: N818 - a reason to skip, not an error
    """PostgreSQL cannot run here; the message says why (the skip reason)."""


def find_binaries() -> Path | None:
    """The folder holding `initdb` and `pg_ctl`: from PATH, else Debian's newest version."""
    initdb = shutil.which("initdb")
    if initdb:
        for folder in (Path(initdb).resolve().parent, Path(initdb).parent):
            if _has_binaries(folder):
                return folder
    versions = []
    for folder in Path("/usr/lib/postgresql").glob("*/bin"):
        version = folder.parent.name
        if _has_binaries(folder) and re.fullmatch(r"\d+(\.\d+)*", version):
            versions.append((tuple(int(part) for part in version.split(".")), folder))
    return max(versions)[1] if versions else None


def _has_binaries(folder: Path) -> bool:
    return all(os.access(folder / name, os.X_OK) for name in ("initdb", "pg_ctl"))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid ...": comm may hold spaces and parentheses
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class PostgresServer:
    """A throwaway cluster in a temporary folder, on 127.0.0.1 and a free port."""

    def __init__(self, base_dir: Path, *, durable: bool = False) -> None:
        """`durable`: fsync on, as in production (benchmarks); the tests run without it."""
        self.base_dir = Path(base_dir)
        self._options = () if durable else SERVER_OPTIONS
        self.port = _free_port()
        self._bin: Path | None = None
        self._as_root = os.geteuid() == 0
        self._own_root: Path | None = None  # made outside base_dir, removed on exit
        self._root: Path | None = None
        self._socket_dir: Path | None = None
        self._running = False
        self._started_once = False
        self._db_names = itertools.count(1)

    # -- paths ------------------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        return self._prepare() / "data"

    @property
    def log_file(self) -> Path:
        return self._prepare() / "server.log"

    @property
    def socket_dir(self) -> Path:
        self._prepare()
        assert self._socket_dir is not None
        return self._socket_dir

    def _prepare(self) -> Path:
        """The cluster's folder, made once (and handed to the `postgres` user as root)."""
        if self._root is not None:
            return self._root
        self._bin = find_binaries()
        if self._bin is None:
            raise PostgresUnavailable(MISSING)
        if self._as_root:
            try:
                pwd.getpwnam(OS_USER)
            except KeyError:
                raise PostgresUnavailable(
                    f"running as root and there is no {OS_USER!r} user to run PostgreSQL as "
                    "(Debian's postgresql package creates it)"
                ) from None
        self.base_dir.mkdir(parents=True, exist_ok=True)
        root = self.base_dir / "postgres"
        if self._as_root and not self._reachable(self.base_dir):
            # pytest's temporary folders are private to root: use one the user can reach
            root = self._own_root = Path(tempfile.mkdtemp(prefix="pg-cluster-"))
        root.mkdir(exist_ok=True)
        # Unix socket paths are short (107 bytes): the socket gets a short folder of its own
        self._socket_dir = Path(tempfile.mkdtemp(prefix="pg-socket-"))
        if self._as_root:
            for folder in (root, self._socket_dir):
                shutil.chown(folder, OS_USER, OS_USER)
        self._root = root
        return root

    def _reachable(self, folder: Path) -> bool:
        probe = self._command(["test", "-x", str(folder)])
        return subprocess.run(probe, cwd="/", capture_output=True, check=False).returncode == 0

    # -- commands ---------------------------------------------------------------------------

    def _command(self, argv: list[str]) -> list[str]:
        """argv as the server's user: through runuser (or su) when running as root."""
        if not self._as_root:
            return argv
        if shutil.which("runuser"):
            return ["runuser", "-u", OS_USER, "--", *argv]
        return ["su", "-s", "/bin/sh", OS_USER, "-c", shlex.join(argv)]

    def _run(self, tool: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        assert self._bin is not None
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        for name in ("PGDATA", "PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE"):
            env.pop(name, None)
        try:
            return subprocess.run(
                self._command([str(self._bin / tool), *args]),
                cwd=self._prepare(),  # the server's user can enter it (root's cwd may be private)
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise PostgresUnavailable(
                f"{tool} did not finish within {timeout:.0f} s{self._log_tail()}"
            ) from error

    def _log_tail(self, lines: int = 20) -> str:
        try:
            tail = self.log_file.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return "\n--- server log (tail) ---\n" + "\n".join(tail) if tail else ""

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the server (making the cluster on the first start); waits until it accepts."""
        if self._running:
            return
        fresh = not (self.data_dir / "PG_VERSION").exists()
        if fresh:
            self._initdb()
        attempts = 1 if self._started_once else 3  # a restart keeps its port
        for attempt in range(attempts):
            try:
                self._pg_ctl_start()
                break
            except PostgresUnavailable as error:
                if attempt + 1 == attempts or "Address already in use" not in str(error):
                    raise
                self.port = _free_port()  # another process took the port meanwhile
        self._running = self._started_once = True
        if fresh:
            self._create_roles()

    def _initdb(self) -> None:
        done = self._run(
            "initdb",
            "-D",
            str(self.data_dir),
            "-U",
            SUPERUSER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
            timeout=START_TIMEOUT,
        )
        if done.returncode != 0:
            raise PostgresUnavailable(f"initdb failed:\n{done.stdout}{done.stderr}")
        hba = self.data_dir / "pg_hba.conf"
        hba.write_text(HBA)
        if self._as_root:
            shutil.chown(hba, OS_USER, OS_USER)

    def _pg_ctl_start(self) -> None:
        options = [
            f"-p {self.port}",
            f"-k {self.socket_dir}",
            "-c listen_addresses=127.0.0.1",
            *self._options,
        ]
        done = self._run(
            "pg_ctl",
            "start",
            "-w",
            "-t",
            str(int(START_TIMEOUT)),
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-o",
            " ".join(options),
            timeout=START_TIMEOUT + 5,
        )
        if done.returncode != 0:
            raise PostgresUnavailable(
                f"PostgreSQL did not start on 127.0.0.1:{self.port} within "
                f"{START_TIMEOUT:.0f} s:\n{done.stdout}{done.stderr}{self._log_tail()}"
            )

    def _create_roles(self) -> None:
        with self._admin() as admin:
            admin.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(SUPERUSER), sql.Literal(SUPERUSER_PASSWORD)
                )
            )
            admin.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(USER), sql.Literal(PASSWORD)
                )
            )
            admin.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(DATABASE), sql.Identifier(USER)
                )
            )

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        """The superuser on the Unix socket (trusted), autocommit."""
        return psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            user=SUPERUSER,
            dbname="postgres",
            autocommit=True,
            connect_timeout=10,
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: mode "smart", "fast" (default) or "immediate"."""
        if not self._running:
            return
        done = self._run(
            "pg_ctl",
            "stop",
            "-w",
            "-t",
            str(int(STOP_TIMEOUT)),
            "-D",
            str(self.data_dir),
            "-m",
            mode,
            timeout=STOP_TIMEOUT + 5,
        )
        if done.returncode != 0:
            raise PostgresUnavailable(
                f"PostgreSQL did not stop:\n{done.stdout}{done.stderr}{self._log_tail()}"
            )
        self._running = False

    def kill(self) -> None:
        """SIGKILL the postmaster, as if the database were lost while running.

        Returns once its children are gone too (they exit on the postmaster's death), so that
        `start()` can run crash recovery on the same data.
        """
        if not self._running:
            return
        lock = self.data_dir / "postmaster.pid"
        pid = int(lock.read_text().split()[0])
        children = _children(pid)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in (pid, *children)) and time.monotonic() < deadline:
            time.sleep(0.01)
        for child in children:
            if _alive(child):
                os.kill(child, signal.SIGKILL)
        # The dead postmaster stays a zombie until init reaps it (here up to ~2 s later), and
        # PostgreSQL takes a lock file whose PID still exists for a live server's: remove the
        # stale lock files, as an operator would (every process of the server is dead).
        if Path(f"/proc/{pid}").exists():
            for stale in (lock, self.socket_dir / f".s.PGSQL.{self.port}.lock"):
                stale.unlink(missing_ok=True)
        self._running = False

    def restart(self) -> None:
        """Stop and start again, on the same port and data."""
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self._running

    # -- URLs -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{DATABASE}"

    def admin_url(self) -> str:
        """The superuser over TCP, with its own password."""
        return f"postgresql://{SUPERUSER}:{SUPERUSER_PASSWORD}@127.0.0.1:{self.port}/postgres"

    def new_database(self, name: str) -> str:
        """CREATE DATABASE name OWNER responder; returns its URL for `responder`."""
        with self._admin() as admin:
            admin.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(USER)
                )
            )
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{name}"

    def unique_name(self, hint: str = "test") -> str:
        """A database name not used yet on this server, from a hint such as a test's name."""
        cleaned = re.sub(r"[^a-z0-9_]+", "_", hint.lower()).strip("_") or "test"
        return f"t{next(self._db_names)}_{cleaned}"[:63]

    # -- context manager --------------------------------------------------------------------

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the server and remove what was made outside base_dir."""
        try:
            if self._running:
                try:
                    self.stop("immediate")
                except PostgresUnavailable:
                    self.kill()
        finally:
            if self._own_root is not None:
                # keep the server log next to the test's files
                if self.log_file.exists():
                    shutil.copy(self.log_file, self.base_dir / "server.log")
                shutil.rmtree(self._own_root, ignore_errors=True)
            if self._socket_dir is not None:
                shutil.rmtree(self._socket_dir, ignore_errors=True)


# -- pytest fixtures ------------------------------------------------------------------------


def _unavailable(reason: str) -> None:
    """Skip, except in CI (`CI` set), where a missing PostgreSQL fails the run."""
    if os.environ.get("CI"):
        pytest.fail(f"the PostgreSQL tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server for the whole run."""
    if find_binaries() is None:
        _unavailable(MISSING)
    server = PostgresServer(tmp_path_factory.mktemp("postgres"))
    try:
        server.start()
    except PostgresUnavailable as error:
        server.close()
        _unavailable(str(error))
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def pg_url(postgres_server: PostgresServer, request: pytest.FixtureRequest) -> str:
    """The URL of a fresh database of its own for this test (owner `responder`)."""
    if not postgres_server.running:  # a test stopped or killed the shared server
        postgres_server.start()
    return postgres_server.new_database(postgres_server.unique_name(request.node.name))
