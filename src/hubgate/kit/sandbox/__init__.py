"""The JavaScript sandbox (D42): QuickJS-NG with a time and a memory limit and no host access.

Transformation scripts and formula steps are function bodies written for Open Connectors:
``function (originalObject, transformedObject, fromVendor, done) { ... }`` or
``function (trigger, steps, info, config, done) { ... }``; they answer by calling ``done(x)``.
This module runs such a body with named JSON inputs and returns the value given to ``done``, or a
typed ``ScriptFailure``::

    outcome = run(body, ("originalObject", "transformedObject", "fromVendor"), inputs, limits)
    if isinstance(outcome, ScriptFailure): ...   # outcome.reason() goes into Elements-Error

    with ScriptSession(body, params, limits) as session:   # one context for a whole request
        outcomes = [session.call(inputs) for inputs in records]

How it is fenced:

* A fresh QuickJS context (its own runtime) per run or session; nothing survives it.
* The engine's limits: the time limit is checked by QuickJS's interrupt handler and cannot be
  caught by the script; the memory limit covers the runtime, prelude and loaded modules
  included. A session has one time budget: each call gets what the earlier calls left, so a
  request with 500 records cannot take 500 times the limit. QuickJS measures the limit in
  process CPU time (C ``clock()``), so under load it fires early, never late.
* The global object has only the ECMAScript built-ins (no ``require``, ``process``, ``fetch``,
  timers or file access in QuickJS-NG) plus what ``prelude.js`` adds: ``console`` (captured),
  ``notify.email`` (recorded, not sent), ``require`` of bundled lodash, lodash/fp, moment (from
  the ``xstatic-lodash`` / ``xstatic-moment`` packages) and a small ``util`` (``util.js``), and
  ``CE`` (``ce.js``). ``CE`` and the modules are compiled only into contexts whose script text
  names them (``require(name)`` of a name built at run time finds nothing). ``Atomics``,
  ``SharedArrayBuffer`` and weak references are removed.
* No Python object is reachable: QuickJS-NG refuses host callbacks while a time limit is set,
  so the prelude is plain JavaScript, and inputs and outputs cross as JSON text.

Threads: a QuickJS context must stay on the thread that made it (the wrapper's own notes report
crashes otherwise), so a ``ScriptSession`` refuses calls from another thread, and everything a
request needs (open, every call, close) runs in one function. QuickJS releases the GIL while
JavaScript runs; async callers use ``run_async``/``run_many_async``, which run that function
in this module's own small thread pool so a runaway script holds one of its threads, never the
event loop nor the loop's default executor.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import re
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache, partial
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

import orjson
import quickjs
import xstatic.pkg.lodash
import xstatic.pkg.moment

from hubgate.kit.sandbox.outcomes import (
    FORMULA_LIMITS,
    MIB,
    FailureKind,
    Limits,
    Outcome,
    ScriptFailure,
    ScriptResult,
    batch_outcomes,
)
from hubgate.kit.sandbox.pool import Fence, SandboxPool
from hubgate.kit.sandbox.wire import rows_json

__all__ = [
    "FORMULA_LIMITS",
    "MIB",
    "FailureKind",
    "Fence",
    "Limits",
    "Outcome",
    "SandboxPool",
    "ScriptFailure",
    "ScriptResult",
    "ScriptSession",
    "batch_outcomes",
    "bundled_sources",
    "run",
    "run_async",
    "run_many",
    "run_many_async",
]


_HERE: Final = resources.files(__package__)
_PRELUDE: Final = _HERE.joinpath("prelude.js").read_text(encoding="utf-8")
# The prelude's rare parts are handed in as a string value (the prelude's argument): even
# scanning them as a string literal would cost a fresh context 0.05 ms (D441).
_RARE: Final = _HERE.joinpath("rare.js").read_text(encoding="utf-8")
# The prelude evaluates to a function of the rare part's text that answers the driver: one
# `eval` and one call open a context, and nothing is left on the global object (D491).
_OPEN: Final = f"({_PRELUDE})"
_CE: Final = _HERE.joinpath("ce.js").read_text(encoding="utf-8")
_UTIL: Final = _HERE.joinpath("util.js").read_text(encoding="utf-8")
_MODULES: Final = _HERE.joinpath("modules.js").read_text(encoding="utf-8")
# Compiling JavaScript is most of a fresh context's cost, so `CE` and each module are compiled
# into a context only when the script's text names them (lodash alone costs milliseconds).
_LODASH_DIR: Final = Path(xstatic.pkg.lodash.BASE_DIR)
_MOMENT_DIR: Final = Path(xstatic.pkg.moment.BASE_DIR)
_MENTIONS: Final = re.compile(r"\bCE\b|lodash|moment|util|notify|require")
# CLDR keeps the alpha-3 codes of former states as aliases of their successors; ISO 3166-3
# withdrew these, and each successor has its current code among the aliases too.
_WITHDRAWN_ALPHA3: Final = frozenset({"BUR", "DDR", "FXX", "TMP", "YMD", "ZAR"})
_INTERRUPTED: Final = "InternalError: interrupted"
# Reading a batch's outcomes after its budget is spent gets this much time of its own.
_READ_SECONDS: Final = 1.0
_OUT_OF_MEMORY: Final = ("InternalError: out of memory", "null")


@cache
def _bundled(name: str) -> str:
    paths = {
        "lodash": _LODASH_DIR / "lodash.min.js",
        "lodash/fp": _LODASH_DIR / "lodash.fp.min.js",
        "moment": _MOMENT_DIR / "moment.min.js",
    }
    return paths[name].read_text(encoding="utf-8")


def bundled_sources() -> None:
    """Read every bundled module and build ``CE``'s tables now rather than on first use."""
    for name in ("lodash", "lodash/fp", "moment"):
        _bundled(name)
    _tables()


