"""Writes docs/reliability.md from what `make reliability` measured (issues 6 and 16).

Reads the folder the run wrote and nothing else: pytest's JUnit XML (every test, grouped by
test module, with its outcome, time and skip reason), ``run.json`` (the commit, the times, the
load average and whether ../shared was there, from tests/results.py), the JSON figures the
tests published, bench/load.py's result and the exit statuses. What each area tried is the
docstring of the test modules that ran; the limits are read from ``Settings``. Writes the
page, then exits 1 if anything failed, a test was skipped while ../shared was there, or a
defect's regression test did not pass: the page is always current and the command still
says when something broke.

    .venv/bin/python bench/reliability_report.py build/reliability docs/reliability.md
"""

from __future__ import annotations

import ast
import json
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hubgate.settings import Settings

ROOT = Path(__file__).resolve().parents[1]

# The page's areas and the test modules each is made of; what they tried is each module's
# docstring.
AREAS: list[tuple[str, tuple[str, ...]]] = [
    ("Fuzzing (schemathesis)", ("tests.fuzz.test_openapi_fuzz", "tests.fuzz.test_hub_fuzz")),
    ("Fuzzing the console", ("tests.fuzz.test_console_fuzz",)),
    (
        "Bad input, explicit",
        ("tests.fuzz.test_bad_input", "tests.fuzz.test_regressions", "tests.e2e.test_errors"),
    ),
    (
        "Properties (hypothesis)",
        (
            "tests.tenants.test_auth_parser_properties",
            "tests.kit.test_crypto_properties",
            "tests.kit.test_ceql_properties",
            "tests.limits.test_rate_limiter",
        ),
    ),
    ("Egress (D32)", ("tests.kit.test_egress", "tests.egress.test_through_the_api")),
    ("Abuse limits", ("tests.limits.test_abuse_limits",)),
    (
        "Faults",
        (
            "tests.faults.test_sigkill",
            "tests.faults.test_outage_under_load",
            "tests.faults.test_vendor_faults",
            "tests.faults.test_database_outage",
        ),
    ),
    ("Secrets", ("tests.secrets.test_no_secret_in_clear", "tests.instances.test_secrets_at_rest")),
]

# Each limit: the Settings fields that set it, and how Hubgate answers past it.
LIMITS: list[tuple[str, tuple[str, ...], str]] = [
    ("Request body (bytes)", ("max_body_bytes",), "413"),
    ("Page size (and each instance's pagination.max)", ("page_size_max",), "capped"),
    ("Poll interval floor (minutes)", ("poll_interval_floor",), "400"),
    ("Hub calls per instance", ("hub_rate_per_second", "hub_rate_burst"), "429"),
    (
        "Failed authentications per client address",
        ("auth_failure_burst", "auth_failure_window"),
        "429",
    ),
]

# db_outage.json's same_server_process_throughout, as the page says it.
SURVIVED = {
    "True": "the same server process throughout (no restart)",
    "False": "the server process did not survive",
    "None": "whether the server process survived: (missing)",
}

CONCURRENCY_PARTS = ("lost_update", "delete_race", "first_events")
# Result files a section of the page reads; any other is shown as it is, under its name.
READ_BY_SECTIONS = {
    "run",
    "fuzz",
    "sigkill",
    "db_outage",
    "vendor_faults",
    "secrets_logs",
    "secrets_dump",
    "load",
    "concurrency",
    *(f"concurrency_{part}" for part in CONCURRENCY_PARTS),
}

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
        "test_the_document_describes_bodies_errors_and_auth",
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
    skips: list[tuple[str, str]] = field(default_factory=list)  # (test, reason)
    passes: set[str] = field(default_factory=set)  # test function names

    def add(self, other: Outcome) -> None:
        self.passed += other.passed
        self.failed += other.failed
        self.skipped += other.skipped
        self.seconds += other.seconds
        self.failures += other.failures
        self.skips += other.skips
        self.passes |= other.passes


def module_of(classname: str) -> str:
    """``tests.kit.test_crypto_properties.TestKeyring`` -> ``tests.kit.test_crypto_properties``:
    a test class (TestKeyring, a hypothesis state machine) counts with its module."""
    parts = classname.split(".")
    module = []
    for part in parts:
        if part[:1].isupper():
            break
        module.append(part)
    return ".".join(module)


