"""What a newcomer does: start Hubgate and the simulator, paste the README's curl, get an instance.

Runs the real commands as separate processes, on a fresh data dir with its own embedded
PostgreSQL, exactly as `make serve` and `make sim` start them.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _get_json(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - loopback only
        found: dict[str, object] = json.loads(answer.read())
    return found


def wait_for(url: str, process: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{process.args} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - loopback only
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {seconds} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def exported(log: Path) -> dict[str, str]:
    return dict(re.findall(r"^export (\w+)=(\S+)$", log.read_text(), flags=re.M))


def readme_block(start: str) -> str:
    """The README's bash block that begins with ``start``, as printed."""
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
    return next(b for b in blocks if b.startswith(start))


# What the newcomer pastes, in order: create an instance and keep its token and id, send a
# message and find it with `where`, then move it along in the simulator.
README_STEPS = (
    "ANSWER=$(curl",
    'H="Authorization: Element',
    "curl -s -X POST http://127.0.0.1:8090",
)


@pytest.fixture
def newcomer_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUBGATE_")}
    env.update(
        HUBGATE_DATA_DIR=str(tmp_path / "var"),
        HUBGATE_PORT=str(free_port()),
        HUBGATE_EGRESS_ALLOW="127.0.0.0/8",
    )
    return env


def hubgate(*args: str) -> list[str]:
    return [sys.executable, "-m", "hubgate", *args]


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    # Output goes to a file: a pipe nobody reads would block a chatty server.
    with log.open("ab") as sink:
        return subprocess.Popen(args, env=env, stdout=sink, stderr=subprocess.STDOUT)


def test_readme_curl_provisions_against_make_serve_and_the_simulator(
    newcomer_env: dict[str, str], tmp_path: Path
) -> None:
    env = newcomer_env
    port = env["HUBGATE_PORT"]
    sim_port = free_port()
    server = start(hubgate("serve"), env, tmp_path / "serve.log")
    sim = start(hubgate("sim", "twilio", "--port", str(sim_port)), env, tmp_path / "sim.log")
    try:
        wait_for(f"http://127.0.0.1:{port}/elements/api-v2/hubs", server)
        wait_for(f"http://127.0.0.1:{sim_port}/_sim/accounts", sim)
        bootstrap_file = Path(env["HUBGATE_DATA_DIR"]) / "bootstrap.json"
        assert bootstrap_file.stat().st_mode & 0o077 == 0
        bootstrap = json.loads(bootstrap_file.read_text())
        # The newcomer pastes the export lines the two commands printed.
        printed = exported(tmp_path / "serve.log") | exported(tmp_path / "sim.log")
        assert printed["HUBGATE_USER_SECRET"] == bootstrap["user"]["secret"]
        assert printed["HUBGATE_ORG_SECRET"] == bootstrap["organization"]["secret"]
        shell_env = dict(env, **printed)
        outputs = []
        # One shell, as one terminal: what a step keeps (TOKEN, SID) the next one uses. Each
        # step's output is fenced so that it can be read back on its own.
        script = "set -e\n" + "".join(
            f"{readme_block(step)}\necho '@@step-done@@'\n" for step in README_STEPS
        )
        script += 'echo "TOKEN=$TOKEN INSTANCE_ID=$INSTANCE_ID SID=$SID"\n'
        command = script.replace("127.0.0.1:8080", f"127.0.0.1:{port}").replace(
            "127.0.0.1:8090", f"127.0.0.1:{sim_port}"
        )
        result = subprocess.run(
            ["bash", "-c", command], env=shell_env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        *outputs, kept = result.stdout.split("@@step-done@@\n")
        created_output, listing_output, status_output = outputs
        instance = json.loads(created_output)
        assert instance["element"]["key"] == "twiliov2", result.stdout
        assert instance["configuration"]["password"] == "********"
        assert instance["valid"] is True
        assert instance["token"]
        # The two lines after the create kept the token and the id.
        sent = json.loads(listing_output.split("\n", 1)[0])
        assert kept.strip() == (
            f"TOKEN={instance['token']} INSTANCE_ID={instance['id']} SID={sent['sid']}"
        )
        # The where example found the message just sent (headers first, then the list; text
        # mode turned the header lines' CRLF into LF).
        head, _, listing = listing_output.split("\n", 1)[1].partition("\n\n")
        assert head.startswith("HTTP/1.1 200"), head
        assert [m["sid"] for m in json.loads(listing)] == [sent["sid"]]
        # The simulator moved the message along, as the README says.
        assert json.loads(status_output)["status"] == "delivered"
        controls = _get_json(f"http://127.0.0.1:{sim_port}/_sim/")["controls"]
        assert {"POST", "/_sim/messages/{sid}/status"} <= {
            v for c in controls for v in (c["method"], c["path"])
        }

        # A second organization from the CLI, as D7 prints it.
        created = subprocess.run(
            hubgate(
                *("orgs", "create", "--name", "Acme", "--email", "ops@acme.test"),
                *("--first-name", "Ada", "--last-name", "Lovelace", "--json"),
            ),
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        org = json.loads(created.stdout)
        assert set(org) == {"organization", "account", "user"}
        assert org["organization"]["name"] == "Acme"
        assert org["organization"]["secret"]
        assert org["user"]["email"] == "ops@acme.test"
        assert (org["user"]["firstName"], org["user"]["lastName"]) == ("Ada", "Lovelace")
        assert org["user"]["secret"]

        # Rotate the key, restart, rewrap: the instance is still whole.
        subprocess.run(hubgate("keys", "rotate"), env=env, check=True, timeout=60)
        stop(server)
        server = start(hubgate("serve"), env, tmp_path / "serve.log")
        wait_for(f"http://127.0.0.1:{port}/elements/api-v2/hubs", server)
        rewrap = subprocess.run(
            hubgate("keys", "rewrap"),
            env=env,
            check=True,
            timeout=60,
            capture_output=True,
            text=True,
        )
        assert "Rewrapped 2 ciphertexts" in rewrap.stdout
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/elements/api-v2/instances/{instance['id']}",
            headers={
                "Authorization": f"User {shell_env['HUBGATE_USER_SECRET']}, "
                f"Organization {shell_env['HUBGATE_ORG_SECRET']}"
            },
        )
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            again = json.loads(answer.read())
        assert again["token"] == instance["token"]
        keyring = json.loads((Path(env["HUBGATE_DATA_DIR"]) / "keyring.json").read_text())
        assert len(keyring["keys"]) == 2
    finally:
        stop(server)
        stop(sim)