@cache
def _tables() -> str:
    """Country names and codes, currencies and their symbols, from Babel's CLDR data."""
    from babel.core import Locale, get_global
    from babel.numbers import get_currency_symbol, get_territory_currencies, list_currencies

    english = Locale("en")
    alpha2 = {
        code: name
        for code, name in english.territories.items()
        if len(code) == 2 and code.isalpha() and code.isupper()
    }
    countries: dict[str, str] = {}
    for code, name in alpha2.items():
        countries[name.casefold()] = code
        countries[code.casefold()] = code
    alpha3: dict[str, str] = {}
    for alias, targets in get_global("territory_aliases").items():
        if alias in _WITHDRAWN_ALPHA3 or not (len(alias) == 3 and alias.isalpha()):
            continue
        if len(targets) == 1 and targets[0] in alpha2:
            alpha3.setdefault(targets[0].casefold(), alias)
    for code, three in alpha3.items():
        countries.setdefault(three.casefold(), code.upper())
    currencies: dict[str, str] = {}
    for code in alpha2:
        found = get_territory_currencies(code)
        if found:
            currencies[code.casefold()] = found[0]
    symbols = {
        code.casefold(): get_currency_symbol(code, locale=english) for code in list_currencies()
    }
    text = json.dumps(
        {"countries": countries, "alpha3": alpha3, "currencies": currencies, "symbols": symbols},
        ensure_ascii=False,
        sort_keys=True,
    )
    # Handed to ce.js as a JavaScript string literal, parsed there on first use.
    return json.dumps(text)


class _OutOfTimeError(Exception):
    """The session's budget ran out between two steps of a batch."""


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _too_long(limits: Limits) -> str:
    return f"the script ran longer than {limits.seconds:g} s"


def _classify(error: quickjs.JSException, limits: Limits) -> tuple[FailureKind, str]:
    message = _first_line(error)
    if message.startswith(_INTERRUPTED):
        return FailureKind.TIME_LIMIT, _too_long(limits)
    if message in _OUT_OF_MEMORY:
        return FailureKind.MEMORY_LIMIT, (
            f"the script needed more than {limits.memory_bytes / MIB:g} MiB of memory"
        )
    return FailureKind.ERROR, message


