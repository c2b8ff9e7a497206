"""bench/proxy's (d) on two HTTP servers: Hubgate's app on uvicorn (``hubgate serve``) and on
granian, paired with (c), the FastAPI pass-through on uvicorn, in one run (D420).

``hubgate serve --workers 2`` starts the embedded PostgreSQL, migrates and creates the first
tenant; granian then serves the same app factory (``hubgate.app:app_from_environment``, two
workers) on the same database and metrics folder, read from the environment of serve's
workers. Prints, per round and connection level, each target's req/s, p50, p99 and the CPU
microseconds its processes spent per answer (bench/README.md, "CPU per request").

    .venv/bin/python bench/proxy/servers.py [--connections 1,50] [--repeat 3] [--duration 6]

Loopback only; needs nginx, wrk and granian as bench/proxy/run.py does.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.proxy.run import (  # noqa: E402
    BIN,
    HUB_LIMITS,
    NGINX,
    PAGE_PATH,
    ensure_granian,
    ensure_tools,
    free_port,
    provision,
    stop_on_sigterm,
    wait_http,
    write_standin,
)
from bench.proxy.wrk import Target, run_wrk  # noqa: E402

SHARED = ("HUBGATE_DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR")


def worker_environment(master: int) -> dict[str, str]:
    """What serve's workers were given to find the database and the metrics folder."""
    found: dict[str, str] = {}
    for child in Path(f"/proc/{master}/task/{master}/children").read_text().split():
        for pair in Path(f"/proc/{child}/environ").read_bytes().split(b"\0"):
            name, _, value = pair.decode().partition("=")
            if name in SHARED:
                found[name] = value
    missing = [name for name in SHARED if name not in found]
    if missing:
        raise RuntimeError(f"serve's workers have no {', '.join(missing)}")
    return found


def main() -> int:
    stop_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", default="1,50")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--duration", type=int, default=6)
    args = parser.parse_args()
    ensure_tools()
    granian = ensure_granian()
    tmp = Path(tempfile.mkdtemp(prefix="bench-servers-"))
    tmp.chmod(0o755)
    ports = {name: free_port() for name in ("standin", "proxy", "c", "d_uvicorn", "d_granian")}
    write_standin(tmp / "root", 10)
    conf = NGINX.format(
        tmp=tmp, root=tmp / "root", workers=2, standin=ports["standin"], proxy=ports["proxy"]
    )
    (tmp / "nginx.conf").write_text(conf)
    log = (tmp / "servers.log").open("wb")
    processes: list[subprocess.Popen[bytes]] = []

    def spawn(command: list[str], env: dict[str, str]) -> int:
        process = subprocess.Popen(
            command, env={**os.environ, **env}, stdout=log, stderr=log, cwd=ROOT
        )
        processes.append(process)
        return process.pid

    try:
        spawn([shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(tmp / "nginx.conf")], {})
        standin = f"http://127.0.0.1:{ports['standin']}"
        pids = {
            "c": spawn(
                [str(BIN / "uvicorn"), "--workers", "2", "--loop", "uvloop", "--http",
                 "httptools", "--no-access-log", "--log-level", "warning",
                 "bench.proxy.passthrough:app", "--port", str(ports["c"])],
                {"BENCH_UPSTREAM": standin},
            )
        }  # fmt: skip
        hub = {
            "HUBGATE_DATA_DIR": str(tmp / "hub"),
            "HUBGATE_EGRESS_ALLOW": "127.0.0.0/8",
            "HUBGATE_LOG_LEVEL": "warning",
            "HUBGATE_EMBEDDED_WORKER": "false",
            **HUB_LIMITS,
        }
        pids["d_uvicorn"] = spawn(
            [str(BIN / "hubgate"), "serve", "--port", str(ports["d_uvicorn"]), "--workers", "2"],
            hub,
        )
        api = f"http://127.0.0.1:{ports['d_uvicorn']}/elements/api-v2"
        wait_http(f"{api}/hubs", timeout=180)
        pids["d_granian"] = spawn(
            [str(granian), "--interface", "asgi", "--workers", "2", "--loop", "uvloop",
             "--no-ws", "--log-level", "warning", "--port", str(ports["d_granian"]),
             "--factory", "hubgate.app:app_from_environment"],
            {**hub, **worker_environment(pids["d_uvicorn"])},
        )  # fmt: skip
        granian_api = f"http://127.0.0.1:{ports['d_granian']}/elements/api-v2"
        wait_http(f"{granian_api}/hubs", timeout=180)
        wait_http(standin + PAGE_PATH)
        element = {"Authorization": f"Element {provision(api, tmp / 'hub', standin, 1)[0]}"}
        targets = {
            "c": Target(f"http://127.0.0.1:{ports['c']}{PAGE_PATH}?PageSize=100&Page=0"),
            "d_uvicorn": Target(f"{api}/hubs/messaging/messages", element),
            "d_granian": Target(f"{granian_api}/hubs/messaging/messages", element),
        }
        for name, target in targets.items():
            target.pid = pids[name]
            run_wrk(target, 8, 2)  # warm-up
        print(f"load average before: {os.getloadavg()}")
        print(f"{'round':>5} {'conns':>5} {'target':<10} {'req/s':>8} {'p50 ms':>7} "
              f"{'p99 ms':>8} {'CPU us/req':>10} {'errors':>6}")  # fmt: skip
        for number in range(args.repeat):
            for connections in map(int, args.connections.split(",")):
                for name, target in targets.items():
                    run = run_wrk(target, connections, args.duration)
                    print(f"{number:>5} {connections:>5} {name:<10} {run['rps']:>8.0f} "
                          f"{run['p50_ms']:>7.2f} {run['p99_ms']:>8.2f} "
                          f"{run.get('cpu_us_per_req', ''):>10} {run['errors']:>6}",
                          flush=True)  # fmt: skip
        print(f"load average after: {os.getloadavg()}")
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