def read_junit(path: Path) -> dict[str, Outcome]:
    by_module: dict[str, Outcome] = {}
    if not path.exists():
        return by_module
    for case in ET.parse(path).getroot().iter("testcase"):  # noqa: S314 - our own file
        module = module_of(case.get("classname", ""))
        outcome = by_module.setdefault(module, Outcome())
        outcome.seconds += float(case.get("time", "0"))
        name = case.get("name", "")
        skipped = case.find("skipped")
        if case.find("failure") is not None or case.find("error") is not None:
            outcome.failed += 1
            outcome.failures.append(name)
        elif skipped is not None:
            outcome.skipped += 1
            outcome.skips.append((name, skipped.get("message", "no reason given")))
        else:
            outcome.passed += 1
            outcome.passes.add(name.split("[", 1)[0])
    return by_module


def load(folder: Path, name: str) -> dict[str, Any]:
    path = folder / f"{name}.json"
    loaded: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    return loaded


def status(folder: Path, name: str) -> int | None:
    path = folder / f"{name}.status"
    return int(path.read_text().strip() or "1") if path.exists() else None


def combine(modules: dict[str, Outcome], names: tuple[str, ...] | list[str]) -> Outcome:
    total = Outcome()
    for name in names:
        if name in modules:
            total.add(modules[name])
    return total


def verdict(outcome: Outcome) -> str:
    if outcome.passed + outcome.failed + outcome.skipped == 0:
        return "not run"
    if not outcome.failed and not outcome.skipped:
        return f"held ({outcome.passed} passed)"
    parts = [f"**{outcome.failed} failed**"] if outcome.failed else []
    parts.append(f"{outcome.passed} passed")
    if outcome.skipped:
        parts.append(f"**{outcome.skipped} skipped**")
    return ", ".join(parts)


def tried(modules: tuple[str, ...]) -> str:
    """The first paragraph of each module's docstring: what its tests try."""
    said = []
    for module in modules:
        path = ROOT / (module.replace(".", "/") + ".py")
        if not path.exists():
            continue
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        paragraph = " ".join(doc.split("\n\n", 1)[0].split())
        said.append(f"`{module.rsplit('.', 1)[1]}`: {paragraph.replace('|', '/')}")
    return " ".join(said)


def part(data: dict[str, Any], key: str) -> Any:
    return data.get(key, "(missing)")


def figures_of(area: str, folder: Path) -> str:
    if area.startswith("Fuzzing"):
        fuzz = load(folder, "fuzz")
        if not fuzz:
            return ""
        scope = fuzz.get("console", {}) if area == "Fuzzing the console" else fuzz
        if not scope.get("requests"):
            return ""
        statuses = ", ".join(f"{s}: {n}" for s, n in scope["by_status"].items())
        vendor = scope.get("vendor_502", 0)
        return (
            f"{scope['requests']} requests over {scope['operations']} operations "
            f"({fuzz.get('examples', '?')} examples per operation and mode); 5xx of "
            f"Hubgate's own: {scope['server_errors']}"
            + (f" (and {vendor} 502s carrying the vendor's refusal)" if vendor else "")
            + f"; statuses {statuses}"
        )
    if area == "Faults":
        parts = []
        kill = load(folder, "sigkill")
        if kill:
            parts.append(
                f"SIGKILL x{part(kill, 'rounds')} under {part(kill, 'writers')} writers: "
                f"{part(kill, 'acknowledged')} creates answered 200, "
                f"{part(kill, 'interrupted_requests')} requests interrupted; after restart "
                f"{part(kill, 'rows_checked_whole')} of {part(kill, 'rows_after')} rows checked "
                f"whole (each answering, its token working), "
                f"{part(kill, 'unacknowledged_but_whole')} of them committed but unanswered"
            )
        outage = load(folder, "db_outage")
        if outage:
            phases = outage["by_phase"]
            during = phases.get("outage", {})
            other_5xx = sum(
                n for c in phases.values() for s, n in c.items() if s[0] == "5" and s != "503"
            )
            parts.append(
                f"database down {outage['outage_seconds']:.0f} s under {outage['clients']} "
                f"clients: {during.get('503', 0)} answers 503 + D9 + Retry-After, "
                f"{during.get('200', 0)} 200; over the run {other_5xx} other 5xx and "
                f"{outage['dropped_connections']} dropped connections; last failure "
                f"{outage['recovered_within_seconds']} s after the database was back, "
                + SURVIVED[str(outage.get("same_server_process_throughout"))]
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
            f"{part(logs, 'secrets')} secrets searched in {part(logs, 'lines')} log lines of "
            f"{part(logs, 'log_files')} files: {part(logs, 'found')} found; "
            f"{part(dump, 'secrets')} in a {part(dump, 'dump_bytes')}-byte dump: "
            f"{part(dump, 'found')} found in clear, {part(dump, 'found_base64')} in base64"
        )
    return ""


