"""Real ``hubgate`` processes for the operations tests: start, wait, signal, look around."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from sims.twilio_sim import TwilioSimulator
from tests.conftest import API, free_port, twilio_instance_body
from tests.logwatch import remember_log, remember_secret


def hubgate(*args: str) -> list[str]:
    return [sys.executable, "-m", "hubgate", *args]


def fresh_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """A newcomer's environment: its own data dir, hence its own embedded PostgreSQL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUBGATE_")}
    env.update(
        HUBGATE_DATA_DIR=str(tmp_path / "var"),
        HUBGATE_PORT=str(free_port()),
        HUBGATE_EGRESS_ALLOW="127.0.0.0/8",
    )
    env.update(settings)
    return env


@dataclass
class Process:
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait(self, seconds: float = 120) -> int:
        try:
            return self.popen.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.popen.args} still runs after {seconds} s:\n{self.output()[-3000:]}"
            ) from None

    def stop(self) -> None:
        """Best-effort end for a finally block: SIGTERM, then SIGKILL."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def start(args: list[str], env: dict[str, str], log: Path) -> Process:
    # Output goes to a file: a pipe nobody reads would block a chatty server.
    with log.open("ab") as sink:
        popen = subprocess.Popen(args, env=env, stdout=sink, stderr=subprocess.STDOUT)
    remember_log(log)
    return Process(popen, log)


def wait_until(check: Callable[[], bool], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} within {seconds} s")


def answers(url: str) -> int | None:
    """The status ``url`` answers with, or None when nothing listens."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def wait_serving(process: Process, url: str, seconds: float = 90) -> None:
    def up() -> bool:
        if process.popen.poll() is not None:
            raise AssertionError(f"exited with {process.popen.returncode}:\n{process.output()}")
        return answers(url) is not None

    wait_until(up, f"{url} did not answer", seconds)


def postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().split()[0])


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def children(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def bootstrap_authorization(env: dict[str, str]) -> str:
    """The User/Organization header of the tenant a first `hubgate serve` created.

    These two are not given to the run's secrets scan: serve prints them once, by design
    (D7), into the very log the scan reads. Everything else the tests make is.
    """
    created = json.loads((Path(env["HUBGATE_DATA_DIR"]) / "bootstrap.json").read_text())
    user, organization = created["user"]["secret"], created["organization"]["secret"]
    return f"User {user}, Organization {organization}"


def connection_refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


async def provisioned(
    http: aiohttp.ClientSession, base: str, user: dict[str, str], simulator: TwilioSimulator
) -> dict[str, Any]:
    """A Twilio instance made over HTTP, its token remembered for the logs' secret checks."""
    async with http.post(
        f"{base}{API}/instances", json=twilio_instance_body(simulator), headers=user
    ) as created:
        assert created.status == 200
        instance: dict[str, Any] = await created.json()
    remember_secret(instance["token"])
    return instance