class ScriptSession:
    """One compiled script in one fresh context, called any number of times on one thread.

    A compile error, a time-limit or a memory-limit failure ends the session: later calls
    answer the same failure without running, since the budget is spent or the heap is full.
    """

    def __init__(self, body: str, params: Sequence[str], limits: Limits) -> None:
        for name in params:
            if not re.fullmatch(r"[A-Za-z_$][A-Za-z0-9_$]*", name) or name == "done":
                raise ValueError(f"not a usable parameter name: {name!r}")
        self._limits = limits
        self._params = tuple(params)
        self._thread = threading.get_ident()
        self._deadline = time.monotonic() + limits.seconds
        self._broken: ScriptFailure | None = None
        self._context: quickjs.Context | None = quickjs.Context()
        self._context.set_memory_limit(limits.memory_bytes)
        self._context.set_time_limit(limits.seconds)
        self._driver: quickjs.Object | None = None
        try:
            self._start(body)
        except quickjs.JSException as error:
            kind, message = _classify(error, limits)
            if kind is FailureKind.ERROR:
                kind = FailureKind.SYNTAX
            self._broken = ScriptFailure(kind, message)

    def _start(self, body: str) -> None:
        context = self._context
        assert context is not None
        driver = self._driver = context.eval(_OPEN)(_RARE)
        mentioned = set(_MENTIONS.findall(body))
        if mentioned & {"notify", "require"}:
            driver("rare", "extend", context.eval(_MODULES))
        if "CE" in mentioned:
            driver("rare", "install", "CE", context.eval(f"({_CE})({_tables()})"))
        if "require" in mentioned:
            if "util" in mentioned:
                driver("rare", "register", "util", context.eval(_UTIL))
            if "lodash" in mentioned:
                self._register("lodash")
                driver("rare", "registerFp", self._module("lodash/fp"))
            if "moment" in mentioned:
                self._register("moment")
        driver("compile", json.dumps(self._params), body)

    def _drive(self, *what: Any) -> Any:
        """Call the prelude's driver: what to do, then its arguments."""
        assert self._driver is not None
        return self._driver(*what)

    def _module(self, name: str) -> quickjs.Object:
        assert self._context is not None
        factory: quickjs.Object = self._context.eval(
            f"(function (module, exports) {{\n{_bundled(name)}\n}})"
        )
        return factory

    def _register(self, name: str) -> None:
        self._drive("rare", "register", name, self._module(name))

    def call(self, inputs: Mapping[str, Any]) -> Outcome:
        """Run the script once with ``inputs`` (JSON data, keyed by parameter name)."""
        if threading.get_ident() != self._thread:
            raise RuntimeError("a script session is used only on the thread that opened it")
        if self._context is None:
            raise RuntimeError("the script session is closed")
        if self._broken is not None:
            return self._broken
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            self._broken = ScriptFailure(FailureKind.TIME_LIMIT, self._too_long())
            return self._broken
        self._context.set_time_limit(remaining)
        try:
            self._drive("rare", "call", json.dumps([inputs.get(name) for name in self._params]))
            # A script may call done() from a promise callback. QuickJS restarts its clock for
            # each job, so a chain of promises that never ends is stopped here, by the budget.
            while True:
                remaining = self._deadline - time.monotonic()
                if remaining <= 0:
                    return self._failure(FailureKind.TIME_LIMIT, self._too_long())
                self._context.set_time_limit(remaining)
                if not self._context.execute_pending_job():
                    break
        except quickjs.JSException as error:
            return self._failure(*_classify(error, self._limits))
        try:
            answer = json.loads(self._drive("rare", "result"))
        except quickjs.JSException as error:
            kind, message = _classify(error, self._limits)
            if kind is FailureKind.ERROR:
                kind, message = (
                    FailureKind.BAD_RESULT,
                    f"done() got a value JSON cannot hold ({message})",
                )
            return self._failure(kind, message)
        lines, notes = tuple(answer["lines"]), tuple(answer["notes"])
        if not answer["called"]:
            return ScriptFailure(
                FailureKind.NO_DONE, "the script ended without calling done()", lines, notes
            )
        return ScriptResult(answer["value"], lines, notes)

    def call_many(self, calls: Sequence[Mapping[str, Any]]) -> list[Outcome]:
        """``call`` for each entry of ``calls``, crossing into JavaScript once for all of them.

        The same outcomes as calling one by one: a thrown error fails its own record; the time
        limit (one budget for the session) or the memory limit fails the record it stopped
        and every later one, earlier records keeping their values.
        """
        if not calls:
            return []
        text, stopped = self.call_rows(rows_json(self._params, calls).decode())
        return batch_outcomes(None if text is None else orjson.loads(text), stopped, len(calls))

    def call_rows(self, rows: str) -> tuple[str | None, ScriptFailure | None]:
        """``call_many`` on JSON text, answering JSON text: what a sandbox process runs.

        ``rows`` is a JSON list with one entry per call, the list of its arguments in
        parameter order (``rows_json``). Answers the outcomes' JSON text for
        ``outcomes.batch_outcomes`` (None when they cannot be read) and the failure that
        stopped the batch, if any, so that the records' JSON is parsed only by whoever
        finally needs their values.
        """
        if threading.get_ident() != self._thread:
            raise RuntimeError("a script session is used only on the thread that opened it")
        if self._context is None:
            raise RuntimeError("the script session is closed")
        if self._broken is not None:
            return None, self._broken
        context = self._context
        stopped: ScriptFailure | None = None
        try:
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                raise _OutOfTimeError
            context.set_time_limit(remaining)
            self._drive("callAll", rows)
            while True:
                remaining = self._deadline - time.monotonic()
                if remaining <= 0:
                    raise _OutOfTimeError
                context.set_time_limit(remaining)
                if not context.execute_pending_job():
                    break
        except _OutOfTimeError:
            stopped = self._failure(FailureKind.TIME_LIMIT, self._too_long())
        except quickjs.JSException as error:
            stopped = self._failure(*_classify(error, self._limits))
        try:
            # Reading what was done takes no budget of the script's.
            context.set_time_limit(_READ_SECONDS)
            text: str = self._drive("results")
        except quickjs.JSException as error:
            return None, stopped or self._failure(*_classify(error, self._limits))
        return text, stopped

    def _too_long(self) -> str:
        return _too_long(self._limits)

    def _captured(self) -> tuple[tuple[str, ...], tuple[Mapping[str, str], ...]]:
        try:
            captured = json.loads(self._drive("rare", "console"))
        except quickjs.JSException:
            # The heap may be too full to build the text; the failure itself is what counts.
            return (), ()
        return tuple(captured["lines"]), tuple(captured["notes"])

    def _failure(self, kind: FailureKind, message: str) -> ScriptFailure:
        if kind in (FailureKind.TIME_LIMIT, FailureKind.MEMORY_LIMIT):
            self._broken = ScriptFailure(kind, message)
        lines, notes = self._captured()
        return ScriptFailure(kind, message, lines, notes)

    def close(self) -> None:
        """Free the context on its own thread (JS objects first, then the runtime)."""
        if threading.get_ident() != self._thread:
            raise RuntimeError("a script session is closed on the thread that opened it")
        self._driver = None
        self._context = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def run(body: str, params: Sequence[str], inputs: Mapping[str, Any], limits: Limits) -> Outcome:
    """Compile and call a script once, in a context of its own."""
    with ScriptSession(body, params, limits) as session:
        return session.call(inputs)


