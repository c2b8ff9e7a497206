"""Each benchmark run briefly against a target made to fail: it exits non-zero and prints and
saves no figure for that target (issue 16). The shared rule itself is bench/failures.py."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bench.events import KEY, check_notifications
from bench.failures import Failures, paired_ratio
from standardwebhooks import Webhook

from sims.receiver import Received

ROOT = Path(__file__).resolve().parents[2]


def run_bench(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )


@pytest.mark.slow
def test_load_against_a_server_that_answers_429_reports_no_figure(tmp_path: Path) -> None:
    # One client, bounded by a request count rather than by time: its choices follow
    # random.Random(0), which calls the hub through the same instance twice within 20
    # requests, however slow the machine; one hub call per instance is all the limit allows.
    out = tmp_path / "load.json"
    ran = run_bench(
        "load.py",
        "--clients=1",
        "--seconds=600",
        "--max-requests=20",
        "--setting=HUBGATE_HUB_RATE_PER_SECOND=0.001",
        "--setting=HUBGATE_HUB_RATE_BURST=1",
        f"--out={out}",
    )
    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert "load: FAILED, no figure" in ran.stdout
    assert "hub: status 429" in ran.stdout
    assert "req/s" not in ran.stdout
    assert "p50" not in ran.stdout
    saved = json.loads(out.read_text())
    assert saved["failures"]["hub: status 429"] > 0
    assert not {"per_second", "p50_ms", "p99_ms", "kinds", "check"} & set(saved)


@pytest.mark.slow
def test_provision_against_a_server_that_refuses_every_body_reports_no_figure(
    tmp_path: Path,
) -> None:
    out = tmp_path / "provision.json"
    ran = run_bench(
        "provision.py",
        "--count=5",
        "--concurrency=1,2",
        "--setting=HUBGATE_MAX_BODY_BYTES=64",
        f"--out={out}",
    )
    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert "1 clients: FAILED, no figure: status 413 x5" in ran.stdout
    assert "2 clients: FAILED, no figure: status 413 x5" in ran.stdout
    saved = json.loads(out.read_text())
    assert saved["rows"] == [
        {"concurrency": 1, "failures": {"status 413": 5}},
        {"concurrency": 2, "failures": {"status 413": 5}},
    ]


@pytest.mark.slow
def test_events_against_a_receiver_that_answers_500_reports_no_figure(tmp_path: Path) -> None:
    out = tmp_path / "events.json"
    ran = run_bench(
        "events.py",
        "--phases=deliveries",
        "--instances=1",
        "--deliveries=5",
        "--receiver-fails=100000",
        "--deliver-within=5",
        f"--out={out}",
    )
    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert "deliveries: FAILED, no figure" in ran.stdout
    assert "notification missing x5" in ran.stdout
    # No rate after the deliveries ("38.6/s"); lines naming files (the temporary folder may
    # hold "/s" of its own) are left out of the search.
    after = ran.stdout.split("deliveries done", 1)[1].splitlines()
    printed = "\n".join(line for line in after if str(tmp_path) not in line)
    assert not re.search(r"\d/s\b", printed), printed
    saved = json.loads(out.read_text())
    assert saved["deliveries"] == {"failures": {"notification missing": 5, "event not NOTIFIED": 5}}
    assert saved["summary"] == {}


@pytest.mark.slow
def test_formulas_whose_vendor_refuses_every_message_report_no_figure(tmp_path: Path) -> None:
    out = tmp_path / "formulas.json"
    ran = run_bench(
        "formulas.py",
        "--phases=throughput",
        "--executions=3",
        "--rounds=1",
        "--vendor-fails=100",
        "--within=60",
        f"--out={out}",
    )
    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert "throughput: FAILED, no figure" in ran.stdout
    assert "execution failed x3" in ran.stdout
    assert "message missing x3" in ran.stdout
    assert "executions/s" not in ran.stdout
    saved = json.loads(out.read_text())
    assert set(saved["throughput"]) == {"failures"}
    assert saved["throughput"]["failures"]["message missing"] == 3


def notification(webhook_id: str, body: bytes, *, status: int = 200, key: str = KEY) -> Received:
    """A notification as Hubgate signs it (both schemes), computed here with ``key``."""
    mac = hmac.new(key.encode(), body, hashlib.sha256).digest()
    now = datetime.now(tz=UTC)
    signed = {
        "elements-webhook-id": webhook_id,
        "elements-webhook-signature": "sha256=" + base64.b64encode(mac).decode(),
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(key.encode()).sign(webhook_id, now, body.decode()),
    }
    return Received(time.monotonic(), signed, body, status)


def test_notifications_checked_for_both_signatures_and_doubles() -> None:
    good = notification("a", b'{"n": 1}')
    failures = Failures()
    assert check_notifications(failures, "d", [good, notification("b", b"{}")]) == 2
    assert failures.clean("d")

    # The HMAC signature of another body, the Standard Webhooks one of another key, the same
    # id accepted twice; a 500 answer is not a delivery and is not checked.
    forged = notification("c", b"{}")
    forged.headers["elements-webhook-signature"] = good.headers["elements-webhook-signature"]
    other_key = notification("d", b"{}", key="another key")
    other_key.headers["elements-webhook-signature"] = notification("d", b"{}").headers[
        "elements-webhook-signature"
    ]
    refused = notification("e", b"{}", status=500, key="another key")
    counted = check_notifications(failures, "d", [good, good, forged, other_key, refused])
    assert counted == 3
    assert failures.by_target["d"] == {
        "bad Elements-Webhook-Signature": 1,
        "bad Standard Webhooks signature": 1,
        "notification accepted twice": 1,
    }
    assert failures.exit_code() == 1


def test_a_failed_target_has_no_figure_and_ratios_are_paired() -> None:
    failures = Failures()
    assert failures.status("a", 200)
    assert not failures.status("b", 429)
    failures.note("b", "ServerDisconnectedError")
    assert failures.figures("a", {"p50_ms": 1}) == {"p50_ms": 1}
    assert failures.figures("b", {"p50_ms": 1}) == {
        "failures": {"status 429": 1, "ServerDisconnectedError": 1}
    }
    assert failures.exit_code() == 1
    assert Failures().exit_code() == 0
    # Per-round ratios 2, 0.5, 3: their median is 2, the ratio of the medians would be 1.
    assert paired_ratio([2, 1, 3], [1, 2, 1]) == 2
    with pytest.raises(ValueError, match="same non-zero number of rounds"):
        paired_ratio([1, 2], [1])


@pytest.mark.slow
def test_transform_against_a_server_that_answers_429_reports_no_figure(tmp_path: Path) -> None:
    out = tmp_path / "transform.json"
    ran = run_bench(
        "transform.py",
        "--duration=1",
        "--repeat=1",
        "--connections=4",
        "--setting=HUBGATE_HUB_RATE_PER_SECOND=0.001",
        "--setting=HUBGATE_HUB_RATE_BURST=1",
        f"--out={out}",
    )
    assert ran.returncode == 1, ran.stdout + ran.stderr
    for target in ("a_plain", "b_mapped", "c_scripted"):
        assert f"{target}: FAILED, no figure: non-2xx answers" in ran.stdout
    assert "of plain" in ran.stdout  # the header, and no row under it
    saved = json.loads(out.read_text())
    for target in ("a_plain", "b_mapped", "c_scripted"):
        assert set(saved["results"][target]) == {"failures"}
    assert saved["load_average"]


@pytest.mark.slow
def test_proxy_against_a_hubgate_that_answers_429_prints_no_ratio() -> None:
    # Issue 15: make bench-proxy once printed (d)/(c) = 2.4 over 182,334 answers that were all
    # 429. Here each worker allows one call in all, so the measured round sees 429s: Hubgate's
    # row and every ratio with it are refused, the other targets' figures stand.
    ran = run_bench(
        "proxy/run.py",
        "--duration=1",
        "--repeat=1",
        "--connections=1",
        "--extra-connections=0",
        "--setting=HUBGATE_HUB_RATE_PER_SECOND=0.001",
        "--setting=HUBGATE_HUB_RATE_BURST=1",
    )
    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert re.search(r"d_hubgate @1: FAILED, no figure: .*non-2xx answer", ran.stdout), ran.stdout
    assert "d/c @1: no ratio: d_hubgate failed" in ran.stdout
    assert "d/e @1: no ratio: d_hubgate failed" in ran.stdout
    assert re.search(r"^\s+1 c_passthrough\s+\d+", ran.stdout, re.M), ran.stdout
    saved = Path(re.search(r"saved (\S+)", ran.stdout).group(1))  # type: ignore[union-attr]
    result = json.loads((ROOT / saved).read_text())
    (ROOT / saved).unlink()
    assert set(result["results"]["d_hubgate"]["1"]) == {"failures"}
    assert "rps" in result["results"]["c_passthrough"]["1"]