def load_section(folder: Path) -> list[str]:
    result = load(folder, "load")
    if not result:
        return ["Not run (no load.json)."]
    if "failures" in result:
        failed = ", ".join(f"{what} x{n}" for what, n in result["failures"].items())
        return [f"`bench/load.py` **failed**, so it reports no figure: {failed}."]
    check = result["check"]
    load_average = ", ".join(f"{n:.2f}" for n in result.get("load_average", []))
    lines = [
        f"`bench/load.py --clients {result['clients']} --seconds {result['limit_seconds']:.0f}`: "
        f"{result['requests']} requests in {result['seconds']} s ({result['per_second']} req/s) "
        f"against one `hubgate serve` (embedded PostgreSQL) and the simulator, all on this "
        f"machine's {result['cpus']} cores; load average at the end {load_average or '?'} "
        "(1, 5, 15 min).",
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


def concurrency_results(folder: Path) -> dict[str, dict[str, Any]]:
    """One concurrency.json, or one file per part; parts found in neither are absent."""
    together = load(folder, "concurrency")
    found = {name: together[name] for name in CONCURRENCY_PARTS if name in together}
    for name in CONCURRENCY_PARTS:
        alone = load(folder, f"concurrency_{name}")
        if alone and name not in found:
            found[name] = alone
    return found


def concurrency_section(folder: Path) -> tuple[list[str], list[str]]:
    """The lines of the section, and what in it is a failure."""
    found = concurrency_results(folder)
    problems: list[str] = []
    lines = []
    if not found:
        return ["Missing: this run published no concurrency.json nor concurrency_*.json."], []
    lost = found.get("lost_update")
    if lost is None:
        lines.append("- Lost updates: missing (no result published).")
    else:
        lines.append(
            f"- Lost updates: {part(lost, 'rounds')} rounds of {part(lost, 'clients')} clients "
            f"sending {part(lost, 'patches')} PATCHes to one instance: "
            f"{part(lost, 'keys_lost')} configuration keys lost."
        )
        if lost.get("keys_lost") != 0:
            problems.append(f"concurrency: keys lost {part(lost, 'keys_lost')}")
    race = found.get("delete_race")
    if race is None:
        lines.append("- Delete races: missing (no result published).")
    else:
        statuses = race.get("statuses", {})
        answered = ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items())) or "(missing)"
        lines.append(
            f"- Delete races: {part(race, 'rounds')} rounds, {part(race, 'requests')} requests: "
            f"{answered}; {part(race, 'server_errors')} server errors, "
            f"{part(race, 'tracebacks_logged')} tracebacks logged."
        )
        if race.get("server_errors") != 0 or race.get("tracebacks_logged") != 0:
            problems.append("concurrency: server errors or tracebacks in the delete race")
    first = found.get("first_events")
    if first is None:
        lines.append("- First events: missing (no result published).")
    else:
        lines.append(
            f"- First events: {part(first, 'messages_sent')} messages sent, "
            f"{part(first, 'created_events_received')} created events received."
        )
        if first.get("messages_sent") != first.get("created_events_received"):
            problems.append("concurrency: created events received differ from messages sent")
    return lines, problems


def flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(data, dict):
        return [pair for k, v in data.items() for pair in flatten(v, f"{prefix}{k}.")]
    return [(prefix.rstrip("."), data)]


def other_results(folder: Path) -> list[str]:
    """Result files no section reads, each shown as its keys and values."""
    lines: list[str] = []
    for path in sorted(folder.glob("*.json")):
        if path.stem in READ_BY_SECTIONS:
            continue
        lines += [f"### {path.stem} (`{path.name}`)", "", "| key | value |", "| --- | --- |"]
        lines += [
            f"| {key} | {json.dumps(value).replace('|', '/')} |"
            for key, value in flatten(json.loads(path.read_text()))
        ]
        lines.append("")
    return lines


def limits_table() -> list[str]:
    fields = Settings.model_fields
    lines = ["| limit | setting | default | answer |", "| --- | --- | --- | --- |"]
    for label, names, answer in LIMITS:
        settings = ", ".join(f"`HUBGATE_{name.upper()}`" for name in names)
        defaults = ", ".join(f"{fields[name].default}" for name in names)
        lines.append(f"| {label} | {settings} | {defaults} | {answer} |")
    return lines


