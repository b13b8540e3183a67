"""The throwaway PostgreSQL server of tests/postgres.py: what the state backend's tests rely on.

A fresh database per test over TCP with the production password check, data kept across a
restart, crash recovery after the server is killed, and databases independent of each other.
Tests that stop or kill a server use one of their own, not the run's shared one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests import postgres
from tests.postgres import MISSING, PASSWORD, PostgresServer, PostgresUnavailable, find_binaries

# The shared fixtures, without a conftest (bound by assignment: as imports, every test taking
# them as arguments would be a "redefinition of an unused name", F811)
postgres_server = postgres.postgres_server
pg_url = postgres.pg_url


@pytest.fixture
def own_server(postgres_server: PostgresServer, tmp_path: Path) -> Iterator[PostgresServer]:
    """A server of this test's own (after the shared one, so it skips or fails likewise)."""
    with PostgresServer(tmp_path) as server:
        yield server


def test_a_fresh_database_stores_and_reads_rows(pg_url: str) -> None:
    assert pg_url.startswith(f"postgresql://responder:{PASSWORD}@127.0.0.1:")
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE state (key text PRIMARY KEY, value jsonb NOT NULL)")
        conn.execute(
            "INSERT INTO state VALUES (%s, %s), (%s, %s)",
            ("conv-1", '{"replied": true}', "conv-2", '{"replied": false}'),
        )
        conn.commit()
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT key, value FROM state ORDER BY key").fetchall()
        user, owner = conn.execute(
            "SELECT current_user, pg_get_userbyid(datdba) FROM pg_database "
            "WHERE datname = current_database()"
        ).fetchone() or (None, None)
    assert rows == [("conv-1", {"replied": True}), ("conv-2", {"replied": False})]
    assert (user, owner) == ("responder", "responder")


def test_a_wrong_password_fails_authentication(
    pg_url: str, postgres_server: PostgresServer
) -> None:
    wrong = pg_url.replace(f":{PASSWORD}@", ":not-the-password@")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong, connect_timeout=5)
    nameless = pg_url.replace(f":{PASSWORD}@", "@")
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(nameless, connect_timeout=5)
    # the superuser too has a password over TCP
    with psycopg.connect(postgres_server.admin_url()) as admin:
        assert admin.execute(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone() == (True,)


def test_fresh_databases_are_independent(pg_url: str, postgres_server: PostgresServer) -> None:
    other = postgres_server.new_database(postgres_server.unique_name("other"))
    assert other != pg_url
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE state (key text)")
        conn.execute("INSERT INTO state VALUES ('only here')")
    with psycopg.connect(other) as conn:
        assert conn.execute("SELECT to_regclass('state')").fetchone() == (None,)
        conn.execute("CREATE TABLE state (key text)")  # the same name, its own table
        assert conn.execute("SELECT count(*) FROM state").fetchone() == (0,)


def test_the_server_never_runs_as_root(postgres_server: PostgresServer) -> None:
    pid = int((postgres_server.data_dir / "postmaster.pid").read_text().split()[0])
    status = Path(f"/proc/{pid}/status").read_text()
    uid = next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:"))
    assert int(uid) != 0
    if os.geteuid() != 0:
        assert int(uid) == os.geteuid()


def test_a_restart_keeps_the_data_and_the_port(own_server: PostgresServer) -> None:
    url = own_server.new_database("kept")
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE state (key text)")
        conn.execute("INSERT INTO state VALUES ('before the restart')")
    own_server.restart()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT key FROM state").fetchall() == [("before the restart",)]


def test_a_killed_server_fails_connections_and_recovers_on_start(
    own_server: PostgresServer,
) -> None:
    url = own_server.new_database("crashed")
    conn = psycopg.connect(url, autocommit=True)
    conn.execute("CREATE TABLE state (key text)")
    conn.execute("INSERT INTO state VALUES ('committed before the crash')")

    own_server.kill()
    with pytest.raises(psycopg.OperationalError):
        conn.execute("SELECT 1")  # the open connection is gone
    conn.close()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2)  # and nothing listens any more

    own_server.start()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT key FROM state").fetchall() == [("committed before the crash",)]
    assert "automatic recovery in progress" in own_server.log_file.read_text()


def test_without_binaries_the_server_is_unavailable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("tests.postgres.find_binaries", lambda: None)
    with pytest.raises(PostgresUnavailable, match="apt-get install postgresql"):
        PostgresServer(tmp_path).start()
    assert "install Debian's postgresql package" in MISSING


def test_find_binaries_finds_initdb_and_pg_ctl(postgres_server: PostgresServer) -> None:
    found = find_binaries()
    assert found is not None
    assert (found / "initdb").exists() and (found / "pg_ctl").exists()
