"""The JavaScript sandbox (D42): results, typed failures, limits, helpers and the fence."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hubgate.kit.sandbox import (
    FORMULA_LIMITS,
    MIB,
    FailureKind,
    Limits,
    ScriptFailure,
    ScriptResult,
    ScriptSession,
    batch_outcomes,
    run,
    run_async,
    run_many,
)

LIMITS = Limits(seconds=5.0, memory_bytes=32 * MIB)
TRANSFORM = ("originalObject", "transformedObject", "fromVendor")


def value_of(body: str, inputs: dict[str, Any] | None = None, params: tuple[str, ...] = ()) -> Any:
    outcome = run(body, params, inputs or {}, LIMITS)
    assert isinstance(outcome, ScriptResult), outcome
    return outcome.value


def failure_of(body: str, limits: Limits = LIMITS) -> ScriptFailure:
    outcome = run(body, (), {}, limits)
    assert isinstance(outcome, ScriptFailure), outcome
    return outcome


# ------------------------------------------------------------------------------ answers


def test_the_churros_script_adds_a_field() -> None:
    outcome = run(
        "transformedObject.foo='bar'; done(transformedObject);",
        TRANSFORM,
        {"originalObject": {"Id": 1}, "transformedObject": {"id": 1}, "fromVendor": True},
        LIMITS,
    )
    assert outcome == ScriptResult({"id": 1, "foo": "bar"})


def test_inputs_arrive_by_name_and_missing_ones_are_null() -> None:
    assert value_of(
        "done([trigger.args, steps, info === null, config])",
        {"trigger": {"args": {"a": [1, "x"]}}, "steps": {}, "config": {"k": True}},
        ("trigger", "steps", "info", "config"),
    ) == [{"a": [1, "x"]}, {}, True, {"k": True}]


def test_a_script_may_return_a_new_object_and_any_json_value() -> None:
    assert value_of("done({brand: 'new', n: 1.5, list: [null, false]})") == {
        "brand": "new",
        "n": 1.5,
        "list": [None, False],
    }
    assert value_of("done('text')") == "text"
    assert value_of("done()") is None


def test_done_from_a_promise_callback_counts() -> None:
    assert value_of("Promise.resolve(41).then((n) => done(n + 1))") == 42


def test_only_the_first_done_counts() -> None:
    assert value_of("done(1); done(2)") == 1


def test_scripts_run_in_strict_mode() -> None:
    assert failure_of("undeclared = 1; done(undeclared)").message == (
        "ReferenceError: undeclared is not defined"
    )


def test_console_log_is_captured_with_the_answer() -> None:
    outcome = run("console.log('count', 2, {a: [1]}); console.error('x'); done(0)", (), {}, LIMITS)
    assert outcome == ScriptResult(0, ('count 2 {"a":[1]}', "x"))


def test_console_output_is_bounded() -> None:
    outcome = run(
        "for (let i = 0; i < 100000; i++) console.log('x'.repeat(50)); done(1)", (), {}, LIMITS
    )
    assert isinstance(outcome, ScriptResult)
    assert outcome.console[-1] == "[console output truncated]"
    assert sum(len(line) for line in outcome.console) < 70_000


def test_notify_email_is_recorded_not_sent() -> None:
    outcome = run("notify.email('ops@example.com', 'Subject', 'Body'); done(true)", (), {}, LIMITS)
    assert outcome == ScriptResult(
        True, (), ({"to": "ops@example.com", "subject": "Subject", "body": "Body"},)
    )


# ------------------------------------------------------------------------------ failures


def test_a_syntax_error_is_reported_with_its_message() -> None:
    failure = failure_of("done(1")
    assert failure.kind is FailureKind.SYNTAX
    assert failure.message.startswith("SyntaxError: ")
    assert failure.reason().startswith("syntax error: SyntaxError: ")


def test_a_thrown_error_is_reported_with_its_message_and_the_console_so_far() -> None:
    outcome = run("console.log('before'); throw new TypeError('boom')", (), {}, LIMITS)
    assert outcome == ScriptFailure(FailureKind.ERROR, "TypeError: boom", ("before",))
    assert outcome.reason() == "error: TypeError: boom"


def test_a_thrown_string_is_its_own_message() -> None:
    assert failure_of("throw 'not an Error'").message == "not an Error"


def test_ending_without_done_is_a_failure() -> None:
    failure = failure_of("const x = 1;")
    assert failure.kind is FailureKind.NO_DONE
    assert "done()" in failure.message


def test_a_value_json_cannot_hold_is_a_failure() -> None:
    failure = failure_of("const o = {}; o.self = o; done(o)")
    assert failure.kind is FailureKind.BAD_RESULT
    assert "circular" in failure.message


def test_deep_recursion_is_an_error_not_a_crash() -> None:
    failure = failure_of("function f() { return f() + 1 } f()")
    assert failure.kind is FailureKind.ERROR
    assert failure.message.startswith("RangeError")


# ------------------------------------------------------------------------------ limits


def test_a_runaway_loop_is_stopped_by_the_time_limit() -> None:
    failure = failure_of("while (true) {}", Limits(seconds=0.5, memory_bytes=16 * MIB))
    assert failure.kind is FailureKind.TIME_LIMIT
    assert failure.reason() == "time limit: the script ran longer than 0.5 s"


def test_an_endless_chain_of_promises_is_stopped_by_the_time_limit() -> None:
    failure = failure_of(
        "function again() { Promise.resolve().then(again) } again(); done(1)",
        Limits(seconds=0.5, memory_bytes=16 * MIB),
    )
    assert failure.kind is FailureKind.TIME_LIMIT


def test_a_catastrophic_regular_expression_is_stopped_by_the_time_limit() -> None:
    failure = failure_of(
        "done(/(a+)+$/.test('a'.repeat(40) + 'b'))", Limits(seconds=0.5, memory_bytes=16 * MIB)
    )
    assert failure.kind is FailureKind.TIME_LIMIT


def test_the_time_limit_cannot_be_caught() -> None:
    failure = failure_of(
        "try { while (true) {} } catch (e) { done('caught') }",
        Limits(seconds=0.5, memory_bytes=16 * MIB),
    )
    assert failure.kind is FailureKind.TIME_LIMIT


def test_a_heap_bomb_is_stopped_by_the_memory_limit() -> None:
    failure = failure_of(
        "const a = []; while (true) a.push(new Array(1000).fill('x'))",
        Limits(seconds=30, memory_bytes=16 * MIB),
    )
    assert failure.kind is FailureKind.MEMORY_LIMIT
    assert failure.reason() == "memory limit: the script needed more than 16 MiB of memory"


def test_a_string_bomb_is_stopped_by_the_memory_limit() -> None:
    failure = failure_of(
        "let s = 'x'; while (true) s = s.repeat(2); done(s.length)",
        Limits(seconds=30, memory_bytes=16 * MIB),
    )
    assert failure.kind is FailureKind.MEMORY_LIMIT


def test_the_formula_limits_are_d41s() -> None:
    assert Limits(seconds=30.0, memory_bytes=64 * MIB) == FORMULA_LIMITS


def test_limits_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="positive"):
        Limits(seconds=0, memory_bytes=16 * MIB)
    with pytest.raises(ValueError, match="2 MiB"):
        Limits(seconds=1, memory_bytes=1024)


def test_a_failed_run_leaves_nothing_behind_for_the_next() -> None:
    failure_of("globalThis.leak = 1; while (true) {}", Limits(seconds=0.3, memory_bytes=16 * MIB))
    assert value_of("done(typeof leak)") == "undefined"


# ------------------------------------------------------------------------------ sessions


def test_one_session_maps_many_records_in_one_context() -> None:
    outcomes = run_many(
        "globalThis.seen = (globalThis.seen || 0) + 1;"
        " done({n: originalObject.n * 2, seen: globalThis.seen})",
        TRANSFORM,
        [{"originalObject": {"n": n}} for n in range(3)],
        LIMITS,
    )
    assert outcomes == [
        ScriptResult({"n": 0, "seen": 1}),
        ScriptResult({"n": 2, "seen": 2}),
        ScriptResult({"n": 4, "seen": 3}),
    ]


def test_a_script_replacing_the_array_iterator_still_gets_every_outcome() -> None:
    # The host calls the prelude's driver after the script has run (D491), so nothing the host
    # reads may go through an iterator the script can replace.
    outcomes = run_many(
        "Array.prototype[Symbol.iterator] = function* () {}; done(originalObject.n)",
        TRANSFORM,
        [{"originalObject": {"n": n}} for n in range(3)],
        LIMITS,
    )
    assert outcomes == [ScriptResult(0), ScriptResult(1), ScriptResult(2)]


def test_a_thrown_error_fails_only_its_own_record() -> None:
    outcomes = run_many(
        "if (originalObject.bad) throw new Error('bad record'); done(originalObject.n)",
        TRANSFORM,
        [
            {"originalObject": {"n": 1}},
            {"originalObject": {"bad": True}},
            {"originalObject": {"n": 3}},
        ],
        LIMITS,
    )
    assert outcomes == [
        ScriptResult(1),
        ScriptFailure(FailureKind.ERROR, "Error: bad record"),
        ScriptResult(3),
    ]


def test_a_session_shares_one_time_budget_and_stops_after_it() -> None:
    # The first record spends the whole budget; the rest are not run at all.
    outcomes = run_many(
        "if (originalObject.spin) { while (true) {} } done(1)",
        TRANSFORM,
        [{"originalObject": {"spin": True}}, {"originalObject": {}}],
        Limits(seconds=0.5, memory_bytes=16 * MIB),
    )
    assert [o.kind for o in outcomes if isinstance(o, ScriptFailure)] == [
        FailureKind.TIME_LIMIT,
        FailureKind.TIME_LIMIT,
    ]


def test_a_syntax_error_fails_every_call_of_the_session() -> None:
    outcomes = run_many("done(", TRANSFORM, [{}, {}], LIMITS)
    assert all(isinstance(o, ScriptFailure) and o.kind is FailureKind.SYNTAX for o in outcomes)


def test_a_session_stays_on_the_thread_that_opened_it() -> None:
    errors: list[BaseException] = []
    with ScriptSession("done(1)", (), LIMITS) as session:

        def elsewhere() -> None:
            try:
                session.call({})
            except RuntimeError as error:
                errors.append(error)

        thread = threading.Thread(target=elsewhere)
        thread.start()
        thread.join()
        assert session.call({}) == ScriptResult(1)
    assert len(errors) == 1
    assert "thread" in str(errors[0])


def test_a_closed_session_refuses_calls() -> None:
    session = ScriptSession("done(1)", (), LIMITS)
    session.close()
    with pytest.raises(RuntimeError, match="closed"):
        session.call({})


@pytest.mark.parametrize("name", ["done", "a-b", "1x", ""])
def test_parameter_names_must_be_identifiers(name: str) -> None:
    with pytest.raises(ValueError, match="parameter name"):
        ScriptSession("done(1)", (name,), LIMITS)


async def test_a_stuck_script_in_the_pool_does_not_block_the_event_loop() -> None:
    runaway = asyncio.create_task(
        run_async("while (true) {}", (), {}, Limits(seconds=3.0, memory_bytes=16 * MIB))
    )
    await asyncio.sleep(0)  # let the task reach its thread
    # The loop keeps serving: a timer fires and another script runs to its end meanwhile.
    await asyncio.sleep(0.01)
    quick = await run_async("done(2 + 2)", (), {}, LIMITS)
    assert quick == ScriptResult(4)
    assert not runaway.done()
    stopped = await runaway
    assert isinstance(stopped, ScriptFailure)
    assert stopped.kind is FailureKind.TIME_LIMIT


# ------------------------------------------------------------------------------ no host access


@pytest.mark.parametrize(
    "name",
    [
        "process",
        "fetch",
        "XMLHttpRequest",
        "WebSocket",
        "setTimeout",
        "setInterval",
        "std",
        "os",
        "module",
        "exports",
        "Deno",
        "Bun",
        "Atomics",
        "SharedArrayBuffer",
        "WeakRef",
        "__hubgate",
    ],
)
def test_no_host_global(name: str) -> None:
    assert value_of(f"done(typeof {name})") == "undefined"


def test_the_global_object_holds_only_the_language_and_the_prelude() -> None:
    # Naming CE, notify or require in the text installs them (D241, D391); the modules live
    # behind require().
    names = set(
        value_of(
            "typeof CE; typeof notify; typeof require; done(Object.getOwnPropertyNames(globalThis))"
        )
    )
    prelude = {"CE", "console", "notify", "require"}
    assert prelude <= names
    assert names - prelude <= {
        "AggregateError", "Array", "ArrayBuffer", "AsyncDisposableStack", "BigInt",
        "BigInt64Array", "BigUint64Array", "Boolean", "DOMException", "DataView", "Date",
        "DisposableStack", "Error", "EvalError", "Float16Array", "Float32Array", "Float64Array",
        "Function", "Infinity", "Int16Array", "Int32Array", "Int8Array", "InternalError",
        "Iterator", "JSON", "Map", "Math", "NaN", "Number", "Object", "Promise", "Proxy",
        "RangeError", "ReferenceError", "Reflect", "RegExp", "Set", "String", "SuppressedError",
        "Symbol", "SyntaxError", "TypeError", "URIError", "Uint16Array", "Uint32Array",
        "Uint8Array", "Uint8ClampedArray", "WeakMap", "WeakSet", "atob", "btoa",
        "decodeURI", "decodeURIComponent", "encodeURI", "encodeURIComponent", "escape", "eval",
        "globalThis", "isFinite", "isNaN", "parseFloat", "parseInt", "performance",
        "queueMicrotask", "undefined", "unescape",
    }  # fmt: skip


@pytest.mark.parametrize("module", ["fs", "child_process", "net", "http", "os", "std", "path"])
def test_require_of_anything_unbundled_throws(module: str) -> None:
    failure = failure_of(f"require('{module}')")
    assert failure.kind is FailureKind.ERROR
    assert failure.message.startswith(f"Error: Cannot find module '{module}'")


def test_dynamic_import_loads_nothing() -> None:
    assert (
        value_of("import('os').then(() => done('loaded'), (e) => done('refused: ' + e.name))")
        == "refused: ReferenceError"
    )


def test_the_function_constructor_finds_the_same_empty_global() -> None:
    assert value_of(
        "const g = Function('return this')();"
        " done([g === globalThis, typeof g.process, typeof g.require('util').format])"
    ) == [True, "undefined", "function"]


def test_the_prelude_cannot_be_replaced_by_a_script() -> None:
    assert value_of(
        "try { CE = null } catch (e) {}"
        " try { globalThis.console = null } catch (e) {}"
        " done([typeof CE.b64, typeof console.log])"
    ) == ["function", "function"]


# ------------------------------------------------------------------------------ CE helpers


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("CE.b64('foobarbaz')", "Zm9vYmFyYmF6"),
        ("CE.decode64('Zm9vYmFyYmF6')", "foobarbaz"),
        ("CE.decode64(CE.b64('héllo ✓'))", "héllo ✓"),
        ("CE.md5('foobarbaz')", hashlib.md5(b"foobarbaz").hexdigest()),  # noqa: S324
        (
            "CE.hmac('sha256')('hex')('foobarbaz', 'bazbarfoo')",
            hmac.new(b"foobarbaz", b"bazbarfoo", "sha256").hexdigest(),
        ),
        (
            "CE.hmacSha256Hex('foobarbaz', 'bazbarfoo')",
            hmac.new(b"foobarbaz", b"bazbarfoo", "sha256").hexdigest(),
        ),
        (
            "CE.hmacSha256Base64('secret', 'message')",
            base64.b64encode(hmac.new(b"secret", b"message", "sha256").digest()).decode(),
        ),
        (
            "CE.hmacSha1Hex('secret', 'message')",
            hmac.new(b"secret", b"message", "sha1").hexdigest(),
        ),
        (
            "CE.hmacSha1Base64('secret', 'message')",
            base64.b64encode(hmac.new(b"secret", b"message", "sha1").digest()).decode(),
        ),
        ("CE.hmacMd5Hex('secret', 'message')", hmac.new(b"secret", b"message", "md5").hexdigest()),
        ("CE.currencyCode('United States')", "USD"),
        ("CE.currencyCode('france')", "EUR"),
        ("CE.currencyCode('Japan')", "JPY"),
        ("CE.currencySymbol('EUR')", "€"),
        ("CE.currencySymbol('usd')", "$"),
        ("CE.currencySymbol('GBP')", "£"),
        ("CE.iso2CountryCode('france')", "FR"),
        ("CE.iso2CountryCode('United States')", "US"),
        ("CE.iso3CountryCode('mexico')", "MEX"),
        ("CE.iso3CountryCode('Germany')", "DEU"),
        ("CE.iso2CountryCode('Atlantis')", None),
        ("CE.currencySymbol('XXQ')", None),
    ],
)
def test_ce_helper_values(expression: str, expected: object) -> None:
    assert value_of(f"done({expression})") == expected


def test_random_helpers_have_their_shapes() -> None:
    string, email, short, again = value_of(
        "done([CE.randomString(), CE.randomEmail(), CE.randomString(4), CE.randomString()])"
    )
    assert len(string) == 10
    assert string.isalnum()
    assert len(short) == 4
    assert again != string
    local, _, domain = email.partition("@")
    assert local.isalnum()
    assert domain.endswith(".com")


def test_an_unknown_hmac_algorithm_names_the_choices() -> None:
    failure = failure_of("CE.hmac('sha512')('hex')('k', 'm')")
    assert failure.message == (
        'TypeError: unknown HMAC algorithm "sha512"; use one of md5, sha1, sha256'
    )


@pytest.fixture
def hashing() -> Iterator[ScriptSession]:
    # One context for every example (as a request maps many records); the script keeps no
    # state between calls, and the budget is wide because it spans Hypothesis's own time.
    body = "done([CE.hmac(algo)(enc)(key, message), CE.md5(message), CE.b64(message)])"
    limits = Limits(seconds=300, memory_bytes=32 * MIB)
    with ScriptSession(body, ("algo", "enc", "key", "message"), limits) as session:
        yield session


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    algo=st.sampled_from(["md5", "sha1", "sha256"]),
    key=st.text(max_size=100),
    message=st.text(max_size=300),
)
def test_hashes_agree_with_python(
    hashing: ScriptSession, algo: str, key: str, message: str
) -> None:
    if any(0xD800 <= ord(c) <= 0xDFFF for c in key + message):
        return  # lone surrogates are not text either side can encode
    outcome = hashing.call({"algo": algo, "enc": "hex", "key": key, "message": message})
    assert isinstance(outcome, ScriptResult), outcome
    mac, md5, b64 = outcome.value
    assert mac == hmac.new(key.encode(), message.encode(), algo).hexdigest()
    assert md5 == hashlib.md5(message.encode()).hexdigest()  # noqa: S324
    assert b64 == base64.b64encode(message.encode()).decode()


# ------------------------------------------------------------------------------ require


def test_require_lodash() -> None:
    assert value_of(
        "const _ = require('lodash'); done([_.map([1, 2], (n) => n * 3), _.get({a: {b: 5}}, 'a.b'),"
        " _.VERSION])"
    ) == [[3, 6], 5, "4.16.4"]


def test_require_lodash_fp() -> None:
    assert value_of("const fp = require('lodash/fp'); done(fp.map((n) => n + 1)([1, 2]))") == [2, 3]


def test_require_moment() -> None:
    assert value_of(
        "const moment = require('moment');"
        " done([moment.utc('2026-03-05T07:08:09Z').add(1, 'day').format('YYYY-MM-DD HH:mm'),"
        " moment.version])"
    ) == ["2026-03-06 07:08", "2.8.4"]


def test_require_util() -> None:
    assert value_of(
        "const util = require('util');"
        " done([util.format('%s has %d items: %j', 'cart', 3, [1]), util.isArray([]),"
        " util.inspect({a: 1}), util.format('%%')])"
    ) == ["cart has 3 items: [1]", True, '{"a":1}', "%"]


def test_only_what_the_text_names_is_compiled_in() -> None:
    assert value_of("done(typeof globalThis['C' + 'E'])") == "undefined"
    assert value_of("done([typeof globalThis['not' + 'ify'], typeof console.log])") == [
        "undefined",
        "function",
    ]
    failure = failure_of("require('lo' + 'dash')")
    assert failure.message.startswith("Error: Cannot find module 'lodash'")


def test_require_returns_one_module_per_context() -> None:
    assert value_of("done(require('lodash') === require('lodash'))") is True


def test_a_batch_keeps_each_records_console_and_notifications() -> None:
    outcomes = run_many(
        "console.log('record', originalObject.n);"
        " notify.email('ops@example.test', 'n', String(originalObject.n));"
        " if (originalObject.n === 2) throw new TypeError('two');"
        " Promise.resolve().then(() => done(originalObject.n * 10));",
        TRANSFORM,
        [{"originalObject": {"n": n}} for n in (1, 2, 3)],
        LIMITS,
    )
    note = {"to": "ops@example.test", "subject": "n"}
    assert outcomes == [
        ScriptResult(10, ("record 1",), ({**note, "body": "1"},)),
        ScriptFailure(FailureKind.ERROR, "TypeError: two", ("record 2",), ({**note, "body": "2"},)),
        ScriptResult(30, ("record 3",), ({**note, "body": "3"},)),
    ]


def test_a_batch_record_whose_value_json_cannot_hold_fails_alone() -> None:
    # One record's cyclic value sends the whole answer through rare.js, record by record.
    outcomes = run_many(
        "console.log('n', originalObject.n);"
        " if (originalObject.n === 2) { const o = {}; o.self = o; done(o); }"
        " else done(originalObject.n)",
        TRANSFORM,
        [{"originalObject": {"n": n}} for n in (1, 2, 3)],
        LIMITS,
    )
    assert outcomes[0] == ScriptResult(1, ("n 1",))
    assert isinstance(outcomes[1], ScriptFailure)
    assert outcomes[1].kind is FailureKind.BAD_RESULT
    assert outcomes[1].console == ("n 2",)
    assert outcomes[2] == ScriptResult(3, ("n 3",))


@pytest.mark.parametrize("value", ["undefined", "function f() {}", "Symbol('s')"])
def test_a_value_that_is_no_json_in_a_batch_reads_as_null(value: str) -> None:
    outcomes = run_many(f"done({value})", TRANSFORM, [{}, {}], LIMITS)
    assert outcomes == [ScriptResult(None), ScriptResult(None)]


def test_a_batchs_inputs_and_outcomes_cross_as_json_text() -> None:
    # What a sandbox process runs (D442): the calls' text in, the outcomes' text out.
    with ScriptSession("done([originalObject, fromVendor])", TRANSFORM, LIMITS) as session:
        text, stopped = session.call_rows('[[{"a": 1}, null, true], [null, null, false]]')
    assert stopped is None
    assert text is not None
    assert batch_outcomes(json.loads(text), stopped, 2) == [
        ScriptResult([{"a": 1}, True]),
        ScriptResult([None, False]),
    ]


def test_a_broken_session_answers_no_text_and_its_failure() -> None:
    with ScriptSession("done(", TRANSFORM, LIMITS) as session:
        text, stopped = session.call_rows("[[null, null, null]]")
    assert text is None
    assert stopped is not None
    assert stopped.kind is FailureKind.SYNTAX
    assert batch_outcomes(None, stopped, 3) == [stopped] * 3


def test_a_script_that_breaks_the_batchs_arrays_still_gets_one_outcome_per_record() -> None:
    outcomes = run_many(
        "Array.prototype.push = function () { return 0; }; done(originalObject.n)",
        TRANSFORM,
        [{"originalObject": {"n": n}} for n in (1, 2, 3)],
        LIMITS,
    )
    assert len(outcomes) == 3
    assert all(isinstance(o, ScriptFailure) and o.kind is FailureKind.ERROR for o in outcomes)


def test_rare_parts_compiled_after_a_script_use_the_json_functions_from_before_it() -> None:
    # The console is read by rare.js after the time limit; the script replaced JSON.stringify.
    outcome = run_many(
        "JSON.stringify = () => 'garbage'; console.log({a: 1}); while (true) {}",
        TRANSFORM,
        [{}],
        Limits(seconds=0.5, memory_bytes=16 * MIB),
    )[0]
    assert isinstance(outcome, ScriptFailure)
    assert outcome.kind is FailureKind.TIME_LIMIT
    assert outcome.console == ('{"a":1}',)
