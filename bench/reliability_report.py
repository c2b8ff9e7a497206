"""Writes docs/reliability.md from what `make reliability` measured (issue 6).

Reads the folder the run wrote: pytest's JUnit XML (every test, by area, with its outcome and
time), the JSON figures the tests published (tests/results.py) and bench/load.py's result, and
the exit statuses. Writes the page, then exits 1 if anything failed, so that the page is
always current and the command still says when something broke.

    .venv/bin/python bench/reliability_report.py build/reliability docs/reliability.md
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# What each test module tried, grouped into the page's areas.
AREAS: list[tuple[str, str, tuple[str, ...]]] = [
    (
        "Fuzzing (schemathesis)",
        "Every platform route from /elements/api-v2/openapi.json and every hub resource from "
        "the element's own OpenAPI, valid and invalid input, in-process (ASGI) and over HTTP, "
        "as tenant A (user secrets, Element tokens, both, and bad headers) aimed at A's and "
        "B's objects. Checks: no 5xx (a 502 only with the vendor's own provider fields), "
        "documented status, content type, headers and schema, the D9 body with the request "
        "id of the header, invalid input refused, auth enforced, and nothing of tenant B's "
        "(ids, tokens, names, secrets, Twilio objects) in any answer to A.",
        ("tests.fuzz.test_openapi_fuzz", "tests.fuzz.test_hub_fuzz"),
    ),
    (
        "Fuzzing the console",
        "Every console route (HTML under /, read from the app) as tenant A signed in: random "
        "path values (A's and B's instance ids, huge numbers, text), query strings and form "
        "fields, with the page's CSRF token, a forged one or none. Checks: no 5xx, nothing "
        "of B's on any page.",
        ("tests.fuzz.test_console_fuzz",),
    ),
    (
        "Bad input, explicit",
        "Ten bad Authorization headers to every route that reads credentials; invalid UTF-8, "
        "truncated, 100,000-deep and 65-level JSON, NaN, unpaired surrogates, a 2 MB body and "
        "four wrong content types to every route that takes a body; negative, zero, "
        "non-numeric, 5,000-digit and enormous page sizes to every hub list and log; long and "
        "numeric-looking values, control characters, repeated query parameters: each a D9 "
        "4xx (a large page size: a page no larger than the cap), never a 500; and each "
        "defect below as the request that showed it.",
        ("tests.fuzz.test_bad_input", "tests.fuzz.test_regressions", "tests.e2e.test_errors"),
    ),
    (
        "Properties (hypothesis)",
        "The Authorization parser never raises anything but the D8 401 and every accepted "
        "form round-trips; the keyring as a state machine (encrypt, rotate, rewrap, retire, "
        "reload, tamper: everything written opens until its key is retired, nothing opens "
        "in another row, field or table, a changed character never opens); the CEQL parsers "
        "raise only CeqlSyntaxError; the rate limiter never grants more than burst + rate x "
        "time.",
        (
            "tests.tenants.test_auth_parser_properties",
            "tests.kit.test_crypto_properties",
            "tests.kit.test_ceql_properties",
            "tests.limits.test_rate_limiter",
        ),
    ),
    (
        "Egress (D32)",
        "Scripted resolver: DNS rebinding (public, then private) refused at connect time; "
        "169.254.169.254, IPv4-mapped IPv6, 0.0.0.0, ::, NAT64, decimal, octal and hex "
        "spellings refused; redirects returned, never followed; size and time capped; "
        "HUBGATE_EGRESS_ALLOW opens exactly what it names. Through the API: private base.url "
        "and callback URLs refused with a D9 400, nothing saved, the vendor never called.",
        ("tests.kit.test_egress", "tests.egress.test_through_the_api"),
    ),
    (
        "Abuse limits",
        "Failed authentications per client address (API and console sign-in alike) and hub "
        "calls per instance answer 429 with Retry-After (successes never count); request "
        "bodies past the cap answer 413 on platform and hub routes; pages never exceed the "
        "cap; poll intervals under the floor are refused.",
        ("tests.limits.test_abuse_limits",),
    ),
    (
        "Faults",
        "Real processes: SIGKILL of `hubgate serve` during a provisioning burst (three "
        "times); the database stopped for 10 s under load; the vendor hanging past the read "
        "timeout and answering 500; the database going away in-process.",
        (
            "tests.faults.test_sigkill",
            "tests.faults.test_outage_under_load",
            "tests.faults.test_vendor_faults",
            "tests.faults.test_database_outage",
        ),
    ),
    (
        "Secrets",
        "pg_dump of the database after the whole run and every log line the run wrote "
        "(Hubgate's loggers at DEBUG, and each `hubgate serve` subprocess's output), against "
        "every user and organization secret, instance token, Auth Token and signature key "
        "the run made; a 500 logs its class and line, never its text.",
        ("tests.secrets.test_no_secret_in_clear", "tests.instances.test_secrets_at_rest"),
    ),
]

LIMITS = [
    ("Request body", "HUBGATE_MAX_BODY_BYTES", "1048576 (1 MiB)", "413"),
    ("Page size", "HUBGATE_PAGE_SIZE_MAX (and each instance's pagination.max)", "1000", "capped"),
    ("Poll interval floor", "HUBGATE_POLL_INTERVAL_FLOOR", "1 minute", "400"),
    (
        "Hub calls per instance",
        "HUBGATE_HUB_RATE_PER_SECOND, HUBGATE_HUB_RATE_BURST",
        "50/s, burst 100",
        "429",
    ),
    (
        "Failed authentications per client address",
        "HUBGATE_AUTH_FAILURE_BURST, HUBGATE_AUTH_FAILURE_WINDOW",
        "20 per 60 s",
        "429",
    ),
]

DEFECTS = [
    (
        "The hub's fast path (past FastAPI's routing) answered errors itself: failed Element "
        "tokens went uncounted, a database outage was a 500 with a traceback in the log",
        "test_failed_element_tokens_on_hub_calls_count_too",
    ),
    (
        "`GET /elements/³` and ids of 5,000 digits were 500s (`str.isdigit` accepts what "
        "`int` refuses)",
        "test_element_key_that_looks_numeric_is_a_404",
    ),
    (
        "A NUL in a `tags[]` filter reached PostgreSQL's JSONB: 500",
        "test_tag_filter_with_control_characters_is_a_400",
    ),
    (
        "Instance bodies were coerced (`true` became 1, `0.0` became false) and accepted",
        "test_flags_of_the_wrong_json_type_are_a_400",
    ),
    (
        'An unpaired surrogate (`"\\udfff"`) in a configuration key reached the error '
        "renderer: 500; NaN and 65-level nesting were accepted",
        "test_json_the_parser_takes_but_nothing_else_can_is_a_400",
    ),
    (
        "`³` and 4,300+ digit numbers in numeric configuration were 500s",
        "test_numeric_configuration_that_int_refuses_is_a_400",
    ),
    (
        "A control character in a hub form field name made aiohttp raise: 500",
        "test_form_field_names_with_control_characters_reach_the_vendor",
    ),
    (
        "An unpaired surrogate in a hub body: 500",
        "test_hub_body_with_unpaired_surrogate_is_a_400",
    ),
    (
        "A hub query parameter given twice: the first silently won",
        "test_a_query_parameter_given_twice_is_a_400",
    ),
    (
        "`pageSize=³` or 5,000 digits: 500",
        "test_page_size_that_int_refuses_is_a_400",
    ),
    (
        "More concurrent requests than pool connections deadlocked the pool (request session "
        "+ audit log): creates took 30 s, a third were 503s",
        "test_more_concurrent_creates_than_pool_connections_all_succeed",
    ),
    (
        "A 500's log line carried the exception's text and trace, SQL and parameters included (D9)",
        "test_an_unexpected_error_logs_its_class_and_line_not_its_text",
    ),
    (
        "Database errors were 500s; now 503 with Retry-After, and the engine has a connect timeout",
        "test_database_outage_is_503_and_recovers_without_restart",
    ),
    (
        "Callback URLs to private addresses were accepted (only the scheme was checked)",
        "test_callback_url_to_a_private_address_is_refused",
    ),
    (
        "The OpenAPI document listed no request bodies, no errors, no auth, a 422 never sent,"
        " and duplicate operation ids on the hub route",
        "test_every_route_is_fuzzed",
    ),
]

NOT_COVERED = [
    "Several `hubgate serve` processes: the rate limits and the failed-authentication limit "
    "are per process (D171), so N processes allow N times the rate.",
    "Clients behind one proxy share one failed-authentication bucket; Hubgate does not trust "
    "X-Forwarded-For (D171).",
    "Distributed or slow-drip denial of service (slowloris, many addresses): left to the "
    "reverse proxy in front of Hubgate.",
    "TLS: Hubgate serves plain HTTP on loopback by default; TLS termination and its "
    "configuration are not tested here.",
    "The real Twilio and real DNS: the vendor is the simulator (and Prism for request "
    "shapes), and the resolver in the rebinding tests is scripted.",
    "Compromise of the host, the keyring file or the database superuser: envelope "
    "encryption protects dumps and backups, not a running process's memory.",
    "Timing side channels beyond the constant-time comparisons of secrets.",
    "The console's pages are fuzzed for 5xx and leaks, not for their HTML: cross-site "
    "scripting and CSRF are the console's own tests (tests/console), not these.",
    "Inbound vendor webhooks are fuzzed without a valid Twilio signature, so the fuzzing "
    "stops at the signature check; the signed path is the events work's own tests.",
    "Event deliveries under faults (a receiver that hangs, a worker killed mid-delivery) "
    "are the events work's own tests, not repeated here.",
]


@dataclass
class Outcome:
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    names: set[str] = field(default_factory=set)


def read_junit(path: Path) -> dict[str, Outcome]:
    by_module: dict[str, Outcome] = {}
    if not path.exists():
        return by_module
    for case in ET.parse(path).getroot().iter("testcase"):  # noqa: S314 - our own file
        module = case.get("classname", "")
        outcome = by_module.setdefault(module, Outcome())
        outcome.seconds += float(case.get("time", "0"))
        name = case.get("name", "")
        outcome.names.add(name.split("[", 1)[0])
        if case.find("failure") is not None or case.find("error") is not None:
            outcome.failed += 1
            outcome.failures.append(name)
        elif case.find("skipped") is not None:
            outcome.skipped += 1
        else:
            outcome.passed += 1
    return by_module


def load(folder: Path, name: str) -> dict[str, Any]:
    path = folder / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def status(folder: Path, name: str) -> int | None:
    path = folder / f"{name}.status"
    return int(path.read_text().strip() or "1") if path.exists() else None


def combine(modules: dict[str, Outcome], names: tuple[str, ...]) -> Outcome:
    total = Outcome()
    for name in names:
        part = modules.get(name)
        if part is None:
            continue
        total.passed += part.passed
        total.failed += part.failed
        total.skipped += part.skipped
        total.seconds += part.seconds
        total.failures += part.failures
        total.names |= part.names
    return total


def verdict(outcome: Outcome) -> str:
    if outcome.passed + outcome.failed == 0:
        return "not run"
    if outcome.failed:
        return f"**{outcome.failed} failed**, {outcome.passed} passed"
    return f"held ({outcome.passed} passed)"


def figures_of(area: str, folder: Path) -> str:
    if area.startswith("Fuzzing"):
        fuzz = load(folder, "fuzz")
        if not fuzz:
            return ""
        part = fuzz.get("console", {}) if area == "Fuzzing the console" else fuzz
        if not part.get("requests"):
            return ""
        statuses = ", ".join(f"{s}: {n}" for s, n in part["by_status"].items())
        vendor = part.get("vendor_502", 0)
        return (
            f"{part['requests']} requests over {part['operations']} operations "
            f"({fuzz.get('examples', '?')} examples per operation and mode); 5xx of "
            f"Hubgate's own: {part['server_errors']}"
            + (f" (and {vendor} 502s carrying the vendor's refusal)" if vendor else "")
            + f"; statuses {statuses}"
        )
    if area == "Faults":
        parts = []
        kill = load(folder, "sigkill")
        if kill:
            parts.append(
                f"SIGKILL x{kill['rounds']} under {kill['writers']} writers: "
                f"{kill['acknowledged']} creates answered 200, all present and working after "
                f"restart; {kill['unacknowledged_but_whole']} more committed but unanswered, "
                f"all whole; 0 half-made"
            )
        outage = load(folder, "db_outage")
        if outage:
            during = outage["by_phase"].get("outage", {})
            recovered = outage["recovered_within_seconds"]
            parts.append(
                f"database down {outage['outage_seconds']:.0f} s under {outage['clients']} "
                f"clients: {during.get('503', 0)} answers 503 + D9 + Retry-After, "
                f"{during.get('200', 0)} 200, 0 500s, {outage['dropped_connections']} dropped "
                "connections; "
                + (
                    "every answer 200 from the moment the database was back"
                    if not recovered
                    else f"all 200 again {recovered} s after the database was back"
                )
                + ", no restart"
            )
        vendor = load(folder, "vendor_faults")
        if vendor:
            parts.append(
                f"vendor hanging: {vendor['hanging_calls']} hub calls all 504 within "
                f"{vendor['all_504_within_s']} s (read timeout {vendor['read_timeout_s']} s); "
                f"a platform call meanwhile {vendor['platform_call_meanwhile_ms']} ms; first "
                f"call after recovery {vendor['first_call_after_recovery_ms']} ms; vendor 500: "
                f"GET tried {vendor['get_attempts_on_500']}x then 502 with provider fields, "
                f"POST tried {vendor['post_attempts_on_500']}x"
            )
        return "; ".join(parts)
    if area == "Secrets":
        logs, dump = load(folder, "secrets_logs"), load(folder, "secrets_dump")
        if not logs and not dump:
            return ""
        return (
            f"{logs.get('secrets', '?')} secrets searched in {logs.get('lines', '?')} log "
            f"lines of {logs.get('log_files', '?')} files and in a {dump.get('dump_bytes', '?')}"
            f"-byte dump: 0 found"
        )
    return ""


def load_section(folder: Path) -> list[str]:
    result = load(folder, "load")
    if not result:
        return ["Not run."]
    check = result["check"]
    lines = [
        f"`bench/load.py --clients {result['clients']} --seconds {result['limit_seconds']:.0f}`: "
        f"{result['requests']} requests in {result['seconds']} s ({result['per_second']} req/s) "
        f"against one `hubgate serve` (embedded PostgreSQL) and the simulator, all on this "
        f"machine's {result['cpus']} cores (shared with other work at the time: compare ratios "
        f"and medians, not absolutes).",
        "",
        "| kind | requests | p50 ms | p99 ms | statuses |",
        "| --- | --- | --- | --- | --- |",
    ]
    for kind, row in result["kinds"].items():
        statuses = ", ".join(f"{s}: {n}" for s, n in row["statuses"].items())
        lines.append(
            f"| {kind} | {row['requests']} | {row['p50_ms']} | {row['p99_ms']} | {statuses} |"
        )
    lines.append(
        f"| **all** | {result['requests']} | {result['p50_ms']} | {result['p99_ms']} | "
        f"errors {result['errors']}, dropped {result['dropped']} |"
    )
    lines += [
        "",
        f"Then every acknowledged write against the database: {check['acknowledged_creates']} "
        f"creates answered 200 and {check['acknowledged_deletes']} deletes answered 200; "
        f"lost {check['lost']}, wrong token {check['wrong_token']}, deleted but present "
        f"{check['deleted_but_present']} ({check['rows']} rows left).",
    ]
    return lines


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def render(folder: Path) -> tuple[str, bool]:
    modules = read_junit(folder / "junit.xml")
    all_names = set().union(*(o.names for o in modules.values())) if modules else set()
    everything = combine(modules, tuple(modules))
    pytest_status, load_status = status(folder, "pytest"), status(folder, "load")
    ok = pytest_status == 0 and load_status == 0
    lines = [
        "# Reliability and security: what was tried against Hubgate, and what held",
        "",
        "Generated by `make reliability` (bench/reliability_report.py); do not edit by hand. "
        f"Run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit "
        f"`{git_commit()}`, {os.cpu_count()} CPUs. The whole test suite ran, slow parts "
        f"included: {everything.passed} passed, {everything.failed} failed, "
        f"{everything.skipped} skipped in {everything.seconds:.0f} s "
        f"(pytest exit {pytest_status}, load exit {load_status}).",
        "",
        "| area | what was tried | result | figures |",
        "| --- | --- | --- | --- |",
    ]
    for area, tried, names in AREAS:
        outcome = combine(modules, names)
        figures = figures_of(area, folder)
        lines.append(
            f"| {area} | {tried} | {verdict(outcome)} ({outcome.seconds:.0f} s) | {figures} |"
        )
        ok = ok and not outcome.failed
    lines += ["", "## Load", "", *load_section(folder), "", "## Limits", ""]
    lines += ["| limit | setting | default | answer |", "| --- | --- | --- | --- |"]
    lines += [f"| {a} | `{b}` | {c} | {d} |" for a, b, c, d in LIMITS]
    lines += [
        "",
        "## Defects these checks found, fixed, and kept as regression tests",
        "",
        "| defect | regression test | now |",
        "| --- | --- | --- |",
    ]
    for defect, test in DEFECTS:
        now = "passes" if test in all_names else "not run"
        for outcome in modules.values():
            if any(f.split("[", 1)[0] == test for f in outcome.failures):
                now = "**fails**"
        lines.append(f"| {defect} | `{test}` | {now} |")
    lines += ["", "## Threats these checks do not cover", ""]
    lines += [f"- {threat}" for threat in NOT_COVERED]
    failures = [f"{m}::{n}" for m, o in modules.items() for n in o.failures]
    if failures:
        lines += ["", "## Failures of this run", ""]
        lines += [f"- `{f}`" for f in failures[:50]]
    return "\n".join(lines) + "\n", ok


def main(folder: Path, out: Path) -> int:
    text, ok = render(folder)
    out.write_text(text)
    print(f"wrote {out}; {'all held' if ok else 'something failed: see the page'}")
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