def run_many(
    body: str, params: Sequence[str], calls: Sequence[Mapping[str, Any]], limits: Limits
) -> list[Outcome]:
    """Call a script once per entry of ``calls`` in one context, as one request does."""
    with ScriptSession(body, params, limits) as session:
        return session.call_many(calls)


# Scripts are CPU-bound and release the GIL, so more threads than cores buy nothing but a
# longer queue; a few extra let short scripts pass a runaway that holds a thread.
_POOL: Final = ThreadPoolExecutor(
    max_workers=max(2, min(8, 2 * (os.cpu_count() or 1))), thread_name_prefix="hubgate-js"
)


_pools: dict[int, SandboxPool] = {}
_pools_lock: Final = threading.Lock()


def _process_pool() -> SandboxPool | None:
    """This process's pool of sandbox processes (D390), or None when scripts run in threads."""
    # Read lazily: the setting is Hubgate's, the sandbox itself takes no configuration.
    from hubgate.settings import get_settings

    size = get_settings().script_processes
    if size == 0:
        return None
    with _pools_lock:
        # Keyed by process id: a forked server worker must not share its parent's pipes.
        pool = _pools.get(os.getpid())
        if pool is None:
            pool = _pools[os.getpid()] = SandboxPool(size)
            atexit.register(pool.close)
        return pool


async def run_async(
    body: str, params: Sequence[str], inputs: Mapping[str, Any], limits: Limits
) -> Outcome:
    """``run`` in a sandbox process (or, with ``script_processes`` 0, in the thread pool); the
    event loop keeps serving meanwhile."""
    return (await run_many_async(body, params, [inputs], limits))[0]


async def run_many_async(
    body: str, params: Sequence[str], calls: Sequence[Mapping[str, Any]], limits: Limits
) -> list[Outcome]:
    """``run_many`` in a sandbox process, or in the thread pool (``script_processes`` 0)."""
    pool = _process_pool()
    if pool is not None:
        return await pool.run_many(body, params, calls, limits)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_POOL, partial(run_many, body, params, calls, limits))
