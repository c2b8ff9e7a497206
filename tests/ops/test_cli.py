"""The CLI's manners (issue 9 item 24): no database made by accident, a bound port before the
address is printed, one clear line for a taken port, and help without markup or type noise."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

from hubgate.cli import _uvicorn_config, app
from hubgate.settings import Settings
from tests.conftest import postmasters_under
from tests.ops.processes import fresh_env, hubgate, start, wait_until


@pytest.mark.parametrize(
    "command", [["events", "status"], ["events", "status", "--json"], ["keys", "rewrap"]]
)
def test_a_command_that_needs_the_database_stops_where_there_is_none(
    tmp_path: Path, command: list[str]
) -> None:
    env = fresh_env(tmp_path)
    done = subprocess.run(
        hubgate(*command), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith(f"No Hubgate database in {tmp_path / 'var'}:"), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "var").exists()
    assert postmasters_under(tmp_path) == []


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def test_a_taken_port_is_one_clear_line(tmp_path: Path, taken_port: int) -> None:
    env = fresh_env(tmp_path, HUBGATE_PORT=str(taken_port))
    done = subprocess.run(hubgate("serve"), env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert lines == [
        f"hubgate serve: cannot listen on 127.0.0.1:{taken_port}: Address already in use"
    ]
    # It failed before it started anything: no database, no data dir.
    assert not (tmp_path / "var").exists()


@pytest.mark.slow
def test_serve_prints_its_address_once_the_port_accepts(tmp_path: Path) -> None:
    env = fresh_env(tmp_path)
    port = int(env["HUBGATE_PORT"])
    serve = start(hubgate("serve"), env, tmp_path / "serve.log")
    try:
        wait_until(lambda: "listens on" in serve.output(), "serve printed no address", 120)
        assert f"Hubgate listens on http://127.0.0.1:{port}/elements/api-v2" in serve.output()
        # Printed means bound: a connection made now is accepted (served once the app is up).
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    finally:
        serve.stop()


def every_command(group: TyperGroup, path: list[str]) -> Iterator[list[str]]:
    yield path
    for name, command in group.commands.items():
        if isinstance(command, TyperGroup):
            yield from every_command(command, [*path, name])
        else:
            yield [*path, name]


def test_help_has_no_markup_and_no_type_noise() -> None:
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    commands = list(every_command(root, []))
    assert ["events", "status"] in commands
    runner = CliRunner()
    for command in commands:
        shown = runner.invoke(app, [*command, "--help"], terminal_width=100)
        assert shown.exit_code == 0, (command, shown.output)
        assert "Usage: " in shown.output
        for noise in ("``", "<bool>", ":class:", ":func:"):
            assert noise not in shown.output, (command, shown.output)


@pytest.mark.parametrize(
    ("level", "access_log"),
    [("debug", True), ("INFO", True), ("warning", False), ("error", False)],
)
def test_serve_builds_access_lines_only_at_a_level_that_writes_them(
    tmp_path: Path, level: str, access_log: bool
) -> None:
    """D551: above info uvicorn's access logger drops every line, so none is built."""
    settings = Settings(data_dir=tmp_path, log_level=level)
    config = _uvicorn_config(settings, "postgresql://unused", workers=1)
    assert config.access_log is access_log