def render(folder: Path) -> tuple[str, list[str]]:
    """The page, and the reasons the run counts as failed (none when everything held)."""
    modules = read_junit(folder / "junit.xml")
    everything = combine(modules, list(modules))
    run = load(folder, "run")
    pytest_status, load_status = status(folder, "pytest"), status(folder, "load")
    problems = []
    if pytest_status != 0:
        problems.append(f"pytest exit {pytest_status}")
    if load_status != 0:
        problems.append(f"bench/load.py exit {load_status}")
    if not run:
        problems.append("run.json missing: the run's commit and date are unknown")
    elif everything.skipped and run.get("shared_present"):
        problems.append(f"{everything.skipped} tests skipped although ../shared was there")
    if run:
        commit = run["commit"][:12]
        changed = run.get("uncommitted_changes", 0)
        header = (
            f"Run of {run['started']} to {run.get('finished', '(unfinished)')}, commit "
            f"`{commit}`"
            + (f" with {changed} uncommitted changes" if changed else "")
            + f", {run['cpus']} CPUs, load average {run['load_average_at_start'][0]:.2f} at "
            f"the start and {run.get('load_average_at_end', [float('nan')])[0]:.2f} at the "
            "end (1 min); "
            f"../shared {'present' if run['shared_present'] else 'absent'} "
            f"({run['shared_dir']}). "
            f'`pytest -m "{run["markers"]}"`: '
        )
    else:
        header = "Run of unknown date and commit (no run.json). "
    lines = [
        "# Reliability and security: what was tried against Hubgate, and what held",
        "",
        "Generated by `make reliability` (bench/reliability_report.py) from the files of "
        "build/reliability/; do not edit by hand. "
        + header
        + f"{everything.passed} passed, {everything.failed} failed, {everything.skipped} "
        f"skipped in {everything.seconds:.0f} s (pytest exit {pytest_status}, load exit "
        f"{load_status}).",
        "",
        "| area | what was tried (the test modules' own words) | result | figures |",
        "| --- | --- | --- | --- |",
    ]
    for area, names in AREAS:
        outcome = combine(modules, names)
        lines.append(
            f"| {area} | {tried(names)} | {verdict(outcome)} ({outcome.seconds:.0f} s) | "
            f"{figures_of(area, folder)} |"
        )
    concurrency, trouble = concurrency_section(folder)
    problems += trouble
    lines += ["", "## Concurrency", "", *concurrency]
    lines += ["", "## Load", "", *load_section(folder)]
    lines += ["", "## Limits (defaults read from `Settings`)", "", *limits_table()]
    lines += [
        "",
        "## Defects these checks found, fixed, and kept as regression tests",
        "",
        "| defect | regression test | now |",
        "| --- | --- | --- |",
    ]
    for defect, test in DEFECTS:
        now = defect_status(modules, test)
        if now != "passes":
            problems.append(f"regression test {test}: {now}")
        lines.append(f"| {defect} | `{test}` | {now} |")
    lines += ["", "## Skipped tests", ""]
    skips = [(m, n, r) for m, o in modules.items() for n, r in o.skips]
    lines += [f"- `{m}::{n}`: {r}" for m, n, r in skips] or ["None."]
    others = other_results(folder)
    if others:
        lines += ["", "## Other results of this run", "", *others]
    lines += ["", "## Threats these checks do not cover", ""]
    lines += [f"- {threat}" for threat in NOT_COVERED]
    failures = [f"{m}::{n}" for m, o in modules.items() for n in o.failures]
    if failures:
        lines += ["", "## Failures of this run", ""]
        lines += [f"- `{f}`" for f in failures[:50]]
    if problems:
        lines += ["", "## Why this run counts as failed", ""]
        lines += [f"- {problem}" for problem in problems]
    return "\n".join(lines).rstrip("\n") + "\n", problems


def defect_status(modules: dict[str, Outcome], test: str) -> str:
    """ "passes" only when the test ran and passed, in every parametrization."""
    passed = any(test in o.passes for o in modules.values())
    failed = any(f.split("[", 1)[0] == test for o in modules.values() for f in o.failures)
    skipped = [r for o in modules.values() for n, r in o.skips if n.split("[", 1)[0] == test]
    if failed:
        return "**fails**"
    if skipped:
        return f"**skipped** ({skipped[0]})"
    return "passes" if passed else "**not run**"


def main(folder: Path, out: Path) -> int:
    text, problems = render(folder)
    out.write_text(text)
    print(f"wrote {out}")
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
